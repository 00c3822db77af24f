package rbd

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The testdata/<release>/ trees were written by testdata/capture.sh: images
// made by each release's own `rbd` CLI, with the raw omap values and
// objects cls_rbd and librbd stored for them.
var releases = []string{"pacific", "reef", "tentacle"}

type rbdInfo struct {
	Name        string   `json:"name"`
	ID          string   `json:"id"`
	Size        uint64   `json:"size"`
	Objects     uint64   `json:"objects"`
	Order       uint8    `json:"order"`
	Prefix      string   `json:"block_name_prefix"`
	Features    []string `json:"features"`
	StripeUnit  uint64   `json:"stripe_unit"`
	StripeCount uint64   `json:"stripe_count"`
	Parent      *struct {
		ID       string `json:"id"`
		Snapshot string `json:"snapshot"`
		Overlap  uint64 `json:"overlap"`
	} `json:"parent"`
}

type capture struct {
	t   *testing.T
	dir string
}

func (c capture) read(p string) []byte {
	c.t.Helper()
	b, err := os.ReadFile(filepath.Join(c.dir, p))
	if err != nil {
		c.t.Fatal(err)
	}
	return b
}

func (c capture) info(img string) rbdInfo {
	c.t.Helper()
	var i rbdInfo
	if err := json.Unmarshal(c.read(img+".info.json"), &i); err != nil {
		c.t.Fatal(err)
	}
	return i
}

func (c capture) u64(p string) uint64 {
	c.t.Helper()
	b := c.read(p)
	if len(b) != 8 {
		c.t.Fatalf("%s: %d bytes, want 8", p, len(b))
	}
	return binary.LittleEndian.Uint64(b)
}

func forReleases(t *testing.T, f func(t *testing.T, c capture)) {
	for _, r := range releases {
		t.Run(r, func(t *testing.T) { f(t, capture{t, filepath.Join("testdata", r)}) })
	}
}

func TestCapturedHeader(t *testing.T) {
	forReleases(t, func(t *testing.T, c capture) {
		for _, img := range []string{"a", "s", "clone"} {
			info := c.info(img)
			// get_id on rbd_id.<name> returns the stored string as is.
			id, err := decodeString("get_id", c.read(img+".rbd_id"))
			if err != nil || id != info.ID {
				t.Fatalf("%s: rbd_id = %q, %v; want %q", img, id, err, info.ID)
			}
			prefix, err := decodeString("get_object_prefix", c.read(img+".header/object_prefix"))
			if err != nil || prefix != info.Prefix || prefix != DataObjectPrefix(id) {
				t.Fatalf("%s: object_prefix = %q, %v; want %q", img, prefix, err, info.Prefix)
			}
			if got := c.u64(img + ".header/size"); got != info.Size {
				t.Errorf("%s: size %d, want %d", img, got, info.Size)
			}
			if got := c.read(img + ".header/order"); len(got) != 1 || got[0] != info.Order {
				t.Errorf("%s: order %v, want %d", img, got, info.Order)
			}
			features := c.u64(img + ".header/features")
			if got := FeatureNames(features); !slices.Equal(got, info.Features) {
				t.Errorf("%s: features %v, rbd info says %v", img, got, info.Features)
			}
			if err := checkFeatures(img, features, features&FeaturesRWIncompatible, true); err != nil {
				t.Errorf("%s: %v", img, err)
			}
			l := Layout{Order: info.Order}
			if features&FeatureStripingV2 != 0 {
				l.StripeUnit = c.u64(img + ".header/stripe_unit")
				l.StripeCount = c.u64(img + ".header/stripe_count")
				if l.StripeUnit != info.StripeUnit || l.StripeCount != info.StripeCount {
					t.Errorf("%s: stripe %d/%d, want %d/%d", img, l.StripeUnit, l.StripeCount, info.StripeUnit, info.StripeCount)
				}
			}
			if err := l.Validate(); err != nil {
				t.Errorf("%s: %v", img, err)
			}
			if got := l.ObjectCount(info.Size); got != info.Objects {
				t.Errorf("%s: %d objects, rbd info says %d", img, got, info.Objects)
			}
			// Every data object the cluster holds must be a name we generate.
			for _, o := range strings.Fields(string(c.read(img + ".data_objects"))) {
				var n uint64
				if _, err := fmtSscanHex(strings.TrimPrefix(o, prefix+"."), &n); err != nil || DataObjectName(prefix, n) != o {
					t.Errorf("%s: data object %q does not round-trip (%v)", img, o, err)
				}
			}
		}
	})
}

func TestCapturedFeatureRefusal(t *testing.T) {
	forReleases(t, func(t *testing.T, c capture) {
		features := c.u64("a.header/features")
		for _, bad := range []uint64{FeatureJournaling, FeatureMigrating, FeatureNonPrimary, FeatureDirtyCache} {
			f := features | bad
			err := checkFeatures("a", f, f&FeaturesRWIncompatible, true)
			var fe *FeatureError
			if !errors.As(err, &fe) || !errors.Is(err, ErrUnsupportedFeature) || fe.Unsupported != bad ||
				!strings.Contains(err.Error(), FeatureNames(bad)[0]) {
				t.Errorf("feature %v: err = %v", FeatureNames(bad), err)
			}
		}
		// Read-only: journaling and non-primary only block writers.
		f := features | FeatureJournaling | FeatureNonPrimary
		if err := checkFeatures("a", f, f&FeaturesIncompatible, false); err != nil {
			t.Errorf("read-only open refused: %v", err)
		}
		f = features | FeatureDirtyCache
		if err := checkFeatures("a", f, f&FeaturesIncompatible, false); err == nil {
			t.Error("dirty-cache accepted for reading")
		}
	})
}

func TestCapturedObjectMap(t *testing.T) {
	forReleases(t, func(t *testing.T, c capture) {
		info := c.info("a")
		om, err := DecodeObjectMap(c.read("a.object_map"))
		if err != nil {
			t.Fatal(err)
		}
		if om.Len() != info.Objects {
			t.Fatalf("object map of %d objects, want %d", om.Len(), info.Objects)
		}
		exists := map[uint64]bool{}
		for _, o := range strings.Fields(string(c.read("a.data_objects"))) {
			var n uint64
			fmtSscanHex(o[strings.LastIndexByte(o, '.')+1:], &n)
			exists[n] = true
		}
		for i := uint64(0); i < om.Len(); i++ {
			if s := om.Get(i); (s != ObjectNonexistent) != exists[i] {
				t.Errorf("object %d: state %d, object exists: %v", i, s, exists[i])
			}
		}
		// Re-encoding gives the same bytes, CRCs included.
		var e encodingEncoder
		om.Encode(&e)
		if string(e.B) != string(c.read("a.object_map")) {
			t.Errorf("re-encoded object map differs:\n%x\n%x", e.B, c.read("a.object_map"))
		}
		// The snapshot's map is the head map at snapshot time; object_map_snap_add
		// then turned the head's EXISTS into EXISTS_CLEAN. So head CLEAN objects
		// exist in the snapshot, and head NONEXISTENT ones do not.
		snaps, _ := filepath.Glob(filepath.Join(c.dir, "a.object_map.*"))
		if len(snaps) != 1 {
			t.Fatalf("snapshot object maps: %v", snaps)
		}
		som, err := DecodeObjectMap(c.read(filepath.Base(snaps[0])))
		if err != nil {
			t.Fatal(err)
		}
		if som.Len() != om.Len() {
			t.Fatalf("snapshot map of %d objects", som.Len())
		}
		clean := 0
		for i := uint64(0); i < som.Len(); i++ {
			h, s := om.Get(i), som.Get(i)
			if h == ObjectExistsClean {
				clean++
			}
			if (h == ObjectExistsClean && s != ObjectExists) || (h == ObjectNonexistent && s != ObjectNonexistent) {
				t.Errorf("object %d: head state %d, snapshot state %d", i, h, s)
			}
		}
		if clean == 0 {
			t.Error("no EXISTS_CLEAN object in the head map after a snapshot")
		}
		// A flipped bit fails the data CRC.
		bad := append([]byte(nil), c.read("a.object_map")...)
		bad[18] ^= 0x40
		if _, err := DecodeObjectMap(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("corrupted map: err = %v", err)
		}
	})
}

func TestCapturedDirectoryTrash(t *testing.T) {
	forReleases(t, func(t *testing.T, c capture) {
		for _, img := range []string{"a", "s", "clone"} {
			info := c.info(img)
			id, err := decodeString("dir_get_id", c.read("directory/name_"+info.Name))
			if err != nil || id != info.ID {
				t.Errorf("name_%s → %q, %v; want %q", info.Name, id, err, info.ID)
			}
			name, err := decodeString("dir_get_name", c.read("directory/id_"+info.ID))
			if err != nil || name != info.Name {
				t.Errorf("id_%s → %q, %v; want %q", info.ID, name, err, info.Name)
			}
		}
		var tl []struct{ ID, Name string }
		if err := json.Unmarshal(c.read("trash.json"), &tl); err != nil {
			t.Fatal(err)
		}
		var tid string
		for _, e := range tl {
			if e.Name == "gorbdcapt" {
				tid = e.ID
			}
		}
		ts, err := DecodeTrashSpec(c.read("trash/id_" + tid))
		if err != nil {
			t.Fatal(err)
		}
		if ts.Name != "gorbdcapt" || ts.Source != TrashSourceUser || ts.State != TrashStateNormal ||
			ts.DeletionTime.IsZero() || ts.DefermentEnd.Before(ts.DeletionTime) {
			t.Errorf("trash spec %+v", ts)
		}
		// Our encoder reproduces the stored bytes.
		var e encodingEncoder
		encodeTrashSpec(&e, ts)
		if string(e.B) != string(c.read("trash/id_"+tid)) {
			t.Errorf("trash spec re-encoded:\n%x\n%x", e.B, c.read("trash/id_"+tid))
		}
	})
}

func TestCapturedClone(t *testing.T) {
	forReleases(t, func(t *testing.T, c capture) {
		info := c.info("clone")
		parent := c.info("a")
		var snaps []struct {
			ID   uint64 `json:"id"`
			Name string `json:"name"`
		}
		if err := json.Unmarshal(c.read("a.snaps.json"), &snaps); err != nil || len(snaps) != 1 {
			t.Fatalf("snaps %v %v", snaps, err)
		}
		p, overlap, ok, err := decodeStoredParent(c.read("clone.header/parent"))
		if err != nil {
			t.Fatal(err)
		}
		if !p.Exists() || p.ImageID != parent.ID || p.SnapID != snaps[0].ID || p.Namespace != "" || p.PoolID < 0 {
			t.Errorf("parent %+v", p)
		}
		if !ok || overlap != info.Parent.Overlap {
			t.Errorf("overlap %d (%v), want %d", overlap, ok, info.Parent.Overlap)
		}
		if seq := c.u64("a.header/snap_seq"); seq < snaps[0].ID {
			t.Errorf("snap_seq %d < snap id %d", seq, snaps[0].ID)
		}
		if v := string(c.read("clone.header/metadata_conf_rbd_cache")); v != "false" {
			t.Errorf("metadata value %q", v)
		}
	})
}
