package csiceph

import (
	"os/exec"
	"strings"
	"testing"
)

// TestServicesAreSiblings: the controller and node services share this
// package and never import each other (tests included), and this package
// imports neither (`go list -deps`).
func TestServicesAreSiblings(t *testing.T) {
	const mod = "github.com/csi-gorbd/csi-gorbd/"
	for pkg, banned := range map[string][]string{
		"controllerserver": {"nodeserver"},
		"nodeserver":       {"controllerserver"},
		"internal/csiceph": {"controllerserver", "nodeserver"},
	} {
		cmd := exec.Command("go", "list", "-deps", "-test", "./"+pkg)
		cmd.Dir = "../.."
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -deps -test ./%s: %v", pkg, err)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 10 {
			t.Fatalf("go list -deps ./%s listed only %v", pkg, deps)
		}
		for _, d := range deps { // "pkg" or, for test variants, "pkg [pkg.test]"
			d = strings.Trim(d, "[]")
			for _, b := range banned {
				if d == mod+b || d == mod+b+".test" {
					t.Errorf("%s depends on %s", pkg, d)
				}
			}
		}
	}
}
