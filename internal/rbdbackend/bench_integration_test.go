package rbdbackend

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"path/filepath"
	"runtime/metrics"
	"syscall"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/internal/cephtest"
	"github.com/csi-gorbd/csi-gorbd/nbd"
	"github.com/csi-gorbd/csi-gorbd/nbd/memory"
	"github.com/csi-gorbd/csi-gorbd/rados"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// BenchmarkIntegrationNBD counts what one NBD request costs in this
// process, from the request on the socket to the reply on it, with the
// OSD's time left out of the picture: the NBD server (ServeTransmission)
// over a unix socket, a pipelined client at QD16 doing 4 KiB random reads
// or writes, and as the backend either the memory device (the NBD layer
// alone) or an rbd image on the pacific cluster with only layering or
// with rbd's default features (exclusive lock, object map, fast diff,
// deep flatten). Besides allocs/op (-benchmem: the whole process, the
// client's few included) it reports
//
//	cpu-µs/op   user+system CPU of the process (client included)
//	switches/op goroutines leaving the CPU (parking or preempted), from
//	            the runtime's sampled /sched/latencies histogram (1 in 8)
//	mutex-µs/op time goroutines waited for sync.Mutex/RWMutex
//
// These counts hardly move with the machine's load, unlike IOPS; see
// docs/performance.md for the budget they add up to.
//
//	GORBD_REQUIRE_CLUSTERS= go test -run XXX -bench IntegrationNBD -benchmem ./internal/rbdbackend/
func BenchmarkIntegrationNBD(b *testing.B) {
	const size = 64 << 20
	backends := []struct {
		name     string
		features uint64 // 0: the memory device
	}{
		{"memory", 0},
		{"layering", rbd.FeatureLayering},
		{"default", rbd.FeaturesDefault},
	}
	for _, be := range backends {
		for _, rw := range []string{"randread", "randwrite"} {
			b.Run(be.name+"/"+rw, func(b *testing.B) {
				var backend nbd.Backend
				if be.features == 0 {
					backend = memory.New(size)
				} else {
					backend = benchImage(b, be.features, size)
				}
				benchNBD(b, backend, size, rw == "randwrite")
			})
		}
	}
}

// benchImage creates, opens and fills an image on pacific (removed at the
// end).
func benchImage(b *testing.B, features uint64, size uint64) *Backend {
	cl := cephtest.Need(b, "pacific")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := rados.Connect(ctx, rados.Config{ConfFile: cl.Conf(), Keyring: cl.Keyring()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	pool := cl.Get("CEPH_POOL")
	io, err := conn.OpenIOContext(ctx, pool)
	if err != nil {
		b.Fatal(err)
	}
	name := fmt.Sprintf("perfbench-%x", rand.Uint64())
	if _, err := rbd.Create(ctx, io, name, size, &rbd.CreateOptions{Features: features}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		rbd.Remove(ctx, io, name)
	})
	be, err := Open(ctx, conn, pool+"/"+name, false)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { be.Close(context.Background()) })
	buf := make([]byte, 4<<20)
	for off := uint64(0); off < size; off += uint64(len(buf)) {
		if err := be.WriteAt(ctx, buf, int64(off), false); err != nil {
			b.Fatal(err)
		}
	}
	return be
}

// benchNBD serves backend on a unix socket and runs b.N requests of 4 KiB
// at random offsets, 16 in flight.
func benchNBD(b *testing.B, backend nbd.Backend, size uint64, write bool) {
	const bs, qd = 4096, 16
	path := filepath.Join(b.TempDir(), "s")
	l, err := net.Listen("unix", path)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() {
		defer close(served)
		c, err := l.Accept()
		l.Close()
		if err == nil {
			nbd.ServeTransmission(ctx, c, &nbd.Export{Backend: backend}, nil)
		}
	}()
	defer func() { cancel(); <-served }()
	c, err := net.Dial("unix", path)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()

	n := b.N
	slots := make(chan struct{}, qd)
	done := make(chan error, 1)
	go func() { // reply reader
		br := bufio.NewReaderSize(c, 64<<10)
		var h [16]byte
		for i := 0; i < n; i++ {
			if _, err := io.ReadFull(br, h[:]); err != nil {
				done <- err
				return
			}
			if e := binary.BigEndian.Uint32(h[4:]); e != 0 {
				done <- fmt.Errorf("nbd error %d", e)
				return
			}
			if !write {
				if _, err := br.Discard(bs); err != nil {
					done <- err
					return
				}
			}
			<-slots
		}
		done <- nil
	}()
	var req [28]byte
	binary.BigEndian.PutUint32(req[0:], 0x25609513)
	typ := uint16(0) // NBD_CMD_READ
	if write {
		typ = 1
	}
	binary.BigEndian.PutUint16(req[6:], typ)
	binary.BigEndian.PutUint32(req[24:], bs)
	payload := make([]byte, bs)
	blocks := size / bs
	rng := rand.New(rand.NewPCG(1, 2))
	b.SetBytes(bs)
	b.ReportAllocs()
	m0 := readCounters()
	b.ResetTimer()
	for i := 0; i < n; i++ {
		slots <- struct{}{}
		binary.BigEndian.PutUint64(req[8:], uint64(i))
		binary.BigEndian.PutUint64(req[16:], rng.Uint64N(blocks)*bs)
		if write {
			nb := net.Buffers{req[:], payload}
			if _, err := nb.WriteTo(c); err != nil {
				b.Fatal(err)
			}
		} else if _, err := c.Write(req[:]); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	m1 := readCounters()
	ops := float64(n)
	b.ReportMetric((m1.cpu-m0.cpu).Seconds()*1e6/ops, "cpu-µs/op")
	b.ReportMetric(float64(m1.switches-m0.switches)*8/ops, "switches/op")
	b.ReportMetric((m1.mutex-m0.mutex)*1e6/ops, "mutex-µs/op")
}

type counters struct {
	cpu      time.Duration
	switches uint64
	mutex    float64
}

func readCounters() counters {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	s := []metrics.Sample{{Name: "/sched/latencies:seconds"}, {Name: "/sync/mutex/wait/total:seconds"}}
	metrics.Read(s)
	var c counters
	c.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	for _, n := range s[0].Value.Float64Histogram().Counts {
		c.switches += n
	}
	c.mutex = s[1].Value.Float64()
	return c
}
