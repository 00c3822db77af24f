// Command pause is the pod sandbox's process for the test node's
// containerd (its sandbox_image): it holds the pod's namespaces open and
// does nothing else. Like the upstream pause image it exits 0 on SIGINT or
// SIGTERM, reaps the zombies it inherits as PID 1 of a shared PID
// namespace, and prints its version with -v.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// version is the upstream pause version this stands in for
// (registry.k8s.io/pause tag in k8s.io/kubernetes test/utils/image).
const version = "3.10.2"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-v" {
		fmt.Printf("pause (csi-gorbd test image) v%s\n", version)
		return
	}
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "Warning: pause should be the first process")
	}
	sig := make(chan os.Signal, 8)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sig {
		if s == syscall.SIGCHLD {
			for {
				var ws syscall.WaitStatus
				pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
				if pid <= 0 || err != nil {
					break
				}
			}
			continue
		}
		fmt.Fprintf(os.Stderr, "Shutting down, got signal: %v\n", s)
		os.Exit(0)
	}
}
