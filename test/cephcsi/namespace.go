package cephcsi

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"

	"github.com/csi-gorbd/csi-gorbd/rados"
)

// ensureNamespace makes the RBD namespace ns in io's pool if it is missing,
// the way librbd's api::Namespace::create does: cls rbd namespace_add on
// rbd_namespace in the default namespace, then, inside ns, an rbd_trash
// object and rbd_directory in state READY (cls rbd dir_state_set).
func ensureNamespace(ctx context.Context, io *rados.IOContext, ns string) error {
	if ns == "" {
		return nil
	}
	def := io.Clone()
	def.SetNamespace("")
	if _, err := def.Exec(ctx, "rbd_namespace", "rbd", "namespace_add", encodeString(ns)); err != nil &&
		!errors.Is(err, syscall.EEXIST) {
		return fmt.Errorf("namespace_add %q: %w", ns, err)
	}
	nio := io.Clone()
	nio.SetNamespace(ns)
	if err := nio.Create(ctx, "rbd_trash", false); err != nil {
		return fmt.Errorf("namespace %q: rbd_trash: %w", ns, err)
	}
	// cls::rbd::DirectoryState is encoded as one byte; READY is 0.
	if _, err := nio.Exec(ctx, "rbd_directory", "rbd", "dir_state_set", []byte{0}); err != nil {
		return fmt.Errorf("namespace %q: dir_state_set: %w", ns, err)
	}
	return nil
}

func encodeString(s string) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(s)))
	return append(b, s...)
}
