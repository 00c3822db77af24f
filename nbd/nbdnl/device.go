package nbdnl

import (
	"fmt"
	"strconv"
	"strings"
)

// DevicePath returns /dev/nbdN.
func DevicePath(index int) string { return fmt.Sprintf("/dev/nbd%d", index) }

// ParseDevice accepts "/dev/nbdN", "nbdN" or "N" and returns N.
func ParseDevice(s string) (int, error) {
	t := strings.TrimPrefix(s, "/dev/")
	t = strings.TrimPrefix(t, "nbd")
	n, err := strconv.Atoi(t)
	if err != nil || n < 0 || t == "" || t[0] == '+' {
		return -1, fmt.Errorf("nbdnl: %q is not an nbd device", s)
	}
	return n, nil
}
