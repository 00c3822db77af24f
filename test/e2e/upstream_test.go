package e2e

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestUpstream runs Kubernetes' External Storage suite (upstream/run.sh,
// GORBD_E2E_UPSTREAM=ci|full) against the node cluster the Pod flows used:
// the chart's node plugin on the VM's kubelet, its classes, the images in
// the node's containerd. Skipped without GORBD_E2E_UPSTREAM; CI sets "ci".
func TestUpstream(t *testing.T) {
	set := os.Getenv("GORBD_E2E_UPSTREAM")
	if set == "" {
		t.Skip("GORBD_E2E_UPSTREAM unset (ci or full): the upstream External Storage suite does not run")
	}
	c := sharedCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Hour)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "upstream/run.sh", set)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.k.kubeconfig, "GORBD_E2E_BINS="+c.k.bins)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	t0 := time.Now()
	err := cmd.Run()
	c.timing("upstream External Storage suite ("+set+")", time.Since(t0))
	if err != nil {
		c.dump(t)
		t.Fatalf("upstream/run.sh %s: %v", set, err)
	}
}
