# kernel.sh: sourced by run.sh and node/build.sh. Fetches (once) the newest
# Debian linux-image-<ver>-cloud-amd64 package, unpacks it without installing
# it (installing would run the initramfs and grub hooks on the host) and runs
# depmod, into $CACHE/kernel-$KVER. Needs CACHE set; sets KVER and KDIR.
# nbd.ko is a module there (CONFIG_BLK_DEV_NBD=m), as are virtio_blk, overlay,
# bridge, br_netfilter, veth and xfs.
KFLAVOUR=cloud-amd64
kernel_pkg() { apt-cache depends "linux-image-$KFLAVOUR" 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}'; }
KPKG=$(kernel_pkg || true)
if [ -z "$KPKG" ]; then
	apt-get update -qq
	KPKG=$(kernel_pkg)
fi
KVER=${KPKG#linux-image-}
KDIR=$CACHE/kernel-$KVER
if [ ! -f "$KDIR/boot/vmlinuz-$KVER" ]; then
	(
		exec 8> "$CACHE/kernel.lock" # run.sh and node/build.sh may start together
		flock 8
		if [ ! -f "$KDIR/boot/vmlinuz-$KVER" ]; then
			rm -rf "$KDIR.tmp" "$CACHE/debs" && mkdir -p "$KDIR.tmp" "$CACHE/debs"
			(cd "$CACHE/debs" && apt-get download -q "$KPKG" 2>&1 | grep -v -i unsandboxed || true)
			dpkg-deb -x "$CACHE"/debs/"$KPKG"_*.deb "$KDIR.tmp"
			depmod -b "$KDIR.tmp" "$KVER"
			rm -rf "$KDIR" && mv "$KDIR.tmp" "$KDIR"
			rm -rf "$CACHE/debs"
		fi
	)
fi
