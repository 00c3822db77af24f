package csiceph

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// QoS parameters, in StorageClasses and VolumeAttributesClasses.
//
// Two spellings are accepted. ceph-csi's (its rbd-nbd QoS) give a base
// limit per kind, optionally scaled with the volume's size:
//
//	limit = base + perGiB × ⌊(size − baseVolSizeBytes) / GiB⌋, at most max
//
// when both perGiB and baseVolSizeBytes are set and the volume is larger
// than baseVolSizeBytes, else base. librbd's own option names
// (rbd_qos_iops_limit, rbd_qos_iops_burst, rbd_qos_iops_burst_seconds,
// rbd_qos_schedule_tick_min, ...) set that option as given.
//
// Either way the result is written the way ceph-csi writes it, as image
// metadata: the limits as config overrides (conf_rbd_qos_*_limit: what
// librbd, rbd-nbd and this driver's node all apply), the scaling policy
// under ceph-csi's keys (rbd_base_qos_iops_limit, rbd_iops_per_gib_limit,
// rbd_max_qos_iops_limit, rbd_base_qos_vol_size, ...) so that an
// expansion re-scales the limits, by either driver.
//
// A parameter with an empty value removes what it set (the limit falls
// back to the pool's, then the cluster's). A librbd limit given directly
// replaces the scaling policy of its kind; giving both spellings of one
// kind in one request is refused.

// qosKind is one of the six limits with its ceph-csi names.
type qosKind struct {
	option              string // librbd's limit option
	base, max, perGiB   string // ceph-csi parameter names
	baseKey, maxKey, gk string // ceph-csi's policy metadata keys
}

var qosKinds = []qosKind{
	{rbd.QoSIOPSLimit, "baseIops", "maxIops", "iopsPerGiB",
		"rbd_base_qos_iops_limit", "rbd_max_qos_iops_limit", "rbd_iops_per_gib_limit"},
	{rbd.QoSReadIOPSLimit, "baseReadIops", "maxReadIops", "readIopsPerGiB",
		"rbd_base_qos_read_iops_limit", "rbd_max_qos_read_iops_limit", "rbd_read_iops_per_gib_limit"},
	{rbd.QoSWriteIOPSLimit, "baseWriteIops", "maxWriteIops", "writeIopsPerGiB",
		"rbd_base_qos_write_iops_limit", "rbd_max_qos_write_iops_limit", "rbd_write_iops_per_gib_limit"},
	{rbd.QoSBPSLimit, "baseBps", "maxBps", "bpsPerGiB",
		"rbd_base_qos_bps_limit", "rbd_max_qos_bps_limit", "rbd_bps_per_gib_limit"},
	{rbd.QoSReadBPSLimit, "baseReadBps", "maxReadBps", "readBpsPerGiB",
		"rbd_base_qos_read_bps_limit", "rbd_max_qos_read_bps_limit", "rbd_read_bps_per_gib_limit"},
	{rbd.QoSWriteBPSLimit, "baseWriteBps", "maxWriteBps", "writeBpsPerGiB",
		"rbd_base_qos_write_bps_limit", "rbd_max_qos_write_bps_limit", "rbd_write_bps_per_gib_limit"},
}

// ParamBaseVolSize is the size above which the per-GiB parameters add
// to the base limits, and its policy metadata key.
const (
	ParamBaseVolSize   = "baseVolSizeBytes"
	qosBaseVolSizeKey  = "rbd_base_qos_vol_size"
	gibibyte           = 1 << 30
	metaConf           = rbd.ConfigPrefix
	qosScalingKindNone = -1
)

// qosParam says what a ceph-csi QoS parameter is: its kind (index in
// qosKinds, or qosScalingKindNone for baseVolSizeBytes) and policy key.
type qosParam struct {
	kind int
	key  string
	base bool
}

var qosParams = func() map[string]qosParam {
	m := map[string]qosParam{ParamBaseVolSize: {kind: qosScalingKindNone, key: qosBaseVolSizeKey}}
	for i, k := range qosKinds {
		m[k.base] = qosParam{kind: i, key: k.baseKey, base: true}
		m[k.max] = qosParam{kind: i, key: k.maxKey}
		m[k.perGiB] = qosParam{kind: i, key: k.gk}
	}
	return m
}()

// QoSParamNames lists the QoS parameters: ceph-csi's names, then
// librbd's options.
func QoSParamNames() []string {
	names := slices.Sorted(maps.Keys(qosParams))
	return append(names, rbd.QoSOptions()...)
}

// IsQoSParam reports whether a StorageClass or VolumeAttributesClass key
// is a QoS parameter.
func IsQoSParam(k string) bool {
	_, ok := qosParams[k]
	return ok || rbd.IsQoSOption(k)
}

func init() {
	// QoS parameters are StorageClass parameters too.
	for _, k := range QoSParamNames() {
		volumeParamUse[k] = useHonour
	}
}

// QoSRequest is a checked set of QoS parameters (the others of the map
// it came from are left out).
type QoSRequest struct {
	p map[string]string
}

// Empty reports whether the request holds no QoS parameter.
func (q QoSRequest) Empty() bool { return len(q.p) == 0 }

// ParseQoSParams checks the QoS parameters of p, each error naming its
// parameter; other keys are ignored.
func ParseQoSParams(p map[string]string) (QoSRequest, error) {
	q := QoSRequest{p: map[string]string{}}
	for _, k := range sortedKeys(p) {
		v := p[k]
		switch {
		case !IsQoSParam(k):
			continue
		case v == "":
		case rbd.IsQoSOption(k):
			if _, err := rbd.ParseQoSValue(k, v); err != nil {
				return q, fmt.Errorf("parameter %s: %w", k, err)
			}
		default:
			if _, err := strconv.ParseUint(v, 10, 64); err != nil {
				return q, fmt.Errorf("parameter %s %q: not a non-negative integer", k, v)
			}
		}
		q.p[k] = v
	}
	for _, k := range qosKinds {
		if q.p[k.option] == "" {
			continue
		}
		for _, c := range []string{k.base, k.max, k.perGiB} {
			if _, ok := q.p[c]; ok {
				return q, fmt.Errorf("parameters %s and %s both set the %s limit: give one", k.option, c, strings.TrimSuffix(strings.TrimPrefix(k.option, "rbd_qos_"), "_limit"))
			}
		}
	}
	return q, nil
}

// Merge returns q with over's parameters applied on top (a
// VolumeAttributesClass's over a StorageClass's): a librbd limit in one
// and ceph-csi's parameters of the same kind in the other keep the later.
func (q QoSRequest) Merge(over QoSRequest) QoSRequest {
	out := QoSRequest{p: maps.Clone(q.p)}
	if out.p == nil {
		out.p = map[string]string{}
	}
	for _, k := range qosKinds {
		if _, ok := over.p[k.option]; ok {
			delete(out.p, k.base)
			delete(out.p, k.max)
			delete(out.p, k.perGiB)
		}
		if _, ok := over.p[k.base]; ok {
			delete(out.p, k.option)
		}
	}
	maps.Copy(out.p, over.p)
	return out
}

// QoSChanges is what to do to an image's metadata.
type QoSChanges struct {
	Set    map[string]string
	Remove []string
}

// Empty reports whether there is nothing to do.
func (c QoSChanges) Empty() bool { return len(c.Set) == 0 && len(c.Remove) == 0 }

// Changes returns the metadata changes that apply q to an image of size
// bytes whose metadata is md; only keys whose value changes are listed,
// so applying them again changes nothing.
func (q QoSRequest) Changes(md map[string]string, size uint64) QoSChanges {
	next := maps.Clone(md)
	if next == nil {
		next = map[string]string{}
	}
	touched := map[int]bool{}
	for _, k := range sortedKeys(q.p) {
		v := q.p[k]
		if p, ok := qosParams[k]; ok {
			setOrDelete(next, p.key, v)
			if p.kind == qosScalingKindNone {
				for i := range qosKinds {
					touched[i] = true
				}
			} else {
				touched[p.kind] = true
				if p.base && v == "" {
					delete(next, metaConf+qosKinds[p.kind].option) // no base: no limit
				}
			}
			continue
		}
		setOrDelete(next, metaConf+k, v)
		for _, kind := range qosKinds {
			if kind.option == k { // given directly: the policy goes
				delete(next, kind.baseKey)
				delete(next, kind.maxKey)
				delete(next, kind.gk)
			}
		}
	}
	for i := range touched {
		scaleLimit(next, qosKinds[i], size)
	}
	return diff(md, next)
}

// RescaleQoS returns the metadata changes that re-apply the scaling
// policy an image's metadata records to its new size (ceph-csi's
// AdjustQOS after an expansion).
func RescaleQoS(md map[string]string, size uint64) QoSChanges {
	next := maps.Clone(md)
	for _, k := range qosKinds {
		scaleLimit(next, k, size)
	}
	return diff(md, next)
}

// scaleLimit computes a kind's limit from its policy keys in md, if it
// has a base.
func scaleLimit(md map[string]string, k qosKind, size uint64) {
	base, ok := uintKey(md, k.baseKey)
	if !ok {
		return
	}
	limit := base
	perGiB, okG := uintKey(md, k.gk)
	baseSize, okS := uintKey(md, qosBaseVolSizeKey)
	if okG && okS && size > baseSize {
		limit = base + (size-baseSize)/gibibyte*perGiB
		if m, ok := uintKey(md, k.maxKey); ok && limit > m {
			limit = m
		}
	}
	md[metaConf+k.option] = strconv.FormatUint(limit, 10)
}

func uintKey(md map[string]string, k string) (uint64, bool) {
	v, ok := md[k]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(v, 10, 64)
	return n, err == nil
}

func setOrDelete(m map[string]string, k, v string) {
	if v == "" {
		delete(m, k)
	} else {
		m[k] = v
	}
}

func diff(old, next map[string]string) QoSChanges {
	c := QoSChanges{Set: map[string]string{}}
	for k, v := range next {
		if ov, ok := old[k]; !ok || ov != v {
			c.Set[k] = v
		}
	}
	for _, k := range sortedKeys(old) {
		if _, ok := next[k]; !ok {
			c.Remove = append(c.Remove, k)
		}
	}
	return c
}

// ErrMutableParams: mutable parameters (a VolumeAttributesClass's) that
// cannot be applied; the services answer InvalidArgument.
var ErrMutableParams = errors.New("csiceph: bad mutable parameters")

// ParseMutableParams checks the mutable parameters of ControllerModifyVolume
// and CreateVolume: only QoS parameters may change; another StorageClass
// parameter is immutable and any other key unknown, and the error names
// every such key. Keys under csi.storage.k8s.io/ (the sidecars' extra
// metadata) are ignored.
func ParseMutableParams(p map[string]string) (QoSRequest, error) {
	var immutable, unknown []string
	for _, k := range sortedKeys(p) {
		switch {
		case strings.HasPrefix(k, k8sPrefix) || IsQoSParam(k):
		case volumeParamUse[k] == useHonour && knownParam(k):
			immutable = append(immutable, k)
		default:
			unknown = append(unknown, k)
		}
	}
	var msgs []string
	if len(immutable) > 0 {
		msgs = append(msgs, fmt.Sprintf("%s cannot be changed on an existing volume (StorageClass parameters)", strings.Join(immutable, ", ")))
	}
	if len(unknown) > 0 {
		msgs = append(msgs, fmt.Sprintf("%s not known (mutable parameters: %s)", strings.Join(unknown, ", "), strings.Join(QoSParamNames(), ", ")))
	}
	if len(msgs) > 0 {
		return QoSRequest{}, fmt.Errorf("%w: %s", ErrMutableParams, strings.Join(msgs, "; "))
	}
	q, err := ParseQoSParams(p)
	if err != nil {
		return q, fmt.Errorf("%w: %w", ErrMutableParams, err)
	}
	return q, nil
}

func knownParam(k string) bool {
	_, ok := volumeParamUse[k]
	return ok
}
