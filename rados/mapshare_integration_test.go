package rados_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados"
)

// bumpEpochs makes the monitors publish n new OSDMap epochs without
// touching anyone's data: a blocklist entry for an address nobody uses is
// added and removed. It returns the monitors' newest epoch.
func bumpEpochs(t *testing.T, ctx context.Context, c *rados.Conn, n int) uint32 {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.9:0/%d", time.Now().UnixNano()%1000000000)
	for i := 0; i < n; i++ {
		op := "add"
		if i%2 == 1 {
			op = "rm"
		}
		cmd := fmt.Sprintf(`{"prefix":"osd blocklist","blocklistop":%q,"addr":%q}`, op, addr)
		if op == "add" {
			cmd = fmt.Sprintf(`{"prefix":"osd blocklist","blocklistop":"add","addr":%q,"expire":600.0}`, addr)
		}
		if _, _, err := c.MonCommand(ctx, cmd, nil); err != nil {
			t.Fatalf("osd blocklist %s: %v", op, err)
		}
	}
	if n%2 == 1 { // leave nothing behind
		cmd := fmt.Sprintf(`{"prefix":"osd blocklist","blocklistop":"rm","addr":%q}`, addr)
		if _, _, err := c.MonCommand(ctx, cmd, nil); err != nil {
			t.Fatalf("osd blocklist rm: %v", err)
		}
	}
	newest, _, err := c.MonClient().GetVersion(ctx, "osdmap")
	if err != nil {
		t.Fatal(err)
	}
	return uint32(newest)
}

// catchUpFromOSDs stops listening to the monitors' maps, has the monitors
// publish n epochs, then keeps reading one object until the OSD serving
// it has shared every new epoch with us (OSDs do that when a request
// carries an older epoch than theirs).
func catchUpFromOSDs(t *testing.T, e *env, n int) {
	ctx := tctx(t, 2*time.Minute)
	c := e.conn
	oid := oname("mapshare")
	if err := e.io.WriteFull(ctx, oid, []byte("map share")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.io.Remove(context.Background(), oid) })
	if err := c.WaitForLatestOSDMap(ctx); err != nil {
		t.Fatal(err)
	}
	rados.IgnoreMonitorMaps(c, true)
	defer rados.IgnoreMonitorMaps(c, false)
	before := c.OSDMap().Epoch
	fromOSDs := rados.EpochsFromOSDs(c)
	var captured []byte
	var capVer uint16
	var capMu sync.Mutex
	if capDir := os.Getenv("GORBD_CAPTURE_OSDMAP"); capDir != "" {
		rados.CaptureOSDMaps(c, func(front []byte, v uint16) {
			capMu.Lock()
			defer capMu.Unlock()
			if captured == nil {
				captured, capVer = append([]byte(nil), front...), v
			}
		})
		defer func() {
			capMu.Lock()
			defer capMu.Unlock()
			if captured == nil {
				t.Errorf("no MOSDMap from an OSD captured")
				return
			}
			// The monitors' full map of the epoch before, as the base.
			base := filepath.Join(capDir, fmt.Sprintf("%s-full-%d.bin", e.cl.Name, before))
			full, _, err := c.MonCommand(ctx, fmt.Sprintf(`{"prefix":"osd getmap","epoch":%d}`, before), nil)
			if err == nil {
				err = os.WriteFile(base, full, 0o644)
			}
			if err != nil {
				t.Fatal(err)
			}
			name := filepath.Join(capDir, fmt.Sprintf("%s-mosdmap-v%d.bin", e.cl.Name, capVer))
			if err := os.WriteFile(name, captured, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("captured %s (%d bytes) and %s", name, len(captured), base)
		}()
	}
	newest := bumpEpochs(t, ctx, c, n)
	if newest < before+uint32(n) {
		t.Fatalf("monitors at epoch %d after %d changes from %d", newest, n, before)
	}
	ops := 0
	for c.OSDMap().Epoch < newest {
		if ctx.Err() != nil {
			t.Fatalf("still at epoch %d of %d after %d reads (from OSDs: %d epochs)",
				c.OSDMap().Epoch, newest, ops, rados.EpochsFromOSDs(c)-fromOSDs)
		}
		if _, err := e.io.Read(ctx, oid, 0, 64); err != nil {
			t.Fatal(err)
		}
		ops++
		// The map is installed by a worker after the reply: give it
		// a moment before the next read (not a timing assertion).
		_ = c.WaitForOSDMap(shortCtx(ctx, 200*time.Millisecond), c.OSDMap().Epoch+1)
	}
	got := rados.EpochsFromOSDs(c) - fromOSDs
	if got < uint64(newest-before) {
		t.Fatalf("%d epochs installed from OSD batches, want %d (%d..%d)", got, newest-before, before+1, newest)
	}
	if n := rados.MapDecodeErrors(c); n != 0 {
		t.Errorf("%d map batches could not be used", n)
	}
	t.Logf("epochs %d -> %d learnt from OSD replies alone after %d reads", before, newest, ops)
}

func shortCtx(parent context.Context, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(parent, d)
	go func() { <-ctx.Done(); cancel() }()
	return ctx
}

// TestIntegrationMapFromOSDs: with the monitors' map batches ignored, the
// client still learns new epochs from the MOSDMap messages OSDs send on
// the request path (incrementals applied with their crcs checked).
func TestIntegrationMapFromOSDs(t *testing.T) {
	for _, name := range objClusters {
		t.Run(name, func(t *testing.T) {
			catchUpFromOSDs(t, newEnv(t, name), 3)
		})
	}
}
