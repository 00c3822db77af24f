package csiceph

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/mount-utils"

	"github.com/csi-gorbd/csi-gorbd/crypt/luks"
	"github.com/csi-gorbd/csi-gorbd/internal/csicrypt"
	"github.com/csi-gorbd/csi-gorbd/internal/kms"
	"github.com/csi-gorbd/csi-gorbd/rados"
	"github.com/csi-gorbd/csi-gorbd/rados/cephx"
	"github.com/csi-gorbd/csi-gorbd/rados/config"
	"github.com/csi-gorbd/csi-gorbd/rbd"
	"github.com/csi-gorbd/csi-gorbd/rbd/encryption"
)

// Errors of the CSI layer itself; test with errors.Is.
var (
	// ErrBadID: a volume or snapshot id this driver did not make.
	ErrBadID = errors.New("csiceph: malformed id")
	// ErrUnknownCluster: a cluster id that is not in the clusters file.
	ErrUnknownCluster = errors.New("csiceph: unknown cluster")
	// ErrSecrets: the request's secrets lack userID or userKey.
	ErrSecrets = errors.New("csiceph: bad secrets")
	// ErrNotStaged: the node has no record of the volume.
	ErrNotStaged = errors.New("csiceph: volume is not staged on this node")
	// ErrSizeMismatch: the image is not the size the device was asked to
	// take.
	ErrSizeMismatch = errors.New("csiceph: image size differs")
	// ErrPublished: the volume is published to another node in a way
	// that excludes the request's (a single-node access mode on either
	// side).
	ErrPublished = errors.New("csiceph: volume is published to another node")
	// ErrPublishedOther: the volume is published to the same node with
	// another capability.
	ErrPublishedOther = errors.New("csiceph: volume is published to the node with another capability")
)

// Code maps an error to a gRPC code. It is the only place either service
// turns errors (its own, mount-utils' and the Ceph stack's) into codes, so
// the same error means the same code from the controller and the node.
// Order matters: a context's end first (a paused cluster's error carries
// it), then what the request got wrong, then the Ceph stack's answers.
func Code(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	if c, ok := contextCode(err); ok {
		return c
	}
	if c, ok := requestCode(err); ok {
		return c
	}
	if c, ok := cephCode(err); ok {
		return c
	}
	return codes.Internal
}

func contextCode(err error) (codes.Code, bool) {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded, true
	case errors.Is(err, context.Canceled):
		return codes.Canceled, true
	}
	return codes.OK, false
}

// requestCode covers errors of the request or of this node's state.
func requestCode(err error) (codes.Code, bool) {
	var me mount.MountError
	switch {
	case errors.Is(err, ErrUnknownCluster), errors.Is(err, ErrBadID), errors.Is(err, ErrSecrets), errors.Is(err, ErrMutableParams),
		errors.Is(err, cephx.ErrBadKey), errors.Is(err, cephx.ErrKeyring), errors.Is(err, rados.ErrNoKey),
		errors.Is(err, config.ErrBadMonHost), errors.Is(err, config.ErrNoMonitors):
		return codes.InvalidArgument, true
	case errors.Is(err, kms.ErrSecret), errors.Is(err, kms.ErrConfig), errors.Is(err, kms.ErrUnsupported),
		errors.Is(err, encryption.ErrNoPassphrase):
		return codes.InvalidArgument, true
	case errors.Is(err, kms.ErrWrongPassphrase), errors.Is(err, luks.ErrWrongPassphrase):
		return codes.PermissionDenied, true
	case errors.Is(err, kms.ErrNoKey), errors.Is(err, kms.ErrCorrupt), errors.Is(err, csicrypt.ErrState),
		errors.Is(err, luks.ErrNotLUKS), errors.Is(err, encryption.ErrNotEncrypted), errors.Is(err, luks.ErrCorrupt), errors.Is(err, luks.ErrUnsupported),
		errors.Is(err, luks.ErrKDFLimit), errors.Is(err, luks.ErrNoSpace), errors.Is(err, luks.ErrInvalid),
		errors.Is(err, encryption.ErrClonedFormat), errors.Is(err, encryption.ErrTooSmall), errors.Is(err, encryption.ErrExists):
		// The image's encryption is not what the request needs.
		return codes.FailedPrecondition, true
	case errors.Is(err, ErrNotStaged), errors.Is(err, ErrNoVolume):
		return codes.NotFound, true
	case errors.Is(err, ErrSizeMismatch), errors.Is(err, ErrPublished):
		return codes.FailedPrecondition, true
	case errors.Is(err, ErrPublishedOther):
		return codes.AlreadyExists, true
	case errors.As(err, &me):
		switch me.Type {
		case mount.UnformattedReadOnly, mount.FilesystemMismatch, mount.HasFilesystemErrors:
			return codes.FailedPrecondition, true
		}
		return codes.Internal, true
	}
	return codes.OK, false
}

// cephCode covers the answers of the Ceph stack (typed errors and the
// errnos OSDs and monitors send).
func cephCode(err error) (codes.Code, bool) {
	switch {
	case errors.Is(err, rbd.ErrNotFound), errors.Is(err, rados.ErrPoolNotFound), errors.Is(err, syscall.ENOENT):
		return codes.NotFound, true
	case errors.Is(err, rbd.ErrExists), errors.Is(err, syscall.EEXIST):
		return codes.AlreadyExists, true
	case errors.Is(err, rados.ErrPermission), errors.Is(err, cephx.ErrPermission),
		errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return codes.PermissionDenied, true
	case errors.Is(err, rados.ErrPoolFull), errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return codes.ResourceExhausted, true
	case errors.Is(err, rbd.ErrBusy), errors.Is(err, syscall.EBUSY), errors.Is(err, rbd.ErrUnsupportedFeature),
		errors.Is(err, rbd.ErrFormat1), errors.Is(err, rbd.ErrReadOnly):
		return codes.FailedPrecondition, true
	case errors.Is(err, rbd.ErrOutOfRange):
		return codes.OutOfRange, true
	case errors.Is(err, rbd.ErrInvalid), errors.Is(err, rbd.ErrQoSValue), errors.Is(err, syscall.EINVAL):
		return codes.InvalidArgument, true
	case errors.Is(err, rados.ErrNoMonitor), errors.Is(err, rados.ErrClosed), errors.Is(err, rados.ErrSecureRequired),
		errors.Is(err, rados.ErrAuthMethod), errors.Is(err, cephx.ErrBadMethod), errors.Is(err, cephx.ErrNoTicket),
		errors.Is(err, rados.ErrWrongCluster), errors.Is(err, rados.ErrPaused), errors.Is(err, syscall.EAGAIN),
		errors.Is(err, syscall.ESHUTDOWN),
		errors.Is(err, rbd.ErrQuiesce): // the image's users did not quiesce: no snapshot, try again
		return codes.Unavailable, true
	}
	return codes.OK, false
}

// Status wraps err in a gRPC status with the mapped code; doing, if not
// empty, says what was being done and leads the message. Errors that are
// statuses already pass through.
func Status(err error, doing string) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	if doing == "" {
		return status.Error(Code(err), err.Error())
	}
	return status.Error(Code(err), fmt.Sprintf("%s: %v", doing, err))
}

// broken reports whether err shows a connection to be unusable: closed,
// no monitor reachable, or this client blocklisted (ESHUTDOWN from the
// OSDs). The pool drops such a connection so the next call redials.
func broken(err error) bool {
	return errors.Is(err, rados.ErrClosed) || errors.Is(err, rados.ErrNoMonitor) || errors.Is(err, syscall.ESHUTDOWN)
}

// down reports whether a health check's error means the session is down
// (a refusal still proves the cluster answers).
func down(err error) bool {
	switch Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
		return true
	}
	return false
}
