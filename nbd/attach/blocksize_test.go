package attach

import (
	"context"
	"os"
	"testing"

	"github.com/csi-gorbd/csi-gorbd/nbd"
	"github.com/csi-gorbd/csi-gorbd/nbd/memory"
)

// paramKernel accepts every connect and remembers its parameters.
type paramKernel struct{ got []ConnectParams }

func (k *paramKernel) Connect(_ context.Context, socks []*os.File, p ConnectParams) (int, error) {
	k.got = append(k.got, p)
	return len(k.got) - 1, nil
}
func (k *paramKernel) Reconfigure(context.Context, int, []*os.File, ReconfigureParams) error {
	return nil
}
func (k *paramKernel) Disconnect(context.Context, int) error           { return nil }
func (k *paramKernel) Owns(context.Context, int, string) (bool, error) { return true, nil }

// sectored is a backend with a preferred block size (an encrypted export).
type sectored struct {
	*memory.Backend
	pref uint32
}

func (s sectored) PreferredBlockSize() uint32 { return s.pref }

// The device's logical block size follows the backend's preferred size
// (an encrypted export's LUKS sector) unless the spec names one; odd or
// small preferences keep the default.
func TestAttachBlockSize(t *testing.T) {
	cases := []struct {
		pref uint32
		spec int64
		want int64
	}{{0, 0, 512}, {4096, 0, 4096}, {2048, 0, 2048}, {512, 0, 512}, {4096, 512, 512}, {3000, 0, 512}, {65536, 0, 512}}
	for _, c := range cases {
		k := &paramKernel{}
		m, err := New(context.Background(), Config{StateDir: t.TempDir(), Kernel: k,
			Factory: func(context.Context, string, bool) (nbd.Backend, error) {
				return sectored{memory.New(1 << 20), c.pref}, nil
			}})
		if err != nil {
			t.Fatal(err)
		}
		r, err := m.Attach(context.Background(), Spec{ID: "v", Image: "memory:1M", BlockSize: c.spec})
		if err != nil {
			t.Fatal(err)
		}
		if len(k.got) != 1 || k.got[0].BlockSize != c.want || r.BlockSize != c.want {
			t.Errorf("preferred %d, spec %d: kernel got %+v, record %d; want %d", c.pref, c.spec, k.got, r.BlockSize, c.want)
		}
		m.Close()
	}
}
