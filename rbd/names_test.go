package rbd

import (
	"bytes"
	"encoding/hex"
	"regexp"
	"testing"
)

func TestNames(t *testing.T) {
	if got := DataObjectName("rbd_data.abc", 0x1f); got != "rbd_data.abc.000000000000001f" {
		t.Error(got)
	}
	if got := ObjectMapName("abc", NoSnap); got != "rbd_object_map.abc" {
		t.Error(got)
	}
	if got := ObjectMapName("abc", 0x1a); got != "rbd_object_map.abc.000000000000001a" {
		t.Error(got)
	}
	if IDObjectName("x") != "rbd_id.x" || HeaderObjectName("i") != "rbd_header.i" {
		t.Error("id/header names")
	}
	hexID := regexp.MustCompile(`^[0-9a-f]{1,14}$`)
	for _, gid := range []uint64{4100, 1 << 62} {
		id := GenerateImageID(gid)
		if !hexID.MatchString(id) {
			t.Errorf("image id %q", id)
		}
	}
}

func TestFeatureNames(t *testing.T) {
	f, err := ParseFeatures("layering", "exclusive-lock", "object-map", "fast-diff", "deep-flatten")
	if err != nil || f != FeaturesDefault || FeaturesDefault != 61 {
		t.Fatal(f, err)
	}
	if _, err := ParseFeatures("bogus"); err == nil {
		t.Fatal("unknown feature accepted")
	}
	if n := FeatureNames(1 << 40); len(n) != 1 || n[0] != "bit-40" {
		t.Fatal(n)
	}
}

func TestNotifyPayloads(t *testing.T) {
	// NotifyMessage v2/c1 { u32 op, ClientId{u64 gid, u64 handle} } for lock ops.
	want, _ := hex.DecodeString("0201" + "14000000" + "00000000" + "0410000000000000" + "2a00000000000000")
	if got := notifyPayload(notifyAcquiredLock, 4100, 42); !bytes.Equal(got, want) {
		t.Fatalf("%x", got)
	}
	want, _ = hex.DecodeString("0201" + "04000000" + "03000000")
	if got := notifyPayload(notifyHeaderUpdate, 0, 0); !bytes.Equal(got, want) {
		t.Fatalf("%x", got)
	}
	for _, p := range [][]byte{nil, want} {
		if op, ok := decodeNotifyOp(p); !ok || op != notifyHeaderUpdate {
			t.Fatal(op, ok)
		}
	}
	if _, ok := decodeNotifyOp([]byte{2, 1, 9}); ok {
		t.Fatal("short notify accepted")
	}
}

func FuzzDecodeNotifyOp(f *testing.F) {
	f.Add(notifyPayload(notifyRequestLock, 1, 2))
	f.Fuzz(func(t *testing.T, b []byte) { decodeNotifyOp(b) })
}
