package main

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// addFile puts a host file into the layer at an image path (-add).
type addFile struct {
	src, dst string // dst: absolute path in the image
	mode     fs.FileMode
}

// parseAdd reads SRC:DST[:MODE] (MODE octal, default the source's).
func parseAdd(s string) (addFile, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || !path.IsAbs(parts[1]) {
		return addFile{}, fmt.Errorf("-add %q: want SRC:/ABS/DST[:MODE]", s)
	}
	a := addFile{src: parts[0], dst: path.Clean(parts[1])}
	if len(parts) == 3 {
		var m uint32
		if _, err := fmt.Sscanf(parts[2], "%o", &m); err != nil || m > 0o7777 {
			return addFile{}, fmt.Errorf("-add %q: bad mode %q", s, parts[2])
		}
		a.mode = fs.FileMode(m)
	}
	return a, nil
}

// layerWriter writes one image layer as a tar: entries in lexical order,
// owners and modes as on disk, hard links kept, one fixed modification
// time.
type layerWriter struct {
	tw      *tar.Writer
	mtime   time.Time
	links   map[[2]uint64]string // (dev, inode) of multiply linked files -> first name
	written map[string]bool      // directories already in the layer
	skipped []string             // sockets and other files a tar cannot hold
}

func newLayerWriter(w io.Writer, mtime time.Time) *layerWriter {
	return &layerWriter{tw: tar.NewWriter(w), mtime: mtime, links: map[[2]uint64]string{}, written: map[string]bool{}}
}

// emptyDirs are kept as directories without their contents: a container
// runtime mounts its own there.
var emptyDirs = map[string]bool{"dev": true, "proc": true, "sys": true}

// writeRootLayer writes the tree under root, leaving out the contents (not
// the directories) of dev, proc and sys.
func writeRootLayer(w io.Writer, root string, mtime time.Time) ([]string, error) {
	lw := newLayerWriter(w, mtime)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if err := lw.add(p, rel, 0); err != nil {
			return err
		}
		if d.IsDir() && emptyDirs[rel] {
			return filepath.SkipDir
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return lw.skipped, lw.tw.Close()
}

// writeAddLayer writes the added files, each with the directories above
// it: as root has them (owner and mode) when root has them, else 0755 root.
// As an upper layer it replaces what a lower layer has at the same paths.
func writeAddLayer(w io.Writer, root string, adds []addFile, mtime time.Time) ([]string, error) {
	lw := newLayerWriter(w, mtime)
	byName := map[string]addFile{}
	for _, a := range adds {
		byName[strings.TrimPrefix(a.dst, "/")] = a
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := lw.parents(root, n); err != nil {
			return nil, err
		}
		if err := lw.add(byName[n].src, n, byName[n].mode); err != nil {
			return nil, err
		}
	}
	return lw.skipped, lw.tw.Close()
}

// parents writes the directories above name that are not in the layer yet.
func (lw *layerWriter) parents(root, name string) error {
	var dirs []string
	for d := path.Dir(name); d != "." && !lw.written[d]; d = path.Dir(d) {
		dirs = append(dirs, d)
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		d := dirs[i]
		lw.written[d] = true
		if root != "" {
			if fi, err := os.Lstat(filepath.Join(root, d)); err == nil && fi.IsDir() {
				if err := lw.add(filepath.Join(root, d), d, 0); err != nil {
					return err
				}
				continue
			}
		}
		if err := lw.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755,
			ModTime: lw.mtime, Format: tar.FormatPAX}); err != nil {
			return err
		}
	}
	return nil
}

// add writes the file at p under name; mode, when not 0, replaces its
// permission bits.
func (lw *layerWriter) add(p, name string, mode fs.FileMode) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	if fi.Mode().Type()&(fs.ModeSocket|fs.ModeIrregular) != 0 {
		lw.skipped = append(lw.skipped, name)
		return nil
	}
	var target string
	if fi.Mode().Type() == fs.ModeSymlink {
		if target, err = os.Readlink(p); err != nil {
			return err
		}
	}
	h, err := tar.FileInfoHeader(fi, target)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	h.Name = name
	if fi.IsDir() {
		h.Name += "/"
	}
	h.Uname, h.Gname = "", ""
	h.ModTime, h.AccessTime, h.ChangeTime = lw.mtime, time.Time{}, time.Time{}
	h.Format = tar.FormatPAX
	if mode != 0 {
		h.Mode = int64(mode)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%s: no stat data", p)
	}
	h.Uid, h.Gid = int(st.Uid), int(st.Gid)
	if fi.Mode().IsRegular() && st.Nlink > 1 {
		key := [2]uint64{uint64(st.Dev), st.Ino}
		if first, ok := lw.links[key]; ok {
			h.Typeflag, h.Linkname, h.Size = tar.TypeLink, first, 0
			return lw.tw.WriteHeader(h)
		}
		lw.links[key] = name
	}
	if err := lw.tw.WriteHeader(h); err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.Copy(lw.tw, f)
	if err == nil && n != h.Size {
		err = errors.New("file changed size while being read")
	}
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	return nil
}
