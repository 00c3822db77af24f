package e2e

import (
	"os"
	"testing"
)

// TestMain tears down the node cluster the tests share (sharedCluster).
func TestMain(m *testing.M) {
	code := m.Run()
	teardownShared(code != 0)
	os.Exit(code)
}
