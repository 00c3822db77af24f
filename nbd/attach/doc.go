// Package attach turns NBD exports into kernel block devices on a node and
// keeps them alive across restarts of the serving process.
//
// It sits between the NBD server (package nbd), which speaks the
// transmission phase on a socket, and the kernel's nbd driver (package
// nbdnl), which takes sockets over generic netlink:
//
//	Attach: backend := factory(spec); N socketpairs; our ends are served
//	        with the NBD transmission phase; the other ends go to the kernel
//	        with NBD_CMD_CONNECT; the attachment is recorded in the state
//	        directory.
//	Recover: on process start, for every record: reopen the backend with the
//	        factory, new socketpairs, serve them, NBD_CMD_RECONFIGURE with the
//	        recorded backend identifier (the kernel refuses any other).
//	Detach: NBD_CMD_DISCONNECT, then the record is removed.
//
// Stopping the serving process (SIGTERM, context cancel, even kill -9) never
// disconnects a device: its sockets die, the kernel holds the I/O for the
// dead-connection timeout (DeadConnTimeout, default 120 s) and a new process
// that runs Recover within it loses nothing. Only Detach disconnects.
//
// While serving, a connection that the kernel drops (a request timeout
// marks the socket dead) is replaced: the manager makes a new socketpair and
// reconfigures the device with it, so a slow backend does not turn into an
// I/O error.
//
// # State directory
//
// One JSON file per device, nbdN.json, mode 0600 in a 0700 directory,
// written atomically (temporary file, fsync, rename, fsync of the
// directory: package internal/records). New deletes temporary files a
// crash left, once they are old enough not to be another process's write
// in flight. A record holds what Recover needs to find the device and
// reopen its backend: device index, backend identifier (the volume id),
// the image spec string, size and options. It never holds secrets: the
// image spec names the image only, and the backend factory gets the
// credentials from where the caller keeps them (the CSI node plugin from
// its secrets; the CLI from its flags or keyring). This keeps the state
// directory, which outlives the process and may sit on a host path, free
// of anything worth stealing.
//
// # Memory reclaim
//
// The serving process is in the kernel's write-back path for its own
// devices: if it had to wait for memory reclaim that writes back dirty pages
// of those devices, it would deadlock. The manager sets PR_SET_IO_FLUSHER
// for every thread of the process (see SetIOFlusher) before serving.
package attach
