// Command mkimage writes a container image as a `docker save` archive
// without a container engine or registry: one layer made from a root
// directory (plus single files added on top), an image configuration, and
// the tags. `ctr -n k8s.io images import FILE` loads it into containerd.
//
//	go run ./test/e2e/images/mkimage -o pause.tar -t registry.k8s.io/pause:3.10.2 \
//	    -root DIR -add /tmp/pause:/pause:0755 -entrypoint '["/pause"]' -user 65535:65535
//
// The layer keeps owners, modes, symlinks and hard links as they are on
// disk, sets every modification time to -mtime (default 0, so the same
// input makes the same image ID) and leaves out the contents of dev, proc
// and sys. test/e2e/images/build.sh builds the e2e images with it.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// listFlag collects a repeated flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fl := flag.NewFlagSet("mkimage", flag.ContinueOnError)
	var (
		out, root, entrypoint, cmd, user, workdir, stopSignal, createdBy string
		tags, adds, envs, labels, ports                                  listFlag
		mtime                                                            int64
	)
	fl.StringVar(&out, "o", "", "output archive (required)")
	fl.Var(&tags, "t", "image reference NAME:TAG (repeat for more; at least one)")
	fl.StringVar(&root, "root", "", "root directory of the layer")
	fl.Var(&adds, "add", "SRC:/DST[:MODE] file added to the layer (repeat)")
	fl.StringVar(&entrypoint, "entrypoint", "", `Entrypoint as JSON, e.g. '["/pause"]'`)
	fl.StringVar(&cmd, "cmd", "", `Cmd as JSON, e.g. '["pause"]'`)
	fl.StringVar(&user, "user", "", "User (uid[:gid] or name)")
	fl.StringVar(&workdir, "workdir", "", "WorkingDir")
	fl.Var(&envs, "env", "KEY=VALUE in the environment (repeat; default PATH as Debian's images)")
	fl.Var(&labels, "label", "KEY=VALUE label (repeat)")
	fl.Var(&ports, "expose", "exposed port, e.g. 80/tcp (repeat)")
	fl.StringVar(&stopSignal, "stop-signal", "", "StopSignal, e.g. SIGQUIT")
	fl.StringVar(&createdBy, "created-by", "csi-gorbd test/e2e/images", "history entry")
	fl.Int64Var(&mtime, "mtime", 0, "modification time of every file and the image's creation time (Unix seconds)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if out == "" || len(tags) == 0 || fl.NArg() != 0 {
		return fmt.Errorf("usage: mkimage -o OUT.tar -t NAME:TAG [-root DIR] [-add SRC:/DST[:MODE]]... [config flags]")
	}
	img := image{tags: tags, root: root, created: time.Unix(mtime, 0).UTC(), createdBy: createdBy}
	for _, t := range tags {
		if err := checkRef(t); err != nil {
			return err
		}
	}
	for _, a := range adds {
		af, err := parseAdd(a)
		if err != nil {
			return err
		}
		img.adds = append(img.adds, af)
	}
	if root == "" && len(img.adds) == 0 {
		return fmt.Errorf("empty image: give -root or -add")
	}
	c := &img.config
	for _, j := range []struct {
		s   string
		dst *[]string
	}{{entrypoint, &c.Entrypoint}, {cmd, &c.Cmd}} {
		if j.s == "" {
			continue
		}
		if err := json.Unmarshal([]byte(j.s), j.dst); err != nil {
			return fmt.Errorf("entrypoint/cmd %q: %w", j.s, err)
		}
	}
	c.User, c.WorkingDir, c.StopSignal = user, workdir, stopSignal
	c.Env = envs
	if len(c.Env) == 0 {
		c.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	}
	for _, l := range labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return fmt.Errorf("-label %q: want KEY=VALUE", l)
		}
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		c.Labels[k] = v
	}
	for _, p := range ports {
		if !strings.Contains(p, "/") {
			p += "/tcp"
		}
		if c.ExposedPorts == nil {
			c.ExposedPorts = map[string]struct{}{}
		}
		c.ExposedPorts[p] = struct{}{}
	}

	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	id, skipped, err := writeArchive(tmp, img, filepath.Dir(out))
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if err == nil {
		err = tmp.Close()
	}
	if err != nil {
		_ = tmp.Close()
		return err
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return err
	}
	for _, s := range skipped {
		fmt.Fprintf(os.Stderr, "mkimage: left out %s (not a file a layer can hold)\n", s)
	}
	fmt.Printf("%s %s %s\n", out, id, strings.Join(tags, ","))
	return nil
}

// checkRef refuses references a runtime would not look up as written:
// the tag must be explicit and the name must carry its registry.
func checkRef(ref string) error {
	slash := strings.LastIndex(ref, "/")
	colon := strings.LastIndex(ref, ":")
	if slash <= 0 || !strings.Contains(ref[:strings.Index(ref, "/")], ".") || colon < slash || colon == len(ref)-1 {
		return fmt.Errorf("image reference %q: want REGISTRY/NAME:TAG", ref)
	}
	return nil
}
