package csiceph

import (
	"fmt"
	"sort"
	"strings"
)

// mkfsOptions are the mkfs options a StorageClass's mkfsOptions may use,
// by filesystem: whether each takes a value. Options that read or write
// host files (mke2fs -d, -z, -l; mkfs.xfs -p, -c), only pretend (-n,
// -N), rewrite an existing superblock (-S), check blocks (-c), or could
// panic the node on an error (mke2fs -e) are not on the list, and no value
// may hold a '/' (a path).
var mkfsOptions = map[string]map[string]bool{
	"ext4": {
		"-b": true, "-C": true, "-E": true, "-g": true, "-G": true, "-i": true, "-I": true, "-J": true,
		"-L": true, "-m": true, "-N": true, "-O": true, "-r": true, "-T": true, "-U": true,
		"-j": false, "-q": false, "-F": false, "-K": false,
	},
	"xfs": {
		"-b": true, "-d": true, "-i": true, "-l": true, "-m": true, "-n": true, "-s": true, "-L": true,
		"-K": false, "-q": false, "-f": false,
	},
}

// mkfsValueOK: characters an option value may hold (sizes, counts,
// feature lists with ^ for "off", key=value lists, labels, uuids).
func mkfsValueOK(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		case strings.ContainsRune("._,=:^+-", r):
		default:
			return false
		}
	}
	return true
}

// CheckMkfsOptions checks mkfsOptions (split on white space, as ceph-csi's
// node does) against the allowlist of fsType and returns the arguments.
func CheckMkfsOptions(fsType, opts string) ([]string, error) {
	allowed, ok := mkfsOptions[fsType]
	if !ok {
		return nil, fmt.Errorf("parameter %s: filesystem type %q is not supported (ext4 or xfs)", ParamMkfsOptions, fsType)
	}
	args := strings.Fields(opts)
	if len(args) == 0 {
		return nil, fmt.Errorf("parameter %s must not be empty (omit it for the defaults)", ParamMkfsOptions)
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if len(a) < 2 || a[0] != '-' {
			return nil, fmt.Errorf("parameter %s: %q is not an option (%s takes options only; the device is the driver's)", ParamMkfsOptions, a, mkfsCommand(fsType))
		}
		flag := a[:2]
		takesValue, ok := allowed[flag]
		if !ok {
			return nil, fmt.Errorf("parameter %s: option %s is not allowed for %s (allowed: %s)", ParamMkfsOptions, flag, fsType, allowedList(allowed))
		}
		if !takesValue {
			if len(a) > 2 {
				return nil, fmt.Errorf("parameter %s: option %s takes no value (%q)", ParamMkfsOptions, flag, a)
			}
			continue
		}
		val := a[2:]
		if val == "" {
			if i+1 >= len(args) {
				return nil, fmt.Errorf("parameter %s: option %s needs a value", ParamMkfsOptions, flag)
			}
			i++
			val = args[i]
		}
		if !mkfsValueOK(val) {
			return nil, fmt.Errorf("parameter %s: value %q of option %s may only hold letters, digits and ._,=:^+-", ParamMkfsOptions, val, flag)
		}
		if fsType == "ext4" && flag == "-m" && val != "0" {
			// mount-utils formats ext4 with its own -m0 after these
			// options: another reserve would be silently overridden.
			return nil, fmt.Errorf("parameter %s: option -m %s cannot be honoured: the node reserves no blocks (-m0) on ext4", ParamMkfsOptions, val)
		}
	}
	return args, nil
}

func mkfsCommand(fsType string) string { return "mkfs." + fsType }

func allowedList(m map[string]bool) string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}
