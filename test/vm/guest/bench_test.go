package guest

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBenchEncryption is bench/vm-encryption.sh's guest half, not a test
// (it skips unless GORBD_VM_BENCH=1): fio on three devices over RBD images
// of the same size on the host's cluster —
//
//	plain    /dev/nbdA: "nbd map" of a plain image
//	dmcrypt  /dev/mapper/X: dm-crypt (cryptsetup, LUKS2, 4096-byte
//	         sectors, aes-xts-plain64 512-bit) over a raw "nbd map"
//	ours     /dev/nbdB: "nbd map --encryption-format luks2" of an image
//	         formatted by csi-gorbd (LUKS2, same cipher and sector)
//
// 4 KiB random write/read at QD16 and 1 MiB sequential write/read at QD8,
// GORBD_VM_BENCH_SECS (default 15) each, one round per device in
// rotating order per job. It reports IOPS, MiB/s, and CPU per op: all of
// the guest's CPU time (/proc/stat: user, system, irq, softirq — fio,
// kcryptd, the nbd server) and the nbd server process's alone.
func TestBenchEncryption(t *testing.T) {
	if os.Getenv("GORBD_VM_BENCH") != "1" {
		t.Skip("bench: bench/vm-encryption.sh sets GORBD_VM_BENCH=1")
	}
	c := needHostCeph(t)
	needCryptsetup(t)
	if _, err := exec.LookPath("fio"); err != nil {
		t.Fatal("no fio in the VM (run.sh packs it with VM_BENCH=1)")
	}
	secs := 15
	if s, err := strconv.Atoi(os.Getenv("GORBD_VM_BENCH_SECS")); err == nil && s > 0 {
		secs = s
	}
	const sizeMiB = 256
	ctx := testCtx(t, 40*time.Minute)

	plain := newCryptImage(t, c, "bplain", sizeMiB)
	pcmd, pdev := plain.mapRaw(t, ctx)
	dm := newCryptImage(t, c, "bdm", sizeMiB+16)
	dcmd, draw := dm.mapRaw(t, ctx)
	sh(t, "cryptsetup -q luksFormat --type luks2 --sector-size 4096 --pbkdf pbkdf2 --iter-time 100 "+draw+" -d "+dm.pass)
	ddev := dm.cryptOpen(t, draw, "bench")
	ours := newCryptImage(t, c, "bours", sizeMiB+16)
	c.CLI(t, "rbd", "encryption", "format", ours.name, "luks2", ours.pass, "--layout", "dm-crypt", "--kdf", "pbkdf2:iterations=20000")
	ocmd, odev := ours.mapPlain(t, ctx, "luks2")
	devs := []struct {
		name, dev string
		server    int
	}{{"plain", pdev, pcmd.Process.Pid}, {"dmcrypt", ddev, dcmd.Process.Pid}, {"ours", odev, ocmd.Process.Pid}}
	for _, d := range devs {
		t.Logf("%-8s %s: %d bytes, %d-byte blocks", d.name, d.dev, blockdev(t, "--getsize64", d.dev), blockdev(t, "--getss", d.dev))
		// Write every block once so that reads hit objects that exist.
		sh(t, "fio --name=fill --filename="+d.dev+" --rw=write --bs=1M --iodepth=8 --ioengine=libaio --direct=1 --size=100% >/dev/null")
	}
	jobs := []struct{ name, rw, bs, qd string }{
		{"randwrite-4k-qd16", "randwrite", "4k", "16"},
		{"randread-4k-qd16", "randread", "4k", "16"},
		{"seqwrite-1m-qd8", "write", "1M", "8"},
		{"seqread-1m-qd8", "read", "1M", "8"},
	}
	fmt.Printf("BENCH job device iops MiB/s guest-cpu-us/op server-cpu-us/op\n")
	for ji, j := range jobs {
		for k := range devs {
			d := devs[(k+ji)%len(devs)]
			r := runFio(t, d.dev, j.rw, j.bs, j.qd, secs, d.server)
			fmt.Printf("BENCH %s %s %.0f %.1f %.1f %.1f\n", j.name, d.name, r.iops, r.mibs, r.guestUS, r.serverUS)
		}
	}
	sh(t, "cryptsetup close bench")
	for _, u := range []struct {
		im  *cryptImage
		cmd *exec.Cmd
		dev string
	}{{plain, pcmd, pdev}, {dm, dcmd, draw}, {ours, ocmd, odev}} {
		u.im.unmap(t, ctx, u.cmd, u.dev)
	}
}

type fioResult struct{ iops, mibs, guestUS, serverUS float64 }

// runFio runs one fio job and returns its rate and CPU per op.
func runFio(t *testing.T, dev, rw, bs, qd string, secs, server int) fioResult {
	t.Helper()
	g0, s0 := guestCPU(t), procCPU(t, server)
	out := sh(t, fmt.Sprintf("fio --name=b --filename=%s --rw=%s --bs=%s --iodepth=%s --ioengine=libaio --direct=1 "+
		"--time_based --runtime=%d --ramp_time=2 --randrepeat=0 --output-format=json", dev, rw, bs, qd, secs))
	g1, s1 := guestCPU(t), procCPU(t, server)
	var res struct {
		Jobs []struct {
			Read, Write struct {
				IOPS     float64 `json:"iops"`
				BW       float64 `json:"bw_bytes"`
				TotalIOs int64   `json:"total_ios"`
			}
		}
	}
	if i := strings.IndexByte(out, '{'); i >= 0 {
		out = out[i:]
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Jobs) != 1 {
		t.Fatalf("fio output: %v\n%s", err, out)
	}
	st := res.Jobs[0].Read
	if strings.Contains(rw, "write") {
		st = res.Jobs[0].Write
	}
	// The CPU counters include the 2 s ramp: ops over the whole run.
	ops := st.IOPS * float64(secs+2)
	if ops == 0 {
		t.Fatalf("fio %s on %s did nothing", rw, dev)
	}
	return fioResult{iops: st.IOPS, mibs: st.BW / (1 << 20), guestUS: (g1 - g0) / ops * 1e6, serverUS: (s1 - s0) / ops * 1e6}
}

// guestCPU is the guest's busy CPU time in seconds (all CPUs).
func guestCPU(t *testing.T) float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(strings.SplitN(string(b), "\n", 2)[0]) // cpu user nice system idle iowait irq softirq steal
	var busy float64
	for _, i := range []int{1, 2, 3, 6, 7} {
		v, _ := strconv.ParseFloat(f[i], 64)
		busy += v
	}
	return busy / 100 // USER_HZ
}

// procCPU is a process's user+system CPU time in seconds.
func procCPU(t *testing.T, pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	u, _ := strconv.ParseFloat(f[11], 64)
	k, _ := strconv.ParseFloat(f[12], 64)
	return (u + k) / 100
}
