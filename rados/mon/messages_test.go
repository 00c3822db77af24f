package mon

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Captured reply fronts: testdata/msg-<type>-v<header version>-<cluster>.front,
// written by TestIntegrationMonRequests with GORBD_CAPTURE=1.
func captured(t testing.TB, typ uint16) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "msg-"+strconv.Itoa(int(typ))+"-v*.front"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no captured vectors for message type %d", typ)
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = b
	}
	return out
}

func versionOf(name string) uint16 {
	parts := strings.Split(name, "-")
	v, _ := strconv.Atoi(strings.TrimPrefix(parts[2], "v"))
	return uint16(v)
}

func TestCapturedMonMap(t *testing.T) {
	for name, b := range captured(t, MsgMonMap) {
		mm, err := DecodeMMonMap(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		m, err := DecodeMonMap(mm.MonMap)
		if err != nil || len(m.Mons) != 1 || m.Epoch == 0 {
			t.Errorf("%s: %+v %v", name, m, err)
		}
	}
}

func TestCapturedCommandAck(t *testing.T) {
	for name, b := range captured(t, MsgMonCommandAck) {
		m, err := DecodeMMonCommandAck(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// The first ack of the capture run answers {"prefix":"fsid"}.
		if m.Result != 0 || len(m.Cmd) != 1 || !strings.Contains(m.Cmd[0], `"fsid"`) {
			t.Errorf("%s: %+v", name, m)
		}
	}
}

func TestCapturedGetVersionReply(t *testing.T) {
	for name, b := range captured(t, MsgMonGetVersionRply) {
		m, err := DecodeMMonGetVersionReply(b, versionOf(name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if m.Handle == 0 || m.Newest == 0 || m.Oldest == 0 || m.Oldest > m.Newest {
			t.Errorf("%s: %+v", name, m)
		}
	}
}

func TestCapturedOSDMap(t *testing.T) {
	for name, b := range captured(t, MsgOSDMap) {
		m, err := DecodeMOSDMap(b, versionOf(name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(m.Full) != 1 || m.Last() != m.Newest || m.Oldest == 0 || len(m.Full[0].Data) < 100 {
			t.Errorf("%s: full %d inc %d oldest %d newest %d", name, len(m.Full), len(m.Incrementals), m.Oldest, m.Newest)
		}
	}
}

func TestCapturedPoolOpReply(t *testing.T) {
	for name, b := range captured(t, MsgPoolOpReply) {
		m, err := DecodeMPoolOpReply(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// The first pool op reply of the capture run is CREATE_UNMANAGED_SNAP.
		if id, ok := m.SnapID(); m.Code != 0 || !ok || id == 0 || m.Epoch == 0 {
			t.Errorf("%s: %+v", name, m)
		}
	}
}

func TestCapturedAuthReply(t *testing.T) {
	for name, b := range captured(t, MsgAuthReply) {
		m, err := DecodeMAuthReply(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if m.Protocol != AuthCephx || m.Result != 0 || m.GlobalID == 0 || len(m.Payload) == 0 {
			t.Errorf("%s: %+v", name, m)
		}
	}
}

func TestEncodings(t *testing.T) {
	sub := &MMonSubscribe{What: map[string]SubItem{"osdmap": {Start: 7}, "monmap": {Start: 2, Flags: SubscribeOneTime}}, Hostname: "h"}
	want := []byte{2, 0, 0, 0,
		6, 0, 0, 0, 'm', 'o', 'n', 'm', 'a', 'p', 2, 0, 0, 0, 0, 0, 0, 0, 1,
		6, 0, 0, 0, 'o', 's', 'd', 'm', 'a', 'p', 7, 0, 0, 0, 0, 0, 0, 0, 0,
		1, 0, 0, 0, 'h'}
	if got := sub.Encode(); !bytes.Equal(got, want) {
		t.Errorf("MMonSubscribe:\n got %x\nwant %x", got, want)
	}
	back, err := DecodeMMonSubscribe(sub.Encode(), mmonSubscribeVersion)
	if err != nil || back.Hostname != "h" || back.What["osdmap"].Start != 7 {
		t.Errorf("MMonSubscribe round trip: %+v %v", back, err)
	}
	cmd := (&MMonCommand{FSID: [16]byte{0xaa}, Cmd: []string{"{}"}}).Encode()
	if len(cmd) != 18+16+4+4+2 || cmd[8] != 0xff || cmd[9] != 0xff || cmd[18] != 0xaa {
		t.Errorf("MMonCommand: %x", cmd)
	}
	op := (&MPoolOp{Pool: 3, Op: PoolOpDeleteUnmanagedSnap, SnapID: 9, CrushRule: -1, Epoch: 5}).Encode()
	if len(op) != 18+16+4+4+8+8+4+1+2 || op[0] != 5 || op[34] != 3 || op[38] != 0x22 || op[50] != 9 {
		t.Errorf("MPoolOp: %x", op)
	}
	gv := (&MMonGetVersion{Handle: 4, What: "osdmap"}).Encode()
	if len(gv) != 8+4+6 || gv[0] != 4 {
		t.Errorf("MMonGetVersion: %x", gv)
	}
	au := (&MAuth{Protocol: AuthCephx, Payload: []byte{1, 2}, MonMapEpoch: 3}).Encode()
	if len(au) != 18+4+4+2+4 || au[18] != 2 || au[len(au)-4] != 3 {
		t.Errorf("MAuth: %x", au)
	}
}

func fuzzSeeds(f *testing.F, typ uint16) {
	for name, b := range captured(f, typ) {
		f.Add(b, versionOf(name))
	}
}

func FuzzDecodeMMonMap(f *testing.F) {
	fuzzSeeds(f, MsgMonMap)
	f.Fuzz(func(t *testing.T, b []byte, _ uint16) {
		if m, err := DecodeMMonMap(b); err == nil {
			_, _ = DecodeMonMap(m.MonMap)
		}
	})
}

func FuzzDecodeMMonCommandAck(f *testing.F) {
	fuzzSeeds(f, MsgMonCommandAck)
	f.Fuzz(func(t *testing.T, b []byte, _ uint16) { _, _ = DecodeMMonCommandAck(b) })
}

func FuzzDecodeMMonGetVersionReply(f *testing.F) {
	fuzzSeeds(f, MsgMonGetVersionRply)
	f.Fuzz(func(t *testing.T, b []byte, v uint16) { _, _ = DecodeMMonGetVersionReply(b, v) })
}

func FuzzDecodeMOSDMap(f *testing.F) {
	fuzzSeeds(f, MsgOSDMap)
	f.Fuzz(func(t *testing.T, b []byte, v uint16) {
		m, err := DecodeMOSDMap(b, v)
		if err == nil && m.First() > m.Last() {
			t.Fatalf("first %d > last %d", m.First(), m.Last())
		}
	})
}

func FuzzDecodeMPoolOpReply(f *testing.F) {
	fuzzSeeds(f, MsgPoolOpReply)
	f.Fuzz(func(t *testing.T, b []byte, _ uint16) {
		if m, err := DecodeMPoolOpReply(b); err == nil {
			m.SnapID()
		}
	})
}

func FuzzDecodeMAuthReply(f *testing.F) {
	fuzzSeeds(f, MsgAuthReply)
	f.Fuzz(func(t *testing.T, b []byte, _ uint16) { _, _ = DecodeMAuthReply(b) })
}

func FuzzDecodeMMonSubscribe(f *testing.F) {
	f.Add((&MMonSubscribe{What: map[string]SubItem{"osdmap": {Start: 7}}, Hostname: "h"}).Encode(), uint16(3))
	f.Add([]byte{0, 0, 0, 0}, uint16(2))
	f.Fuzz(func(t *testing.T, b []byte, v uint16) {
		if m, err := DecodeMMonSubscribe(b, v); err == nil && v >= 3 {
			again, err := DecodeMMonSubscribe(m.Encode(), 3)
			if err != nil || len(again.What) != len(m.What) {
				t.Fatalf("round trip: %v", err)
			}
		}
	})
}

func FuzzDecodeMMonSubscribeAck(f *testing.F) {
	f.Add(make([]byte, 20))
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = DecodeMMonSubscribeAck(b) })
}
