package csiceph

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/config"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// ClientOptions are the ceph.conf options of a cluster's cephOptions that
// the client honours.
type ClientOptions struct {
	// MsMode is the connection mode (config.ModeCRC, ...; "": the
	// client's default, prefer-crc).
	MsMode string
	// ConnectTimeout bounds connecting to the cluster (0: the plugin's
	// default).
	ConnectTimeout time.Duration
	// DefaultFeatures are the features of images whose StorageClass has
	// no imageFeatures (0: the driver's default, layering).
	DefaultFeatures uint64
	// DefaultOrder is the object size (log2) of images whose StorageClass
	// has no objectSize (0: 22, 4 MiB).
	DefaultOrder uint8
}

// cephOption is one ceph.conf option the client understands.
type cephOption struct {
	help string
	set  func(o *ClientOptions, v string) error
}

// cephOptions are the options ParseClientOptions honours, by their
// canonical name (underscores, lower case).
var cephOptions = map[string]cephOption{
	"ms_mode":            {"connection mode: crc, secure, prefer-crc, prefer-secure", setMsMode},
	"ms_client_mode":     {"as ms_mode, Ceph's spelling: \"crc\", \"secure\", \"secure crc\", \"crc secure\"", setMsMode},
	"ms_mon_client_mode": {"as ms_client_mode", setMsMode},
	"client_mount_timeout": {"seconds to wait for the monitors when connecting", func(o *ClientOptions, v string) error {
		d, err := seconds(v)
		o.ConnectTimeout = d
		return err
	}},
	"rbd_default_features": {"features of images whose StorageClass names none (names or a number, must include layering)", func(o *ClientOptions, v string) error {
		f, err := parseFeatureList(v)
		o.DefaultFeatures = f
		return err
	}},
	"rbd_default_order": {"object size of images whose StorageClass names none, as log2 (12 to 25)", func(o *ClientOptions, v string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < minOrder || n > maxOrder {
			return fmt.Errorf("%q is not a number from %d to %d", v, minOrder, maxOrder)
		}
		o.DefaultOrder = uint8(n)
		return nil
	}},
}

// Object sizes an image can have (librbd's bounds: 4 KiB to 32 MiB).
const (
	minOrder = 12
	maxOrder = 25
)

// KnownCephOptions lists the options ParseClientOptions honours.
func KnownCephOptions() []string { return sortedKeys(cephOptions) }

// canonicalOption spells a ceph.conf option name as Ceph does: spaces,
// dashes and underscores are the same, case does not matter.
func canonicalOption(k string) string {
	return strings.ToLower(strings.NewReplacer(" ", "_", "-", "_").Replace(strings.TrimSpace(k)))
}

// ParseClientOptions checks ceph.conf options. A known option with a bad
// value is an error; an unknown option is reported in notes and ignored.
func ParseClientOptions(m map[string]string) (ClientOptions, []string, error) {
	var o ClientOptions
	var notes []string
	for _, k := range sortedKeys(m) {
		opt, ok := cephOptions[canonicalOption(k)]
		if !ok {
			notes = append(notes, fmt.Sprintf("ceph option %q is not understood by csi-gorbd's client and is ignored (known: %s)",
				k, strings.Join(KnownCephOptions(), ", ")))
			continue
		}
		if err := opt.set(&o, m[k]); err != nil {
			return o, nil, fmt.Errorf("%s: %w", k, err)
		}
	}
	return o, notes, nil
}

func setMsMode(o *ClientOptions, v string) error {
	fields := strings.FieldsFunc(strings.ToLower(v), func(r rune) bool { return r == ',' || r == ' ' })
	switch {
	case len(fields) == 1 && (fields[0] == config.ModeCRC || fields[0] == config.ModeSecure ||
		fields[0] == config.ModePreferCRC || fields[0] == config.ModePreferSecure):
		o.MsMode = fields[0]
	case len(fields) == 2 && fields[0] == "secure" && fields[1] == "crc":
		o.MsMode = config.ModePreferSecure
	case len(fields) == 2 && fields[0] == "crc" && fields[1] == "secure":
		o.MsMode = config.ModePreferCRC
	default:
		return fmt.Errorf("%q: want crc, secure, prefer-crc, prefer-secure, \"secure crc\" or \"crc secure\"", v)
	}
	return nil
}

func seconds(v string) (time.Duration, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || f <= 0 || f > math.MaxInt32 || math.IsNaN(f) {
		return 0, fmt.Errorf("%q is not a positive number of seconds", v)
	}
	return time.Duration(f * float64(time.Second)), nil
}

// parseFeatureList reads a feature list as Ceph's rbd_default_features
// does: a number, or names separated by commas.
func parseFeatureList(v string) (uint64, error) {
	v = strings.TrimSpace(v)
	var f uint64
	if n, err := strconv.ParseUint(v, 10, 64); err == nil {
		f = n
	} else {
		var names []string
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				names = append(names, s)
			}
		}
		if f, err = rbd.ParseFeatures(names...); err != nil {
			return 0, err
		}
	}
	if err := checkFeatures(f); err != nil {
		return 0, err
	}
	return f, nil
}
