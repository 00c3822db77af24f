package cephcsi

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// identity maps a layout onto itself.
func identity(l *Layout) *Replayed {
	r := &Replayed{Pools: map[string]string{}, PoolIDs: map[int64]int64{}}
	for _, p := range l.Pools {
		r.Pools[p.Name] = p.Name
		r.PoolIDs[p.ID] = p.ID
	}
	return r
}

func clone(t *testing.T, l *Layout) *Layout {
	t.Helper()
	b, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	var c Layout
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return &c
}

// Compare finds every kind of difference the replay test relies on it to
// find, and none between a layout and itself.
func TestCompareCatchesDifferences(t *testing.T) {
	for v, st := range loadAll(t) {
		l := &st.Layout
		if d := Compare(l, clone(t, l), identity(l)); d != nil {
			t.Fatalf("%s: layout differs from itself: %v", v, d)
		}
		var withParent, withTrashSnap, withMeta int = -1, -1, -1
		for i, im := range l.Images {
			if im.Info.Parent != nil && withParent < 0 {
				withParent = i
			}
			for _, s := range im.Snapshots {
				if s.Namespace == "trash" && withTrashSnap < 0 {
					withTrashSnap = i
				}
			}
			if len(im.Metadata) > 0 && withMeta < 0 {
				withMeta = i
			}
		}
		if withParent < 0 || withTrashSnap < 0 || withMeta < 0 || len(l.Objects) == 0 {
			t.Fatalf("%s: capture lacks a clone, a trashed snapshot, metadata or journal objects", v)
		}
		for _, c := range []struct {
			what   string
			mutate func(g *Layout)
			want   string
		}{
			{"omap value byte", func(g *Layout) { g.Objects[0].Omap[0].Value = append(bytes.Clone(g.Objects[0].Omap[0].Value), 'x') }, "captured"},
			{"omap key gone", func(g *Layout) { g.Objects[0].Omap = g.Objects[0].Omap[1:] }, "missing"},
			{"object gone", func(g *Layout) { g.Objects = g.Objects[1:] }, "missing"},
			{"image gone", func(g *Layout) { g.Images = g.Images[1:] }, "missing"},
			{"image id", func(g *Layout) { g.Images[0].ID += "0" }, "not captured"},
			{"size", func(g *Layout) { g.Images[0].Info.Size += 4096 }, "layout"},
			{"feature", func(g *Layout) { g.Images[0].Info.Features = append(g.Images[0].Info.Features, "journaling") }, "features"},
			{"metadata", func(g *Layout) { g.Images[withMeta].Metadata = map[string]string{} }, "metadata"},
			{"parent overlap", func(g *Layout) { g.Images[withParent].Info.Parent.Overlap++ }, "parent"},
			{"trashed snapshot", func(g *Layout) {
				for i := range g.Images[withTrashSnap].Snapshots {
					g.Images[withTrashSnap].Snapshots[i].Namespace = "user"
				}
			}, "snapshots"},
		} {
			g := clone(t, l)
			c.mutate(g)
			d := Compare(l, g, identity(l))
			if len(d) == 0 || !strings.Contains(strings.Join(d, "\n"), c.want) {
				t.Errorf("%s: %s: diffs %v, want one saying %q", v, c.what, d, c.want)
			}
		}
	}
}

func TestParseListOmapVals(t *testing.T) {
	out := "csi.imageid\n" +
		"value (12 bytes) :\n" +
		"00000000  31 62 63 34 37 65 31 65  36 34 35 30              |1bc47e1e6450|\n" +
		"0000000c\n\n" +
		"empty\n" +
		"value (0 bytes) :\n\n" +
		"bin\n" +
		"value (18 bytes) :\n" +
		"00000000  7c 20 7c 00 ff 0a 41 42  43 44 45 46 47 48 49 4a  || |...ABCDEFGHIJ|\n" +
		"00000010  7c 7c                                             |||||\n" +
		"00000012\n\n"
	got, err := ParseListOmapVals([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	want := []OmapEntry{
		{Key: "csi.imageid", Value: []byte("1bc47e1e6450"), Text: "1bc47e1e6450"},
		{Key: "empty", Value: []byte{}, Text: ""},
		{Key: "bin", Value: []byte{'|', ' ', '|', 0, 0xff, '\n', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', '|', '|'}},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i].Key != want[i].Key || !bytes.Equal(got[i].Value, want[i].Value) || got[i].Text != want[i].Text {
			t.Errorf("entry %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	for _, bad := range []string{
		"k\nvalue (3 bytes) :\n00000000  61 62                    |ab|\n00000002\n\n", // short
		"k\nnot a value line\n\n",
		"k\nvalue (2 bytes) :\n00000000  61 62   |ab|\n\n", // no end offset
		"k\n",
	} {
		if _, err := ParseListOmapVals([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestTranslateOmapValue(t *testing.T) {
	ids := map[int64]int64{15: 40}
	u := "0ac11d32-1b8f-4de7-9b50-a26a4d56513a"
	for _, c := range []struct{ obj, key, in, want string }{
		{"csi.volumes.default", "csi.volume.pvc-1", u, u},
		{"csi.volumes.default", "csi.volume.pvc-1", "000000000000000f/" + u, "0000000000000028/" + u},
		{"csi.snaps.default", "csi.snap.s-1", "000000000000000f/" + u, "0000000000000028/" + u},
		{"csi.volume." + u, "csi.journalpool", "000000000000000f", "0000000000000028"},
		{"csi.volume." + u, "csi.imagename", "000000000000000f", "000000000000000f"},
	} {
		got, err := TranslateOmapValue(c.obj, c.key, []byte(c.in), ids)
		if err != nil || string(got) != c.want {
			t.Errorf("%s %s %q: %q %v, want %q", c.obj, c.key, c.in, got, err, c.want)
		}
	}
	if _, err := TranslateOmapValue("csi.volumes.default", "k", []byte("0000000000000001/"+u), ids); err == nil {
		t.Error("a pool id that was not captured translated")
	}
}
