package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/csi-gorbd/csi-gorbd/internal/cephtest"
)

func randSuffix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ceph runs the cluster's own CLIs (rbd, rados, ceph): an independent peer
// that checks what the driver did.
type ceph struct {
	c *cephtest.Cluster
}

func (c ceph) cli(ctx context.Context, tool string, args ...string) ([]byte, error) {
	full := append([]string{"--conf", c.c.Conf(), "--keyring", c.c.Keyring()}, args...)
	if w := strings.Fields(c.c.Get("CEPH_CLI")); len(w) > 0 {
		return run(ctx, nil, nil, w[0], append(append(w[1:], tool), full...)...)
	}
	return run(ctx, nil, nil, tool, full...)
}

func (c ceph) json(ctx context.Context, v any, tool string, args ...string) error {
	out, err := c.cli(ctx, tool, append(args, "--format", "json")...)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(out, v); err != nil {
		return fmt.Errorf("%s %v: %w: %q", tool, args, err, out)
	}
	return nil
}

// createPool makes a dedicated RBD pool, so nothing else shares what the
// final "nothing left behind" check looks at.
func (c ceph) createPool(ctx context.Context, pool string) error {
	if _, err := c.cli(ctx, "ceph", "osd", "pool", "create", pool, "8", "8"); err != nil {
		return err
	}
	_, err := c.cli(ctx, "rbd", "pool", "init", pool)
	return err
}

func (c ceph) deletePool(ctx context.Context, pool string) error {
	_, err := c.cli(ctx, "ceph", "osd", "pool", "delete", pool, pool, "--yes-i-really-really-mean-it")
	return err
}

// imageInfo is the part of `rbd info --format json` the flows check.
type imageInfo struct {
	Name     string   `json:"name"`
	ID       string   `json:"id"`
	Size     uint64   `json:"size"`
	Features []string `json:"features"`
	Parent   *struct {
		Pool     string `json:"pool"`
		Image    string `json:"image"`
		Snapshot string `json:"snapshot"`
	} `json:"parent"`
}

func (c ceph) info(ctx context.Context, pool, image string) (imageInfo, error) {
	var ii imageInfo
	err := c.json(ctx, &ii, "rbd", "info", pool+"/"+image)
	return ii, err
}

// leftovers lists what the driver may leave in pool: images, trash entries,
// and keys of the controller's journal objects (csi.volumes.<instance>,
// csi.snaps.<instance>; an absent object is clean).
func (c ceph) leftovers(ctx context.Context, pool, instance string) ([]string, error) {
	var out []string
	var images []string
	if err := c.json(ctx, &images, "rbd", "ls", "-p", pool); err != nil {
		return nil, err
	}
	for _, i := range images {
		out = append(out, "image "+i)
	}
	var trash []struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	if err := c.json(ctx, &trash, "rbd", "trash", "ls", "--all", "-p", pool); err != nil {
		return nil, err
	}
	for _, e := range trash {
		out = append(out, "trash "+e.Name+" ("+e.ID+")")
	}
	for _, oid := range []string{"csi.volumes." + instance, "csi.snaps." + instance} {
		keys, err := c.cli(ctx, "rados", "-p", pool, "listomapkeys", oid)
		if err != nil {
			if strings.Contains(err.Error(), "No such file") {
				continue
			}
			return nil, err
		}
		for _, k := range strings.Fields(string(keys)) {
			out = append(out, "journal "+oid+" key "+k)
		}
	}
	return out, nil
}
