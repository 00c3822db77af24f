// Package entity holds the identities every Ceph layer passes around:
// entity names (client.admin, osd.3), entity types and network addresses
// (entity_addr_t and entity_addrvec_t) with their wire encodings.
//
// It sits just above encoding and below msgr2, the monitor map and the OSD
// map, which all carry addresses.
package entity
