// Package nodeserver implements the CSI Node service: it attaches RBD
// images as kernel block devices served over NBD from inside the plugin
// process (packages nbd/attach and internal/rbdbackend), formats blank
// devices and mounts them with k8s.io/mount-utils.
//
//	NodeStageVolume    open the image with the node-stage secrets (userID,
//	                   userKey), attach it (/dev/nbdN), format it only if
//	                   blkid finds nothing on it (ext4 or xfs, mkfsOptions
//	                   from the volume context) and mount it on the staging
//	                   path; a block volume stays a device.
//	NodePublishVolume  bind-mount the staging path (or the device, onto a
//	                   file) on the target path, read-only when asked.
//	NodeUnpublishVolume unmount and remove the target path.
//	NodeUnstageVolume  unmount the staging path, disconnect the device,
//	                   close the image.
//	NodeExpandVolume   re-read the image size, tell the kernel
//	                   (NBD_CMD_RECONFIGURE), grow the filesystem.
//	NodeGetVolumeStats bytes and inodes.
//	NodeGetVolumeHealth INACCESSIBLE when the device is no longer served
//	                   by this process or the cluster does not answer (CSI
//	                   1.13 replaced VolumeCondition with this call).
//
// Every call is idempotent, and one call per volume runs at a time (a
// concurrent one gets Aborted). Errors become gRPC codes through the one
// table both services use (package internal/csiceph), and cluster
// connections come from its pool.
//
// # Access modes
//
// Single-node writer, single writer and multi writer; multi-node
// multi-writer for block volumes only (two filesystems on one image would
// corrupt it); single-node and multi-node reader-only. A reader-only
// volume is attached read-only (the kernel device refuses writes) and its
// filesystem mounted ro with journal replay off (ext4 noload, xfs
// norecovery); a blank one is refused with FailedPrecondition, since it
// cannot be formatted. A single read-only publish of a volume staged
// read-write is a read-only bind mount: for a filesystem that stops
// writes, for a block device node it does not (the kernel checks device
// writes against the device, not the mount), and the CO's device cgroup,
// which the kubelet sets read-only, is what enforces it.
//
// # State
//
// The state directory holds two things, both 0600 files in 0700
// directories: nbd/ (package attach's device records, which never hold
// secrets) and volumes/, one record per staged volume with what this
// package needs to serve it again after a restart: the volume id, the
// staging path, the published targets, the access type and mode, and the
// Ceph user and key from the node-stage secrets. Keeping the key there is
// deliberate: a restarted plugin must reopen the image before the kubelet
// calls it again, and the kubelet never repeats NodeStageVolume for a
// volume that is staged. The records are removed by NodeUnstageVolume.
//
// A third file, owner, is the directory's lock (flock: one process serves
// a state directory; a second waits for the first to exit) and lists the
// Ceph clients (fsid and global id) of the processes that held it
// (package internal/incarnation).
//
// Recover (called before the gRPC endpoint opens) reopens every recorded
// image and hands the kernel fresh sockets with NBD_CMD_RECONFIGURE, so a
// plugin killed with -9 and restarted within the kernel's dead-connection
// timeout loses no I/O and the mounts above the devices never notice. The
// dead process's exclusive locks are taken over at once: its clients are
// in the owner file, so they are blocklisted and their locks broken
// without waiting the 30 s its header watches outlive it on the OSDs.
//
// The package never logs; mount-utils, which it calls, logs through klog.
package nodeserver
