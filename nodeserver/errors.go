package nodeserver

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/mount-utils"

	"github.com/csi-gorbd/csi-gorbd/controllerserver"
	"github.com/csi-gorbd/csi-gorbd/rados"
	"github.com/csi-gorbd/csi-gorbd/rados/cephx"
)

// code maps an error to a gRPC code: this package's own errors and
// mount-utils' typed ones first, then the Ceph stack's through the
// controller's table (the same errors mean the same on both sides).
func code(err error) codes.Code {
	var me mount.MountError
	switch {
	case err == nil:
		return codes.OK
	case errors.Is(err, errUnknownCluster), errors.Is(err, cephx.ErrBadKey):
		return codes.InvalidArgument
	case errors.Is(err, errNoVolume):
		return codes.NotFound
	case errors.Is(err, errSizeMismatch):
		return codes.FailedPrecondition
	case errors.As(err, &me):
		switch me.Type {
		case mount.UnformattedReadOnly, mount.FilesystemMismatch, mount.HasFilesystemErrors:
			return codes.FailedPrecondition
		}
		return codes.Internal
	}
	return controllerserver.Code(err)
}

// toStatus wraps err in a status with the mapped code and a message that
// says what was being done; statuses pass through.
func toStatus(err error, doing string) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Errorf(code(err), "%s: %v", doing, err)
}

// pingCluster asks the monitors for their version within 5 seconds; only
// connection-level failures count as down.
func pingCluster(ctx context.Context, c *rados.Conn) bool {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, _, err := c.MonCommand(cctx, `{"prefix": "version"}`, nil)
	switch controllerserver.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
		return false
	}
	return true
}
