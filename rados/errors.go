package rados

import (
	"github.com/csi-gorbd/csi-gorbd/rados/mon"
	"github.com/csi-gorbd/csi-gorbd/rados/osd"
)

// Errors returned by Connect and Conn methods; test with errors.Is.
var (
	// ErrPermission: the cluster refused our credentials (wrong key,
	// unknown user) or a command (EACCES/EPERM).
	ErrPermission = mon.ErrPermission
	// ErrSecureRequired: the cluster demands a connection mode we did not
	// offer (MsMode "crc" against a secure-only cluster).
	ErrSecureRequired = mon.ErrSecureRequired
	// ErrAuthMethod: the cluster does not accept our auth method (cephx
	// against auth=none or the reverse).
	ErrAuthMethod = mon.ErrAuthMethod
	// ErrNoMonitor: no monitor could be reached; the error text names every
	// address tried.
	ErrNoMonitor = mon.ErrNoMonitor
	// ErrWrongCluster: the monitors' fsid differs from Config.FSID.
	ErrWrongCluster = mon.ErrWrongCluster
	// ErrClosed: the connection was closed.
	ErrClosed = mon.ErrClosed
	// ErrPaused: the cluster had the pauserd/pausewr flag (`ceph osd
	// pause`) set for this kind of operation until the operation's
	// context ended (operations wait for `ceph osd unpause`, as with
	// librados). The error also matches syscall.EAGAIN and the context's
	// error.
	ErrPaused = osd.ErrPaused
)

// MonError is a monitor's negative answer: errno and status text.
type MonError = mon.CommandError

// HuntError lists the monitors tried by a failed Connect.
type HuntError = mon.HuntError
