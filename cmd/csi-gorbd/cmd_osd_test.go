package main

import (
	"strings"
	"testing"

	"github.com/csi-gorbd/csi-gorbd/internal/cephtest"
)

// cephTool runs the cluster's own ceph/rados CLI (CEPH_CLI prefix).
func cephTool(t *testing.T, cl *cephtest.Cluster, name string, args ...string) (string, string, int) {
	t.Helper()
	full := append([]string{name, "-c", cl.Conf(), "-k", cl.Keyring()}, args...)
	if cli := cl.Get("CEPH_CLI"); cli != "" {
		full = append(strings.Fields(cli), full...)
	}
	return run(t, full[0], full[1:]...)
}

// TestOSDMapAgainstCeph: `csi-gorbd osd map` prints what `ceph osd map`
// prints, for several objects and namespaces on every release.
func TestOSDMapAgainstCeph(t *testing.T) {
	for _, name := range []string{"pacific", "reef", "tentacle"} {
		t.Run(name, func(t *testing.T) {
			cl := cephtest.Need(t, name)
			bin := binary(t)
			g := []string{"-c", cl.Conf(), "-k", cl.Keyring()}
			pool := cl.Get("CEPH_POOL")
			cases := [][]string{{"foo"}, {"rbd_header.1234abcd"}, {"rbd_data.10.0000000000000001"}, {"x", "ns1"},
				{"rbd_directory", "csi"}, {"with space", "ns-2"}, {"", "ns"}, {"Ünïcode-☃"}}
			for _, c := range cases {
				oid, ns := c[0], ""
				args := []string{"osd", "map", pool, oid}
				if len(c) > 1 {
					ns = c[1]
					args = append(args, ns)
				}
				// The map may change between the two commands (other tests
				// create pools): retry until both saw the same epoch.
				var ours, theirs string
				for try := 0; try < 5; try++ {
					var code int
					var stderr string
					theirs, stderr, code = cephTool(t, cl, "ceph", args...)
					if code != 0 {
						t.Fatalf("ceph %v: exit %d: %s", args, code, stderr)
					}
					ourArgs := append(append([]string{}, g...), "osd", "map", pool, oid)
					if ns != "" {
						ourArgs = append(ourArgs, "--namespace", ns)
					}
					ours, stderr, code = run(t, bin, ourArgs...)
					if code != 0 {
						t.Fatalf("csi-gorbd %v: exit %d: %s", ourArgs, code, stderr)
					}
					if ours == theirs {
						break
					}
				}
				if ours != theirs {
					t.Errorf("object %q ns %q:\nours   %q\ntheirs %q", oid, ns, ours, theirs)
				}
			}
			_, stderr, code := run(t, bin, append(g, "osd", "map", "no-such-pool", "x")...)
			if code != 2 || !strings.Contains(stderr, "Error ENOENT: pool no-such-pool does not exist") {
				t.Errorf("missing pool: exit %d, %q", code, stderr)
			}
		})
	}
}

// TestBenchSmoke runs write (kept), seq, rand and cleanup briefly and
// checks rados bench's summary fields are printed.
func TestBenchSmoke(t *testing.T) {
	cl := cephtest.Need(t, "pacific")
	bin := binary(t)
	g := []string{"-c", cl.Conf(), "-k", cl.Keyring(), "bench", "-p", cl.Get("CEPH_POOL"), "-b", "8192", "-t", "2"}
	fields := map[string][]string{
		"write": {"Total time run:", "Total writes made:", "Write size:", "Object size:", "Bandwidth (MB/sec):",
			"Stddev Bandwidth:", "Max bandwidth (MB/sec):", "Min bandwidth (MB/sec):", "Average IOPS:", "Stddev IOPS:",
			"Max IOPS:", "Min IOPS:", "Average Latency(s):", "Stddev Latency(s):", "Max latency(s):", "Min latency(s):"},
		"seq": {"Total time run:", "Total reads made:", "Read size:", "Object size:", "Bandwidth (MB/sec):",
			"Average IOPS:", "Stddev IOPS:", "Max IOPS:", "Min IOPS:", "Average Latency(s):", "Max latency(s):", "Min latency(s):"},
	}
	fields["rand"] = fields["seq"]
	for _, mode := range []string{"write", "seq", "rand"} {
		args := append(append([]string{}, g...), "1", mode)
		if mode == "write" {
			args = append(args, "--no-cleanup")
		}
		out, stderr, code := run(t, bin, args...)
		if code != 0 {
			t.Fatalf("bench %s: exit %d: %s", mode, code, stderr)
		}
		for _, f := range fields[mode] {
			if !strings.Contains(out, "\n"+f) {
				t.Errorf("bench %s: no %q in\n%s", mode, f, out)
			}
		}
		if mode == "write" && strings.Contains(out, "Total writes made:      0\n") {
			t.Errorf("no writes:\n%s", out)
		}
	}
	out, stderr, code := run(t, bin, append(append([]string{}, g...), "0", "cleanup")...)
	if code != 0 || !strings.HasPrefix(out, "Removed ") {
		t.Fatalf("cleanup: exit %d %q %s", code, out, stderr)
	}
	_, stderr, code = run(t, bin, append(append([]string{}, g...), "1", "seq")...)
	if code == 0 || !strings.Contains(stderr, "no benchmark objects") {
		t.Errorf("seq after cleanup: exit %d %s", code, stderr)
	}
}
