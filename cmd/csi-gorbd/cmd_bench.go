package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/csi-gorbd/csi-gorbd/rados"
)

// benchMetaObject records the last write run kept with --no-cleanup, so
// seq and rand know what to read (like rados bench's
// benchmark_last_metadata, under our own name and in JSON).
const benchMetaObject = "csi-gorbd_bench_last_metadata"

type benchMeta struct {
	Prefix     string `json:"prefix"`
	Objects    int64  `json:"objects"`
	ObjectSize int    `json:"object_size"`
}

type benchOpts struct {
	pool      string
	blockSize int
	threads   int
	noCleanup bool
	maxObjs   int64
	noHints   bool
	writeFull bool
}

func newBenchCmd(g *cephFlags) *cobra.Command {
	var o benchOpts
	c := &cobra.Command{
		Use:   "bench SECONDS write|seq|rand|cleanup -p POOL",
		Short: "Benchmark object writes and reads, like `rados bench`",
		Long: `Write objects of -b bytes with -t operations in flight for SECONDS, or read
back (seq: in order, once; rand: random objects) the objects a previous
write run left with --no-cleanup. The summary has rados bench's fields.
"cleanup" removes the objects a --no-cleanup run left (SECONDS is ignored).`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			secs, err := time.ParseDuration(args[0] + "s")
			if err != nil || (secs <= 0 && args[1] != "cleanup") {
				return fmt.Errorf("bad SECONDS %q", args[0])
			}
			if o.pool == "" {
				return errors.New("a pool is required (-p POOL)")
			}
			if o.threads < 1 || o.blockSize < 1 {
				return errors.New("-t and -b must be positive")
			}
			conn, io, err := g.openPool(cmd, o.pool)
			if err != nil {
				return err
			}
			defer conn.Close()
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			stop, err := startBenchProfiles()
			if err != nil {
				return err
			}
			defer stop()
			switch args[1] {
			case "write":
				return benchWrite(ctx, out, io, secs, o)
			case "seq", "rand":
				return benchRead(ctx, out, io, secs, o, args[1] == "rand")
			case "cleanup":
				return benchCleanupLast(ctx, out, io, o)
			}
			return fmt.Errorf("unknown mode %q (write, seq or rand)", args[1])
		},
	}
	c.Flags().StringVarP(&o.pool, "pool", "p", "", "pool")
	c.Flags().IntVarP(&o.blockSize, "block-size", "b", 4<<20, "bytes per write (and object size)")
	c.Flags().IntVarP(&o.threads, "concurrent-ios", "t", 16, "operations in flight")
	c.Flags().BoolVar(&o.noCleanup, "no-cleanup", false, "keep the written objects (for seq/rand)")
	c.Flags().Int64Var(&o.maxObjs, "max-objects", 0, "stop writing after this many objects (0: no limit)")
	c.Flags().BoolVar(&o.noHints, "no-hints", false, "send no allocation hint with each write (as rados bench --no-hints)")
	c.Flags().BoolVar(&o.writeFull, "write-full", false, "send WRITEFULL instead of rados bench's SETALLOCHINT+WRITE")
	return c
}

// startBenchProfiles starts CPU, block and mutex profiling when
// GORBD_BENCH_PROFILE names a directory; the returned function writes
// cpu.pprof, block.pprof and mutex.pprof there (go tool pprof reads them).
func startBenchProfiles() (stop func(), err error) {
	dir := os.Getenv("GORBD_BENCH_PROFILE")
	if dir == "" {
		return func() {}, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.Create(filepath.Join(dir, "cpu.pprof"))
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	runtime.SetBlockProfileRate(10000) // one sample per 10µs blocked
	runtime.SetMutexProfileFraction(10)
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		for _, name := range []string{"block", "mutex"} {
			if pf, err := os.Create(filepath.Join(dir, name+".pprof")); err == nil {
				_ = pprof.Lookup(name).WriteTo(pf, 0)
				pf.Close()
			}
		}
	}, nil
}

// benchStats collects completions and latencies.
type benchStats struct {
	started, finished atomic.Int64
	mu                sync.Mutex
	lats              []float64 // seconds
	lastLat           float64
}

func (s *benchStats) done(lat time.Duration) {
	s.finished.Add(1)
	l := lat.Seconds()
	s.mu.Lock()
	s.lats = append(s.lats, l)
	s.lastLat = l
	s.mu.Unlock()
}

// run drives threads workers calling op(i) with increasing i until
// deadline, next returns false or an op fails; it prints rados bench's
// per-second lines and returns the per-second samples of completed ops.
func (s *benchStats) run(ctx context.Context, w io.Writer, threads int, secs time.Duration, size int,
	next func() (int64, bool), op func(context.Context, int64) error) (elapsed time.Duration, perSec []float64, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	deadline := start.Add(secs)
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	for t := 0; t < threads; t++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				i, ok := next()
				if !ok {
					return
				}
				s.started.Add(1)
				t0 := time.Now()
				if err := op(ctx, i); err != nil {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
				s.done(time.Since(t0))
			}
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	fmt.Fprintln(w, "  sec Cur ops   started  finished  avg MB/s  cur MB/s last lat(s)  avg lat(s)")
	fmt.Fprintf(w, "%5d %7d %9d %9d %9d %9d %10s %11d\n", 0, threads, threads, 0, 0, 0, "-", 0)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var prev int64
	for sec := 1; ; sec++ {
		select {
		case <-finished:
			elapsed = time.Since(start)
			return elapsed, perSec, firstErr
		case <-tick.C:
		}
		fin := s.finished.Load()
		cur := fin - prev
		prev = fin
		perSec = append(perSec, float64(cur))
		el := time.Since(start).Seconds()
		s.mu.Lock()
		last := s.lastLat
		avg := mean(s.lats)
		s.mu.Unlock()
		fmt.Fprintf(w, "%5d %7d %9d %9d %9.6g %9.6g %10.6g %11.6g\n", sec, s.started.Load()-fin, s.started.Load(), fin,
			float64(fin)*float64(size)/el/(1<<20), float64(cur)*float64(size)/(1<<20), last, avg)
	}
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// stddev is the sample standard deviation (0 for fewer than 2 values),
// as rados bench computes it.
func stddev(v []float64) float64 {
	if len(v) < 2 {
		return 0
	}
	m := mean(v)
	var s float64
	for _, x := range v {
		s += (x - m) * (x - m)
	}
	return math.Sqrt(s / float64(len(v)-1))
}

func minMax(v []float64) (float64, float64) {
	if len(v) == 0 {
		return 0, 0
	}
	lo, hi := v[0], v[0]
	for _, x := range v {
		lo, hi = math.Min(lo, x), math.Max(hi, x)
	}
	return lo, hi
}

func benchPrefix() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("benchmark_data_%s_%d", host, os.Getpid())
}

func benchObj(prefix string, i int64) string { return fmt.Sprintf("%s_object%d", prefix, i) }

func benchWrite(ctx context.Context, w io.Writer, ioc *rados.IOContext, secs time.Duration, o benchOpts) error {
	prefix := benchPrefix()
	fmt.Fprintf(w, "Maintaining %d concurrent writes of %d bytes to objects of size %d for up to %d seconds or %d objects\n",
		o.threads, o.blockSize, o.blockSize, int(secs.Seconds()), o.maxObjs)
	fmt.Fprintf(w, "Object prefix: %s\n", prefix)
	data := make([]byte, o.blockSize)
	for i := range data {
		data[i] = byte(rand.Uint32())
	}
	var n atomic.Int64
	var st benchStats
	el, perSec, err := st.run(ctx, w, o.threads, secs, o.blockSize,
		func() (int64, bool) {
			i := n.Add(1) - 1
			return i, o.maxObjs <= 0 || i < o.maxObjs
		},
		func(ctx context.Context, i int64) error { return benchWriteOne(ctx, ioc, benchObj(prefix, i), data, o) })
	if err != nil {
		return err
	}
	fin := st.finished.Load()
	t := el.Seconds()
	mb := float64(o.blockSize) / (1 << 20)
	bw := make([]float64, len(perSec))
	for i, v := range perSec {
		bw[i] = v * mb
	}
	minBW, maxBW := minMax(bw)
	minI, maxI := minMax(perSec)
	minL, maxL := minMax(st.lats)
	fmt.Fprintf(w, "Total time run:         %.6g\n", t)
	fmt.Fprintf(w, "Total writes made:      %d\n", fin)
	fmt.Fprintf(w, "Write size:             %d\n", o.blockSize)
	fmt.Fprintf(w, "Object size:            %d\n", o.blockSize)
	fmt.Fprintf(w, "Bandwidth (MB/sec):     %.6g\n", float64(fin)*mb/t)
	fmt.Fprintf(w, "Stddev Bandwidth:       %.6g\n", stddev(bw))
	fmt.Fprintf(w, "Max bandwidth (MB/sec): %.6g\n", maxBW)
	fmt.Fprintf(w, "Min bandwidth (MB/sec): %.6g\n", minBW)
	fmt.Fprintf(w, "Average IOPS:           %d\n", int64(float64(fin)/t))
	fmt.Fprintf(w, "Stddev IOPS:            %.6g\n", stddev(perSec))
	fmt.Fprintf(w, "Max IOPS:               %d\n", int64(maxI))
	fmt.Fprintf(w, "Min IOPS:               %d\n", int64(minI))
	fmt.Fprintf(w, "Average Latency(s):     %.6g\n", mean(st.lats))
	fmt.Fprintf(w, "Stddev Latency(s):      %.6g\n", stddev(st.lats))
	fmt.Fprintf(w, "Max latency(s):         %.6g\n", maxL)
	fmt.Fprintf(w, "Min latency(s):         %.6g\n", minL)

	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
	defer cancel()
	if o.noCleanup {
		meta, _ := json.Marshal(benchMeta{Prefix: prefix, Objects: fin, ObjectSize: o.blockSize})
		return ioc.WriteFull(cctx, benchMetaObject, meta)
	}
	fmt.Fprintln(w, "Cleaning up (deleting benchmark objects)")
	if err := benchCleanup(cctx, ioc, prefix, n.Load(), o.threads); err != nil {
		return err
	}
	fmt.Fprintf(w, "Removed %d objects\n", fin)
	return nil
}

// benchWriteOne writes one whole object the way rados bench does
// (obj_bencher.cc via RadosBencher::aio_write): an allocation hint (object
// and write size, sequential write/read, append-only, immutable) and a
// WRITE at offset 0; --no-hints drops the hint, --write-full sends a
// WRITEFULL instead.
func benchWriteOne(ctx context.Context, ioc *rados.IOContext, oid string, data []byte, o benchOpts) error {
	op := rados.NewWriteOp()
	if !o.noHints {
		n := uint64(len(data))
		op.SetAllocHint(n, n, rados.AllocHintSequentialWrite|rados.AllocHintSequentialRead|
			rados.AllocHintAppendOnly|rados.AllocHintImmutable)
	}
	if o.writeFull {
		op.WriteFull(data)
	} else {
		op.Write(data, 0)
	}
	return op.Operate(ctx, ioc, oid)
}

// benchCleanup removes objects 0..n-1 (missing ones are fine).
func benchCleanup(ctx context.Context, ioc *rados.IOContext, prefix string, n int64, threads int) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for t := 0; t < threads; t++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < n; i = next.Add(1) - 1 {
				if err := ioc.Remove(ctx, benchObj(prefix, i)); err != nil && !errors.Is(err, syscall.ENOENT) {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// readBenchMeta loads the record of the last --no-cleanup write run.
func readBenchMeta(ctx context.Context, ioc *rados.IOContext) (*benchMeta, error) {
	raw, err := ioc.Read(ctx, benchMetaObject, 0, 0)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return nil, errors.New("no benchmark objects: run `bench SECONDS write --no-cleanup` first")
		}
		return nil, err
	}
	var meta benchMeta
	if err := json.Unmarshal(raw, &meta); err != nil || meta.Objects < 0 || meta.ObjectSize <= 0 {
		return nil, fmt.Errorf("bad %s object: %q", benchMetaObject, raw)
	}
	return &meta, nil
}

func benchCleanupLast(ctx context.Context, w io.Writer, ioc *rados.IOContext, o benchOpts) error {
	meta, err := readBenchMeta(ctx, ioc)
	if err != nil {
		return err
	}
	if err := benchCleanup(ctx, ioc, meta.Prefix, meta.Objects, o.threads); err != nil {
		return err
	}
	if err := ioc.Remove(ctx, benchMetaObject); err != nil {
		return err
	}
	fmt.Fprintf(w, "Removed %d objects\n", meta.Objects)
	return nil
}

func benchRead(ctx context.Context, w io.Writer, ioc *rados.IOContext, secs time.Duration, o benchOpts, random bool) error {
	meta, err := readBenchMeta(ctx, ioc)
	if err != nil {
		return err
	}
	if meta.Objects == 0 {
		return errors.New("the last write run made no objects")
	}
	var n atomic.Int64
	next := func() (int64, bool) {
		i := n.Add(1) - 1
		return i, i < meta.Objects
	}
	if random {
		next = func() (int64, bool) { return rand.Int64N(meta.Objects), true }
	}
	var st benchStats
	el, perSec, err := st.run(ctx, w, o.threads, secs, meta.ObjectSize, next,
		func(ctx context.Context, i int64) error {
			b, err := ioc.Read(ctx, benchObj(meta.Prefix, i), 0, uint64(meta.ObjectSize))
			if err == nil && len(b) != meta.ObjectSize {
				err = fmt.Errorf("object %d: read %d bytes, want %d", i, len(b), meta.ObjectSize)
			}
			return err
		})
	if err != nil {
		return err
	}
	fin := st.finished.Load()
	t := el.Seconds()
	minI, maxI := minMax(perSec)
	minL, maxL := minMax(st.lats)
	fmt.Fprintf(w, "Total time run:       %.6g\n", t)
	fmt.Fprintf(w, "Total reads made:     %d\n", fin)
	fmt.Fprintf(w, "Read size:            %d\n", meta.ObjectSize)
	fmt.Fprintf(w, "Object size:          %d\n", meta.ObjectSize)
	fmt.Fprintf(w, "Bandwidth (MB/sec):   %.6g\n", float64(fin)*float64(meta.ObjectSize)/(1<<20)/t)
	fmt.Fprintf(w, "Average IOPS:         %d\n", int64(float64(fin)/t))
	fmt.Fprintf(w, "Stddev IOPS:          %.6g\n", stddev(perSec))
	fmt.Fprintf(w, "Max IOPS:             %d\n", int64(maxI))
	fmt.Fprintf(w, "Min IOPS:             %d\n", int64(minI))
	fmt.Fprintf(w, "Average Latency(s):   %.6g\n", mean(st.lats))
	fmt.Fprintf(w, "Max latency(s):       %.6g\n", maxL)
	fmt.Fprintf(w, "Min latency(s):       %.6g\n", minL)
	return nil
}
