package messenger

import (
	"bytes"
	"errors"
	"testing"

	"github.com/csi-gorbd/csi-gorbd/rados/entity"
)

func TestNoneAuthPayloads(t *testing.T) {
	name := entity.Name{Type: entity.TypeClient, ID: "admin"}
	// To a mon: u8 AUTH_MODE_MON, EntityName (u32 type, string id), u64
	// global_id (MonConnection::get_auth_request).
	a := &NoneAuth{EntityName: name, GlobalID: 0x1122}
	m, modes, p, err := a.AuthRequest()
	want := []byte{10, 8, 0, 0, 0, 5, 0, 0, 0, 'a', 'd', 'm', 'i', 'n', 0x22, 0x11, 0, 0, 0, 0, 0, 0}
	if err != nil || m != AuthMethodNone || len(modes) != 1 || modes[0] != ModeCRC || !bytes.Equal(p, want) {
		t.Fatalf("mon request %d %v %x %v", m, modes, p, err)
	}
	// To an OSD: the none authorizer, u8 1 then the same fields
	// (AuthNoneClientHandler::build_authorizer, kernel auth_none.c).
	a = &NoneAuth{EntityName: name, GlobalID: 0x1122, PeerType: entity.TypeOSD}
	_, _, p, _ = a.AuthRequest()
	want[0] = 1
	if !bytes.Equal(p, want) {
		t.Fatalf("osd authorizer %x", p)
	}
	// AUTH_DONE in crc mode: no session key, no secret; secure is refused.
	if k, s, err := a.HandleDone(77, ModeCRC, nil); k != nil || s != nil || err != nil || a.GlobalID != 77 {
		t.Fatalf("done: %x %x %v gid %d", k, s, err, a.GlobalID)
	}
	if _, _, err := a.HandleDone(77, ModeSecure, nil); !errors.Is(err, ErrAuth) {
		t.Fatalf("secure done: %v", err)
	}
	if err := a.HandleBadMethod(1, -95, []uint32{2}, []uint32{2, 1}); !errors.Is(err, ErrAuth) {
		t.Fatalf("bad method: %v", err)
	}
}
