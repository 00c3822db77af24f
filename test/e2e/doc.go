// Package e2e is the Kubernetes end-to-end suite of csi-gorbd's controller
// side: a real control plane on loopback (etcd, kube-apiserver,
// kube-controller-manager), the VolumeSnapshot CRDs and snapshot-controller,
// the real CSI sidecars (csi-provisioner, csi-snapshotter, csi-resizer)
// started with the arguments and ServiceAccount RBAC the Helm chart renders,
// and the csi-gorbd controller plugin built from this repository, talking to
// a real Ceph cluster (test/cluster "pacific").
//
// There is no container runtime or kubelet here: the chart's cluster objects
// are applied to the apiserver, the whole chart is checked with a server-side
// dry-run, and the processes a Deployment would run are started directly.
//
// The binaries come from build-bins.sh (Go module proxy only, cached under
// /var/tmp/gorbd/k8s). The suite skips unless GORBD_E2E_BINS names that
// directory; test/run-all.sh sets it, so in CI it cannot skip silently.
// See README.md.
package e2e
