package csiceph

import (
	"encoding/json"
	"fmt"
	"math/bits"
	"sort"
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
	ParamStripeUnit    = "stripeUnit"
	ParamStripeCount   = "stripeCount"
	ParamObjectSize    = "objectSize"
	ParamTopologyPools = "topologyConstrainedPools"
	ParamRadosNS       = "radosNamespace"
	ParamEncrypted     = "encrypted"
	// ParamFSType is the filesystem type the external-provisioner passes
	// (also a key of the volume context).
	ParamFSType = "csi.storage.k8s.io/fstype"
	// ParamMkfsOptions replaces the node's default mkfs options.
	ParamMkfsOptions = "mkfsOptions"

	// The external-provisioner's --extra-create-metadata keys, and the
	// external-snapshotter's.
	ParamPVCName      = "csi.storage.k8s.io/pvc/name"
	ParamPVCNamespace = "csi.storage.k8s.io/pvc/namespace"
	ParamPVName       = "csi.storage.k8s.io/pv/name"
	ParamVSName       = "csi.storage.k8s.io/volumesnapshot/name"
	ParamVSNamespace  = "csi.storage.k8s.io/volumesnapshot/namespace"
	ParamVSCName      = "csi.storage.k8s.io/volumesnapshotcontent/name"

	// k8sPrefix starts the keys the CSI sidecars own.
	k8sPrefix = "csi.storage.k8s.io/"
)

// Volume context keys CreateVolume returns besides the parameters
// (ceph-csi's).
const (
	ContextImageName   = "imageName"
	ContextJournalPool = "journalPool"
	ContextRadosNS     = "radosNamespace"
)

// Name prefixes used when the StorageClass names none.
const (
	DefaultVolumePrefix = "csi-vol-"
	DefaultSnapPrefix   = "csi-snap-"
)

// MaxCloneDepthLimit is the largest maxCloneDepth accepted.
const MaxCloneDepthLimit = 32

// How a StorageClass or VolumeSnapshotClass parameter is treated.
type paramUse int

const (
	// useHonour: the driver does what the parameter asks.
	useHonour paramUse = iota
	// useNodeMechanism: it chooses how ceph-csi's node attaches a volume
	// (krbd or rbd-nbd and their options); the node serves NBD from its
	// own process, so it has nothing to choose: accepted, logged once.
	useNodeMechanism
	// useRefuse: it would change what the user gets and the driver does
	// not do it (yet): InvalidArgument.
	useRefuse
)

// volumeParamUse lists every StorageClass parameter the driver knows
// (ceph-csi's examples/rbd/storageclass.yaml and the keys its code
// reads); any other key is refused. Keys under csi.storage.k8s.io/ are the
// sidecars' and always accepted.
var volumeParamUse = map[string]paramUse{
	ParamClusterID: useHonour, ParamPool: useHonour, ParamDataPool: useHonour, ParamImageFeatures: useHonour,
	ParamVolumePrefix: useHonour, ParamSnapPrefix: useHonour, ParamMaxCloneDepth: useHonour,
	ParamStripeUnit: useHonour, ParamStripeCount: useHonour, ParamObjectSize: useHonour,
	ParamMkfsOptions: useHonour, ParamTopologyPools: useHonour, ParamRadosNS: useHonour,
	ParamEncrypted: useHonour, ParamEncryptionType: useHonour, ParamEncryptionKMSID: useHonour, ParamEncryptionLayout: useHonour,

	"mounter": useNodeMechanism, "mapOptions": useNodeMechanism, "unmapOptions": useNodeMechanism,
	"cephLogDir": useNodeMechanism, "cephLogStrategy": useNodeMechanism, "tryOtherMounters": useNodeMechanism,

	"thickProvision": useRefuse,
}

// KnownVolumeParams lists the StorageClass parameters the driver accepts
// (besides csi.storage.k8s.io/*).
func KnownVolumeParams() []string {
	var out []string
	for k, u := range volumeParamUse {
		if u != useRefuse {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// TopologyPool is one element of topologyConstrainedPools.
type TopologyPool struct {
	PoolName       string            `json:"poolName"`
	DataPool       string            `json:"dataPool"`
	DomainSegments []TopologySegment `json:"domainSegments"`
}

// TopologySegment is a node domain a topology pool serves.
type TopologySegment struct {
	DomainLabel string `json:"domainLabel"`
	Value       string `json:"value"`
}

// VolumeParams are the StorageClass parameters of a volume.
type VolumeParams struct {
	ClusterID string
	// Pool is the image pool ("" when only topologyConstrainedPools
	// names pools).
	Pool     string
	DataPool string
	// Features are the image features; 0 when imageFeatures is absent
	// (the cluster's rbd_default_features, else layering, apply).
	Features   uint64
	NamePrefix string
	SnapPrefix string
	// MaxCloneDepth overrides the driver's clone depth limit (0: keep).
	MaxCloneDepth int
	// StripeUnit and StripeCount (both or neither) ask for fancy
	// striping; Order is the object size as log2 (0: the default).
	StripeUnit, StripeCount uint64
	Order                   uint8
	// MkfsOptions are the checked mkfsOptions ("" for the defaults).
	MkfsOptions string
	// Topology is topologyConstrainedPools.
	Topology []TopologyPool
	// RadosNamespace is the radosNamespace parameter: it must match the
	// clusterID's rbd.radosNamespace (RadosNamespaceSet).
	RadosNamespace    string
	RadosNamespaceSet bool
	// PVCName, PVCNamespace and PVName are the external-provisioner's
	// extra create metadata.
	PVCName, PVCNamespace, PVName string
	// Mechanism lists the node-mechanism parameters present (accepted,
	// without meaning for an in-process NBD node).
	Mechanism []string
	// Encryption is set for encrypted volumes (encrypted: "true").
	Encryption *Encryption
	// Context is the volume context ceph-csi returns: every parameter but
	// csi.storage.k8s.io/*.
	Context map[string]string
}

// ParseVolumeParams checks StorageClass parameters: every key must be
// known, honoured keys must be valid, and keys whose request the driver
// cannot honour are refused, each error naming the parameter.
func ParseVolumeParams(p map[string]string) (VolumeParams, error) {
	v := VolumeParams{
		ClusterID:  p[ParamClusterID],
		Pool:       p[ParamPool],
		DataPool:   p[ParamDataPool],
		NamePrefix: p[ParamVolumePrefix],
		SnapPrefix: p[ParamSnapPrefix],
		Context:    map[string]string{},
		PVCName:    p[ParamPVCName], PVCNamespace: p[ParamPVCNamespace], PVName: p[ParamPVName],
	}
	for _, k := range sortedKeys(p) {
		if strings.HasPrefix(k, k8sPrefix) {
			continue
		}
		v.Context[k] = p[k]
		use, known := volumeParamUse[k]
		switch {
		case !known:
			return v, fmt.Errorf("parameter %q is not known (known parameters: %s, and csi.storage.k8s.io/*)",
				k, strings.Join(KnownVolumeParams(), ", "))
		case use == useRefuse:
			return v, fmt.Errorf("parameter %q is not supported by this driver (ceph-csi removed it too); remove it from the StorageClass", k)
		case use == useNodeMechanism:
			v.Mechanism = append(v.Mechanism, k)
		}
	}
	if v.ClusterID == "" {
		return v, fmt.Errorf("parameter %s is required", ParamClusterID)
	}
	var err error
	if v.Encryption, err = ParseEncryption(p); err != nil {
		return v, err
	}
	if s, ok := p[ParamTopologyPools]; ok {
		if err := json.Unmarshal([]byte(strings.ReplaceAll(s, "\n", " ")), &v.Topology); err != nil {
			return v, fmt.Errorf("parameter %s: not a JSON list of {poolName, dataPool, domainSegments}: %v", ParamTopologyPools, err)
		}
		for i, tp := range v.Topology {
			if tp.PoolName == "" {
				return v, fmt.Errorf("parameter %s: element %d has no poolName", ParamTopologyPools, i)
			}
		}
	}
	if v.Pool == "" && len(v.Topology) == 0 {
		return v, fmt.Errorf("parameter %s is required (or %s)", ParamPool, ParamTopologyPools)
	}
	if ns, ok := p[ParamRadosNS]; ok {
		if ns == "" {
			return v, fmt.Errorf("parameter %s must not be empty (the namespace is the clusterID's rbd.radosNamespace in config.json)", ParamRadosNS)
		}
		v.RadosNamespace, v.RadosNamespaceSet = ns, true
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
	if f, ok := p[ParamImageFeatures]; ok {
		feat, err := parseImageFeatures(f)
		if err != nil {
			return v, err
		}
		v.Features = feat
	}
	if err := v.parseLayout(p); err != nil {
		return v, err
	}
	if o, ok := p[ParamMkfsOptions]; ok {
		fsType := p[ParamFSType]
		if fsType == "" {
			fsType = "ext4"
		}
		if _, err := CheckMkfsOptions(fsType, o); err != nil {
			return v, err
		}
		v.MkfsOptions = o
	}
	return v, nil
}

// parseLayout reads stripeUnit, stripeCount and objectSize.
func (v *VolumeParams) parseLayout(p map[string]string) error {
	num := func(k string) (uint64, bool, error) {
		s, ok := p[k]
		if !ok {
			return 0, false, nil
		}
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n == 0 {
			return 0, true, fmt.Errorf("parameter %s %q must be a positive number", k, s)
		}
		return n, true, nil
	}
	su, haveSU, err := num(ParamStripeUnit)
	if err != nil {
		return err
	}
	sc, haveSC, err := num(ParamStripeCount)
	if err != nil {
		return err
	}
	osz, haveOS, err := num(ParamObjectSize)
	if err != nil {
		return err
	}
	if haveSU != haveSC {
		return fmt.Errorf("parameters %s and %s go together: set both or neither", ParamStripeUnit, ParamStripeCount)
	}
	objectSize := uint64(1) << 22
	if haveOS {
		if osz&(osz-1) != 0 || osz < 1<<minOrder || osz > 1<<maxOrder {
			return fmt.Errorf("parameter %s %d must be a power of two from %d to %d", ParamObjectSize, osz, 1<<minOrder, 1<<maxOrder)
		}
		v.Order = uint8(bits.TrailingZeros64(osz))
		objectSize = osz
	}
	if haveSU {
		// librbd: the stripe unit divides the object size, and a count of
		// one with a unit of the whole object is plain striping.
		if su > objectSize || objectSize%su != 0 {
			return fmt.Errorf("parameter %s %d must divide the object size %d", ParamStripeUnit, su, objectSize)
		}
		if sc > 1<<16 {
			return fmt.Errorf("parameter %s %d is too large", ParamStripeCount, sc)
		}
		v.StripeUnit, v.StripeCount = su, sc
	}
	return nil
}

// parseImageFeatures reads imageFeatures (ceph-csi's list): it must name
// layering (clones need it), and only features the image can be created
// and written with.
func parseImageFeatures(feat string) (uint64, error) {
	var names []string
	for _, f := range strings.Split(feat, ",") {
		if f = strings.TrimSpace(f); f != "" {
			names = append(names, f)
		}
	}
	if len(names) == 0 {
		return 0, fmt.Errorf("parameter %s must not be empty (omit it for the default features)", ParamImageFeatures)
	}
	f, err := rbd.ParseFeatures(names...)
	if err != nil {
		return 0, fmt.Errorf("parameter %s: %w", ParamImageFeatures, err)
	}
	if err := checkFeatures(f); err != nil {
		return 0, fmt.Errorf("parameter %s: %w", ParamImageFeatures, err)
	}
	return f, nil
}

// creatableFeatures are the features a StorageClass may ask for.
const creatableFeatures = rbd.FeatureLayering | rbd.FeatureExclusiveLock | rbd.FeatureObjectMap |
	rbd.FeatureFastDiff | rbd.FeatureDeepFlatten

func checkFeatures(f uint64) error {
	if f&rbd.FeatureJournaling != 0 {
		return fmt.Errorf("journaling is not supported (this driver's writes do not journal)")
	}
	if bad := f &^ creatableFeatures; bad != 0 {
		return fmt.Errorf("%s cannot be asked for (striping and data-pool follow stripeUnit/stripeCount and dataPool)",
			strings.Join(rbd.FeatureNames(bad), ","))
	}
	if f&rbd.FeatureLayering == 0 {
		return fmt.Errorf("must include layering")
	}
	if f&rbd.FeatureObjectMap != 0 && f&rbd.FeatureExclusiveLock == 0 {
		return fmt.Errorf("object-map needs exclusive-lock")
	}
	if f&rbd.FeatureFastDiff != 0 && f&rbd.FeatureObjectMap == 0 {
		return fmt.Errorf("fast-diff needs object-map")
	}
	return nil
}

// snapshotParamUse lists the VolumeSnapshotClass parameters.
var snapshotParamUse = map[string]paramUse{
	ParamClusterID: useHonour, ParamSnapPrefix: useHonour, ParamPool: useHonour,
}

// SnapshotParams are the VolumeSnapshotClass parameters of a snapshot.
type SnapshotParams struct {
	ClusterID string
	// Prefix names the snapshot (default csi-snap-).
	Prefix string
	// VSName, VSNamespace and VSCName are the external-snapshotter's
	// extra metadata.
	VSName, VSNamespace, VSCName string
}

// ParseSnapshotParams checks CreateSnapshot parameters: unknown keys are
// refused (csi.storage.k8s.io/* are the sidecars').
func ParseSnapshotParams(p map[string]string) (SnapshotParams, error) {
	s := SnapshotParams{ClusterID: p[ParamClusterID], Prefix: p[ParamSnapPrefix],
		VSName: p[ParamVSName], VSNamespace: p[ParamVSNamespace], VSCName: p[ParamVSCName]}
	for _, k := range sortedKeys(p) {
		if strings.HasPrefix(k, k8sPrefix) {
			continue
		}
		if _, ok := snapshotParamUse[k]; !ok {
			return s, fmt.Errorf("snapshot class parameter %q is not known (known: %s, and csi.storage.k8s.io/*)",
				k, strings.Join(sortedKeys(snapshotParamUse), ", "))
		}
	}
	if s.Prefix == "" {
		s.Prefix = DefaultSnapPrefix
	}
	if strings.ContainsAny(s.Prefix, "/@") {
		return s, fmt.Errorf("name prefix %q must not contain '/' or '@'", s.Prefix)
	}
	return s, nil
}
