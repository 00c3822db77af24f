package rbd_test

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// Config overrides both ways with the rbd CLI: `rbd config image set`
// while we hold the image's exclusive lock and write reaches our
// OnHeaderUpdate hook (through the HEADER_UPDATE notify) and reads back
// from ConfigOverrides; ours reads back with `rbd config image get`;
// removals too. The values parse as librbd's QoS settings.
func TestInteropConfigOverrides(t *testing.T) {
	for _, c := range clusters {
		t.Run(c, func(t *testing.T) {
			e := newEnv(t, c)
			ctx := tctx(t)
			name := iname("conf")
			if _, err := rbd.Create(ctx, e.io, name, 8<<20, &rbd.CreateOptions{Features: rbd.FeaturesDefault}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { e.rbdQuiet("rm", "--no-progress", name) })
			img, err := rbd.Open(ctx, e.io, name, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close(context.Background())
			if _, err := img.WriteAt(ctx, []byte("lock holder"), 0); err != nil { // takes the exclusive lock
				t.Fatal(err)
			}
			var (
				mu   sync.Mutex
				seen map[string]string
			)
			img.OnHeaderUpdate(func(ctx context.Context) {
				m, err := img.ConfigOverrides(ctx)
				if err != nil {
					t.Errorf("ConfigOverrides in the hook: %v", err)
					return
				}
				mu.Lock()
				seen = m
				mu.Unlock()
			})
			saw := func(opt, want string) func() bool {
				return func() bool {
					mu.Lock()
					defer mu.Unlock()
					v, ok := seen[opt]
					return seen != nil && (want == "" && !ok || ok && v == want)
				}
			}
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()

			e.rbd(t, "config", "image", "set", name, rbd.QoSIOPSLimit, "200")
			waitFor(t, wctx, "the CLI's override through the header watch", saw(rbd.QoSIOPSLimit, "200"))
			if _, err := img.WriteAt(ctx, []byte("still writing"), 4096); err != nil {
				t.Fatalf("write after the CLI's change: %v", err)
			}

			if err := img.SetMetadata(ctx, rbd.ConfigPrefix+rbd.QoSBPSLimit, []byte("10M")); err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(string(e.rbd(t, "config", "image", "get", name, rbd.QoSBPSLimit))); got != "10M" {
				t.Errorf("rbd config image get %s = %q, want 10M", rbd.QoSBPSLimit, got)
			}
			waitFor(t, wctx, "our own override through the header watch", saw(rbd.QoSBPSLimit, "10M"))

			m, err := img.ConfigOverrides(ctx)
			if err != nil {
				t.Fatal(err)
			}
			q, err := rbd.QoSFrom(m)
			if err != nil || q.IOPS.Limit != 200 || q.BPS.Limit != 10<<20 || q.IOPS.BurstSeconds != 1 || q.ScheduleTickMin != 50 {
				t.Errorf("QoSFrom(%v) = %+v, %v", m, q, err)
			}

			e.rbd(t, "config", "image", "remove", name, rbd.QoSIOPSLimit)
			waitFor(t, wctx, "the CLI's removal", saw(rbd.QoSIOPSLimit, ""))
		})
	}
}

// Pool-level overrides (rbd_info metadata) both ways, on a pool of our
// own: a pool-level QoS limit would throttle every librbd client of a
// shared pool.
func TestInteropPoolConfig(t *testing.T) {
	for _, c := range clusters {
		t.Run(c, func(t *testing.T) {
			e := newEnv(t, c)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			pool := iname("poolconf")
			if _, status, err := e.conn.MonCommand(ctx, `{"prefix":"osd pool create","pool":"`+pool+`","pg_num":8,"pgp_num":8}`, nil); err != nil {
				t.Fatalf("creating pool %s: %v %s", pool, err, status)
			}
			t.Cleanup(func() {
				_, _, _ = e.conn.MonCommand(context.Background(), `{"prefix":"osd pool delete","pool":"`+pool+`","pool2":"`+pool+
					`","yes_i_really_really_mean_it":true}`, nil)
			})
			if err := e.conn.WaitForLatestOSDMap(ctx); err != nil {
				t.Fatal(err)
			}
			io, err := e.conn.OpenIOContext(ctx, pool)
			if err != nil {
				t.Fatal(err)
			}
			if m, err := rbd.PoolConfigOverrides(ctx, io); err != nil || len(m) != 0 {
				t.Fatalf("a new pool's overrides: %v, %v", m, err)
			}
			if err := rbd.SetPoolConfig(ctx, io, rbd.QoSWriteIOPSLimit, "300"); err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(string(rbdConfig(t, e, "pool", "get", pool, rbd.QoSWriteIOPSLimit))); got != "300" {
				t.Errorf("rbd config pool get = %q, want 300", got)
			}
			rbdConfig(t, e, "pool", "set", pool, rbd.QoSReadBPSLimit, "1M")
			m, err := rbd.PoolConfigOverrides(ctx, io)
			if err != nil || m[rbd.QoSReadBPSLimit] != "1M" || m[rbd.QoSWriteIOPSLimit] != "300" || len(m) != 2 {
				t.Fatalf("pool overrides after the CLI's: %v, %v", m, err)
			}
			// The image's own override wins over the pool's.
			q, err := rbd.QoSFrom(m, map[string]string{rbd.QoSWriteIOPSLimit: "50"})
			if err != nil || q.WriteIOPS.Limit != 50 || q.ReadBPS.Limit != 1<<20 {
				t.Errorf("QoSFrom(pool, image) = %+v, %v", q, err)
			}
			if err := rbd.RemovePoolConfig(ctx, io, rbd.QoSWriteIOPSLimit); err != nil {
				t.Fatal(err)
			}
			if err := rbd.RemovePoolConfig(ctx, io, rbd.QoSWriteIOPSLimit); err != nil {
				t.Fatalf("removing a missing override: %v", err)
			}
			out := string(rbdConfig(t, e, "pool", "list", pool))
			for _, line := range strings.Split(out, "\n") {
				f := strings.Fields(line)
				if len(f) == 3 && f[0] == rbd.QoSWriteIOPSLimit && f[2] == "pool" {
					t.Errorf("removed override still listed: %q", line)
				}
			}
		})
	}
}

// rbdConfig runs `rbd config ...`, which takes no -p.
func rbdConfig(t *testing.T, e *env, args ...string) []byte {
	t.Helper()
	full := append([]string{"rbd", "-c", e.cl.Conf(), "-k", e.cl.Keyring(), "config"}, args...)
	if cli := e.cl.Get("CEPH_CLI"); cli != "" {
		full = append(strings.Fields(cli), full...)
	}
	cmd := exec.Command(full[0], full[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("rbd config %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return out
}
