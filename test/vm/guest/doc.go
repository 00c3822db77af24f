// Package guest holds the kernel NBD tests that run inside the test VM
// (test/vm/run.sh): they need a real nbd.ko, root, and the filesystem tools
// the VM's initramfs carries, so outside the VM (GORBD_VM_GUEST unset) they
// skip. run.sh builds them with `go test -c` into a static binary.
//
// Adding a test that needs a service on the host (the RBD variant: a Ceph
// cluster reached at 10.0.2.2 with VM_NET=1) means adding a Test function
// here and its settings to VM_ENV_FILE; the harness stays as it is.
package guest
