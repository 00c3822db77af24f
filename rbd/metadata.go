package rbd

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
)

// Image metadata (`rbd image-meta`): key/value pairs in the header's omap
// under "metadata_<key>", reached through cls_rbd metadata_get, _set,
// _remove and _list. Values are raw bytes; `rbd image-meta set` stores the
// string it is given.

// metadataPage is how many keys one metadata_list call returns.
const metadataPage = 1024

// Metadata returns all of the image's metadata.
func (img *Image) Metadata(ctx context.Context) (map[string][]byte, error) {
	all := map[string][]byte{}
	start := ""
	for {
		out, err := img.s.call(ctx, img.hdr(), clsRBD, "metadata_list", metadataListArgs(start, metadataPage))
		if err != nil {
			return nil, fmt.Errorf("rbd: %s: metadata_list: %w", img.name, err)
		}
		m, err := decodeMetadataList(out)
		if err != nil {
			return nil, err
		}
		for k, v := range m {
			all[k] = v
			start = max(start, k)
		}
		if len(m) < metadataPage {
			return all, nil
		}
	}
}

// GetMetadata returns one metadata value; a missing key is ErrNotFound.
func (img *Image) GetMetadata(ctx context.Context, key string) ([]byte, error) {
	out, err := img.s.call(ctx, img.hdr(), clsRBD, "metadata_get", stringArg(key))
	if errors.Is(err, syscall.ENOENT) {
		return nil, fmt.Errorf("%w: metadata key %q of image %q", ErrNotFound, key, img.name)
	}
	if err != nil {
		return nil, fmt.Errorf("rbd: %s: metadata_get: %w", img.name, err)
	}
	return decodeMetadataValue(out)
}

// decodeMetadataValue: the metadata_get reply, one bufferlist.
func decodeMetadataValue(b []byte) ([]byte, error) {
	d := encoding.NewDecoder(b)
	v := d.BytesCopy()
	return v, finish("metadata_get", d)
}

// SetMetadata sets one metadata key and tells other clients to refresh.
func (img *Image) SetMetadata(ctx context.Context, key string, value []byte) error {
	if img.readOnly {
		return ErrReadOnly
	}
	if key == "" {
		return fmt.Errorf("%w: empty metadata key", ErrInvalid)
	}
	if err := img.s.write(ctx, img.hdr(), opCall(clsRBD, "metadata_set", metadataSetArgs(map[string][]byte{key: value}))); err != nil {
		return fmt.Errorf("rbd: %s: metadata_set: %w", img.name, err)
	}
	img.notifyUpdate(ctx)
	return nil
}

// RemoveMetadata removes one metadata key; a missing key is ErrNotFound
// (cls_rbd removes missing keys silently; librbd looks first, so do we).
func (img *Image) RemoveMetadata(ctx context.Context, key string) error {
	if img.readOnly {
		return ErrReadOnly
	}
	if _, err := img.GetMetadata(ctx, key); err != nil {
		return err
	}
	err := img.s.write(ctx, img.hdr(), opCall(clsRBD, "metadata_remove", stringArg(key)))
	if err != nil {
		return fmt.Errorf("rbd: %s: metadata_remove: %w", img.name, err)
	}
	img.notifyUpdate(ctx)
	return nil
}
