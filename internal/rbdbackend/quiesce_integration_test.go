package rbdbackend

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// A served image honours the rbd CLI's snapshots: while fio writes
// through the export, `rbd snap create` (which the image, as lock owner,
// runs itself) and `rbd group snap create` each freeze first — the
// freeze's own write goes through the export, as a filesystem's flush
// does, and is in the snapshot — then pause the export, and thaw after;
// fio finishes without an I/O error.
func TestQuiesceServedImage(t *testing.T) {
	needTool(t, "fio", "qemu-io")
	forClusters(t, func(t *testing.T, e *env) {
		img := e.newImage(t)
		var (
			mu     sync.Mutex
			events []string
			uri    string
		)
		freezes := 0
		served, b := e.serveWith(t, img, false, func(b *Backend) {
			b.EnableQuiesce(Quiesce{
				Freeze: func(ctx context.Context) error {
					mu.Lock()
					freezes++
					n, uri := freezes, uri
					events = append(events, "freeze")
					mu.Unlock()
					// The flush: a write through the export, which must
					// still serve.
					out, err := exec.CommandContext(ctx, "qemu-io", "-f", "raw", "-c",
						fmt.Sprintf("write -P %d 15M 4096", n), uri).CombinedOutput()
					if err != nil {
						t.Errorf("the freeze's write: %v\n%s", err, out)
					}
					return err
				},
				Thaw: func(ctx context.Context) {
					mu.Lock()
					events = append(events, "thaw")
					mu.Unlock()
				},
			})
		})
		mu.Lock()
		uri = served
		mu.Unlock()
		fio := exec.Command("fio", "--name=w", "--ioengine=nbd", "--uri="+uri, "--rw=randwrite", "--bs=4k",
			"--iodepth=4", "--size=8M", "--time_based", "--runtime=12", "--output-format=terse")
		var fout bytes.Buffer
		fio.Stdout, fio.Stderr = &fout, &fout
		if err := fio.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second)
		e.rbd(t, "snap", "create", img+"@q1")
		g := img + "-g"
		e.rbdNoPool(t, "group", "create", e.pool+"/"+g)
		t.Cleanup(func() { e.rbdNoPoolQuiet("group", "rm", e.pool+"/"+g) })
		e.rbdNoPool(t, "group", "image", "add", e.pool+"/"+g, e.pool+"/"+img)
		e.rbdNoPool(t, "group", "snap", "create", e.pool+"/"+g+"@q2")
		if err := fio.Wait(); err != nil {
			t.Fatalf("fio: %v\n%s", err, fout.Bytes())
		}
		mu.Lock()
		got := slices.Clone(events)
		mu.Unlock()
		if !slices.Equal(got, []string{"freeze", "thaw", "freeze", "thaw"}) {
			t.Fatalf("hook calls %v", got)
		}
		if b.Gate().Paused() {
			t.Fatal("the export is still paused")
		}
		_, snap := e.export(t, img+"@q1")
		if snap[15<<20] != 1 || snap[15<<20+4095] != 1 {
			t.Fatalf("snapshot q1 lacks the freeze's write: %q", snap[15<<20:15<<20+8])
		}
	})
}

// rbdNoPool runs the rbd CLI without -p (Tentacle's group commands
// refuse it): names are POOL/NAME.
func (e *env) rbdNoPool(t *testing.T, args ...string) []byte {
	t.Helper()
	full := e.rbdNoPoolArgs(args)
	out, err := exec.Command(full[0], full[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("rbd %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (e *env) rbdNoPoolQuiet(args ...string) {
	full := e.rbdNoPoolArgs(args)
	_ = exec.Command(full[0], full[1:]...).Run()
}

func (e *env) rbdNoPoolArgs(args []string) []string {
	full := append([]string{"rbd", "-c", e.cl.Conf(), "-k", e.cl.Keyring()}, args...)
	if cli := e.cl.Get("CEPH_CLI"); cli != "" {
		full = append(strings.Fields(cli), full...)
	}
	return full
}
