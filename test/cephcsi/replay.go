package cephcsi

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/csi-gorbd/csi-gorbd/rados"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// Replayed tells how the captured state maps onto the cluster it was
// replayed into. Pool ids cannot be chosen, so everything that encodes
// one — volume and snapshot handles, "<pool id>/<uuid>" journal values,
// csi.journalpool — is re-encoded with the target pool's id; every other
// byte, image names and ids included, is as captured.
type Replayed struct {
	Pools   map[string]string // captured pool name -> target pool name
	PoolIDs map[int64]int64   // captured pool id -> target pool id
	// Handles maps every volume and snapshot id ceph-csi answered in the
	// capture to the id that names the same thing in the target pools.
	Handles map[string]string
}

// Handle returns the target handle of a captured one.
func (r *Replayed) Handle(captured string) (string, error) {
	h, ok := r.Handles[captured]
	if !ok {
		return "", fmt.Errorf("cephcsi: handle %q was not captured", captured)
	}
	return h, nil
}

// TranslateHandle re-points a handle at the target pool.
func (r *Replayed) TranslateHandle(captured string) (string, error) {
	h, err := ParseHandle(captured)
	if err != nil {
		return "", err
	}
	id, ok := r.PoolIDs[h.PoolID]
	if !ok {
		return "", fmt.Errorf("cephcsi: handle %q names pool id %d, which was not captured", captured, h.PoolID)
	}
	h.PoolID = id
	return h.String(), nil
}

// Replay writes the captured layout of st into conn's cluster: every
// captured pool goes to pools[name], which must exist, be initialised for
// RBD (`rbd pool init`) and hold none of the captured images or objects.
// Missing RBD namespaces are created. Images get their captured names and
// ids, features, object size, striping, data pool, sizes, snapshots (user
// and trash namespace, in their captured order and sizes), clone v2 parents
// and image metadata; trashed images go back to the trash. Journal objects
// get their omaps byte for byte (pool ids translated, see Replayed).
func Replay(ctx context.Context, conn *rados.Conn, st *State, pools map[string]string) (*Replayed, error) {
	r := &replayer{conn: conn, l: &st.Layout, pools: pools, ios: map[string]*rados.IOContext{},
		made: map[string]bool{}, snapsMade: map[string]int{}}
	out := &Replayed{Pools: pools, PoolIDs: map[int64]int64{}, Handles: map[string]string{}}
	for _, p := range st.Layout.Pools {
		target, ok := pools[p.Name]
		if !ok {
			return nil, fmt.Errorf("cephcsi: replay: no target for captured pool %q", p.Name)
		}
		id, err := conn.LookupPool(ctx, target)
		if err != nil {
			return nil, fmt.Errorf("cephcsi: replay: target pool %q: %w", target, err)
		}
		out.PoolIDs[p.ID] = id
		for _, ns := range p.Namespaces {
			io, err := r.io(ctx, p.Name, ns)
			if err != nil {
				return nil, err
			}
			if err := ensureNamespace(ctx, io, ns); err != nil {
				return nil, err
			}
		}
	}
	r.poolIDs = out.PoolIDs

	// Images: parents (and the parent snapshot) before children, each
	// image's snapshots in captured id order.
	for i := range st.Layout.Images {
		if err := r.ensureImage(ctx, &st.Layout.Images[i]); err != nil {
			return nil, err
		}
	}
	for i := range st.Layout.Images {
		im := &st.Layout.Images[i]
		if n := len(im.Snapshots); n > 0 {
			if err := r.ensureSnap(ctx, im, &im.Snapshots[n-1]); err != nil {
				return nil, err
			}
		}
	}
	for i := range st.Layout.Images {
		if err := r.finish(ctx, &st.Layout.Images[i]); err != nil {
			return nil, err
		}
	}
	for i := range st.Layout.Images {
		im := &st.Layout.Images[i]
		if im.Trash == nil {
			continue
		}
		if im.Trash.Source != "USER" || im.Trash.Deferred {
			return nil, fmt.Errorf("cephcsi: replay: trash entry %s/%s: source %s deferred %v not supported",
				im.Pool, im.Name, im.Trash.Source, im.Trash.Deferred)
		}
		io, err := r.io(ctx, im.Pool, im.Namespace)
		if err != nil {
			return nil, err
		}
		if _, err := rbd.TrashMove(ctx, io, im.Name, 0); err != nil {
			return nil, fmt.Errorf("cephcsi: replay: trash move %s/%s: %w", im.Pool, im.Name, err)
		}
	}

	for _, o := range st.Layout.Objects {
		io, err := r.io(ctx, o.Pool, o.Namespace)
		if err != nil {
			return nil, err
		}
		if o.Size != 0 {
			return nil, fmt.Errorf("cephcsi: replay: object %s has %d data bytes; only omap objects are replayed", o.Name, o.Size)
		}
		if err := io.Create(ctx, o.Name, true); err != nil {
			return nil, fmt.Errorf("cephcsi: replay: create %s/%s: %w", o.Pool, o.Name, err)
		}
		kv := map[string][]byte{}
		for _, e := range o.Omap {
			v, err := TranslateOmapValue(o.Name, e.Key, e.Value, out.PoolIDs)
			if err != nil {
				return nil, err
			}
			kv[e.Key] = v
		}
		if len(kv) > 0 {
			if err := io.SetOmap(ctx, o.Name, kv); err != nil {
				return nil, fmt.Errorf("cephcsi: replay: omap of %s/%s: %w", o.Pool, o.Name, err)
			}
		}
	}

	for _, c := range st.Calls {
		if c.Response == nil {
			continue
		}
		var id string
		var err error
		switch c.Method {
		case "CreateVolume":
			id, err = st.VolumeID(c.Step)
		case "CreateSnapshot":
			id, err = st.SnapshotID(c.Step)
		default:
			continue
		}
		if err != nil {
			return nil, err
		}
		if out.Handles[id], err = out.TranslateHandle(id); err != nil {
			return nil, err
		}
	}
	return out, nil
}

var poolUUIDValue = regexp.MustCompile(`^([0-9a-f]{16})/([0-9a-f-]{36})$`)

// TranslateOmapValue re-points the journal values that carry a pool id:
// "<16 hex pool id>/<uuid>" in csi.volumes.* / csi.snaps.* (an image in
// another pool than the journal) and csi.journalpool (16 hex) in the
// per-volume objects. Everything else is returned as is.
func TranslateOmapValue(object, key string, v []byte, poolIDs map[int64]int64) ([]byte, error) {
	mapID := func(h string) (string, error) {
		id, err := strconv.ParseUint(h, 16, 64)
		if err != nil {
			return "", err
		}
		to, ok := poolIDs[int64(id)]
		if !ok {
			return "", fmt.Errorf("cephcsi: %s %s names pool id %d, which was not captured", object, key, id)
		}
		return fmt.Sprintf("%016x", uint64(to)), nil
	}
	switch {
	case strings.HasPrefix(object, "csi.volumes.") || strings.HasPrefix(object, "csi.snaps."):
		if m := poolUUIDValue.FindSubmatch(v); m != nil {
			h, err := mapID(string(m[1]))
			if err != nil {
				return nil, err
			}
			return []byte(h + "/" + string(m[2])), nil
		}
	case key == "csi.journalpool":
		if len(v) == 16 {
			if _, err := hex.DecodeString(string(v)); err == nil {
				h, err := mapID(string(v))
				if err != nil {
					return nil, err
				}
				return []byte(h), nil
			}
		}
	}
	return v, nil
}

type replayer struct {
	conn    *rados.Conn
	l       *Layout
	pools   map[string]string
	poolIDs map[int64]int64
	ios     map[string]*rados.IOContext
	made    map[string]bool // image key -> created
	// snapsMade counts the image's captured snapshots (in id order) made.
	snapsMade map[string]int
}

func imageKey(im *Image) string { return im.Pool + "/" + im.Namespace + "/" + im.ID }

func (r *replayer) io(ctx context.Context, pool, ns string) (*rados.IOContext, error) {
	k := pool + "/" + ns
	if io, ok := r.ios[k]; ok {
		return io, nil
	}
	target, ok := r.pools[pool]
	if !ok {
		return nil, fmt.Errorf("cephcsi: replay: no target for captured pool %q", pool)
	}
	io, err := r.conn.OpenIOContext(ctx, target)
	if err != nil {
		return nil, fmt.Errorf("cephcsi: replay: open pool %q: %w", target, err)
	}
	io.SetNamespace(ns)
	r.ios[k] = io
	return io, nil
}

func (r *replayer) find(pool, ns, id string) (*Image, error) {
	for i := range r.l.Images {
		im := &r.l.Images[i]
		if im.Pool == pool && im.Namespace == ns && im.ID == id {
			return im, nil
		}
	}
	return nil, fmt.Errorf("cephcsi: replay: image %s/%s/%s not captured", pool, ns, id)
}

// userName is the name a snapshot had while it was a user snapshot.
func userName(s *Snapshot) string {
	if s.Namespace == "trash" {
		return s.OriginalName
	}
	return s.Name
}

func (r *replayer) createOptions(im *Image) (*rbd.CreateOptions, error) {
	var feats []string
	for _, f := range im.Info.Features {
		switch f {
		case "striping", "data-pool", "operations": // follow from the layout and the operations done
		default:
			feats = append(feats, f)
		}
	}
	f, err := rbd.ParseFeatures(feats...)
	if err != nil {
		return nil, fmt.Errorf("cephcsi: replay: %s: %w", im.Name, err)
	}
	o := &rbd.CreateOptions{ID: im.ID, Order: im.Info.Order, Features: f,
		StripeUnit: im.Info.StripeUnit, StripeCount: im.Info.StripeCount, CloneFormat: rbd.CloneFormatV2}
	if im.Info.DataPool != "" {
		target, ok := r.pools[im.Info.DataPool]
		if !ok {
			return nil, fmt.Errorf("cephcsi: replay: %s: data pool %q not captured", im.Name, im.Info.DataPool)
		}
		if o.DataPool, err = r.conn.LookupPool(context.Background(), target); err != nil {
			return nil, err
		}
		o.DataPoolSet = true
	}
	return o, nil
}

func (r *replayer) ensureImage(ctx context.Context, im *Image) error {
	if r.made[imageKey(im)] {
		return nil
	}
	io, err := r.io(ctx, im.Pool, im.Namespace)
	if err != nil {
		return err
	}
	opts, err := r.createOptions(im)
	if err != nil {
		return err
	}
	size := im.Info.Size
	if len(im.Snapshots) > 0 {
		size = im.Snapshots[0].Size
	}
	if p := im.Info.Parent; p != nil {
		parent, err := r.find(p.Pool, p.PoolNamespace, p.ID)
		if err != nil {
			return err
		}
		var snap *Snapshot
		for i := range parent.Snapshots {
			if parent.Snapshots[i].Name == p.Snapshot {
				snap = &parent.Snapshots[i]
			}
		}
		if snap == nil {
			return fmt.Errorf("cephcsi: replay: %s: parent snapshot %s@%s not captured", im.Name, parent.Name, p.Snapshot)
		}
		if err := r.ensureSnap(ctx, parent, snap); err != nil {
			return err
		}
		pio, err := r.io(ctx, parent.Pool, parent.Namespace)
		if err != nil {
			return err
		}
		if _, err := rbd.Clone(ctx, pio, parent.Name, userName(snap), io, im.Name, opts); err != nil {
			return fmt.Errorf("cephcsi: replay: clone %s@%s -> %s: %w", parent.Name, userName(snap), im.Name, err)
		}
		r.made[imageKey(im)] = true
		if size != snap.Size {
			return r.resize(ctx, im, size)
		}
		return nil
	}
	if _, err := rbd.Create(ctx, io, im.Name, size, opts); err != nil {
		return fmt.Errorf("cephcsi: replay: create %s/%s: %w", im.Pool, im.Name, err)
	}
	r.made[imageKey(im)] = true
	return nil
}

func (r *replayer) withImage(ctx context.Context, im *Image, fn func(*rbd.Image) error) error {
	io, err := r.io(ctx, im.Pool, im.Namespace)
	if err != nil {
		return err
	}
	img, err := rbd.Open(ctx, io, im.Name, nil)
	if err != nil {
		return fmt.Errorf("cephcsi: replay: open %s/%s: %w", im.Pool, im.Name, err)
	}
	ferr := fn(img)
	if err := img.Close(ctx); err != nil && ferr == nil {
		ferr = err
	}
	if ferr != nil {
		return fmt.Errorf("cephcsi: replay: %s/%s: %w", im.Pool, im.Name, ferr)
	}
	return nil
}

func (r *replayer) resize(ctx context.Context, im *Image, size uint64) error {
	return r.withImage(ctx, im, func(img *rbd.Image) error {
		if img.Size() == size {
			return nil
		}
		return img.Resize(ctx, size)
	})
}

// ensureSnap makes im's snapshots up to and including s, in captured id
// order, each at its captured size.
func (r *replayer) ensureSnap(ctx context.Context, im *Image, s *Snapshot) error {
	if err := r.ensureImage(ctx, im); err != nil {
		return err
	}
	snaps := append([]Snapshot(nil), im.Snapshots...)
	sort.Slice(snaps, func(i, j int) bool { return snaps[i].ID < snaps[j].ID })
	k := imageKey(im)
	for r.snapsMade[k] < len(snaps) {
		next := &snaps[r.snapsMade[k]]
		if next.ID > s.ID {
			break
		}
		if next.Namespace != "user" && next.Namespace != "trash" {
			return fmt.Errorf("cephcsi: replay: %s@%d: snapshot namespace %q not supported", im.Name, next.ID, next.Namespace)
		}
		err := r.withImage(ctx, im, func(img *rbd.Image) error {
			if img.Size() != next.Size {
				if err := img.Resize(ctx, next.Size); err != nil {
					return err
				}
			}
			_, err := img.CreateSnapshot(ctx, userName(next))
			return err
		})
		if err != nil {
			return err
		}
		r.snapsMade[k]++
	}
	return nil
}

// finish moves trash-namespace snapshots to the trash (their clones exist
// by now), sets the final size and makes the metadata exactly the captured.
func (r *replayer) finish(ctx context.Context, im *Image) error {
	return r.withImage(ctx, im, func(img *rbd.Image) error {
		for i := range im.Snapshots {
			s := &im.Snapshots[i]
			if s.Namespace == "trash" {
				if err := img.TrashSnapshot(ctx, s.OriginalName); err != nil {
					return fmt.Errorf("trash snapshot %s: %w", s.OriginalName, err)
				}
			}
		}
		if img.Size() != im.Info.Size {
			if err := img.Resize(ctx, im.Info.Size); err != nil {
				return err
			}
		}
		have, err := img.Metadata(ctx)
		if err != nil {
			return err
		}
		for k := range have {
			if _, ok := im.Metadata[k]; !ok {
				if err := img.RemoveMetadata(ctx, k); err != nil {
					return err
				}
			}
		}
		for k, v := range im.Metadata {
			if string(have[k]) == v {
				continue
			}
			if err := img.SetMetadata(ctx, k, []byte(v)); err != nil {
				return err
			}
		}
		return nil
	})
}

// ClusterMapping returns a ceph-csi cluster-mapping.json (internal/util/
// cluster_mapping.go) that maps every clusterID of the capture's config.json
// to itself and the captured pool ids to the replayed ones: a driver that
// honours cluster-mapping.json (as ceph-csi does for mirrored clusters whose
// pool ids differ) resolves the captured handles unchanged.
func (r *Replayed) ClusterMapping(st *State) ([]byte, error) {
	var clusters []struct {
		ClusterID string `json:"clusterID"`
	}
	if err := json.Unmarshal(st.ConfigJSON, &clusters); err != nil {
		return nil, fmt.Errorf("cephcsi: config.json: %w", err)
	}
	pools := map[string]string{}
	for from, to := range r.PoolIDs {
		pools[strconv.FormatInt(from, 10)] = strconv.FormatInt(to, 10)
	}
	type mapping struct {
		ClusterIDMapping map[string]string   `json:"clusterIDMapping"`
		RBDPoolIDMapping []map[string]string `json:"RBDPoolIDMapping"`
	}
	var out []mapping
	for _, c := range clusters {
		out = append(out, mapping{ClusterIDMapping: map[string]string{c.ClusterID: c.ClusterID},
			RBDPoolIDMapping: []map[string]string{pools}})
	}
	return json.MarshalIndent(out, "", "  ")
}
