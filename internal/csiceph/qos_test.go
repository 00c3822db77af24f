package csiceph

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseQoSParams(t *testing.T) {
	q, err := ParseQoSParams(map[string]string{"baseIops": "1000", "rbd_qos_write_bps_limit": "10M", "pool": "rbd", "maxBps": ""})
	if err != nil || len(q.p) != 3 || q.p["pool"] != "" {
		t.Fatalf("ParseQoSParams = %v, %v", q.p, err)
	}
	for p, want := range map[string]string{
		"baseIops=-1":                            "baseIops",
		"iopsPerGiB=1.5":                         "iopsPerGiB",
		"rbd_qos_iops_limit=1k":                  "rbd_qos_iops_limit",
		"rbd_qos_bps_burst_seconds=0":            "rbd_qos_bps_burst_seconds",
		"rbd_qos_iops_limit=5,maxIops=9":         "maxIops",
		"rbd_qos_read_bps_limit=5,baseReadBps=9": "baseReadBps",
	} {
		m := map[string]string{}
		for _, kv := range strings.Split(p, ",") {
			k, v, _ := strings.Cut(kv, "=")
			m[k] = v
		}
		if _, err := ParseQoSParams(m); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseQoSParams(%s) = %v, want an error naming %s", p, err, want)
		}
	}
}

func TestQoSChangesScaleWithSize(t *testing.T) {
	q, err := ParseQoSParams(map[string]string{"baseIops": "1000", "iopsPerGiB": "100", "maxIops": "1500",
		"baseVolSizeBytes": "1073741824", "baseWriteBps": "1048576"})
	if err != nil {
		t.Fatal(err)
	}
	for size, want := range map[uint64]string{1 << 30: "1000", 512 << 20: "1000", 3 << 30: "1200", 3<<30 + 1<<29: "1200", 10 << 30: "1500"} {
		c := q.Changes(map[string]string{"other": "x"}, size)
		if got := c.Set["conf_rbd_qos_iops_limit"]; got != want {
			t.Errorf("size %d: iops limit %q, want %s", size, got, want)
		}
		if c.Set["conf_rbd_qos_write_bps_limit"] != "1048576" || c.Set["rbd_base_qos_iops_limit"] != "1000" ||
			c.Set["rbd_iops_per_gib_limit"] != "100" || c.Set["rbd_max_qos_iops_limit"] != "1500" ||
			c.Set["rbd_base_qos_vol_size"] != "1073741824" || len(c.Remove) != 0 || c.Set["other"] != "" {
			t.Errorf("size %d: changes %+v", size, c)
		}
	}
	// Applying it again changes nothing; an expansion re-scales.
	md := map[string]string{}
	for k, v := range q.Changes(nil, 2<<30).Set {
		md[k] = v
	}
	if c := q.Changes(md, 2<<30); !c.Empty() {
		t.Errorf("second application: %+v", c)
	}
	c := RescaleQoS(md, 4<<30)
	if len(c.Set) != 1 || c.Set["conf_rbd_qos_iops_limit"] != "1300" || len(c.Remove) != 0 {
		t.Errorf("rescale to 4 GiB: %+v", c)
	}
	if c := RescaleQoS(map[string]string{"conf_rbd_qos_iops_limit": "7"}, 4<<30); !c.Empty() {
		t.Errorf("rescale without a policy: %+v", c)
	}
}

func TestQoSChangesDirectAndRemove(t *testing.T) {
	md := map[string]string{"conf_rbd_qos_iops_limit": "1000", "rbd_base_qos_iops_limit": "1000", "rbd_iops_per_gib_limit": "10",
		"conf_rbd_qos_bps_limit": "5", "rbd_base_qos_bps_limit": "5", "conf_rbd_qos_read_iops_limit": "7"}
	q, err := ParseQoSParams(map[string]string{"rbd_qos_iops_limit": "200", "baseBps": "", "rbd_qos_read_iops_limit": "",
		"rbd_qos_iops_burst": "400"})
	if err != nil {
		t.Fatal(err)
	}
	c := q.Changes(md, 1<<30)
	wantSet := map[string]string{"conf_rbd_qos_iops_limit": "200", "conf_rbd_qos_iops_burst": "400"}
	wantRemove := []string{"conf_rbd_qos_bps_limit", "conf_rbd_qos_read_iops_limit", "rbd_base_qos_bps_limit", "rbd_base_qos_iops_limit", "rbd_iops_per_gib_limit"}
	if len(c.Set) != len(wantSet) || c.Set["conf_rbd_qos_iops_limit"] != "200" || c.Set["conf_rbd_qos_iops_burst"] != "400" || !slices.Equal(c.Remove, wantRemove) {
		t.Errorf("changes %+v\nwant set %v remove %v", c, wantSet, wantRemove)
	}
}

func TestQoSMerge(t *testing.T) {
	sc, _ := ParseQoSParams(map[string]string{"baseIops": "1000", "iopsPerGiB": "5", "rbd_qos_bps_limit": "1M"})
	vac, _ := ParseQoSParams(map[string]string{"rbd_qos_iops_limit": "300", "baseBps": "2048"})
	m := sc.Merge(vac)
	if len(m.p) != 2 || m.p["rbd_qos_iops_limit"] != "300" || m.p["baseBps"] != "2048" {
		t.Errorf("Merge = %v", m.p)
	}
	if _, err := ParseQoSParams(m.p); err != nil {
		t.Errorf("merged request invalid: %v", err)
	}
}

func TestParseMutableParams(t *testing.T) {
	q, err := ParseMutableParams(map[string]string{"baseIops": "10", "csi.storage.k8s.io/pvc/name": "x"})
	if err != nil || len(q.p) != 1 {
		t.Fatalf("ParseMutableParams = %v, %v", q.p, err)
	}
	_, err = ParseMutableParams(map[string]string{"pool": "other", "imageFeatures": "layering", "bogus": "1", "baseIops": "1"})
	if !errors.Is(err, ErrMutableParams) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"pool", "imageFeatures", "bogus", "cannot be changed", "not known"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v does not name %q", err, want)
		}
	}
	if _, err := ParseMutableParams(map[string]string{"maxIops": "x"}); !errors.Is(err, ErrMutableParams) || !strings.Contains(err.Error(), "maxIops") {
		t.Errorf("bad value: %v", err)
	}
}

// The QoS parameters are StorageClass parameters.
func TestQoSStorageClassParams(t *testing.T) {
	if !slices.Contains(KnownVolumeParams(), "baseIops") || !slices.Contains(KnownVolumeParams(), "rbd_qos_iops_limit") {
		t.Error("QoS parameters missing from KnownVolumeParams")
	}
	if _, err := ParseVolumeParams(map[string]string{ParamClusterID: "c", ParamPool: "p", "baseIops": "1", "rbd_qos_bps_limit": "1M"}); err != nil {
		t.Error(err)
	}
}
