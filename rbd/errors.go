package rbd

import "errors"

var (
	// ErrUnsupportedFeature is matched by *FeatureError.
	ErrUnsupportedFeature = errors.New("rbd: unsupported image feature")
	// ErrNotFound: the image (or snapshot) does not exist. Errors carrying
	// it also match syscall.ENOENT when they come from the cluster.
	ErrNotFound = errors.New("rbd: not found")
	// ErrExists: an image with that name already exists.
	ErrExists = errors.New("rbd: already exists")
	// ErrReadOnly: the image was opened read-only or at a snapshot.
	ErrReadOnly = errors.New("rbd: image is read-only")
	// ErrBusy: the image has watchers or snapshots that forbid the operation.
	ErrBusy = errors.New("rbd: image is busy")
	// ErrFormat1: the image uses the unsupported format 1.
	ErrFormat1 = errors.New("rbd: format 1 images are not supported")
	// ErrInvalid: an argument is out of range (order, stripe layout, size).
	ErrInvalid = errors.New("rbd: invalid argument")
	// ErrMalformed wraps decoding failures of cls replies and RBD objects.
	ErrMalformed = errors.New("rbd: malformed data")
	// ErrOutOfRange: I/O beyond the end of the image.
	ErrOutOfRange = errors.New("rbd: I/O beyond the end of the image")
)
