package rbd_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// Exclusive lock cooperation with librbd: hand-off both ways under
// concurrent writers, and a lock owner killed with -9 is blocklisted and
// its lock broken by the next writer.

// holderEnv names the image the helper process locks: "cluster pool image".
const holderEnv = "GORBD_RBD_LOCK_HOLDER"

// TestLockHolderHelper is not a test: run by TestInteropLockDeadOwner as a
// child process (this test binary re-executed), it opens the image, writes
// so that it owns the lock, prints LOCKED and waits to be killed.
func TestLockHolderHelper(t *testing.T) {
	spec := os.Getenv(holderEnv)
	if spec == "" {
		t.Skip("helper process only")
	}
	f := strings.Fields(spec)
	e := newEnv(t, f[0])
	ctx := context.Background()
	io, err := e.conn.OpenIOContext(ctx, f[1])
	if err != nil {
		t.Fatal(err)
	}
	img, err := rbd.Open(ctx, io, f[2], &rbd.OpenOptions{Exclusive: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := img.WriteAt(ctx, []byte("held by a process about to die"), 0); err != nil {
		t.Fatal(err)
	}
	fmt.Println("LOCKED")
	// Block until killed: the parent never writes to our stdin.
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
}

type cliLocker struct {
	ID      string `json:"id"`
	Locker  string `json:"locker"`
	Address string `json:"address"`
}

func (e *env) lockers(t *testing.T, image string) []cliLocker {
	t.Helper()
	out := e.rbd(t, "lock", "ls", "--format", "json", image)
	var ls []cliLocker
	if err := json.Unmarshal(out, &ls); err != nil {
		// Pacific prints an object keyed by lock id.
		var m map[string]cliLocker
		if err2 := json.Unmarshal(out, &m); err2 != nil {
			t.Fatalf("rbd lock ls: %v / %v: %s", err, err2, out)
		}
		for id, l := range m {
			l.ID = id
			ls = append(ls, l)
		}
	}
	return ls
}

// startLockHolder runs TestLockHolderHelper in a child process that takes
// image's exclusive lock and blocks; it kills the child (SIGKILL) and
// returns the locker it left behind, whose watch outlives it on the OSD.
func startLockHolder(t *testing.T, ctx context.Context, e *env, cluster, image string) cliLocker {
	t.Helper()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestLockHolderHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), holderEnv+"="+cluster+" "+e.pool+" "+image)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	locked := false
	var out []string
	for sc.Scan() {
		out = append(out, sc.Text())
		if sc.Text() == "LOCKED" {
			locked = true
			break
		}
	}
	if !locked {
		_ = cmd.Wait()
		t.Fatalf("helper did not take the lock:\n%s\n%s", strings.Join(out, "\n"), stderr.String())
	}
	ls := e.lockers(t, image)
	if len(ls) != 1 || !strings.HasPrefix(ls[0].ID, "auto ") {
		t.Fatalf("rbd lock ls with the helper holding it: %+v", ls)
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	_ = cmd.Wait()
	return ls[0]
}

func TestInteropLockDeadOwner(t *testing.T) {
	if os.Getenv(holderEnv) != "" {
		t.Skip("in the helper process")
	}
	for _, c := range clusters {
		t.Run(c, func(t *testing.T) {
			t.Parallel() // each waits out its OSDs' watch timeout
			e := newEnv(t, c)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			name := iname("dead")
			if _, err := rbd.Create(ctx, e.io, name, 4<<20, &rbd.CreateOptions{Features: rbd.FeaturesDefault}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = rbd.Remove(context.Background(), e.io, name) })

			victim := startLockHolder(t, ctx, e, c, name).Address

			img, err := rbd.Open(ctx, e.io, name, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close(context.Background())
			start := time.Now()
			if _, err := img.WriteAt(ctx, []byte("next writer"), 0); err != nil {
				t.Fatalf("write after the owner died: %v", err)
			}
			t.Logf("lock of the killed owner broken after %v", time.Since(start).Round(time.Second))
			ls := e.lockers(t, name)
			if len(ls) != 1 || ls[0].Address == victim {
				t.Fatalf("rbd lock ls after the break: %+v (victim %s)", ls, victim)
			}
			if !blocklisted(t, ctx, e.conn, victim) {
				t.Fatalf("the dead owner %s is not blocklisted", victim)
			}
		})
	}
}

// blocklisted reports whether addr ("ip:port/nonce", maybe with a "v1:"
// or "v2:" prefix) is on the OSD blocklist.
func blocklisted(t *testing.T, ctx context.Context, conn *rados.Conn, addr string) bool {
	t.Helper()
	_, nonce, _ := strings.Cut(addr, "/")
	out, status, err := conn.MonCommand(ctx, `{"prefix":"osd blocklist ls","format":"json"}`, nil)
	if err != nil {
		t.Fatalf("osd blocklist ls: %v %s", err, status)
	}
	var list []struct {
		Addr string `json:"addr"`
	}
	// Reef and later append a second list (range blocklist): read the first.
	if err := json.NewDecoder(bytes.NewReader(out)).Decode(&list); err != nil {
		t.Fatalf("osd blocklist ls: %v: %s", err, out)
	}
	for _, b := range list {
		if strings.HasSuffix(b.Addr, "/"+nonce) {
			return true
		}
	}
	return false
}

// Our writer and `rbd bench --io-type write` on one exclusive-lock image
// both make progress, the lock going back and forth; afterwards our region
// holds our data, rbd's region rbd's, and the object map checks clean.
// `rbd snap create` and `rbd resize` go through while we write too.
func TestInteropLockContention(t *testing.T) {
	for _, c := range clusters {
		t.Run(c, func(t *testing.T) {
			e := newEnv(t, c)
			ctx := tctx(t)
			name := iname("cont")
			const size = 16 << 20
			if _, err := rbd.Create(ctx, e.io, name, size, &rbd.CreateOptions{Features: rbd.FeaturesDefault}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				e.rbdQuiet("snap", "purge", "--no-progress", name)
				_ = rbd.Remove(context.Background(), e.io, name)
			})
			img, err := rbd.Open(ctx, e.io, name, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close(context.Background())

			// Our writer: [8 MiB, 16 MiB) in 64 KiB pieces, round and round.
			const chunk = 64 << 10
			ours := randBytes(8<<20, 101)
			var (
				wg         sync.WaitGroup
				stop       atomic.Bool
				benchStart atomic.Int64
				during     atomic.Int64 // our writes completed while rbd bench ran
				total      atomic.Int64
				werr       error
			)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; !stop.Load() || i < len(ours)/chunk; i++ {
					off := (i % (len(ours) / chunk)) * chunk
					if _, err := img.WriteAt(ctx, ours[off:off+chunk], uint64(8<<20+off)); err != nil {
						werr = err
						return
					}
					total.Add(1)
					if benchStart.Load() != 0 && !stop.Load() {
						during.Add(1)
					}
				}
			}()
			waitFor(t, ctx, "our first writes", func() bool { return total.Load() > 4 })
			benchStart.Store(time.Now().UnixNano())
			// One thread: rbd bench's sequential writes start at 0 (with N
			// threads, thread i starts at i*size/N).
			out := e.rbd(t, "bench", "--io-type", "write", "--io-size", "65536", "--io-total", "4M",
				"--io-pattern", "seq", "--io-threads", "1", name)
			e.rbd(t, "snap", "create", name+"@mid")
			e.rbd(t, "resize", "--size", "20", name)
			stop.Store(true)
			wg.Wait()
			if werr != nil {
				t.Fatalf("our writer: %v", werr)
			}
			if during.Load() == 0 {
				t.Fatal("our writer made no progress while rbd bench ran")
			}
			if !strings.Contains(string(out), "ops: 64 ") {
				t.Fatalf("rbd bench did not finish its 64 writes:\n%s", out)
			}
			acq, rel := img.LockStats()
			t.Logf("our writes: %d (%d during rbd bench); lock taken %d times, handed over %d times", total.Load(), during.Load(), acq, rel)
			if acq < 2 || rel < 1 {
				t.Fatalf("no lock hand-off happened: taken %d, handed over %d", acq, rel)
			}
			waitFor(t, ctx, "the resize to be seen", func() bool { return img.Size() == 20<<20 })
			if err := img.Close(ctx); err != nil {
				t.Fatal(err)
			}
			exp := e.export(t, name)
			if len(exp) != 20<<20 || !bytes.Equal(exp[8<<20:16<<20], ours) {
				var bad []string
				for off := 0; off < len(ours); off += chunk {
					if !bytes.Equal(exp[8<<20+off:8<<20+off+chunk], ours[off:off+chunk]) {
						g := exp[8<<20+off : 8<<20+off+chunk]
						where := -1
						for o2 := 0; o2 < len(ours); o2 += 4096 {
							if bytes.Equal(g[:4096], ours[o2:o2+4096]) {
								where = o2
							}
						}
						firstDiff := 0
						for firstDiff < chunk && g[firstDiff] == ours[off+firstDiff] {
							firstDiff++
						}
						bad = append(bad, fmt.Sprintf("%d(zero=%v first4k-found-at=%d firstdiff=%d byte0=%x)", (8<<20+off)/chunk,
							bytes.Count(g, []byte{0}) == chunk, where, firstDiff, g[firstDiff]))
					}
				}
				ro, err := rbd.Open(ctx, e.io, name, &rbd.OpenOptions{ReadOnly: true})
				if err == nil {
					got := make([]byte, len(ours))
					ro.ReadAt(ctx, got, 8<<20)
					t.Logf("our own read of the region equal: %v", bytes.Equal(got, ours))
					ro.Close(ctx)
				}
				t.Logf("object-map check: %s", e.rbd(t, "object-map", "check", "--no-progress", name))
				t.Logf("info: %s", e.rbd(t, "info", name))
				t.Fatalf("rbd export: our region differs in %d chunks: %v", len(bad), bad)
			}
			for off := 0; off < 4<<20; off += chunk {
				if bytes.Count(exp[off:off+chunk], exp[off:off+1]) != chunk {
					t.Fatalf("rbd export: rbd bench's chunk at %d is not one repeated byte", off)
				}
			}
			e.rbd(t, "object-map", "check", "--no-progress", name)
			if info := string(e.rbd(t, "info", name)); strings.Contains(info, "invalid") {
				t.Fatalf("object map invalid:\n%s", info)
			}
		})
	}
}
