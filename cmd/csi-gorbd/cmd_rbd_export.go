package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/spf13/cobra"

	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// `csi-gorbd rbd export|import`: raw image data streamed through a
// bounded pool of workers, one object-sized chunk each. Export reads
// chunks in parallel and writes them in order; import reads the input in
// order and writes the chunks in parallel, skipping all-zero chunks (the
// image starts out sparse). "-" is stdout/stdin.

// exportImage copies img (size bytes) to w with up to workers reads in flight.
func exportImage(ctx context.Context, img *rbd.Image, size, chunk uint64, workers int, w io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		buf []byte
		err error
	}
	queue := make(chan chan result, workers)
	go func() {
		defer close(queue)
		for off := uint64(0); off < size; off += chunk {
			n := min(chunk, size-off)
			ch := make(chan result, 1)
			select {
			case queue <- ch:
			case <-ctx.Done():
				return
			}
			go func(off, n uint64) {
				buf := make([]byte, n)
				_, err := img.ReadAt(ctx, buf, off)
				ch <- result{buf, err}
			}(off, n)
		}
	}()
	var werr error
	for ch := range queue {
		r := <-ch
		if werr != nil {
			continue
		}
		if r.err != nil {
			werr = r.err
			cancel()
			continue
		}
		if _, err := w.Write(r.buf); err != nil {
			werr = err
			cancel()
		}
	}
	return werr
}

// importImage writes r into img from offset 0 with up to workers writes in
// flight; it grows img when the input runs past its size (unknown-size
// input) and returns the number of bytes read.
func importImage(ctx context.Context, img *rbd.Image, r io.Reader, chunk uint64, workers int) (uint64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
			cancel()
		}
		mu.Unlock()
	}
	failed := func() error { mu.Lock(); defer mu.Unlock(); return firstErr }
	sem := make(chan struct{}, workers)
	var off uint64
	for failed() == nil {
		buf := make([]byte, chunk)
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if end := off + uint64(n); end > img.Size() {
				// Unknown length: grow ahead by a window of chunks.
				if rerr := img.Resize(ctx, end+chunk*uint64(workers)); rerr != nil {
					fail(rerr)
					break
				}
			}
			if !allZero(buf[:n]) {
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
				}
				if ctx.Err() != nil {
					break
				}
				wg.Add(1)
				go func(p []byte, at uint64) {
					defer wg.Done()
					defer func() { <-sem }()
					if _, err := img.WriteAt(ctx, p, at); err != nil {
						fail(err)
					}
				}(buf[:n], off)
			}
			off += uint64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			fail(err)
			break
		}
	}
	wg.Wait()
	if err := failed(); err != nil {
		return off, err
	}
	if img.Size() != off {
		if err := img.Resize(ctx, off); err != nil {
			return off, err
		}
	}
	return off, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func (r *rbdCLI) exportCmd() *cobra.Command {
	var workers int
	export := &cobra.Command{
		Use: "export [POOL/]IMAGE[@SNAP] PATH|-", Short: "Export an image's data to a file or stdout", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := parseImageSpec(args[0], r.pool, snapOptional); err != nil {
				return err
			}
			if workers < 1 {
				return errors.New("--workers must be ≥ 1")
			}
			return r.withImage(cmd, args[0], snapOptional, openAtSnap, func(ctx context.Context, _ *rbdSession, _ imageSpec, img *rbd.Image) error {
				st := img.Stat()
				return writeOutput(cmd.OutOrStdout(), args[1], func(w io.Writer) error {
					return exportImage(ctx, img, st.Size, st.ObjectSize, workers, w)
				})
			})
		},
	}
	export.Flags().IntVar(&workers, "workers", 10, "object-sized reads in flight (rbd_concurrent_management_ops)")
	return export
}

// writeOutput runs fn on stdout ("-") or on a new file at path, which is
// removed again when fn (or closing it) fails.
func writeOutput(stdout io.Writer, path string, fn func(io.Writer) error) (err error) {
	if path == "-" {
		return fn(stdout)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(path)
		}
	}()
	return fn(f)
}

func (r *rbdCLI) importCmd() *cobra.Command {
	var workers int
	var cf createFlags
	imp := &cobra.Command{
		Use: "import PATH|- [[POOL/]IMAGE]", Short: "Create an image from a file or stdin", Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			dest := filepath.Base(args[0])
			if len(args) == 2 {
				dest = args[1]
			} else if args[0] == "-" {
				return errors.New("destination image name was not specified")
			}
			spec, err := parseImageSpec(dest, r.pool, snapForbidden)
			if err != nil {
				return err
			}
			if workers < 1 {
				return errors.New("--workers must be ≥ 1")
			}
			in, size, err := openInput(cmd.InOrStdin(), args[0])
			if err != nil {
				return err
			}
			defer in.Close()
			return r.withPool(cmd, spec.Pool, func(ctx context.Context, s *rbdSession) error {
				o, err := cf.options(ctx, s.conn, rbd.FeaturesDefault)
				if err != nil {
					return err
				}
				return importNew(ctx, s, spec.Image, size, o, in, workers)
			})
		},
	}
	imp.Flags().IntVar(&workers, "workers", 10, "object-sized writes in flight (rbd_concurrent_management_ops)")
	cf.add(imp)
	return imp
}

// openInput opens stdin ("-") or the file at path; size is the file's
// size when it is a regular file, else 0 (unknown).
func openInput(stdin io.Reader, path string) (io.ReadCloser, uint64, error) {
	if path == "-" {
		return io.NopCloser(stdin), 0, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	var size uint64
	if fi.Mode().IsRegular() {
		size = uint64(fi.Size())
	}
	return f, size, nil
}

// importNew creates the image name and fills it from r; a failed import
// removes the partial image.
func importNew(ctx context.Context, s *rbdSession, name string, size uint64, o *rbd.CreateOptions, r io.Reader, workers int) error {
	if _, err := rbd.Create(ctx, s.io, name, size, o); err != nil {
		return err
	}
	img, err := rbd.Open(ctx, s.io, name, nil)
	if err == nil {
		_, err = importImage(ctx, img, r, img.Stat().ObjectSize, workers)
		if cerr := img.Close(ctx); err == nil {
			err = cerr
		}
	}
	if err != nil {
		if rerr := rbd.Remove(context.WithoutCancel(ctx), s.io, name); rerr != nil {
			return fmt.Errorf("%w (and removing the partial image: %v)", err, rerr)
		}
	}
	return err
}
