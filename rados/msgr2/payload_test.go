package msgr2

import (
	"errors"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/entity"
)

// TestPayloadRoundTrip encodes a populated value of every control payload,
// decodes it into a fresh value and compares; a truncated encoding must
// fail with ErrBadPayload.
func TestPayloadRoundTrip(t *testing.T) {
	v4 := entity.Addr{Type: entity.AddrMsgr2, Nonce: 7, IP: netip.MustParseAddrPort("10.1.2.3:6800")}
	v6 := entity.Addr{Type: entity.AddrAny, Nonce: 9, IP: netip.MustParseAddrPort("[fd00::1]:0")}
	cases := []struct {
		in, out payload
	}{
		{&Hello{EntityType: entity.TypeOSD, PeerAddr: v4}, &Hello{}},
		{&AuthRequest{Method: AuthCephx, PreferredModes: []uint32{ModeSecure, ModeCRC}, Payload: []byte("abc")}, &AuthRequest{}},
		{&AuthBadMethod{Method: AuthNone, Result: -95, AllowedMethods: []uint32{2}, AllowedModes: []uint32{2, 1}}, &AuthBadMethod{}},
		{&AuthReplyMore{Payload: []byte{1, 2}}, &AuthReplyMore{}},
		{&AuthRequestMore{Payload: []byte{3}}, &AuthRequestMore{}},
		{&AuthDone{GlobalID: 4100, ConMode: ModeSecure, Payload: []byte("k")}, &AuthDone{}},
		{&AuthSignature{HMAC: [32]byte{1, 2, 3, 31: 9}}, &AuthSignature{}},
		{&ClientIdent{Addrs: entity.AddrVec{v6}, TargetAddr: v4, GlobalID: -1, GlobalSeq: 3, SupportedFeatures: 0xffff,
			RequiredFeatures: 1, Flags: FlagLossy, Cookie: 0xdeadbeef}, &ClientIdent{}},
		{&ServerIdent{Addrs: entity.AddrVec{v4, v6}, GlobalID: 2, GlobalSeq: 8, SupportedFeatures: 0xff, Flags: FlagLossy}, &ServerIdent{}},
		{&IdentMissingFeatures{Missing: 1 << 63}, &IdentMissingFeatures{}},
		{&SessionReconnect{Addrs: entity.AddrVec{v6}, ClientCookie: 1, ServerCookie: 2, GlobalSeq: 3, ConnectSeq: 4, MsgSeq: 5}, &SessionReconnect{}},
		{&SessionReset{Full: true}, &SessionReset{}},
		{&SessionRetry{ConnectSeq: 6}, &SessionRetry{}},
		{&SessionRetryGlobal{GlobalSeq: 7}, &SessionRetryGlobal{}},
		{&SessionReconnectOK{MsgSeq: 8}, &SessionReconnectOK{}},
		{&Keepalive2{Stamp: time.Unix(1700000000, 123456789).UTC()}, &Keepalive2{}},
		{&Ack{Seq: 99}, &Ack{}},
		{&MessageHeader{Seq: 1, Tid: 2, Type: 42, Priority: 127, Version: 8, DataOff: 4096, AckSeq: 3, Flags: 1, CompatVersion: 3}, &MessageHeader{}},
	}
	for _, tc := range cases {
		b := tc.in.Encode(nil)
		if err := tc.out.Decode(b); err != nil {
			t.Fatalf("%T: %v", tc.in, err)
		}
		if !reflect.DeepEqual(tc.in, tc.out) {
			t.Errorf("%T round trip:\n got %+v\nwant %+v", tc.in, tc.out, tc.in)
		}
		if err := reflect.New(reflect.TypeOf(tc.out).Elem()).Interface().(payload).Decode(b[:len(b)-1]); !errors.Is(err, ErrBadPayload) {
			t.Errorf("%T truncated: %v", tc.in, err)
		}
	}
}
