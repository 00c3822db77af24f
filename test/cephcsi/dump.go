package cephcsi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// CLI runs Ceph's own command-line tools against one cluster: they are the
// independent reader of what ceph-csi wrote and of what Replay writes.
type CLI struct {
	Conf    string // ceph.conf
	Keyring string // client.admin keyring
}

func (c *CLI) run(ctx context.Context, tool string, args ...string) ([]byte, error) {
	full := append([]string{"-c", c.Conf, "-k", c.Keyring}, args...)
	cmd := exec.CommandContext(ctx, tool, full...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", tool, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// RBD runs `rbd args...`.
func (c *CLI) RBD(ctx context.Context, args ...string) ([]byte, error) {
	return c.run(ctx, "rbd", args...)
}

// RADOS runs `rados args...`.
func (c *CLI) RADOS(ctx context.Context, args ...string) ([]byte, error) {
	return c.run(ctx, "rados", args...)
}

// Ceph runs `ceph args...`.
func (c *CLI) Ceph(ctx context.Context, args ...string) ([]byte, error) {
	return c.run(ctx, "ceph", args...)
}

// PoolIDs maps pool names to ids (`ceph osd pool ls detail`).
func (c *CLI) PoolIDs(ctx context.Context) (map[string]int64, error) {
	out, err := c.Ceph(ctx, "osd", "pool", "ls", "detail", "--format", "json")
	if err != nil {
		return nil, err
	}
	var pools []struct {
		Name string `json:"pool_name"`
		ID   int64  `json:"pool_id"`
	}
	if err := json.Unmarshal(out, &pools); err != nil {
		return nil, fmt.Errorf("osd pool ls detail: %w", err)
	}
	m := map[string]int64{}
	for _, p := range pools {
		m[p.Name] = p.ID
	}
	return m, nil
}

// JournalPrefix selects the RADOS objects Dump records: ceph-csi's journal
// (csi.volumes.*, csi.snaps.*, csi.volume.*, csi.snap.*, csi.groups.*...).
const JournalPrefix = "csi."

// Dump reads the journal objects and the RBD images of the given pools
// (pool name -> RBD namespaces; nil namespaces means "" plus every namespace
// `rbd namespace ls` lists) with the rados and rbd CLIs.
func Dump(ctx context.Context, c *CLI, pools map[string][]string) (*Layout, error) {
	ids, err := c.PoolIDs(ctx)
	if err != nil {
		return nil, err
	}
	var l Layout
	names := make([]string, 0, len(pools))
	for p := range pools {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, pool := range names {
		id, ok := ids[pool]
		if !ok {
			return nil, fmt.Errorf("dump: no pool %q", pool)
		}
		nss := pools[pool]
		if nss == nil {
			if nss, err = c.namespaces(ctx, pool); err != nil {
				return nil, err
			}
		}
		l.Pools = append(l.Pools, Pool{Name: pool, ID: id, Namespaces: nss})
		for _, ns := range nss {
			objs, err := c.dumpObjects(ctx, pool, ns)
			if err != nil {
				return nil, err
			}
			l.Objects = append(l.Objects, objs...)
			imgs, err := c.dumpImages(ctx, pool, ns)
			if err != nil {
				return nil, err
			}
			l.Images = append(l.Images, imgs...)
		}
	}
	l.Sort()
	return &l, nil
}

func (c *CLI) namespaces(ctx context.Context, pool string) ([]string, error) {
	out, err := c.RBD(ctx, "namespace", "ls", "-p", pool, "--format", "json")
	if err != nil {
		return nil, err
	}
	var list []struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(out, &list); err != nil {
		return nil, fmt.Errorf("rbd namespace ls %s: %w", pool, err)
	}
	nss := []string{""}
	for _, n := range list {
		nss = append(nss, n.Name)
	}
	return nss, nil
}

func nsArgs(tool, ns string) []string {
	if ns == "" {
		return nil
	}
	if tool == "rados" {
		return []string{"-N", ns}
	}
	return []string{"--namespace", ns}
}

func (c *CLI) dumpObjects(ctx context.Context, pool, ns string) ([]Object, error) {
	args := append([]string{"-p", pool}, nsArgs("rados", ns)...)
	out, err := c.RADOS(ctx, append(args, "ls")...)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, name := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.HasPrefix(name, JournalPrefix) {
			names = append(names, name)
		}
	}
	objs := make([]Object, len(names))
	err = parallel(ctx, len(names), func(i int) error {
		o := Object{Pool: pool, Namespace: ns, Name: names[i]}
		st, err := c.RADOS(ctx, append(slices.Clone(args), "stat", o.Name)...)
		if err != nil {
			return err
		}
		if o.Size, err = parseStatSize(st); err != nil {
			return fmt.Errorf("rados stat %s/%s: %w", pool, o.Name, err)
		}
		vals, err := c.RADOS(ctx, append(slices.Clone(args), "listomapvals", o.Name)...)
		if err != nil {
			return err
		}
		if o.Omap, err = ParseListOmapVals(vals); err != nil {
			return fmt.Errorf("rados listomapvals %s/%s: %w", pool, o.Name, err)
		}
		objs[i] = o
		return nil
	})
	return objs, err
}

// dumpParallelism bounds the CLI processes Dump runs at once (each one
// mostly waits for its monitor session).
const dumpParallelism = 6

// parallel runs fn(0..n-1) on at most dumpParallelism goroutines and
// returns the first error.
func parallel(ctx context.Context, n int, fn func(i int) error) error {
	sem := make(chan struct{}, dumpParallelism)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = fn(i)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

var statSize = regexp.MustCompile(`, size (\d+)\s*$`)

func parseStatSize(out []byte) (int64, error) {
	m := statSize.FindSubmatch(bytes.TrimSpace(out))
	if m == nil {
		return 0, fmt.Errorf("no size in %q", out)
	}
	return strconv.ParseInt(string(m[1]), 10, 64)
}

var valueLine = regexp.MustCompile(`^value \((\d+) bytes\) :$`)

// ParseListOmapVals decodes `rados listomapvals` output: for every key a
// line with the key, "value (N bytes) :", a hexdump of N bytes ending in
// the offset line N (absent when N is 0), and an empty line.
func ParseListOmapVals(out []byte) ([]OmapEntry, error) {
	var entries []OmapEntry
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
	for sc.Scan() {
		key := sc.Text()
		if !sc.Scan() {
			return nil, fmt.Errorf("key %q: no value line", key)
		}
		m := valueLine.FindStringSubmatch(sc.Text())
		if m == nil {
			return nil, fmt.Errorf("key %q: want a value line, got %q", key, sc.Text())
		}
		n, err := strconv.Atoi(m[1])
		if err != nil || n < 0 || n > 64<<20 {
			return nil, fmt.Errorf("key %q: bad length %q", key, m[1])
		}
		val := make([]byte, 0, n)
		if n > 0 {
			for len(val) < n {
				if !sc.Scan() {
					return nil, fmt.Errorf("key %q: hexdump ends after %d of %d bytes", key, len(val), n)
				}
				b, err := hexdumpLine(sc.Text(), len(val), n-len(val))
				if err != nil {
					return nil, fmt.Errorf("key %q: %w", key, err)
				}
				val = append(val, b...)
			}
			if !sc.Scan() || sc.Text() != fmt.Sprintf("%08x", n) {
				return nil, fmt.Errorf("key %q: no end offset line", key)
			}
		}
		if !sc.Scan() || sc.Text() != "" {
			return nil, fmt.Errorf("key %q: no empty line after the value", key)
		}
		e := OmapEntry{Key: key, Value: val}
		if isText(val) {
			e.Text = string(val)
		}
		entries = append(entries, e)
	}
	return entries, sc.Err()
}

// hexdumpLine reads one "OOOOOOOO  hh hh ...  |ascii|" line at offset off,
// at most max bytes.
func hexdumpLine(line string, off, max int) ([]byte, error) {
	f := strings.Fields(line)
	if len(f) < 2 || f[0] != fmt.Sprintf("%08x", off) {
		return nil, fmt.Errorf("hexdump line at %d: %q", off, line)
	}
	var b []byte
	for _, t := range f[1:] {
		if len(b) == max || len(b) == 16 || strings.HasPrefix(t, "|") {
			break
		}
		v, err := hex.DecodeString(t)
		if err != nil || len(v) != 1 {
			return nil, fmt.Errorf("hexdump line at %d: byte %q", off, t)
		}
		b = append(b, v[0])
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("hexdump line at %d: no bytes", off)
	}
	return b, nil
}

func isText(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if r < 0x20 && r != '\n' && r != '\t' {
			return false
		}
	}
	return true
}

// rbdInfo is `rbd info --format json`.
type rbdInfo struct {
	Name            string   `json:"name"`
	ID              string   `json:"id"`
	Size            uint64   `json:"size"`
	Order           uint8    `json:"order"`
	ObjectSize      uint64   `json:"object_size"`
	BlockNamePrefix string   `json:"block_name_prefix"`
	Format          int      `json:"format"`
	Features        []string `json:"features"`
	OpFeatures      []string `json:"op_features"`
	Flags           []string `json:"flags"`
	StripeUnit      uint64   `json:"stripe_unit"`
	StripeCount     uint64   `json:"stripe_count"`
	DataPool        string   `json:"data_pool"`
	Parent          *Parent  `json:"parent"`
}

func (c *CLI) dumpImages(ctx context.Context, pool, ns string) ([]Image, error) {
	args := append([]string{"-p", pool}, nsArgs("rbd", ns)...)
	out, err := c.RBD(ctx, append(args, "ls", "--format", "json")...)
	if err != nil {
		return nil, err
	}
	var names []string
	if err := json.Unmarshal(out, &names); err != nil {
		return nil, fmt.Errorf("rbd ls %s: %w", pool, err)
	}
	out, err = c.RBD(ctx, append(args, "trash", "ls", "--all", "--long", "--format", "json")...)
	if err != nil {
		return nil, err
	}
	var trash []struct {
		ID     string `json:"id"`
		Name   string `json:"name"`
		Source string `json:"source"`
		Status string `json:"status"`
	}
	if err := json.Unmarshal(out, &trash); err != nil {
		return nil, fmt.Errorf("rbd trash ls %s: %w", pool, err)
	}
	imgs := make([]Image, len(names)+len(trash))
	err = parallel(ctx, len(imgs), func(i int) error {
		if i < len(names) {
			im, err := c.dumpImage(ctx, pool, ns, args, []string{names[i]})
			if err != nil {
				return err
			}
			imgs[i] = *im
			return nil
		}
		t := trash[i-len(names)]
		im, err := c.dumpImage(ctx, pool, ns, args, []string{"--image-id", t.ID})
		if err != nil {
			return err
		}
		if im.Name != t.Name {
			return fmt.Errorf("trash entry %s: name %q, rbd info says %q", t.ID, t.Name, im.Name)
		}
		im.Trash = &TrashEntry{Source: t.Source, Deferred: strings.HasPrefix(t.Status, "protected until")}
		imgs[i] = *im
		return nil
	})
	return imgs, err
}

// dumpImage reads one image; spec is its name or "--image-id ID".
func (c *CLI) dumpImage(ctx context.Context, pool, ns string, args, spec []string) (*Image, error) {
	out, err := c.RBD(ctx, append(append(append([]string{}, args...), "info", "--format", "json"), spec...)...)
	if err != nil {
		return nil, err
	}
	var info rbdInfo
	if err := json.Unmarshal(out, &info); err != nil {
		return nil, fmt.Errorf("rbd info %s %v: %w", pool, spec, err)
	}
	im := &Image{Pool: pool, Namespace: ns, Name: info.Name, ID: info.ID, Info: ImageInfo{
		Size: info.Size, ObjectSize: info.ObjectSize, Order: info.Order, BlockNamePrefix: info.BlockNamePrefix,
		Format: info.Format, Features: nonNil(info.Features), OpFeatures: nonNil(info.OpFeatures),
		Flags: nonNil(info.Flags), StripeUnit: info.StripeUnit, StripeCount: info.StripeCount,
		DataPool: info.DataPool, Parent: info.Parent,
	}}
	out, err = c.RBD(ctx, append(append(append([]string{}, args...), "snap", "ls", "--all", "--format", "json"), spec...)...)
	if err != nil {
		return nil, err
	}
	var snaps []struct {
		ID        uint64 `json:"id"`
		Name      string `json:"name"`
		Size      uint64 `json:"size"`
		Protected string `json:"protected"`
		Namespace struct {
			Type         string `json:"type"`
			OriginalName string `json:"original_name"`
		} `json:"namespace"`
	}
	if err := json.Unmarshal(out, &snaps); err != nil {
		return nil, fmt.Errorf("rbd snap ls %s %v: %w", pool, spec, err)
	}
	im.Snapshots = []Snapshot{}
	for _, s := range snaps {
		im.Snapshots = append(im.Snapshots, Snapshot{ID: s.ID, Name: s.Name, Size: s.Size, Protected: s.Protected,
			Namespace: s.Namespace.Type, OriginalName: s.Namespace.OriginalName})
	}
	// Image metadata lives in the header's omap as "metadata_<key>"; read it
	// there so trashed images (which `rbd image-meta list` cannot name) are
	// covered too, and cross-check live images with image-meta list.
	hargs := append([]string{"-p", pool}, nsArgs("rados", ns)...)
	out, err = c.RADOS(ctx, append(hargs, "listomapvals", "rbd_header."+info.ID)...)
	if err != nil {
		return nil, err
	}
	hdr, err := ParseListOmapVals(out)
	if err != nil {
		return nil, fmt.Errorf("header of %s/%s: %w", pool, info.ID, err)
	}
	im.Metadata = map[string]string{}
	for _, e := range hdr {
		if k, ok := strings.CutPrefix(e.Key, "metadata_"); ok {
			im.Metadata[k] = string(e.Value)
		}
	}
	if spec[0] != "--image-id" {
		out, err = c.RBD(ctx, append(append(append([]string{}, args...), "image-meta", "list", "--format", "json"), spec...)...)
		if err != nil {
			return nil, err
		}
		meta := map[string]string{}
		if len(bytes.TrimSpace(out)) > 0 {
			if err := json.Unmarshal(out, &meta); err != nil {
				return nil, fmt.Errorf("rbd image-meta list %s %v: %w", pool, spec, err)
			}
		}
		if !equalMaps(meta, im.Metadata) {
			return nil, fmt.Errorf("image %s/%s: image-meta list %v differs from the header's metadata_ keys %v",
				pool, info.Name, meta, im.Metadata)
		}
	}
	return im, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// ErrNoCLI is returned when the Ceph CLIs are not installed.
var ErrNoCLI = errors.New("cephcsi: rados/rbd/ceph CLIs not found")

// HaveCLI reports whether rados, rbd and ceph are on PATH.
func HaveCLI() error {
	for _, t := range []string{"rados", "rbd", "ceph"} {
		if _, err := exec.LookPath(t); err != nil {
			return fmt.Errorf("%w: %s", ErrNoCLI, t)
		}
	}
	return nil
}
