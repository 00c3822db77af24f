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

// layerFile is one layer written to a temporary file, with its digest.
type layerFile struct {
	f    *os.File
	hex  string // sha256 of the uncompressed tar: the diff_id and the blob name
	size int64
}

// writeLayerFile writes one layer with write into a temporary file in
// tmpDir and digests it.
func writeLayerFile(tmpDir string, write func(io.Writer) ([]string, error)) (layerFile, []string, error) {
	f, err := os.CreateTemp(tmpDir, "layer-*.tar")
	if err != nil {
		return layerFile{}, nil, err
	}
	_ = os.Remove(f.Name()) // unlinked: gone with the descriptor
	h := sha256.New()
	skipped, err := write(io.MultiWriter(f, h))
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		_ = f.Close()
		return layerFile{}, nil, fmt.Errorf("layer: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return layerFile{}, nil, err
	}
	return layerFile{f: f, hex: hex.EncodeToString(h.Sum(nil)), size: fi.Size()}, skipped, nil
}

// writeArchive writes img as a `docker save` archive: each layer as
// <diffid>/layer.tar, the configuration as <sha256>.json and manifest.json
// naming them and the tags. `ctr images import` and `docker load` read
// this format. The root directory is the first layer and the added files
// the second, so images that differ only in added files (a new binary on
// the same base) share the first: a runtime that has it unpacks only the
// second. tmpDir holds the layers while they are digested. It returns the
// image's config digest (its ID) and the files it left out.
func writeArchive(out io.Writer, img image, tmpDir string) (string, []string, error) {
	var layers []layerFile
	var skipped []string
	defer func() {
		for _, l := range layers {
			_ = l.f.Close()
		}
	}()
	if img.root != "" {
		l, sk, err := writeLayerFile(tmpDir, func(w io.Writer) ([]string, error) { return writeRootLayer(w, img.root, img.created) })
		if err != nil {
			return "", nil, err
		}
		layers, skipped = append(layers, l), append(skipped, sk...)
	}
	if len(img.adds) > 0 {
		l, sk, err := writeLayerFile(tmpDir, func(w io.Writer) ([]string, error) {
			return writeAddLayer(w, img.root, img.adds, img.created)
		})
		if err != nil {
			return "", nil, err
		}
		layers, skipped = append(layers, l), append(skipped, sk...)
	}
	var diffIDs, layerNames []string
	for _, l := range layers {
		diffIDs = append(diffIDs, "sha256:"+l.hex)
		layerNames = append(layerNames, l.hex+"/layer.tar")
	}

	cfg := configFile{
		Architecture: runtime.GOARCH,
		OS:           "linux",
		Created:      img.created,
		Config:       img.config,
		RootFS:       rootFS{Type: "layers", DiffIDs: diffIDs},
	}
	for range layers {
		cfg.History = append(cfg.History, history{Created: img.created, CreatedBy: img.createdBy})
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
		Layers:   layerNames,
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
	for _, l := range layers {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: l.hex + "/", Mode: 0o755,
			ModTime: img.created, Format: tar.FormatPAX}); err != nil {
			return "", nil, err
		}
		if err := file(l.hex+"/layer.tar", l.size, l.f); err != nil {
			return "", nil, err
		}
	}
	if err := file(cfgHex+".json", int64(len(cfgJSON)), bytesReader(cfgJSON)); err != nil {
		return "", nil, err
	}
	if err := file("manifest.json", int64(len(man)), bytesReader(man)); err != nil {
		return "", nil, err
	}
	return "sha256:" + cfgHex, skipped, tw.Close()
}
