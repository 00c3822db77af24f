#!/bin/busybox sh
# PID 1 of the test VM: mount the pseudo filesystems, load the modules the
# host put in /etc/modules.order, run the guest tests, print
# "VM-TEST-RESULT: PASS|FAIL" on the serial console and power off.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs -o size=80% tmp /tmp
mkdir -p /run /mnt /var/tmp
up() { cut -d' ' -f1 /proc/uptime; }
echo "[guest $(up)s] init: kernel $(uname -r)"
RUN=.
NET=0
TTIMEOUT=400
for a in $(cat /proc/cmdline); do
	case "$a" in
	gorbd.run=*) RUN=${a#gorbd.run=} ;;
	gorbd.net=*) NET=${a#gorbd.net=} ;;
	gorbd.timeout=*) TTIMEOUT=${a#gorbd.timeout=} ;;
	esac
done
while read -r m args; do
	[ -n "$m" ] && { insmod "/lib/modules/$m" $args || echo "insmod $m failed"; }
done < /etc/modules.order
ip link set lo up
if [ "$NET" = 1 ] && ip link show eth0 >/dev/null 2>&1; then
	# qemu user networking: the host's loopback is 10.0.2.2
	ip link set eth0 up
	ip addr add 10.0.2.15/24 dev eth0
	ip route add default via 10.0.2.2
fi
[ -f /etc/gorbd-vm.env ] && { set -a; . /etc/gorbd-vm.env; set +a; }
export GORBD_VM_GUEST=1 GORBD_BIN=/bin/csi-gorbd
echo "[guest $(up)s] running guest tests (-run '$RUN')"
/bin/guest.test -test.v -test.count=1 -test.timeout=${TTIMEOUT}s -test.run "$RUN" 2>&1
RC=$?
echo "[guest $(up)s] nbd kernel messages:"
dmesg | grep -E 'nbd|EXT4|XFS' | tail -40
if [ $RC = 0 ]; then
	echo "VM-TEST-RESULT: PASS (uptime $(up)s)"
else
	echo "VM-TEST-RESULT: FAIL rc=$RC (uptime $(up)s)"
fi
sync
reboot -f
