// Package crush decodes Ceph CRUSH maps and computes placements with them.
//
// It mirrors Ceph's src/crush (crush.h, hash.c, mapper.c and the decoder in
// CrushWrapper.cc): the binary map a monitor embeds in every OSDMap, the
// rjenkins1 hash, the five bucket algorithms (uniform, list, tree, straw,
// straw2), rules with firstn and indep steps, the tunables, device-class
// shadow trees (they are ordinary buckets in the map) and choose_args
// (weight-set and id overrides, per pool or the compat set).
//
// The package is pure computation: it knows nothing of OSDMaps, pools or
// sockets. [Decode] validates a map so that [Map.DoRule] can never index out
// of range or loop forever on a malformed one; a bad map is an error, never a
// panic. [Map.DoRule] does not allocate when given a [Workspace].
//
// MSR rules (Squid's msr_firstn/msr_indep with CHOOSE_MSR steps) are mapped
// too (msr.go).
package crush
