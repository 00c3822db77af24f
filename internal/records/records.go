package records

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DefaultMaxSize bounds a record read when Dir.MaxSize is 0.
const DefaultMaxSize = 1 << 20

// tempPrefix starts the name of every temporary file; names starting
// with '.' are never records.
const tempPrefix = ".tmp-"

// Dir is a directory of records. The zero MaxSize is DefaultMaxSize.
type Dir struct {
	Path    string
	MaxSize int64
}

func (d Dir) maxSize() int64 {
	if d.MaxSize > 0 {
		return d.MaxSize
	}
	return DefaultMaxSize
}

func (d Dir) ensure() error {
	if d.Path == "" {
		return errors.New("records: no directory")
	}
	if err := os.MkdirAll(d.Path, 0o700); err != nil {
		return err
	}
	return os.Chmod(d.Path, 0o700)
}

// checkName refuses names that are not plain record names.
func checkName(name string) error {
	if name == "" || strings.HasPrefix(name, ".") || strings.ContainsRune(name, filepath.Separator) {
		return fmt.Errorf("records: bad record name %q", name)
	}
	return nil
}

// Write replaces the record called name with b atomically and durably.
func (d Dir) Write(name string, b []byte) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := d.ensure(); err != nil {
		return err
	}
	f, err := os.CreateTemp(d.Path, tempPrefix+"*-"+name)
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.Write(b)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(d.Path, name))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return syncDir(d.Path)
}

// WriteJSON writes v as indented JSON (with a final newline).
func (d Dir) WriteJSON(name string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return d.Write(name, append(b, '\n'))
}

// Read returns the record called name; a missing one is an error
// matching fs.ErrNotExist. A file over MaxSize is refused unread.
func (d Dir) Read(name string) ([]byte, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	path := filepath.Join(d.Path, name)
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > d.maxSize() {
		return nil, fmt.Errorf("records: %s: %d bytes is too large for a record", path, st.Size())
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil && len(b) > 0 {
		return nil, err
	}
	return b, nil
}

// Remove deletes the record called name durably; a missing record is no
// error.
func (d Dir) Remove(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	err := os.Remove(filepath.Join(d.Path, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return syncDir(d.Path)
}

// Names lists the records (temporary and other hidden files left out); a
// missing directory has none.
func (d Dir) Names() ([]string, error) {
	ents, err := os.ReadDir(d.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".") && e.Type().IsRegular() {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// List decodes every record whose name match accepts, in name order.
// Records that cannot be read or decoded are reported in the error (each
// with its name) without hiding the others.
func List[T any](d Dir, match func(name string) bool, decode func(name string, b []byte) (T, error)) ([]T, error) {
	names, err := d.Names()
	if err != nil {
		return nil, err
	}
	var out []T
	var errs []error
	for _, n := range names {
		if !match(n) {
			continue
		}
		b, err := d.Read(n)
		if err == nil {
			var v T
			if v, err = decode(n, b); err == nil {
				out = append(out, v)
				continue
			}
		}
		errs = append(errs, fmt.Errorf("%s: %w", n, err))
	}
	return out, errors.Join(errs...)
}

// RemoveTemps deletes the temporary files a crashed writer left, those
// last modified more than olderThan ago (0: all of them; only a process
// that is the directory's sole writer may pass 0). It returns how many
// it removed.
func (d Dir) RemoveTemps(olderThan time.Duration) (int, error) {
	ents, err := os.ReadDir(d.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), tempPrefix) {
			continue
		}
		if olderThan > 0 {
			info, err := e.Info()
			if err != nil || time.Since(info.ModTime()) < olderThan {
				continue
			}
		}
		if err := os.Remove(filepath.Join(d.Path, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		n++
	}
	if n > 0 {
		if err := syncDir(d.Path); err != nil {
			errs = append(errs, err)
		}
	}
	return n, errors.Join(errs...)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
