package controllerserver

import (
	"context"
	"errors"
	"syscall"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/csi-gorbd/csi-gorbd/rados"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

var errUnknownCluster = errors.New("unknown cluster")

// Code maps an error from the Ceph stack to a gRPC code. It is the only
// place the controller turns rados/rbd errors into codes.
func Code(err error) codes.Code {
	switch {
	case err == nil:
		return codes.OK
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	case errors.Is(err, errUnknownCluster), errors.Is(err, ErrBadID):
		return codes.InvalidArgument
	case errors.Is(err, rbd.ErrNotFound), errors.Is(err, rados.ErrPoolNotFound), errors.Is(err, syscall.ENOENT):
		return codes.NotFound
	case errors.Is(err, rbd.ErrExists), errors.Is(err, syscall.EEXIST):
		return codes.AlreadyExists
	case errors.Is(err, rados.ErrPermission), errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return codes.PermissionDenied
	case errors.Is(err, rados.ErrPoolFull), errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return codes.ResourceExhausted
	case errors.Is(err, rbd.ErrBusy), errors.Is(err, syscall.EBUSY), errors.Is(err, rbd.ErrUnsupportedFeature),
		errors.Is(err, rbd.ErrFormat1), errors.Is(err, rbd.ErrReadOnly):
		return codes.FailedPrecondition
	case errors.Is(err, rbd.ErrInvalid), errors.Is(err, syscall.EINVAL):
		return codes.InvalidArgument
	case errors.Is(err, rados.ErrNoMonitor), errors.Is(err, rados.ErrClosed), errors.Is(err, rados.ErrSecureRequired),
		errors.Is(err, rados.ErrAuthMethod), errors.Is(err, rados.ErrWrongCluster):
		return codes.Unavailable
	}
	return codes.Internal
}

// toStatus wraps err in a gRPC status with the mapped code; errors that are
// already statuses pass through.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(Code(err), err.Error())
}
