package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// `csi-gorbd rbd bench`: rbd bench's workload and output on package rbd.
// io-threads goroutines each keep one I/O in flight until io-total bytes
// are done; a line per second shows the last second's rate and a final
// line the totals, in rbd's format.

type rbdBenchOpts struct {
	ioType  string
	ioSize  string
	threads int
	total   string
	pattern string
	readMix int
}

func (r *rbdCLI) benchCmd() *cobra.Command {
	var o rbdBenchOpts
	c := &cobra.Command{
		Use: "bench [POOL/]IMAGE --io-type read|write|readwrite|rw", Short: "Simple I/O benchmark (like rbd bench)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := parseImageSpec(args[0], r.pool, snapForbidden); err != nil {
				return err
			}
			reads, writes, err := o.kinds()
			if err != nil {
				return err
			}
			ioSize, total, err := o.sizes()
			if err != nil {
				return err
			}
			mode, mix := openRead, 100
			switch {
			case reads && writes:
				mode, mix = openWrite, o.readMix
			case writes:
				mode, mix = openWrite, -1 // all writes
			}
			return r.withImage(cmd, args[0], snapForbidden, mode, func(ctx context.Context, _ *rbdSession, _ imageSpec, img *rbd.Image) error {
				size := img.Size()
				if size < ioSize {
					return fmt.Errorf("image size %d is smaller than --io-size %d", size, ioSize)
				}
				typ := o.ioType
				if reads && writes {
					typ = fmt.Sprintf("readwrite read:write=%d:%d", o.readMix, 100-o.readMix)
				}
				pattern := "sequential"
				if o.pattern == "rand" {
					pattern = "random"
				}
				w := cmd.OutOrStdout()
				fmt.Fprintf(w, "bench  type %s io_size %d io_threads %d bytes %d pattern %s\n", typ, ioSize, o.threads, total, pattern)
				stop, err := startBenchProfiles() // GORBD_BENCH_PROFILE (cmd_bench.go)
				if err != nil {
					return err
				}
				defer stop()
				return runRBDBench(ctx, w, img, size, ioSize, total, o.threads, o.pattern == "rand", mix)
			})
		},
	}
	f := c.Flags()
	f.StringVar(&o.ioType, "io-type", "", "read, write, or readwrite (rw)")
	f.StringVar(&o.ioSize, "io-size", "4096", "I/O size in B/K/M (bare number: bytes)")
	f.IntVar(&o.threads, "io-threads", 16, "I/Os in flight")
	f.StringVar(&o.total, "io-total", "1G", "total bytes to transfer")
	f.StringVar(&o.pattern, "io-pattern", "seq", "seq or rand")
	f.IntVar(&o.readMix, "rw-mix-read", 50, "percent of reads for readwrite")
	return c
}

// kinds says whether --io-type asks for reads, writes or both.
func (o *rbdBenchOpts) kinds() (reads, writes bool, err error) {
	switch o.ioType {
	case "read":
		return true, false, nil
	case "write":
		return false, true, nil
	case "readwrite", "rw":
		return true, true, nil
	case "":
		return false, false, fmt.Errorf("must specify --io-type")
	}
	return false, false, fmt.Errorf("invalid --io-type %q", o.ioType)
}

// sizes checks the size, total, thread and pattern options.
func (o *rbdBenchOpts) sizes() (ioSize, total uint64, err error) {
	ioSize, err = parseBytes(o.ioSize, 0)
	if err != nil || ioSize == 0 {
		return 0, 0, fmt.Errorf("invalid --io-size %q", o.ioSize)
	}
	total, err = parseBytes(o.total, 0)
	if err != nil {
		return 0, 0, fmt.Errorf("invalid --io-total %q", o.total)
	}
	if o.threads < 1 {
		return 0, 0, fmt.Errorf("--io-threads must be ≥ 1")
	}
	if o.pattern != "seq" && o.pattern != "rand" {
		return 0, 0, fmt.Errorf("invalid --io-pattern %q", o.pattern)
	}
	return ioSize, total, nil
}

// rbdBenchCounters accumulates completed I/Os.
type rbdBenchCounters struct {
	ops, bytes, readOps, readBytes, writeOps, writeBytes atomic.Uint64
}

// runRBDBench issues total/ioSize I/Os of ioSize bytes from threads
// goroutines; readMix is the percentage of reads (-1: writes only).
func runRBDBench(ctx context.Context, w io.Writer, img *rbd.Image, size, ioSize, total uint64, threads int, random bool, readMix int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	nOps := total / ioSize
	slots := size / ioSize
	var next atomic.Uint64
	var c rbdBenchCounters
	var errOnce sync.Once
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for t := 0; t < threads; t++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(start.UnixNano())))
			buf := make([]byte, ioSize)
			for i := range buf {
				buf[i] = byte(rng.Uint32())
			}
			// As rbd bench (tools/rbd/action/Bench.cc): each thread
			// streams from its own random start, wrapping at the end
			// of the image; rand picks every offset at random.
			off := rng.Uint64N(slots) * ioSize
			for ctx.Err() == nil {
				if next.Add(1) > nOps {
					return
				}
				if random {
					off = rng.Uint64N(slots) * ioSize
				} else if off += ioSize; off+ioSize > size {
					off = 0
				}
				read := readMix == 100 || (readMix >= 0 && int(rng.IntN(100)) < readMix)
				var err error
				if read {
					_, err = img.ReadAt(ctx, buf, off)
				} else {
					_, err = img.WriteAt(ctx, buf, off)
				}
				if err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
					return
				}
				c.ops.Add(1)
				c.bytes.Add(ioSize)
				if read {
					c.readOps.Add(1)
					c.readBytes.Add(ioSize)
				} else {
					c.writeOps.Add(1)
					c.writeBytes.Add(ioSize)
				}
			}
		}(uint64(t) + 1)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	fmt.Fprintln(w, "  SEC       OPS   OPS/SEC   BYTES/SEC")
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastOps, lastBytes uint64
	last := start
loop:
	for sec := 1; ; sec++ {
		select {
		case <-done:
			break loop
		case now := <-tick.C:
			ops, bytes := c.ops.Load(), c.bytes.Load()
			dt := now.Sub(last).Seconds()
			fmt.Fprintf(w, "%5d  %8d  %8s  %10s/s\n", sec, ops, rbdBenchFloat(float64(ops-lastOps)/dt), rbdBenchBytes(float64(bytes-lastBytes)/dt))
			lastOps, lastBytes, last = ops, bytes, now
		}
	}
	if firstErr != nil {
		return firstErr
	}
	el := time.Since(start).Seconds()
	ops := c.ops.Load()
	fmt.Fprintf(w, "elapsed: %d   ops: %d   ops/sec: %s   bytes/sec: %s/s\n", int(el+0.5), ops,
		rbdBenchFloat(float64(ops)/el), rbdBenchBytes(float64(c.bytes.Load())/el))
	if readMix >= 0 && readMix < 100 {
		fmt.Fprintf(w, "read_ops: %d   read_ops/sec: %s   read_bytes/sec: %s/s\n", c.readOps.Load(),
			rbdBenchFloat(float64(c.readOps.Load())/el), rbdBenchBytes(float64(c.readBytes.Load())/el))
		fmt.Fprintf(w, "write_ops: %d   write_ops/sec: %s   write_bytes/sec: %s/s\n", c.writeOps.Load(),
			rbdBenchFloat(float64(c.writeOps.Load())/el), rbdBenchBytes(float64(c.writeBytes.Load())/el))
	}
	return nil
}

// rbdBenchFloat prints like a C++ stream's default (6 significant digits).
func rbdBenchFloat(v float64) string {
	s := strconv.FormatFloat(v, 'g', 6, 64)
	if strings.Contains(s, "e") {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return s
}

// rbdBenchBytes prints a rate like rbd bench on Pacific: units of 1024,
// one decimal below 10 units, whole units above (9.8 MiB, 26 MiB).
func rbdBenchBytes(v float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i > 0 && v < 10 && v != float64(int(v)) {
		return fmt.Sprintf("%.1f %s", v, units[i])
	}
	return fmt.Sprintf("%d %s", int(v), units[i])
}
