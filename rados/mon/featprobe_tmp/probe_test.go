package featprobe

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/internal/cephtest"
	"github.com/csi-gorbd/csi-gorbd/rados/cephx"
	"github.com/csi-gorbd/csi-gorbd/rados/config"
	"github.com/csi-gorbd/csi-gorbd/rados/messenger"
	"github.com/csi-gorbd/csi-gorbd/rados/mon"
)

type cx struct{ c *cephx.Client }

func (a cx) AuthClient(uint64) messenger.AuthClient          { return a.c.MonAuth() }
func (a cx) RenewAfter() time.Time                           { return a.c.RenewAfter() }
func (a cx) BuildRenewal() (uint32, []byte, error)           { return a.c.BuildRenewal() }
func (a cx) HandleRenewal(r int32, g uint64, p []byte) error { return a.c.HandleRenewal(r, g, p) }

func TestProbe(t *testing.T) {
	for _, name := range []string{"pacific", "reef", "tentacle", "tentacle256"} {
		cl := cephtest.Need(t, name)
		ctx := context.Background()
		cc, _ := config.Resolve(ctx, config.Options{ConfPath: cl.Conf(), Keyring: cl.Keyring()})
		kr, _ := cephx.LoadKeyring(cl.Keyring())
		key, _ := kr.Get(cc.Name)
		var req uint64
		for b := 0; b < 64; b++ {
			bit := uint64(1) << b
			if mon.ClientFeatures&bit == 0 {
				continue
			}
			cfg := mon.Config{Auth: cx{cephx.NewClient(cc.Name, key)}, Features: mon.ClientFeatures &^ bit}
			for _, m := range cc.Mons {
				cfg.Mons = append(cfg.Mons, m.Addrs)
			}
			dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			c, err := mon.Dial(dctx, cfg)
			cancel()
			if err == nil {
				// also check an osdmap subscription works
				c.Close()
				continue
			}
			var mf *messenger.MissingFeaturesError
			if errors.As(err, &mf) {
				req |= bit
			} else {
				t.Logf("%s bit %d: %v", name, b, err)
			}
		}
		fmt.Printf("%s: client-required bits %#x (%d bits):", name, req, bits.OnesCount64(req))
		for b := 0; b < 64; b++ {
			if req&(1<<b) != 0 {
				fmt.Printf(" %d", b)
			}
		}
		fmt.Println()
	}
	fmt.Printf("ClientFeatures = %#x\n", mon.ClientFeatures)
}
