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

// PID reads /sys/block/nbdN/pid: the process that connected the device.
// It fails (ENOENT) when the device is not connected.
func PID(index int) (int, error) {
	s, err := readSys(index, "pid")
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(s)
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
