package rbd

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
	"github.com/csi-gorbd/csi-gorbd/rados/entity"
)

func unhex(t testing.TB, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Argument layouts, byte by byte, as cls_rbd_client.cc / cls_lock_ops.h
// encode them.
func TestClsArgs(t *testing.T) {
	cases := []struct {
		name string
		got  []byte
		want string
	}{
		{"create", createArgs(1<<30, 22, 1, "rbd_data.ab", -1),
			"0000004000000000" + "16" + "0100000000000000" + "0b000000" + hex.EncodeToString([]byte("rbd_data.ab")) + "ffffffffffffffff"},
		{"get_features", getFeaturesArgs(NoSnap, true), "feffffffffffffff01"},
		{"snapshot_add", snapshotAddArgs(5, "s", SnapshotNamespace{}),
			"01000000" + "73" + "0500000000000000" + "0201" + "04000000" + "00000000"},
		{"snapshot_add trash ns", snapshotAddArgs(5, "s", SnapshotNamespace{Type: SnapNamespaceTrash, OriginalName: "x"}),
			"01000000" + "73" + "0500000000000000" + "0201" + "0d000000" + "02000000" + "0100000078" + "00000000"},
		{"object_map_update", objectMapUpdateArgs(1, 2, ObjectExists, nil), "0100000000000000" + "0200000000000000" + "01" + "00"},
		{"object_map_update current", objectMapUpdateArgs(1, 2, ObjectNonexistent, ptr(ObjectPending)),
			"0100000000000000" + "0200000000000000" + "00" + "01" + "02"},
		{"object_map_resize", objectMapResizeArgs(25, ObjectNonexistent), "1900000000000000" + "00"},
		{"child_attach", childAttachArgs(7, ChildSpec{PoolID: 1, ImageID: "c", Namespace: "n"}),
			"0700000000000000" + "0201" + "12000000" + "0100000000000000" + "0100000063" + "010000006e"},
		{"parent_attach", parentAttachArgs(ParentSpec{PoolID: 1, ImageID: "p", SnapID: 7}, 9, false),
			"0101" + "19000000" + "0100000000000000" + "00000000" + "0100000070" + "0700000000000000" + "0900000000000000" + "00"},
		{"dir_add_image", dirAddArgs("n", "i"), "010000006e" + "0100000069"},
		{"metadata_set", metadataSetArgs(map[string][]byte{"b": []byte("2"), "a": []byte("1")}),
			"02000000" + "0100000061" + "0100000031" + "0100000062" + "0100000032"},
		{"lock", lockArgs(rbdLockName, LockExclusive, rbdLockCookie(42), rbdLockTag, "", 0, 0),
			"0101" + "31000000" + "08000000" + hex.EncodeToString([]byte("rbd_lock")) + "01" + "07000000" + hex.EncodeToString([]byte("auto 42")) +
				"08000000" + hex.EncodeToString([]byte("internal")) + "00000000" + "0000000000000000" + "00"},
		{"break_lock", breakLockArgs("l", entity.NumName{Type: entity.TypeClient, Num: 4100}, "c"),
			"0101" + "13000000" + "010000006c" + "08" + "0410000000000000" + "0100000063"},
		{"assert_locked", assertLockedArgs("l", LockExclusive, "c", "t"), "0101" + "10000000" + "010000006c" + "01" + "0100000063" + "0100000074"},
		{"dir_rename_image", dirRenameArgs("a", "b", "i"), "0100000061" + "0100000062" + "0100000069"},
		{"get_children", legacyParentArgs(ParentSpec{PoolID: 2, ImageID: "p", SnapID: 9}), "0200000000000000" + "0100000070" + "0900000000000000"},
		{"set_protection_status", setProtectionStatusArgs(9, ProtectionUnprotecting), "0900000000000000" + "01"},
		{"REQUEST_LOCK notify", notifyPayload(notifyRequestLock, 0x1004, 7), "0201" + "14000000" + "02000000" + "0410000000000000" + "0700000000000000"},
		{"HEADER_UPDATE notify", notifyPayload(notifyHeaderUpdate, 0, 0), "0201" + "04000000" + "03000000"},
		{"EOPNOTSUPP response", ackPayload(-95), "0101" + "04000000" + "a1ffffff"},
	}
	for _, c := range cases {
		if w := unhex(t, c.want); !bytes.Equal(c.got, w) {
			t.Errorf("%s:\n got %x\nwant %x", c.name, c.got, w)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// snapshotGetPacific is a snapshot_get reply from a Pacific OSD (image
// snapshot "s1", id 0x27, 12 MiB + 4 KiB, no children).
const snapshotGetPacific = "01012c0000002700000000000000010104000000000000000200000073310010c000000000008c82026be44ec40a00000000"

func TestClsReplies(t *testing.T) {
	if si, err := decodeSnapshotInfo(unhex(t, snapshotGetPacific)); err != nil || si.ID != 0x27 || si.Name != "s1" ||
		si.Size != 12<<20+4096 || si.ChildCount != 0 || si.Namespace.Type != SnapNamespaceUser || si.Timestamp.Year() != 2026 {
		t.Fatalf("pacific snapshot_get: %+v %v", si, err)
	}
	o, s, err := decodeGetSize(unhex(t, "16"+"0000004000000000"))
	if err != nil || o != 22 || s != 1<<30 {
		t.Fatal(o, s, err)
	}
	if _, _, err := decodeGetSize(unhex(t, "16")); err == nil {
		t.Fatal("short get_size accepted")
	}
	sc, err := decodeSnapContext(unhex(t, "0900000000000000"+"02000000"+"0900000000000000"+"0400000000000000"))
	if err != nil || sc.Seq != 9 || len(sc.Snaps) != 2 || sc.Snaps[0] != 9 || !sc.valid() {
		t.Fatal(sc, err)
	}
	// SnapshotInfo as cls_rbd encodes it for snapshot_get.
	e := encoding.NewEncoder(nil)
	m := e.StructBegin(1, 1)
	e.U64(0x1a)
	encodeSnapshotNamespace(e, SnapshotNamespace{})
	e.String("s1")
	e.U64(100 << 20)
	e.Timespec(time.Unix(1700000000, 5))
	e.U32(1)
	e.StructEnd(m)
	si, err := decodeSnapshotInfo(e.B)
	if err != nil || si.ID != 0x1a || si.Name != "s1" || si.Size != 100<<20 || si.ChildCount != 1 ||
		si.Namespace.Type != SnapNamespaceUser || si.Timestamp.Unix() != 1700000000 {
		t.Fatalf("%+v %v", si, err)
	}
	ov, ok, err := decodeParentOverlapGet(unhex(t, "01"+"0000400600000000"))
	if err != nil || !ok || ov != 104857600 {
		t.Fatal(ov, ok, err)
	}
	if _, ok, _ := decodeParentOverlapGet(unhex(t, "00")); ok {
		t.Fatal("empty optional read as set")
	}
	kids, err := decodeChildrenList(unhex(t, "01000000"+childHex))
	if err != nil || len(kids) != 1 || kids[0] != (ChildSpec{PoolID: 1, ImageID: "c", Namespace: "n"}) {
		t.Fatal(kids, err)
	}
	// lock.get_info with one locker holding a msgr2 address.
	li, err := decodeLockInfo(lockInfoReply(t))
	if err != nil || len(li.Lockers) != 1 || li.Type != LockExclusive || li.Tag != rbdLockTag ||
		li.Lockers[0].Cookie != "auto 42" || li.Lockers[0].Entity.Num != 4100 ||
		li.Lockers[0].Addr.IP != netip.MustParseAddrPort("127.0.0.1:6800") {
		t.Fatalf("%+v %v", li, err)
	}
}

const childHex = "0201" + "12000000" + "0100000000000000" + "0100000063" + "010000006e"

func lockInfoReply(t testing.TB) []byte {
	e := encoding.NewEncoder(nil)
	m := e.StructBegin(1, 1)
	e.U32(1)
	id := e.StructBegin(1, 1)
	e.U8(uint8(entity.TypeClient))
	e.I64(4100)
	e.String("auto 42")
	e.StructEnd(id)
	info := e.StructBegin(1, 1)
	e.U32(0)
	e.U32(0)
	a, err := entity.ParseAddr("v2:127.0.0.1:6800/1234")
	if err != nil {
		t.Fatal(err)
	}
	a.Encode(e)
	e.String("")
	e.StructEnd(info)
	e.U8(LockExclusive)
	e.String(rbdLockTag)
	e.StructEnd(m)
	return e.B
}
