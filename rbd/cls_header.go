package rbd

import (
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
)

// cls_rbd methods on rbd_header.<id> that describe the image. Argument
// layouts follow cls_rbd_client.cc, replies the matching methods in
// cls_rbd.cc.

// createArgs: create(u64 size, u8 order, u64 features, string
// object_prefix, i64 data_pool_id). -1 means no data pool.
func createArgs(size uint64, order uint8, features uint64, objectPrefix string, dataPool int64) []byte {
	e := enc()
	e.U64(size)
	e.U8(order)
	e.U64(features)
	e.String(objectPrefix)
	e.I64(dataPool)
	return e.B
}

// snapIDArg is the single u64 snap_id argument of get_size, get_flags,
// snapshot_get, parent_overlap_get, get_protection_status, …
func snapIDArg(snap uint64) []byte {
	e := enc()
	e.U64(snap)
	return e.B
}

// u64Arg encodes one u64 (set_size, snapshot_remove, …).
func u64Arg(v uint64) []byte { return snapIDArg(v) }

// twoU64Args encodes two u64s (set_stripe_unit_count, op_features_set).
func twoU64Args(a, b uint64) []byte {
	e := enc()
	e.U64(a)
	e.U64(b)
	return e.B
}

// decodeGetSize: u8 order, u64 size.
func decodeGetSize(b []byte) (order uint8, size uint64, err error) {
	d := encoding.NewDecoder(b)
	order = d.U8()
	size = d.U64()
	return order, size, finish("get_size", d)
}

// getFeaturesArgs: u64 snap_id, bool read_only. The OSD masks the
// incompatible word with RBD_FEATURES_INCOMPATIBLE when read_only is set and
// with RBD_FEATURES_RW_INCOMPATIBLE otherwise. Pre-Octopus OSDs ignore the
// extra byte and always use the rw mask.
func getFeaturesArgs(snap uint64, readOnly bool) []byte {
	e := enc()
	e.U64(snap)
	e.Bool(readOnly)
	return e.B
}

// decodeGetFeatures: u64 features, u64 incompatible.
func decodeGetFeatures(b []byte) (features, incompatible uint64, err error) {
	d := encoding.NewDecoder(b)
	features = d.U64()
	incompatible = d.U64()
	return features, incompatible, finish("get_features", d)
}

// setFeaturesArgs: u64 features, u64 mask.
func setFeaturesArgs(features, mask uint64) []byte { return twoU64Args(features, mask) }

// decodeString reads one encoded string (get_object_prefix, get_id,
// dir_get_id, dir_get_name, get_snapshot_name, metadata_get).
func decodeString(method string, b []byte) (string, error) {
	d := encoding.NewDecoder(b)
	s := d.String()
	return s, finish(method, d)
}

// stringArg encodes one string (set_id, dir_get_id, trash_remove, …).
func stringArg(s string) []byte {
	e := enc()
	e.String(s)
	return e.B
}

// decodeU64 reads one u64 (get_flags, op_features_get, get_all_features,
// snapshot_get_limit).
func decodeU64(method string, b []byte) (uint64, error) {
	d := encoding.NewDecoder(b)
	v := d.U64()
	return v, finish(method, d)
}

// decodeGetDataPool: i64 pool id, -1 without a data pool.
func decodeGetDataPool(b []byte) (int64, error) {
	d := encoding.NewDecoder(b)
	v := d.I64()
	return v, finish("get_data_pool", d)
}

// decodeStripeUnitCount: u64 stripe_unit, u64 stripe_count.
func decodeStripeUnitCount(b []byte) (unit, count uint64, err error) {
	d := encoding.NewDecoder(b)
	unit = d.U64()
	count = d.U64()
	return unit, count, finish("get_stripe_unit_count", d)
}

// setFlagsArgs: u64 flags, u64 mask, u64 snap_id.
func setFlagsArgs(flags, mask, snap uint64) []byte {
	e := enc()
	e.U64(flags)
	e.U64(mask)
	e.U64(snap)
	return e.B
}

// decodeSnapContext: u64 seq, vector<u64> snaps (newest first).
func decodeSnapContext(b []byte) (SnapContext, error) {
	d := encoding.NewDecoder(b)
	var sc SnapContext
	sc.Seq = d.U64()
	n := d.Count(8)
	sc.Snaps = make([]uint64, 0, n)
	for i := 0; i < n; i++ {
		sc.Snaps = append(sc.Snaps, d.U64())
	}
	if err := finish("get_snapcontext", d); err != nil {
		return SnapContext{}, err
	}
	return sc, nil
}

// decodeTimestamp: utime_t (get_create_timestamp and friends).
func decodeTimestamp(method string, b []byte) (time.Time, error) {
	d := encoding.NewDecoder(b)
	t := d.Timespec()
	return t, finish(method, d)
}

// metadataListArgs: string start_after, u64 max_return.
func metadataListArgs(start string, max uint64) []byte {
	e := enc()
	e.String(start)
	e.U64(max)
	return e.B
}

// decodeMetadataList: map<string, bufferlist>.
func decodeMetadataList(b []byte) (map[string][]byte, error) {
	d := encoding.NewDecoder(b)
	m := decodeStringMap(d)
	return m, finish("metadata_list", d)
}

// metadataSetArgs: map<string, bufferlist> (keys in sorted order, as
// std::map encodes them).
func metadataSetArgs(kv map[string][]byte) []byte {
	e := enc()
	keys := sortedKeys(kv)
	e.U32(uint32(len(keys)))
	for _, k := range keys {
		e.String(k)
		e.Bytes32(kv[k])
	}
	return e.B
}
