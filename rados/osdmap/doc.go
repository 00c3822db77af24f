// Package osdmap decodes Ceph OSDMaps (full and incremental), applies
// incrementals, and computes object placement exactly as Ceph does.
//
// Placement follows OSDMap.cc step by step: object name, namespace and
// locator key hash to a raw pg (ceph_str_hash with the pool's object_hash);
// the pg's placement seed (HASHPSPOOL, stable mod with pgp_num) feeds the
// pool's CRUSH rule with the pool's choose_args; then pg_upmap,
// pg_upmap_items and pg_upmap_primaries are applied (_apply_upmap), down and
// nonexistent OSDs removed (replicated pools shift, erasure pools keep
// positions as crush.ItemNone), primary affinity applied, and finally
// pg_temp and primary_temp give the acting set.
//
// The package is pure computation over byte slices: it knows nothing of
// monitors or sockets. It sits above rados/encoding, rados/entity and
// rados/crush.
package osdmap
