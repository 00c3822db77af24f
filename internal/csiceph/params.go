package csiceph

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// Keys of the CSI secrets (ceph-csi's names).
const (
	SecretUserID  = "userID"
	SecretUserKey = "userKey"
)

// Credentials are the Ceph user and key from the request secrets.
type Credentials struct {
	User, Key string
}

// Redacted is what a secret prints as.
const Redacted = "<redacted>"

// Format prints the credentials with Key redacted, for every verb (%v,
// %+v, %#v, %s, ...), by value or behind a pointer, also nested in other
// values: no format string prints the key.
func (c Credentials) Format(f fmt.State, verb rune) {
	type plain Credentials
	p := plain(c)
	if p.Key != "" {
		p.Key = Redacted
	}
	fmt.Fprintf(f, fmt.FormatString(f, verb), p)
}

// CredentialsFrom reads userID/userKey from CSI secrets; missing ones are
// ErrSecrets.
func CredentialsFrom(secrets map[string]string) (Credentials, error) {
	c := Credentials{User: secrets[SecretUserID], Key: secrets[SecretUserKey]}
	if c.User == "" || c.Key == "" {
		return c, fmt.Errorf("%w: secrets must carry %s and %s", ErrSecrets, SecretUserID, SecretUserKey)
	}
	return c, nil
}

// StorageClass parameters (ceph-csi's names). The controller reads them
// from CreateVolume; those the node needs reach it in the volume context.
const (
	ParamClusterID     = "clusterID"
	ParamPool          = "pool"
	ParamDataPool      = "dataPool"
	ParamImageFeatures = "imageFeatures"
	ParamVolumePrefix  = "volumeNamePrefix"
	ParamSnapPrefix    = "snapshotNamePrefix"
	ParamMaxCloneDepth = "maxCloneDepth"
	// ParamFSType is the filesystem type the external-provisioner passes
	// (also a key of the volume context).
	ParamFSType = "csi.storage.k8s.io/fstype"
	// ParamMkfsOptions replaces the node's default mkfs options.
	ParamMkfsOptions = "mkfsOptions"
)

// Volume context keys CreateVolume returns (besides clusterID, pool and
// dataPool).
const ContextImageName = "imageName"

// Name prefixes used when the StorageClass names none.
const (
	DefaultVolumePrefix = "csi-vol-"
	DefaultSnapPrefix   = "csi-snap-"
)

// MaxCloneDepthLimit is the largest maxCloneDepth accepted.
const MaxCloneDepthLimit = 32

// VolumeParams are the StorageClass parameters of a volume.
type VolumeParams struct {
	ClusterID  string
	Pool       string
	DataPool   string
	Features   uint64
	NamePrefix string
	SnapPrefix string
	// MaxCloneDepth overrides the driver's clone depth limit (0: keep).
	MaxCloneDepth int
}

// ParseVolumeParams validates StorageClass parameters. Keys it does not
// know (csi.storage.k8s.io/*, mkfsOptions) are the node's business and are
// ignored here.
func ParseVolumeParams(p map[string]string) (VolumeParams, error) {
	v := VolumeParams{
		ClusterID:  p[ParamClusterID],
		Pool:       p[ParamPool],
		DataPool:   p[ParamDataPool],
		NamePrefix: p[ParamVolumePrefix],
		SnapPrefix: p[ParamSnapPrefix],
	}
	if v.ClusterID == "" {
		return v, fmt.Errorf("parameter %s is required", ParamClusterID)
	}
	if v.Pool == "" {
		return v, fmt.Errorf("parameter %s is required", ParamPool)
	}
	if v.NamePrefix == "" {
		v.NamePrefix = DefaultVolumePrefix
	}
	if v.SnapPrefix == "" {
		v.SnapPrefix = DefaultSnapPrefix
	}
	for _, pre := range []string{v.NamePrefix, v.SnapPrefix} {
		if strings.ContainsAny(pre, "/@") {
			return v, fmt.Errorf("name prefix %q must not contain '/' or '@'", pre)
		}
	}
	if d := p[ParamMaxCloneDepth]; d != "" {
		n, err := strconv.Atoi(d)
		if err != nil || n < 1 || n > MaxCloneDepthLimit {
			return v, fmt.Errorf("parameter %s %q must be a number from 1 to %d", ParamMaxCloneDepth, d, MaxCloneDepthLimit)
		}
		v.MaxCloneDepth = n
	}
	f, err := parseFeatures(p[ParamImageFeatures])
	if err != nil {
		return v, err
	}
	v.Features = f
	return v, nil
}

// parseFeatures reads imageFeatures (default "layering"), which must
// include layering (clones need it).
func parseFeatures(feat string) (uint64, error) {
	if feat == "" {
		feat = "layering"
	}
	var names []string
	for _, f := range strings.Split(feat, ",") {
		if f = strings.TrimSpace(f); f != "" {
			names = append(names, f)
		}
	}
	f, err := rbd.ParseFeatures(names...)
	if err != nil {
		return 0, fmt.Errorf("parameter %s: %w", ParamImageFeatures, err)
	}
	if f&rbd.FeatureLayering == 0 {
		return 0, fmt.Errorf("parameter %s must include layering", ParamImageFeatures)
	}
	return f, nil
}

// SnapPrefix is the snapshot name prefix of CreateSnapshot parameters
// (the VolumeSnapshotClass's snapshotNamePrefix).
func SnapPrefix(p map[string]string) string {
	if pre := p[ParamSnapPrefix]; pre != "" {
		return pre
	}
	return DefaultSnapPrefix
}
