package rbd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"

	"github.com/csi-gorbd/csi-gorbd/rados"
)

// Config overrides. librbd takes an option from the cluster's
// configuration, then from the pool (`rbd config pool set`: metadata of
// the pool's rbd_info object), then from the image (`rbd config image
// set`: image metadata); a later one wins. Both are stored as metadata
// keys "conf_<option>" with the value as a string. An image override
// change notifies the image's watchers (HEADER_UPDATE); a pool override
// change notifies nobody and is seen when an image is opened or next
// refreshed.

// ConfigPrefix starts the metadata keys that hold config overrides.
const ConfigPrefix = "conf_"

// ConfigOverrides returns the image's config overrides, option → value
// (`rbd config image list` shows them with source "image").
func (img *Image) ConfigOverrides(ctx context.Context) (map[string]string, error) {
	m, err := listConfig(ctx, img.s, img.hdr())
	if err != nil {
		return nil, fmt.Errorf("rbd: %s: %w", img.name, err)
	}
	return m, nil
}

// PoolConfigOverrides returns the config overrides of the pool (and
// namespace) io addresses; a pool without rbd_info has none.
func PoolConfigOverrides(ctx context.Context, io *rados.IOContext) (map[string]string, error) {
	m, err := listConfig(ctx, newRadosStore(io), InfoObject)
	if errors.Is(err, syscall.ENOENT) {
		return map[string]string{}, nil
	}
	return m, err
}

// SetPoolConfig sets a pool-level override, as `rbd config pool set`.
// The option name is not checked here.
func SetPoolConfig(ctx context.Context, io *rados.IOContext, option, value string) error {
	if option == "" {
		return fmt.Errorf("%w: empty option name", ErrInvalid)
	}
	w := opCall(clsRBD, "metadata_set", metadataSetArgs(map[string][]byte{ConfigPrefix + option: []byte(value)}))
	if err := newRadosStore(io).write(ctx, InfoObject, w); err != nil {
		return fmt.Errorf("rbd: pool config %s: metadata_set: %w", option, err)
	}
	return nil
}

// RemovePoolConfig removes a pool-level override (a missing one is not
// an error).
func RemovePoolConfig(ctx context.Context, io *rados.IOContext, option string) error {
	err := newRadosStore(io).write(ctx, InfoObject, opCall(clsRBD, "metadata_remove", stringArg(ConfigPrefix+option)))
	if err != nil && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("rbd: pool config %s: metadata_remove: %w", option, err)
	}
	return nil
}

// listConfig pages through the "conf_" metadata keys of oid (keys come
// sorted, starting after the prefix itself, so the first key outside it
// ends the range).
func listConfig(ctx context.Context, s store, oid string) (map[string]string, error) {
	all := map[string]string{}
	start := ConfigPrefix
	for {
		out, err := s.call(ctx, oid, clsRBD, "metadata_list", metadataListArgs(start, metadataPage))
		if err != nil {
			return nil, fmt.Errorf("metadata_list: %w", err)
		}
		m, err := decodeMetadataList(out)
		if err != nil {
			return nil, err
		}
		past := false
		for k, v := range m {
			start = max(start, k)
			if opt, ok := strings.CutPrefix(k, ConfigPrefix); ok {
				all[opt] = string(v)
			} else {
				past = true
			}
		}
		if past || len(m) < metadataPage {
			return all, nil
		}
	}
}

// PoolConfigOverrides returns the overrides of the image's pool (and
// namespace), which librbd applies under the image's own.
func (img *Image) PoolConfigOverrides(ctx context.Context) (map[string]string, error) {
	m, err := listConfig(ctx, img.s, InfoObject)
	if errors.Is(err, syscall.ENOENT) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("rbd: pool of %s: %w", img.name, err)
	}
	return m, nil
}

// QoS reads the image's QoS settings as librbd applies them: its
// defaults, then the pool's overrides, then the image's (the cluster's
// own configuration database is not read). A failed read returns the
// error alone; values librbd would skip are skipped and reported with
// the settings, in an error matching ErrQoSValue.
func (img *Image) QoS(ctx context.Context) (QoS, error) {
	pool, err := img.PoolConfigOverrides(ctx)
	if err != nil {
		return QoS{}, err
	}
	own, err := img.ConfigOverrides(ctx)
	if err != nil {
		return QoS{}, err
	}
	return QoSFrom(pool, own)
}
