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
// # Single writer and fencing
//
// A writable stage of a single-node access mode (SINGLE_NODE_WRITER,
// SINGLE_NODE_SINGLE_WRITER, SINGLE_NODE_MULTI_WRITER) holds the image
// alone for as long as it is staged (fence.go). An image with the
// exclusive-lock feature is opened with rbd.OpenOptions.Exclusive, krbd's
// "-o exclusive": the lock is taken at open and never handed over (a
// peer's lock request is refused), so a second node's stage fails with
// FailedPrecondition naming the holder (client, address and, from its
// stage record, node). An image without the feature has no lock to hold:
// the stage refuses while another client watches its header. Reader-only
// modes and multi-node multi-writer block volumes open as before.
//
// Every such stage writes its stage record into the image's metadata
// (csi-gorbd.staged.<node id>: the client that holds it; package
// internal/csiceph) and NodeUnstageVolume removes it. The controller's
// attachments record (ControllerPublish/Unpublish) says which nodes the
// volume is published to and which it was withdrawn from. A stage that
// finds the image held by a client whose stage record names a withdrawn
// node (a node that was force-detached, or is partitioned away while the
// CO moved its pod) fences that client: it is blocklisted (`ceph osd
// blocklist add`, then this client waits for the OSDMap that carries it)
// before its lock is broken or, without the feature, before the stage goes
// on. The old holder's next write fails with EBLOCKLISTED, and its backend
// stays fenced (every later I/O fails with EIO, also once the blocklist
// entry expires: package internal/rbdbackend). Without an attachments
// record (no controller-publish secret, no attacher) nothing is known to
// be withdrawn: a holder then counts as dead only when its watch is gone
// (osd_client_watch_timeout, 30 s after it stopped answering).
//
// The clients of this state directory's previous process are fenced the
// same way (see State): a plugin restarted on its node takes its own
// images over at once.
//
// # State
//
// The state directory holds two things, both 0600 files in 0700
// directories: nbd/ (package attach's device records, which never hold
// secrets) and volumes/, one record per staged volume with what this
// package needs to serve it again after a restart: the volume id, the
// staging path, the published targets, the access type and mode, and the
// Ceph user and key from the node-stage secrets (rewritten when a later
// NodeStageVolume of the staged volume brings other secrets that connect:
// a rotated key). Keeping the key there is
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
