package main

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"
)

// imageConfig is the part of the image configuration
// (application/vnd.docker.container.image.v1+json, which the OCI image
// config extends) a container runtime acts on.
type imageConfig struct {
	User         string              `json:"User,omitempty"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
	Env          []string            `json:"Env,omitempty"`
	Entrypoint   []string            `json:"Entrypoint,omitempty"`
	Cmd          []string            `json:"Cmd,omitempty"`
	WorkingDir   string              `json:"WorkingDir,omitempty"`
	Labels       map[string]string   `json:"Labels,omitempty"`
	StopSignal   string              `json:"StopSignal,omitempty"`
}

type history struct {
	Created   time.Time `json:"created"`
	CreatedBy string    `json:"created_by,omitempty"`
}

type rootFS struct {
	Type    string   `json:"type"`
	DiffIDs []string `json:"diff_ids"`
}

// configFile is the image configuration blob.
type configFile struct {
	Architecture string      `json:"architecture"`
	OS           string      `json:"os"`
	Created      time.Time   `json:"created"`
	Config       imageConfig `json:"config"`
	RootFS       rootFS      `json:"rootfs"`
	History      []history   `json:"history"`
}

// manifestEntry is one image in a `docker save` archive's manifest.json.
type manifestEntry struct {
	Config   string   `json:"Config"`
	RepoTags []string `json:"RepoTags"`
	Layers   []string `json:"Layers"`
}

// image is what one archive holds.
type image struct {
	tags      []string
	root      string
	adds      []addFile
	config    imageConfig
	created   time.Time
	createdBy string
}

// writeArchive writes img as a one-layer `docker save` archive: the layer
// as <diffid>/layer.tar, the configuration as <sha256>.json and
// manifest.json naming both and the tags. `ctr images import` and
// `docker load` read this format. tmpDir holds the layer while its digest
// is computed. It returns the image's config digest (its ID) and the
// files it left out of the layer.
func writeArchive(out io.Writer, img image, tmpDir string) (string, []string, error) {
	lf, err := os.CreateTemp(tmpDir, "layer-*.tar")
	if err != nil {
		return "", nil, err
	}
	defer os.Remove(lf.Name())
	defer lf.Close()
	h := sha256.New()
	skipped, err := writeLayer(io.MultiWriter(lf, h), img.root, img.adds, img.created)
	if err != nil {
		return "", nil, fmt.Errorf("layer: %w", err)
	}
	layerHex := hex.EncodeToString(h.Sum(nil))
	size, err := lf.Seek(0, io.SeekCurrent)
	if err != nil {
		return "", nil, err
	}
	if _, err := lf.Seek(0, io.SeekStart); err != nil {
		return "", nil, err
	}

	cfg := configFile{
		Architecture: runtime.GOARCH,
		OS:           "linux",
		Created:      img.created,
		Config:       img.config,
		RootFS:       rootFS{Type: "layers", DiffIDs: []string{"sha256:" + layerHex}},
		History:      []history{{Created: img.created, CreatedBy: img.createdBy}},
	}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return "", nil, err
	}
	cfgSum := sha256.Sum256(cfgJSON)
	cfgHex := hex.EncodeToString(cfgSum[:])
	man, err := json.Marshal([]manifestEntry{{
		Config:   cfgHex + ".json",
		RepoTags: img.tags,
		Layers:   []string{layerHex + "/layer.tar"},
	}})
	if err != nil {
		return "", nil, err
	}

	tw := tar.NewWriter(out)
	file := func(name string, size int64, r io.Reader) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644,
			ModTime: img.created, Format: tar.FormatPAX}); err != nil {
			return err
		}
		n, err := io.Copy(tw, r)
		if err == nil && n != size {
			err = fmt.Errorf("%s: wrote %d of %d bytes", name, n, size)
		}
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: layerHex + "/", Mode: 0o755,
		ModTime: img.created, Format: tar.FormatPAX}); err != nil {
		return "", nil, err
	}
	if err := file(layerHex+"/layer.tar", size, lf); err != nil {
		return "", nil, err
	}
	if err := file(cfgHex+".json", int64(len(cfgJSON)), bytesReader(cfgJSON)); err != nil {
		return "", nil, err
	}
	if err := file("manifest.json", int64(len(man)), bytesReader(man)); err != nil {
		return "", nil, err
	}
	return "sha256:" + cfgHex, skipped, tw.Close()
}
