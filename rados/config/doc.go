// Package config reads Ceph client configuration: ceph.conf files
// (sections [global], [client], [client.NAME]; "mon host", "mon_host" and
// "mon-host" are the same key; comments start with ';' or '#'), monitor
// address lists in every form mon_host accepts, and keyring locations.
//
// It resolves what a client needs to reach a cluster — monitor addresses,
// entity name, key or keyring path, connection mode — from a file and/or
// explicit options (ceph-csi passes "host:port" monitors, a user id and a
// key, and no file at all). It does not decode keys: that is cephx's job.
//
// Monitor addresses follow MonMap::_add_ambiguous_addr, restricted to
// msgr2 since csi-gorbd speaks only msgr2:
//
//	1.2.3.4                 v2:1.2.3.4:3300 (Ceph also adds v1:6789)
//	1.2.3.4:3300            v2:1.2.3.4:3300
//	1.2.3.4:6789            v1 in Ceph; we try v2:1.2.3.4:3300 (same host)
//	1.2.3.4:7000            v2:1.2.3.4:7000 (Ceph tries v2 and v1 there)
//	v2:1.2.3.4[:port][/n]   as given (default port 3300)
//	v1:1.2.3.4[:port][/n]   v2 on 3300 of the same host
//	[v2:...,v1:...]         the v2 entries of the addrvec
//	[::1]:3300, ::1         IPv6, same rules
//	mon.example.com[:port]  every A/AAAA address, same rules
//
// Entries are separated by commas, semicolons or white space.
package config
