package rbd

import (
	"fmt"
	"math/bits"
	"strings"
)

// Feature bits of an image (include/rbd/features.h).
const (
	FeatureLayering      uint64 = 1 << 0
	FeatureStripingV2    uint64 = 1 << 1
	FeatureExclusiveLock uint64 = 1 << 2
	FeatureObjectMap     uint64 = 1 << 3
	FeatureFastDiff      uint64 = 1 << 4
	FeatureDeepFlatten   uint64 = 1 << 5
	FeatureJournaling    uint64 = 1 << 6
	FeatureDataPool      uint64 = 1 << 7
	FeatureOperations    uint64 = 1 << 8
	FeatureMigrating     uint64 = 1 << 9
	FeatureNonPrimary    uint64 = 1 << 10
	FeatureDirtyCache    uint64 = 1 << 11
)

// FeaturesIncompatible make an image unusable, even read-only, by a client
// that does not understand them (RBD_FEATURES_INCOMPATIBLE).
const FeaturesIncompatible = FeatureLayering | FeatureStripingV2 | FeatureDataPool | FeatureDirtyCache

// FeaturesRWIncompatible make an image unwritable by a client that does not
// understand them (RBD_FEATURES_RW_INCOMPATIBLE).
const FeaturesRWIncompatible = FeaturesIncompatible | FeatureExclusiveLock | FeatureObjectMap |
	FeatureFastDiff | FeatureDeepFlatten | FeatureJournaling | FeatureOperations |
	FeatureMigrating | FeatureNonPrimary

// FeaturesDefault is what `rbd create` gives an image by default
// (rbd_default_features = 61).
const FeaturesDefault = FeatureLayering | FeatureExclusiveLock | FeatureObjectMap | FeatureFastDiff | FeatureDeepFlatten

// featuresSupportedRead are the incompatible features this package can
// read through; featuresSupportedWrite the rw-incompatible ones it can
// write through. krbd's set, minus nothing: journaling, migrating,
// non-primary and dirty-cache are refused for writing.
const (
	featuresSupportedRead  = FeatureLayering | FeatureStripingV2 | FeatureDataPool
	featuresSupportedWrite = featuresSupportedRead | FeatureExclusiveLock | FeatureObjectMap |
		FeatureFastDiff | FeatureDeepFlatten | FeatureOperations
)

// Op feature bits (RBD_OPERATION_FEATURE_*), set with op_features_set; they
// imply FeatureOperations.
const (
	OpFeatureCloneParent uint64 = 1 << 0
	OpFeatureCloneChild  uint64 = 1 << 1
	OpFeatureGroup       uint64 = 1 << 2
	OpFeatureSnapTrash   uint64 = 1 << 3
)

// Image flags (get_flags).
const (
	FlagObjectMapInvalid uint64 = 1 << 0
	FlagFastDiffInvalid  uint64 = 1 << 1
)

var featureNames = [...]string{
	"layering", "striping", "exclusive-lock", "object-map", "fast-diff",
	"deep-flatten", "journaling", "data-pool", "operations", "migrating",
	"non-primary", "dirty-cache",
}

// FeatureNames lists the names `rbd info` uses for the bits of f, lowest
// bit first; unknown bits show as "bit-N".
func FeatureNames(f uint64) []string {
	var out []string
	for f != 0 {
		b := bits.TrailingZeros64(f)
		f &^= 1 << b
		if b < len(featureNames) {
			out = append(out, featureNames[b])
		} else {
			out = append(out, fmt.Sprintf("bit-%d", b))
		}
	}
	return out
}

// ParseFeatures turns a list of feature names (as `rbd create
// --image-feature` takes them) into bits.
func ParseFeatures(names ...string) (uint64, error) {
	var f uint64
	for _, n := range names {
		n = strings.TrimSpace(n)
		ok := false
		for i, fn := range featureNames {
			if n == fn {
				f |= 1 << i
				ok = true
				break
			}
		}
		if !ok {
			return 0, fmt.Errorf("rbd: unknown image feature %q", n)
		}
	}
	return f, nil
}

// FeatureError reports an image feature this package cannot honour.
type FeatureError struct {
	Image       string
	Unsupported uint64 // the offending bits
	Write       bool   // the check was for write access
}

func (e *FeatureError) Error() string {
	mode := "read"
	if e.Write {
		mode = "write"
	}
	return fmt.Sprintf("rbd: image %q has features unsupported for %s: %s", e.Image, mode,
		strings.Join(FeatureNames(e.Unsupported), ","))
}

// Is makes errors.Is(err, ErrUnsupportedFeature) true.
func (e *FeatureError) Is(t error) bool { return t == ErrUnsupportedFeature }

// checkFeatures refuses an image whose incompatible features include bits
// we do not implement. incompatible is the second word of get_features,
// which the OSD computes for the read_only flag we sent; features is the
// first word, checked too in case the OSD is older than the masks. Readers
// may use layering, striping and data-pool images; writers additionally
// exclusive-lock, object-map, fast-diff, deep-flatten and operations, so
// journaling, migrating, non-primary and dirty-cache are refused by name.
func checkFeatures(image string, features, incompatible uint64, write bool) error {
	supported, mask := featuresSupportedRead, FeaturesIncompatible
	if write {
		supported, mask = featuresSupportedWrite, FeaturesRWIncompatible
	}
	if bad := (incompatible | features&mask) &^ supported; bad != 0 {
		return &FeatureError{Image: image, Unsupported: bad, Write: write}
	}
	return nil
}
