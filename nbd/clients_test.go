package nbd_test

// Tests against real NBD clients on the host: libnbd's nbdinfo and
// nbdcopy, qemu-io, qemu-img and fio's nbd engine (test/deps.sh installs
// them). A missing tool skips locally and fails when GORBD_REQUIRE_CLUSTERS=1
// or CI is set, like the cluster tests.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/nbd"
	"github.com/csi-gorbd/csi-gorbd/nbd/memory"
)

func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("GORBD_REQUIRE_CLUSTERS") == "1" || os.Getenv("CI") != "" {
			t.Fatalf("%s not installed (test/deps.sh installs it)", name)
		}
		t.Skipf("%s not installed (run test/deps.sh)", name)
	}
}

// testServer serves exports on a unix socket for the life of the test.
type testServer struct {
	sock string
	srv  *nbd.Server
}

func startServer(t *testing.T, exps ...*nbd.Export) *testServer {
	t.Helper()
	ts := &testServer{sock: filepath.Join(t.TempDir(), "nbd.sock"), srv: &nbd.Server{}}
	for _, e := range exps {
		if err := ts.srv.AddExport(e); err != nil {
			t.Fatal(err)
		}
	}
	l, err := net.Listen("unix", ts.sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ts.srv.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Serve did not return after cancel")
		}
	})
	return ts
}

func (ts *testServer) uri(name string) string {
	return fmt.Sprintf("nbd+unix:///%s?socket=%s", name, ts.sock)
}

// run runs a tool and fails the test with its output if it fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// randomImage writes a file of size bytes with random data in some 1 MiB
// regions and zeroes (holes) elsewhere.
func randomImage(t *testing.T, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "image.raw")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	for off := int64(0); off < size; off += 3 << 20 {
		rand.Read(buf)
		n := min(int64(len(buf)-4096+int(off>>20)%4096), size-off) // odd lengths
		if _, err := f.WriteAt(buf[:n], off); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func TestNbdinfo(t *testing.T) {
	needTool(t, "nbdinfo")
	ts := startServer(t,
		&nbd.Export{Name: "disk", Description: "scratch", Backend: memory.New(64 << 20)},
		&nbd.Export{Name: "ro", Backend: memory.New(1 << 20), ReadOnly: true, MinBlockSize: 512, MaxPayload: 1 << 20})

	type info struct {
		Protocol   string `json:"protocol"`
		Structured bool   `json:"structured"`
		Exports    []struct {
			Name        string `json:"export-name"`
			Description string `json:"description"`
			Size        int64  `json:"export-size"`
			ReadOnly    bool   `json:"is_read_only"`
			CanDF       bool   `json:"can_df"`
			CanFastZero bool   `json:"can_fast_zero"`
			CanFlush    bool   `json:"can_flush"`
			CanFUA      bool   `json:"can_fua"`
			CanMulti    bool   `json:"can_multi_conn"`
			CanTrim     bool   `json:"can_trim"`
			CanZero     bool   `json:"can_zero"`
			MinBlock    uint32 `json:"block_size_minimum"`
			PrefBlock   uint32 `json:"block_size_preferred"`
			MaxBlock    uint32 `json:"block_size_maximum"`
		} `json:"exports"`
	}
	parse := func(out string) info {
		var i info
		if err := json.Unmarshal([]byte(out), &i); err != nil {
			t.Fatalf("nbdinfo output: %v\n%s", err, out)
		}
		return i
	}

	i := parse(run(t, "nbdinfo", "--json", ts.uri("disk")))
	if i.Protocol != "newstyle-fixed" || !i.Structured || len(i.Exports) != 1 {
		t.Fatalf("%+v", i)
	}
	e := i.Exports[0]
	if e.Name != "disk" || e.Description != "scratch" || e.Size != 64<<20 || e.ReadOnly ||
		!e.CanDF || !e.CanFastZero || !e.CanFlush || !e.CanFUA || !e.CanMulti || !e.CanTrim || !e.CanZero ||
		e.MinBlock != 1 || e.PrefBlock != 4096 || e.MaxBlock != 32<<20 {
		t.Errorf("disk: %+v", e)
	}

	i = parse(run(t, "nbdinfo", "--json", ts.uri("ro")))
	e = i.Exports[0]
	if !e.ReadOnly || e.CanTrim || e.CanZero || e.CanFastZero || e.Size != 1<<20 || e.MinBlock != 512 || e.MaxBlock != 1<<20 {
		t.Errorf("ro: %+v", e)
	}

	i = parse(run(t, "nbdinfo", "--list", "--json", ts.uri("")))
	if len(i.Exports) != 2 || i.Exports[0].Name != "disk" || i.Exports[1].Name != "ro" {
		t.Errorf("list: %+v", i.Exports)
	}

	if out := strings.TrimSpace(run(t, "nbdinfo", "--size", ts.uri("disk"))); out != fmt.Sprint(64<<20) {
		t.Errorf("--size %q", out)
	}
	// An unknown export is an error for the client.
	if out, err := exec.Command("nbdinfo", ts.uri("nope")).CombinedOutput(); err == nil {
		t.Errorf("nbdinfo of an unknown export succeeded:\n%s", out)
	}
}

func TestNbdcopyRoundTrip(t *testing.T) {
	needTool(t, "nbdcopy")
	const size = 48 << 20
	b := memory.New(size)
	ts := startServer(t, &nbd.Export{Name: "disk", Backend: b})
	src := randomImage(t, size)
	want, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, conns := range []string{"1", "4"} {
		t.Run("connections="+conns, func(t *testing.T) {
			b.Discard(context.Background(), 0, size)
			run(t, "nbdcopy", "--connections="+conns, "--requests=16", src, ts.uri("disk"))
			// The backend holds exactly the file...
			got := make([]byte, size)
			if err := b.ReadAt(context.Background(), got, 0); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatal("backend differs from the source after nbdcopy in")
			}
			// ...and copying it out gives the file back.
			dst := filepath.Join(t.TempDir(), "out.raw")
			run(t, "nbdcopy", "--connections="+conns, ts.uri("disk"), dst)
			out, err := os.ReadFile(dst)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, want) {
				t.Fatal("nbdcopy out differs from the source")
			}
		})
	}
}

func TestQemuIO(t *testing.T) {
	needTool(t, "qemu-io")
	ts := startServer(t,
		&nbd.Export{Name: "disk", Backend: memory.New(16 << 20)},
		&nbd.Export{Name: "ro", Backend: memory.New(1 << 20), ReadOnly: true})
	cmds := []string{
		"write -P 0xab 0 1M",
		"write -P 0xcd -f 1M 512k", // FUA
		"write -P 0x11 4095 3",     // unaligned
		"read -P 0xab 0 4095",
		"read -P 0x11 4095 3",
		"read -P 0xab 4098 1044478",
		"read -P 0xcd 1M 512k",
		"discard 64k 128k",
		"read -P 0 64k 128k",
		"read -P 0xab 192k 64k",
		"write -z 256k 64k", // write zeroes, holes allowed
		"read -P 0 256k 64k",
		"write -z -u 512k 64k", // may unmap
		"read -P 0 512k 64k",
		"write -P 0x5a 15M 1M",
		"flush",
		"read -P 0x5a 15M 1M",
		"aio_write -P 0x77 2M 256k",
		"aio_write -P 0x78 3M 256k",
		"aio_flush",
		"read -P 0x77 2M 256k",
		"read -P 0x78 3M 256k",
		"readv -P 0x5a 15M 4k 8k 512",
		"writev -P 0x99 4M 4k 4k",
		"read -P 0x99 4M 8k",
	}
	args := []string{"-f", "raw"}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	out := run(t, "qemu-io", append(args, ts.uri("disk"))...)
	if strings.Contains(out, "verification failed") || strings.Contains(out, "error") {
		t.Fatalf("qemu-io:\n%s", out)
	}
	// Out of range is an error; read-only refuses writes.
	if out, err := exec.Command("qemu-io", "-f", "raw", "-c", "read 16M 512", ts.uri("disk")).CombinedOutput(); err == nil {
		t.Errorf("read past the end succeeded:\n%s", out)
	}
	if out, err := exec.Command("qemu-io", "-f", "raw", "-c", "write 0 512", ts.uri("ro")).CombinedOutput(); err == nil {
		t.Errorf("write to a read-only export succeeded:\n%s", out)
	}
	run(t, "qemu-io", "-r", "-f", "raw", "-c", "read -P 0 0 1M", ts.uri("ro"))
}

func TestQemuImgCompare(t *testing.T) {
	needTool(t, "qemu-img")
	needTool(t, "nbdcopy")
	const size = 16 << 20
	ts := startServer(t, &nbd.Export{Name: "disk", Backend: memory.New(size)})
	src := randomImage(t, size)
	run(t, "qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", src, ts.uri("disk"))
	run(t, "qemu-img", "compare", "-f", "raw", "-F", "raw", src, ts.uri("disk"))
	// Change one byte on the export: compare must notice.
	run(t, "qemu-io", "-f", "raw", "-c", "write -P 0xee 5000000 1", ts.uri("disk"))
	out, err := exec.Command("qemu-img", "compare", "-f", "raw", "-F", "raw", src, ts.uri("disk")).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "mismatch at offset 4999680") {
		t.Fatalf("compare after a change: %v\n%s", err, out)
	}
}

// TestFio runs fio's nbd engine with crc32c verification at several queue
// depths, with several jobs (one connection each) on the same export.
func TestFio(t *testing.T) {
	needTool(t, "fio")
	const jobs, per = 4, 8 << 20
	ts := startServer(t, &nbd.Export{Name: "disk", Backend: memory.New(jobs * per)})
	for _, c := range []struct {
		name string
		args []string
	}{
		{"qd1", []string{"--iodepth=1", "--rw=randwrite", "--bs=4k"}},
		{"qd8", []string{"--iodepth=8", "--rw=randwrite", "--bsrange=512-128k"}},
		{"qd32", []string{"--iodepth=32", "--rw=randwrite", "--bs=4k"}},
		{"qd32-seq-1M", []string{"--iodepth=32", "--rw=write", "--bs=1M"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{
				"--name=verify", "--ioengine=nbd", "--uri=" + ts.uri("disk"),
				fmt.Sprintf("--numjobs=%d", jobs), fmt.Sprintf("--size=%d", per), fmt.Sprintf("--offset_increment=%d", per),
				"--verify=crc32c", "--verify_fatal=1", "--do_verify=1", "--group_reporting",
				"--randrepeat=0", "--output-format=terse",
			}, c.args...)
			out := run(t, "fio", args...)
			// terse v3: field 6 is read KiB, 47 write KiB; errors in field 5.
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				f := strings.Split(line, ";")
				if len(f) < 50 || f[0] != "3" {
					continue
				}
				if f[4] != "0" {
					t.Fatalf("fio errors %s\n%s", f[4], out)
				}
				if f[46] == "0" || f[5] == "0" {
					t.Fatalf("fio wrote %s KiB and verified %s KiB\n%s", f[46], f[5], out)
				}
				return
			}
			t.Fatalf("no terse line in fio output:\n%s", out)
		})
	}
}
