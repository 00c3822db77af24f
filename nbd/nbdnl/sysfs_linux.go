//go:build linux

package nbdnl

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// sysBlock is where the kernel publishes block devices; a variable so tests
// can point it at a fake tree.
var sysBlock = "/sys/block"

func readSys(index int, name string) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("%s/nbd%d/%s", sysBlock, index, name))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// BackendIdentifier reads /sys/block/nbdN/backend: the identifier the device
// was connected with, "" if none or not connected.
func BackendIdentifier(index int) (string, error) {
	return readSys(index, "backend")
}

// procDir is /proc; a variable for tests.
var procDir = "/proc"

// PID returns the process that connected the device. The kernel records the
// connecting thread (/sys/block/nbdN/pid holds its thread id); PID maps it
// to its thread group through /proc/TID/status. If that thread no longer
// exists (the serving process died and a new one reconfigured the device:
// the kernel keeps the old id) the thread id is returned with an error
// matching errors.Is(err, fs.ErrNotExist). It fails with fs.ErrNotExist as
// well when the device is not connected.
func PID(index int) (int, error) {
	s, err := readSys(index, "pid")
	if err != nil {
		return 0, err
	}
	tid, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("nbdnl: nbd%d pid %q: %w", index, s, err)
	}
	st, err := os.ReadFile(fmt.Sprintf("%s/%d/status", procDir, tid))
	if err != nil {
		return tid, fmt.Errorf("nbdnl: nbd%d: connecting task %d: %w", index, tid, err)
	}
	for _, l := range strings.Split(string(st), "\n") {
		if v, ok := strings.CutPrefix(l, "Tgid:"); ok {
			if pid, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
				return pid, nil
			}
		}
	}
	return tid, nil
}

// SizeBytes reads the device capacity from /sys/block/nbdN/size (512-byte
// sectors); 0 when not connected.
func SizeBytes(index int) (int64, error) {
	s, err := readSys(index, "size")
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n * 512, err
}
