#!/bin/bash
# PID 1 of the Kubernetes node VM (test/vm/node, booted by test/e2e).
# Stage 1 (initrd.sh) mounted the node disk as / and moved /dev here. This
# sets up what a kubelet node needs without systemd: pseudo filesystems,
# cgroup2 with the controllers delegated, a shared root mount (Bidirectional
# mount propagation needs it), bridge netfilter, the qemu user network,
# then reads the per-boot configuration the host wrote as a tar on /dev/vdb
# and starts the guest agent, containerd and the kubelet.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
L=/var/log/gorbd-node
say() { echo "[node $(cut -d' ' -f1 /proc/uptime)s] $*" > /dev/console; }
mount -t proc proc /proc
mount -t sysfs sys /sys
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777 shm /dev/shm
mount -t tmpfs -o mode=755 run /run
mount -t tmpfs -o mode=1777 tmp /tmp
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount --make-rshared /
mkdir -p $L /etc/gorbd-node
say "init: kernel $(uname -r)"

# Config from the host: env, kubeconfig, kubelet.yaml.
tar -xf /dev/vdb -C / || say "FATAL: cannot read the config disk /dev/vdb"
set -a
. /etc/gorbd-node/env
set +a
hostname "$NODE_NAME"
printf '127.0.0.1 localhost\n10.0.2.15 %s\n' "$NODE_NAME" > /etc/hosts

# overlay (containerd), bridge + br_netfilter + veth (the bridge CNI
# plugin), loop (the kubelet holds raw block volumes open with a loop
# device); netfilter modules load on demand through modprobe. nbd is not
# loaded here: the node plugin loads it, as on any node.
for m in virtio_net overlay bridge br_netfilter veth loop; do modprobe "$m" || say "modprobe $m failed"; done
sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1
# The kubelet (cgroupfs driver) puts pods under /kubepods: delegate the
# controllers it needs from the root.
echo "+cpu +cpuset +memory +pids +io" > /sys/fs/cgroup/cgroup.subtree_control

# qemu user networking: the host's loopback is 10.0.2.2, DNS 10.0.2.3.
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
echo "nameserver 10.0.2.3" > /etc/resolv.conf

# Guest agent: Ceph ports forwarded to the host, /exec for the host.
gorbd-node-agent -forward "${CEPH_PORTS:-}" -listen ":${AGENT_PORT:-7000}" > $L/agent.log 2>&1 &
say "network and agent up"

containerd --config /etc/containerd/config.toml > $L/containerd.log 2>&1 &
for _ in $(seq 1 600); do [ -S /run/containerd/containerd.sock ] && break; sleep 0.1; done
say "containerd up"
say "images: $(ctr -n k8s.io images ls -q | grep -v '^sha256:' | tr '\n' ' ')"

kubelet --config /etc/gorbd-node/kubelet.yaml --kubeconfig /etc/gorbd-node/kubeconfig \
	--hostname-override "$NODE_NAME" --node-ip 10.0.2.15 ${KUBELET_ARGS:-} > $L/kubelet.log 2>&1 &
say "GORBD-NODE-UP"

# PID 1 reaps what gets re-parented to it (exited containerd shims).
while true; do
	sleep 60 &
	wait $!
done
