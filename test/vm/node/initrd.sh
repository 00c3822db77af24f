#!/bin/busybox sh
# Stage 1 of the node VM: load the virtio block modules (they are modules in
# Debian's cloud kernel), mount the node disk and switch to its init.sh.
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sys /sys
/bin/busybox mount -t devtmpfs dev /dev
while read -r m; do [ -n "$m" ] && /bin/busybox insmod "/mods/$m"; done < /mods/order
for _ in $(/bin/busybox seq 1 100); do [ -b /dev/vda ] && break; /bin/busybox sleep 0.1; done
if ! /bin/busybox mount -t ext4 -o rw /dev/vda /newroot; then
	echo "stage 1: cannot mount /dev/vda"
	/bin/busybox poweroff -f
fi
/bin/busybox umount /proc /sys
/bin/busybox mount --move /dev /newroot/dev
exec /bin/busybox switch_root /newroot /sbin/gorbd-node-init
