package mon

import (
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/csi-gorbd/csi-gorbd/rados/messenger"
)

// stubAuth is a fixed AuthClient for testing the AUTH_BAD_METHOD
// classification (pure logic; no Ceph involved).
type stubAuth struct{ modes []uint32 }

func (s stubAuth) AuthRequest() (uint32, []uint32, []byte, error) {
	return AuthCephx, s.modes, nil, nil
}
func (s stubAuth) HandleReplyMore([]byte) ([]byte, error) { return nil, nil }
func (s stubAuth) HandleDone(uint64, uint32, []byte) ([]byte, []byte, error) {
	return nil, nil, nil
}
func (s stubAuth) HandleBadMethod(uint32, int32, []uint32, []uint32) error {
	return errors.New("inner")
}

func TestAuthWrapClassifies(t *testing.T) {
	crc := []uint32{messenger.ModeCRC}
	both := []uint32{messenger.ModeCRC, messenger.ModeSecure}
	for _, tt := range []struct {
		name           string
		offered        []uint32
		result         int32
		methods, modes []uint32
		want           error
		errno          syscall.Errno
		text           string
	}{
		{"wrong key", both, -13, []uint32{AuthCephx}, both, ErrPermission, syscall.EACCES, "permission denied"},
		{"secure only", crc, -95, []uint32{AuthCephx}, []uint32{messenger.ModeSecure}, ErrSecureRequired, syscall.EOPNOTSUPP, "we offered [crc], the cluster allows [secure]"},
		{"auth none cluster", both, -95, []uint32{AuthNone}, both, ErrAuthMethod, syscall.EOPNOTSUPP, "we used cephx, the cluster allows [none]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := &authWrap{inner: stubAuth{tt.offered}, addr: "v2:127.0.0.1:3300/0"}
			w.AuthRequest()
			err := w.HandleBadMethod(AuthCephx, tt.result, tt.methods, tt.modes)
			if !errors.Is(err, tt.want) || !errors.Is(err, tt.errno) || !permanent(err) {
				t.Errorf("%v: want %v and %v, permanent", err, tt.want, tt.errno)
			}
			if !strings.Contains(err.Error(), tt.text) || !strings.Contains(err.Error(), "127.0.0.1:3300") {
				t.Errorf("%q lacks %q or the address", err, tt.text)
			}
		})
	}
}

func TestHuntErrorNamesAddresses(t *testing.T) {
	e := &HuntError{Attempts: []Attempt{{"v2:10.0.0.1:3300/0", syscall.ECONNREFUSED}, {"v2:10.0.0.2:3300/0", syscall.ECONNREFUSED}, {"v2:10.0.0.1:3300/0", syscall.ETIMEDOUT}}, Err: errors.New("deadline")}
	s := e.Error()
	if strings.Count(s, "10.0.0.1:3300") != 1 || !strings.Contains(s, "10.0.0.2:3300") || !errors.Is(e, ErrNoMonitor) {
		t.Errorf("%q", s)
	}
}

func TestCommandErrorIs(t *testing.T) {
	err := error(&CommandError{Op: "osd pool get", Errno: syscall.ENOENT, Status: "unrecognized pool 'x'"})
	if !errors.Is(err, syscall.ENOENT) || errors.Is(err, ErrPermission) {
		t.Errorf("%v", err)
	}
	err = &CommandError{Op: "auth get", Errno: syscall.EACCES}
	if !errors.Is(err, ErrPermission) || !errors.Is(err, syscall.EACCES) {
		t.Errorf("%v", err)
	}
}
