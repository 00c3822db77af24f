package nbd

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/nbd/memory"
	"github.com/csi-gorbd/csi-gorbd/nbd/qos"
)

// benchTransmission drives a pipelined client at depth qd against the
// memory backend over a unix socket: half writes, half reads of bs bytes.
func benchTransmission(b *testing.B, bs, qd int) { benchExport(b, bs, qd, func(*Export) {}) }

// benchExport is benchTransmission with the export set up by setup (a
// limiter, an observer).
func benchExport(b *testing.B, bs, qd int, setup func(*Export)) {
	path := filepath.Join(b.TempDir(), "s")
	l, err := net.Listen("unix", path)
	if err != nil {
		b.Fatal(err)
	}
	const size = 256 << 20
	exp := &Export{Backend: memory.New(size)}
	setup(exp)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		c, err := l.Accept()
		l.Close()
		if err == nil {
			ServeTransmission(ctx, c, exp, nil)
		}
	}()
	c, err := net.Dial("unix", path)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()

	n := b.N
	done := make(chan error, 1)
	go func() { // reply reader
		br := bufio.NewReaderSize(c, 256<<10)
		var h [simpleReplySize]byte
		for i := 0; i < n; i++ {
			if _, err := io.ReadFull(br, h[:]); err != nil {
				done <- err
				return
			}
			if binary.BigEndian.Uint64(h[8:])&1 == 0 { // reads have even cookies
				if _, err := br.Discard(bs); err != nil {
					done <- err
					return
				}
			}
		}
		done <- nil
	}()
	b.SetBytes(int64(bs))
	b.ResetTimer()
	bw := bufio.NewWriterSize(c, 256<<10)
	payload := make([]byte, bs)
	var buf []byte
	blocks := uint64(size / bs)
	for i := 0; i < n; i++ {
		off := (uint64(i) * 7919 % blocks) * uint64(bs)
		typ := cmdRead
		if i&1 == 1 {
			typ = cmdWrite
		}
		buf = appendRequest(buf[:0], requestHeader{typ: typ, cookie: uint64(i), offset: off, length: uint32(bs)})
		bw.Write(buf)
		if typ == cmdWrite {
			bw.Write(payload)
		}
		if i%qd == qd-1 {
			bw.Flush()
		}
	}
	bw.Flush()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

func BenchmarkTransmission4K(b *testing.B) { benchTransmission(b, 4096, 16) }

// The cost of QoS and metrics on an unthrottled export: a limiter with no
// limits (a CSI volume without QoS), one with limits never reached (the
// lock and the clock on every request), and an observer that counts.
func BenchmarkTransmission4KLimiterUnlimited(b *testing.B) {
	benchExport(b, 4096, 16, func(e *Export) { e.Limiter = qos.New(qos.Limits{}) })
}

func BenchmarkTransmission4KLimiterUnreached(b *testing.B) {
	benchExport(b, 4096, 16, func(e *Export) {
		e.Limiter = qos.New(qos.Limits{IOPS: qos.Limit{Rate: 1 << 40}, BPS: qos.Limit{Rate: 1 << 60}})
	})
}

func BenchmarkTransmission4KObserver(b *testing.B) {
	benchExport(b, 4096, 16, func(e *Export) { e.Observer = &countingObserver{} })
}

// countingObserver counts with atomics, as the metrics do.
type countingObserver struct{ begun, ended, bytes, nanos atomic.Uint64 }

func (o *countingObserver) Begin(Op) { o.begun.Add(1) }
func (o *countingObserver) End(_ Op, n uint32, latency, _ time.Duration, _ Errno) {
	o.ended.Add(1)
	o.bytes.Add(uint64(n))
	o.nanos.Add(uint64(latency))
}
func BenchmarkTransmission1M(b *testing.B) { benchTransmission(b, 1<<20, 8) }
