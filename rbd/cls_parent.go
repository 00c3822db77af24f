package rbd

import "github.com/csi-gorbd/csi-gorbd/rados/encoding"

// ParentSpec is cls::rbd::ParentImageSpec: the snapshot a clone reads
// through to.
type ParentSpec struct {
	PoolID    int64
	Namespace string
	ImageID   string
	SnapID    uint64
}

// Exists mirrors ParentImageSpec::exists.
func (p ParentSpec) Exists() bool { return p.PoolID >= 0 && p.ImageID != "" && p.SnapID != NoSnap }

// encodeParentSpec: struct v1/c1 { i64 pool_id, string pool_namespace,
// string image_id, u64 snap_id }.
func encodeParentSpec(e *encoding.Encoder, p ParentSpec) {
	m := e.StructBegin(1, 1)
	e.I64(p.PoolID)
	e.String(p.Namespace)
	e.String(p.ImageID)
	e.U64(p.SnapID)
	e.StructEnd(m)
}

func decodeParentSpec(d *encoding.Decoder) ParentSpec {
	body, _ := d.Struct(1)
	var p ParentSpec
	p.PoolID = body.I64()
	p.Namespace = body.String()
	p.ImageID = body.String()
	p.SnapID = body.U64()
	return p
}

// decodeParentGet: the parent_get reply, one ParentImageSpec.
func decodeParentGet(b []byte) (ParentSpec, error) {
	d := encoding.NewDecoder(b)
	p := decodeParentSpec(d)
	return p, finish("parent_get", d)
}

// decodeParentOverlapGet: std::optional<u64>.
func decodeParentOverlapGet(b []byte) (overlap uint64, ok bool, err error) {
	d := encoding.NewDecoder(b)
	overlap, ok = optionalU64(d)
	return overlap, ok, finish("parent_overlap_get", d)
}

// decodeLegacyGetParent: the pre-namespace get_parent reply: i64 pool,
// string image_id, u64 snap_id, u64 overlap.
func decodeLegacyGetParent(b []byte) (ParentSpec, uint64, error) {
	d := encoding.NewDecoder(b)
	var p ParentSpec
	p.PoolID = d.I64()
	p.ImageID = d.String()
	p.SnapID = d.U64()
	overlap := d.U64()
	return p, overlap, finish("get_parent", d)
}

// parentAttachArgs: ParentImageSpec, u64 overlap, bool reattach.
func parentAttachArgs(p ParentSpec, overlap uint64, reattach bool) []byte {
	e := enc()
	encodeParentSpec(e, p)
	e.U64(overlap)
	e.Bool(reattach)
	return e.B
}

// ChildSpec is cls::rbd::ChildImageSpec: a clone, as its parent's header
// records it (clone v2).
type ChildSpec struct {
	PoolID    int64
	Namespace string
	ImageID   string
}

// encodeChildSpec: struct v2/c1 { i64 pool_id, string image_id, string
// pool_namespace } — note the namespace comes last (added in v2).
func encodeChildSpec(e *encoding.Encoder, c ChildSpec) {
	m := e.StructBegin(2, 1)
	e.I64(c.PoolID)
	e.String(c.ImageID)
	e.String(c.Namespace)
	e.StructEnd(m)
}

func decodeChildSpec(d *encoding.Decoder) ChildSpec {
	body, h := d.Struct(1)
	var c ChildSpec
	c.PoolID = body.I64()
	c.ImageID = body.String()
	if h.Version >= 2 {
		c.Namespace = body.String()
	}
	return c
}

// childAttachArgs: u64 snap_id, ChildImageSpec (child_attach and
// child_detach, on the parent's header).
func childAttachArgs(snap uint64, c ChildSpec) []byte {
	e := enc()
	e.U64(snap)
	encodeChildSpec(e, c)
	return e.B
}

// decodeChildrenList: set<ChildImageSpec> (children_list reply, and the
// children_<snapid> omap value on the parent header).
func decodeChildrenList(b []byte) ([]ChildSpec, error) {
	d := encoding.NewDecoder(b)
	n := d.Count(6 + 8 + 4)
	out := make([]ChildSpec, 0, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		out = append(out, decodeChildSpec(d))
	}
	return out, finish("children_list", d)
}

// legacyChildArgs: add_child / remove_child on rbd_children (clone v1):
// i64 pool, string parent image id, u64 snap id, string child id.
func legacyChildArgs(p ParentSpec, childID string) []byte {
	e := enc()
	e.I64(p.PoolID)
	e.String(p.ImageID)
	e.U64(p.SnapID)
	e.String(childID)
	return e.B
}

// decodeStoredParent decodes the "parent" omap value of a clone's header
// (cls_rbd_parent, v≥2 as Pacific and later write it): struct { i64
// pool_id, string pool_namespace, string image_id, u64 snap_id,
// optional<u64> head_overlap }. v1 (pre-Nautilus) had no namespace and a
// plain u64 overlap. cls_rbd reads it for parent_get/parent_overlap_get;
// clients never see it, but it lets the tests pin the parent fields to
// bytes a real cluster wrote.
func decodeStoredParent(b []byte) (ParentSpec, uint64, bool, error) {
	d := encoding.NewDecoder(b)
	body, h := d.Struct(2)
	var p ParentSpec
	p.PoolID = body.I64()
	if h.Version >= 2 {
		p.Namespace = body.String()
	}
	p.ImageID = body.String()
	p.SnapID = body.U64()
	var overlap uint64
	ok := true
	if h.Version >= 2 {
		overlap, ok = optionalU64(body)
	} else {
		overlap = body.U64()
	}
	return p, overlap, ok, finish("parent", d)
}
