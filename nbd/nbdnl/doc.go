// Package nbdnl controls the Linux kernel's NBD block driver (nbd.ko)
// through its generic netlink family "nbd" (include/uapi/linux/nbd-netlink.h).
//
// This is the kernel-facing layer of the node attach path: the caller has
// already created connected sockets (socketpairs whose other ends it serves
// with the NBD transmission phase) and nbdnl hands them to the kernel with
// NBD_CMD_CONNECT, gives a device fresh sockets with NBD_CMD_RECONFIGURE
// (server restart, online resize), tears devices down with
// NBD_CMD_DISCONNECT and lists them with NBD_CMD_STATUS. It knows nothing
// about the NBD wire protocol, exports or Ceph.
//
// The kernel facts the package relies on (drivers/block/nbd.c, Linux 6.1):
//
//   - CONNECT requires NBD_ATTR_SIZE_BYTES; without NBD_ATTR_INDEX the kernel
//     picks (or creates) a free device and returns its index in the reply.
//   - A device connected with NBD_ATTR_BACKEND_IDENTIFIER refuses a
//     RECONFIGURE that does not repeat the identifier (EINVAL). The
//     identifier is shown in /sys/block/nbdN/backend.
//   - RECONFIGURE with NBD_ATTR_SOCKETS replaces sockets the kernel has
//     marked dead; a socket for which no dead slot exists is dropped
//     silently (the kernel maps ENOSPC to success). The caller notices that
//     as an immediate EOF on its end of the dropped socket.
//   - RECONFIGURE with NBD_ATTR_SIZE_BYTES resizes a connected device
//     online (nbd_genl_size_set). The NBD_SET_SIZE ioctl is no fallback: the
//     kernel refuses every ioctl but DISCONNECT and CLEAR_SOCK on a
//     netlink-bound device.
//   - With NBD_ATTR_DEAD_CONN_TIMEOUT, I/O on a device whose sockets are all
//     dead waits that long for a RECONFIGURE before failing.
//
// Everything here needs CAP_SYS_ADMIN. When the kernel has no nbd support
// (no "nbd" family even after modprobe nbd) the functions return an error
// satisfying errors.Is(err, ErrNotSupported).
package nbdnl
