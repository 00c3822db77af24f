package rados_test

// Fault tests: they kill OSDs with SIGKILL, fill pools and pause the
// cluster, so they run only against the dedicated clusters pacific-osd3,
// reef-osd3 and tentacle-osd3 (3 bluestore OSDs that keep their data over
// kill -9, pool defaults size 3 / min_size 2, a dead OSD marked down within
// seconds; see test/cluster/README.md). The tests in this file run one after another
// (no t.Parallel) and each leaves the cluster healthy again.

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/internal/cephtest"
	"github.com/csi-gorbd/csi-gorbd/rados"
	"github.com/csi-gorbd/csi-gorbd/rados/osd"
	"github.com/csi-gorbd/csi-gorbd/rados/osdmap"
)

// faultClusters are the clusters made for breaking (test/cluster/lib.sh).
var faultClusters = []string{"pacific-osd3", "reef-osd3", "tentacle-osd3"}

// faultEnv is a fault cluster plus helpers to break it.
type faultEnv struct {
	*env
	name   string
	osdIDs []int32
}

// forFaultClusters runs f once per fault cluster, as subtests.
func forFaultClusters(t *testing.T, f func(t *testing.T, fe *faultEnv)) {
	for _, name := range faultClusters {
		t.Run(name, func(t *testing.T) { f(t, newFaultEnv(t, name)) })
	}
}

func newFaultEnv(t *testing.T, name string) *faultEnv {
	t.Helper()
	e := newEnv(t, name)
	fe := &faultEnv{env: e, name: name}
	for _, s := range strings.Split(e.cl.Get("CEPH_OSD_IDS"), ",") {
		id, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("CEPH_OSD_IDS=%q in cluster.env", e.cl.Get("CEPH_OSD_IDS"))
		}
		fe.osdIDs = append(fe.osdIDs, int32(id))
	}
	if len(fe.osdIDs) < 3 {
		t.Fatalf("%s has %d OSDs, the fault tests need 3", fe.name, len(fe.osdIDs))
	}
	// Whatever happens, the OSDs run again afterwards and the cluster
	// settles before the next test. A run that was killed half-way may
	// have left an OSD down or a pool behind: repair that first.
	restart := func() {
		for _, id := range fe.osdIDs {
			if out, err := fe.osdCmd("start", id); err != nil {
				t.Errorf("restarting osd.%d: %v\n%s", id, err, out)
			}
		}
	}
	t.Cleanup(func() {
		restart()
		fe.waitClean(t, 3*time.Minute)
	})
	restart()
	ctx := tctx(t, 2*time.Minute)
	pools, err := e.conn.ListPools(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pools {
		if strings.HasPrefix(p, "gorbd-G-") {
			if err := e.conn.PoolDelete(ctx, p); err != nil {
				t.Fatalf("deleting leftover pool %s: %v", p, err)
			}
		}
	}
	fe.waitClean(t, 3*time.Minute)
	return fe
}

// osdCmd runs test/cluster/osd.sh on the fault cluster.
func (fe *faultEnv) osdCmd(op string, id int32) ([]byte, error) {
	script, err := filepath.Abs("../test/cluster/osd.sh")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("bash", script, fe.name, op, strconv.Itoa(int(id)))
	cmd.Env = append(os.Environ(), "GORBD_CLUSTERS="+cephtest.Dir())
	return cmd.CombinedOutput()
}

func (fe *faultEnv) mustOSD(t *testing.T, op string, id int32) {
	t.Helper()
	out, err := fe.osdCmd(op, id)
	if err != nil {
		t.Fatalf("osd.sh %s %d: %v\n%s", op, id, err, out)
	}
	t.Logf("osd.sh %s %d: %s", op, id, bytes.TrimSpace(out))
}

var pgStatRE = regexp.MustCompile(`^(\d+) pgs: (\d+) active\+clean;`)

// waitClean waits until every PG is active+clean (recovery after a
// restart done), bounded by d.
func (fe *faultEnv) waitClean(t *testing.T, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	var last string
	for {
		out, err := fe.tool("ceph", "pg", "stat").Output()
		last = strings.TrimSpace(string(out))
		if m := pgStatRE.FindStringSubmatch(last); err == nil && m != nil && m[1] == m[2] {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: PGs not active+clean after %v: %s (%v)", fe.name, d, last, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// faultPool creates a pool of its own (size/min_size given) and removes
// it at the end of the test.
func (fe *faultEnv) faultPool(t *testing.T, what string, size, minSize int) *rados.IOContext {
	t.Helper()
	ctx := tctx(t, 2*time.Minute)
	name := fmt.Sprintf("gorbd-G-%s-%x", what, rand.Uint32())
	if err := fe.conn.PoolCreate(ctx, name, 16); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := fe.conn.PoolDelete(ctx, name); err != nil {
			t.Errorf("deleting pool %s: %v", name, err)
		}
	})
	if size == 1 {
		fe.run(t, nil, "ceph", "osd", "pool", "set", name, "size", "1", "--yes-i-really-mean-it")
	} else {
		fe.run(t, nil, "ceph", "osd", "pool", "set", name, "size", strconv.Itoa(size))
	}
	fe.run(t, nil, "ceph", "osd", "pool", "set", name, "min_size", strconv.Itoa(minSize))
	if err := fe.conn.WaitForLatestOSDMap(ctx); err != nil {
		t.Fatal(err)
	}
	fe.waitClean(t, 2*time.Minute)
	io, err := fe.conn.OpenIOContext(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	return io
}

// primaryOf returns the acting primary of oid in io's pool under m.
func primaryOf(m *osdmap.OSDMap, io *rados.IOContext, oid string) int32 {
	var mp osdmap.Mapping
	if err := m.MapObject(io.PoolID(), oid, "", io.Namespace(), &mp); err != nil {
		return -2
	}
	return mp.ActingPrimary
}

// payload is a self-checking object body: crc32c of the rest, the
// object's name length and name, then random bytes.
func payload(oid string, n int) []byte {
	b := make([]byte, n)
	crand.Read(b[8+len(oid):])
	binary.LittleEndian.PutUint32(b[4:], uint32(len(oid)))
	copy(b[8:], oid)
	binary.LittleEndian.PutUint32(b, crc32.Checksum(b[4:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

func checkPayload(oid string, b []byte) error {
	if len(b) < 8+len(oid) {
		return fmt.Errorf("%d bytes", len(b))
	}
	if got, want := binary.LittleEndian.Uint32(b), crc32.Checksum(b[4:], crc32.MakeTable(crc32.Castagnoli)); got != want {
		return fmt.Errorf("crc32c %08x, stored %08x", want, got)
	}
	if string(b[8:8+len(oid)]) != oid {
		return fmt.Errorf("holds %q", b[8:8+len(oid)])
	}
	return nil
}

// writeLog records what a write stream did.
type writeLog struct {
	mu     sync.Mutex
	acked  map[string][32]byte // oid -> sha256 of what was acknowledged
	ackAt  map[string]time.Time
	failed map[string]error
}

func newWriteLog() *writeLog {
	return &writeLog{acked: map[string][32]byte{}, ackAt: map[string]time.Time{}, failed: map[string]error{}}
}

// stream writes new objects (names from name(i)) one after another until
// stop is closed; every write has its own deadline of perWrite.
func (wl *writeLog) stream(io *rados.IOContext, name func(int) string, size int, perWrite time.Duration, stop <-chan struct{}) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		oid := name(i)
		data := payload(oid, size)
		ctx, cancel := context.WithTimeout(context.Background(), perWrite)
		err := io.WriteFull(ctx, oid, data)
		cancel()
		wl.mu.Lock()
		if err != nil {
			wl.failed[oid] = err
		} else {
			wl.acked[oid] = sha256.Sum256(data)
			wl.ackAt[oid] = time.Now()
		}
		wl.mu.Unlock()
	}
}

// ackedBetween counts acknowledgements in [from, to) of objects for which
// match is true.
func (wl *writeLog) ackedBetween(from, to time.Time, match func(string) bool) int {
	wl.mu.Lock()
	defer wl.mu.Unlock()
	n := 0
	for oid, at := range wl.ackAt {
		if !at.Before(from) && at.Before(to) && match(oid) {
			n++
		}
	}
	return n
}

// verify reads every acknowledged object back: the bytes must be the ones
// acknowledged and carry a valid checksum.
func (wl *writeLog) verify(t *testing.T, io *rados.IOContext, size int) {
	t.Helper()
	ctx := tctx(t, 3*time.Minute)
	wl.mu.Lock()
	defer wl.mu.Unlock()
	bad := 0
	for oid, sum := range wl.acked {
		b, err := io.Read(ctx, oid, 0, uint64(size))
		switch {
		case err != nil:
			t.Errorf("acknowledged %s: read: %v", oid, err)
		case sha256.Sum256(b) != sum:
			t.Errorf("acknowledged %s: read back other bytes (%d bytes; %v)", oid, len(b), checkPayload(oid, b))
		default:
			continue
		}
		if bad++; bad > 10 {
			t.Fatal("too many bad objects")
		}
	}
	t.Logf("%d acknowledged writes read back intact; %d writes failed", len(wl.acked), len(wl.failed))
}

// TestFaultKillOSD: kill -9 of an OSD during checksummed write streams,
// then a restart. Every acknowledged write reads back intact and no write
// is lost silently. In a size 3 / min_size 2 pool writes go on while the
// OSD is down; in a size 1 pool the writes to the dead OSD's PGs wait
// (bounded by their deadline) and complete once it is back.
func TestFaultKillOSD(t *testing.T) {
	forFaultClusters(t, func(t *testing.T, fe *faultEnv) {
		t.Run("size3-min2-continues", func(t *testing.T) { killOSDSize3(t, fe) })
		t.Run("size1-blocks-then-completes", func(t *testing.T) { killOSDSize1(t, fe) })
	})
}

// The OSD TestFaultKillOSD kills, and the size of each write.
const (
	faultVictim    = int32(1)
	faultWriteSize = 16 << 10
)

// killOSDSize3: with size 3 / min_size 2 writes go on while an OSD is
// down, and what was acknowledged reads back, also after recovery.
func killOSDSize3(t *testing.T, fe *faultEnv) {
	const victim, size = faultVictim, faultWriteSize
	io := fe.faultPool(t, "rep3", 3, 2)
	wl := newWriteLog()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wl.stream(io, func(i int) string { return fmt.Sprintf("rep-%d-%06d", w, i) }, size, 2*time.Minute, stop)
		}()
	}
	time.Sleep(time.Second)
	fe.mustOSD(t, "kill", victim)
	down := time.Now()
	// Reads of what was acknowledged before the kill work meanwhile.
	wl.mu.Lock()
	var early []string
	for oid := range wl.acked {
		if early = append(early, oid); len(early) == 8 {
			break
		}
	}
	wl.mu.Unlock()
	for _, oid := range early {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		b, err := io.Read(ctx, oid, 0, size)
		cancel()
		if err != nil || checkPayload(oid, b) != nil {
			t.Errorf("read %s with osd.%d down: %v %v", oid, victim, err, checkPayload(oid, b))
		}
	}
	time.Sleep(5 * time.Second)
	up := time.Now()
	n := wl.ackedBetween(down, up, func(string) bool { return true })
	t.Logf("%d writes acknowledged while osd.%d was down (%.1fs)", n, victim, up.Sub(down).Seconds())
	if n == 0 {
		t.Errorf("no write completed while osd.%d was down: I/O must continue with min_size 2", victim)
	}
	fe.mustOSD(t, "start", victim)
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	for oid, err := range wl.failed {
		t.Errorf("write %s failed: %v", oid, err)
	}
	wl.verify(t, io, size)
	fe.waitClean(t, 3*time.Minute)
	wl.verify(t, io, size) // again after recovery
}

// killOSDSize1: with size 1 writes to the dead OSD's PGs wait (a short
// deadline fails clearly) and complete after its restart; the others go on.
func killOSDSize1(t *testing.T, fe *faultEnv) {
	const victim, size = faultVictim, faultWriteSize
	io := fe.faultPool(t, "rep1", 1, 1)
	// Object names by primary (under the map from before the kill):
	// streams 0,1 write only to the victim's PGs, streams 2,3 only to
	// the other OSDs' PGs.
	m0 := io.Conn().OSDMap()
	names := func(onVictim bool, w int) func(int) string {
		return func(i int) string {
			for j := 0; ; j++ {
				oid := fmt.Sprintf("one-%d-%06d-%d", w, i, j)
				if (primaryOf(m0, io, oid) == victim) == onVictim {
					return oid
				}
			}
		}
	}
	isVictim := func(oid string) bool { return strings.HasPrefix(oid, "one-0-") || strings.HasPrefix(oid, "one-1-") }
	wl := newWriteLog()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wl.stream(io, names(w < 2, w), size, 2*time.Minute, stop)
		}()
	}
	time.Sleep(time.Second)
	wl.mu.Lock()
	before := len(wl.ackAt)
	wl.mu.Unlock()
	fe.mustOSD(t, "kill", victim)
	down := time.Now()
	// A write to the dead OSD's PG with a short deadline fails with
	// the deadline: clearly, not silently.
	probe := names(true, 9)(0)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	err := io.WriteFull(ctx, probe, payload(probe, 4096))
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("write to a PG whose only OSD is down: %v, want context.DeadlineExceeded", err)
	}
	time.Sleep(4 * time.Second)
	up := time.Now()
	nv := wl.ackedBetween(down, up, isVictim)
	no := wl.ackedBetween(down, up, func(oid string) bool { return !isVictim(oid) })
	t.Logf("while osd.%d was down: %d writes to its PGs, %d to the others acknowledged (%d before the kill)", victim, nv, no, before)
	if nv != 0 {
		t.Errorf("%d writes to PGs of the dead osd.%d were acknowledged", nv, victim)
	}
	if no == 0 {
		t.Errorf("writes to the other OSDs stopped too")
	}
	fe.mustOSD(t, "start", victim)
	restarted := time.Now()
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()
	// The writes that waited for the victim completed after its
	// restart (same reqid, so a write the OSD had already applied
	// is not applied twice).
	after := wl.ackedBetween(restarted, time.Now(), isVictim)
	t.Logf("%d writes to its PGs acknowledged after the restart", after)
	if after == 0 {
		t.Errorf("no write to osd.%d's PGs completed after its restart", victim)
	}
	for oid, err := range wl.failed {
		t.Errorf("write %s failed: %v", oid, err)
	}
	wl.verify(t, io, size)
	if st, err := io.Stat(tctx(t, time.Minute), probe); err == nil {
		t.Logf("the timed-out probe write was applied after all (%d bytes): reported as failed, not lost", st.Size)
	}
}

// TestFaultPoolQuota: a pool over its max_objects quota refuses writes
// with EDQUOT (matching ErrPoolFull and ENOSPC) at once, and deletes still
// work; removing the quota makes writes work again.
func TestFaultPoolQuota(t *testing.T) {
	forFaultClusters(t, func(t *testing.T, fe *faultEnv) {
		io := fe.faultPool(t, "quota", 3, 2)
		ctx := tctx(t, 3*time.Minute)
		fe.run(t, nil, "ceph", "osd", "pool", "set-quota", io.PoolName(), "max_objects", "4")
		var werr error
		i := 0
		for ; ; i++ {
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			werr = io.WriteFull(wctx, fmt.Sprintf("q-%d", i), []byte("quota"))
			cancel()
			if werr != nil {
				break
			}
			if i >= 4 {
				// Over the quota: the monitors flag the pool once the PG
				// stats reach them.
				select {
				case <-ctx.Done():
					t.Fatal("the pool never hit its quota")
				case <-time.After(500 * time.Millisecond):
				}
			}
		}
		t.Logf("write %d: %v", i, werr)
		if !errors.Is(werr, syscall.EDQUOT) || !errors.Is(werr, rados.ErrPoolFull) || !errors.Is(werr, syscall.ENOSPC) {
			t.Fatalf("write over quota: %v, want EDQUOT / ErrPoolFull / ENOSPC", werr)
		}
		// Now that the flag is known, a write fails without waiting at all:
		// a context that is never cancelled must not matter.
		werr = io.WriteFull(context.Background(), "q-more", []byte("x"))
		if !errors.Is(werr, syscall.EDQUOT) {
			t.Fatalf("second write over quota: %v", werr)
		}
		if _, err := io.Read(ctx, "q-0", 0, 16); err != nil {
			t.Fatalf("read in a pool over quota: %v", err)
		}
		rm := rados.NewWriteOp()
		rm.SetFullTry()
		rm.Remove()
		if err := rm.Operate(ctx, io, "q-0"); err != nil {
			t.Fatalf("delete in a pool over quota: %v", err)
		}
		fe.run(t, nil, "ceph", "osd", "pool", "set-quota", io.PoolName(), "max_objects", "0")
		for {
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			werr = io.WriteFull(wctx, "q-after", []byte("x"))
			cancel()
			if werr == nil {
				break
			}
			if !errors.Is(werr, syscall.EDQUOT) || ctx.Err() != nil {
				t.Fatalf("write after the quota was lifted: %v", werr)
			}
			time.Sleep(500 * time.Millisecond)
		}
	})
}

// TestFaultClusterFull: OSDs over the full ratio make the monitors flag
// the pools FULL; writes then fail at once with ENOSPC (ErrPoolFull)
// while reads work. The ratios are restored afterwards.
func TestFaultClusterFull(t *testing.T) {
	forFaultClusters(t, func(t *testing.T, fe *faultEnv) {
		io := fe.faultPool(t, "full", 3, 2)
		ctx := tctx(t, 3*time.Minute)
		if err := io.WriteFull(ctx, "before", []byte("before full")); err != nil {
			t.Fatal(err)
		}
		restore := func() {
			// Order matters: nearfull <= backfillfull <= full at every step.
			fe.run(t, nil, "ceph", "osd", "set-full-ratio", "0.95")
			fe.run(t, nil, "ceph", "osd", "set-backfillfull-ratio", "0.90")
			fe.run(t, nil, "ceph", "osd", "set-nearfull-ratio", "0.85")
		}
		t.Cleanup(restore)
		// A fresh bluestore OSD already uses about 0.26% (reef,
		// tentacle) to a few percent (pacific) of its 10 GiB device.
		fe.run(t, nil, "ceph", "osd", "set-nearfull-ratio", "0.0005")
		fe.run(t, nil, "ceph", "osd", "set-backfillfull-ratio", "0.0008")
		fe.run(t, nil, "ceph", "osd", "set-full-ratio", "0.001")
		var werr error
		for i := 0; ; i++ {
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			werr = io.WriteFull(wctx, fmt.Sprintf("f-%d", i), []byte("fill"))
			cancel()
			if werr != nil || ctx.Err() != nil {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		t.Logf("write on a full cluster: %v", werr)
		if !errors.Is(werr, syscall.ENOSPC) || !errors.Is(werr, rados.ErrPoolFull) {
			t.Fatalf("write on a full cluster: %v, want ENOSPC / ErrPoolFull", werr)
		}
		if _, err := io.Read(ctx, "before", 0, 64); err != nil {
			t.Fatalf("read on a full cluster: %v", err)
		}
		restore()
		for {
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			werr = io.WriteFull(wctx, "after", []byte("x"))
			cancel()
			if werr == nil {
				break
			}
			if !errors.Is(werr, syscall.ENOSPC) || ctx.Err() != nil {
				t.Fatalf("write after the full ratio was restored: %v", werr)
			}
			time.Sleep(500 * time.Millisecond)
		}
	})
}

// TestFaultPause: `ceph osd pause` sets pauserd/pausewr. As with librados,
// reads and writes then wait, unsent, for a map without the flags: one
// with a short deadline fails with an error matching ErrPaused (and
// EAGAIN, and the deadline), while a write and a read issued during the
// pause complete once `ceph osd unpause` publishes the next map.
func TestFaultPause(t *testing.T) {
	forFaultClusters(t, func(t *testing.T, fe *faultEnv) {
		io := fe.faultPool(t, "pause", 3, 2)
		ctx := tctx(t, 2*time.Minute)
		if err := io.WriteFull(ctx, "p", []byte("paused?")); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { fe.run(t, nil, "ceph", "osd", "unpause") })
		fe.run(t, nil, "ceph", "osd", "pause")
		if err := fe.conn.WaitForLatestOSDMap(ctx); err != nil {
			t.Fatal(err)
		}
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		werr := io.WriteFull(sctx, "p", []byte("x"))
		_, rerr := io.Read(sctx, "p", 0, 16)
		cancel()
		t.Logf("write with a 2s deadline: %v", werr)
		for what, err := range map[string]error{"write": werr, "read": rerr} {
			if !errors.Is(err, rados.ErrPaused) || !errors.Is(err, osd.ErrPaused) || !errors.Is(err, syscall.EAGAIN) ||
				!errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "paused") {
				t.Errorf("%s with a 2s deadline on a paused cluster: %v, want ErrPaused and the deadline", what, err)
			}
		}

		// Issued while paused, completed after unpause.
		wdone := make(chan error, 1)
		go func() { wdone <- io.WriteFull(ctx, "p", []byte("written while paused")) }()
		type readResult struct {
			b   []byte
			err error
		}
		rdone := make(chan readResult, 1)
		go func() {
			b, err := io.Read(ctx, "other", 0, 16)
			rdone <- readResult{b, err}
		}()
		// Both are queued before the unpause: the client holds them.
		for fe.conn.OSDClient().Stats().InFlight < 2 {
			if ctx.Err() != nil {
				t.Fatalf("ops not queued: %+v", fe.conn.OSDClient().Stats())
			}
			time.Sleep(10 * time.Millisecond)
		}
		select {
		case err := <-wdone:
			t.Fatalf("write completed while paused: %v", err)
		case r := <-rdone:
			t.Fatalf("read completed while paused: %q %v", r.b, r.err)
		default:
		}
		fe.run(t, nil, "ceph", "osd", "unpause")
		if err := <-wdone; err != nil {
			t.Fatalf("write issued while paused: %v", err)
		}
		if r := <-rdone; !errors.Is(r.err, syscall.ENOENT) {
			t.Fatalf("read of a missing object issued while paused: %q %v, want ENOENT", r.b, r.err)
		}
		b, err := io.Read(ctx, "p", 0, 64)
		if err != nil || string(b) != "written while paused" {
			t.Fatalf("read after unpause: %q %v", b, err)
		}
	})
}

// TestFaultMapCatchUpFromOSDs: OSDs send at most 3 maps per MOSDMap
// (osd_map_message_max) and share a map only once. With the monitors'
// batches ignored, the client learns the first 3 of 10 new epochs from an
// OSD alone; the OSD's batch says it has newer ones, so the client asks the
// monitors for the rest and, once their batches are listened to again,
// catches up across batches without any new epoch being published.
func TestFaultMapCatchUpFromOSDs(t *testing.T) {
	forFaultClusters(t, func(t *testing.T, fe *faultEnv) {
		fe.run(t, nil, "ceph", "config", "set", "osd", "osd_map_message_max", "3")
		t.Cleanup(func() { fe.run(t, nil, "ceph", "config", "rm", "osd", "osd_map_message_max") })
		ctx := tctx(t, 2*time.Minute)
		c, io := fe.conn, fe.io
		oid := oname("catchup")
		if err := io.WriteFull(ctx, oid, []byte("catch up")); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { io.Remove(context.Background(), oid) })
		if err := c.WaitForLatestOSDMap(ctx); err != nil {
			t.Fatal(err)
		}
		rados.IgnoreMonitorMaps(c, true)
		defer rados.IgnoreMonitorMaps(c, false)
		before := c.OSDMap().Epoch
		fromOSDs := rados.EpochsFromOSDs(c)
		newest := bumpEpochs(t, ctx, c, 10)
		readUntil := func(epoch uint32, what string) {
			for c.OSDMap().Epoch < epoch {
				if ctx.Err() != nil {
					t.Fatalf("%s: at epoch %d, want %d (monitors at %d)", what, c.OSDMap().Epoch, epoch, newest)
				}
				if _, err := io.Read(ctx, oid, 0, 64); err != nil {
					t.Fatal(err)
				}
				_ = c.WaitForOSDMap(shortCtx(ctx, 200*time.Millisecond), c.OSDMap().Epoch+1)
			}
		}
		readUntil(before+3, "first OSD batch")
		got := rados.EpochsFromOSDs(c) - fromOSDs
		if got < 3 {
			t.Fatalf("%d epochs from OSDs, want >= 3", got)
		}
		mid := c.OSDMap().Epoch
		rados.IgnoreMonitorMaps(c, false)
		readUntil(newest, "catch-up through the monitors")
		t.Logf("epochs %d -> %d from one OSD batch (%d epochs), then -> %d from the monitors on request",
			before, mid, got, newest)
		if n := rados.MapDecodeErrors(c); n != 0 {
			t.Errorf("%d map batches could not be used", n)
		}
	})
}
