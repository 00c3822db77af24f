package driver_test

import (
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/csi-gorbd/csi-gorbd/driver"
	"github.com/csi-gorbd/csi-gorbd/nbd"
)

// volumeSamples gathers the csi_gorbd_volume_* samples: "name{volume_id}op" → value
// (histograms: their count), and the label sets seen.
func volumeSamples(t *testing.T, m *driver.Metrics) map[string]float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "csi_gorbd_volume_") {
			continue
		}
		for _, s := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range s.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			key := mf.GetName() + "{" + labels["volume_id"] + "," + labels["persistentvolume"] + "}" + labels["op"]
			out[key] = value(mf.GetType(), s)
		}
	}
	return out
}

func value(typ dto.MetricType, s *dto.Metric) float64 {
	switch typ {
	case dto.MetricType_COUNTER:
		return s.GetCounter().GetValue()
	case dto.MetricType_GAUGE:
		return s.GetGauge().GetValue()
	case dto.MetricType_HISTOGRAM:
		return float64(s.GetHistogram().GetSampleCount())
	}
	return -1
}

// TestVolumeMetrics: an observer's requests show as the volume's series;
// a second open of the volume shares them; the last release deletes
// every series of the volume and none of another's.
func TestVolumeMetrics(t *testing.T) {
	m := driver.NewMetrics()
	obs, release := m.Volume("vol-a", "pv-a")
	other, releaseOther := m.Volume("vol-b", "")
	defer releaseOther()
	for range 3 {
		obs.Begin(nbd.OpWrite)
		obs.End(nbd.OpWrite, 4096, time.Millisecond, 0, 0)
	}
	obs.Begin(nbd.OpRead)
	obs.End(nbd.OpRead, 512, 3*time.Second, 2*time.Second, nbd.EIO)
	obs.Begin(nbd.OpFlush) // still in flight
	other.Begin(nbd.OpDiscard)
	other.End(nbd.OpDiscard, 1<<20, time.Millisecond, 0, 0)

	s := volumeSamples(t, m)
	want := map[string]float64{
		"csi_gorbd_volume_operations_total{vol-a,pv-a}write":           3,
		"csi_gorbd_volume_bytes_total{vol-a,pv-a}write":                3 * 4096,
		"csi_gorbd_volume_operations_total{vol-a,pv-a}read":            1,
		"csi_gorbd_volume_bytes_total{vol-a,pv-a}read":                 512,
		"csi_gorbd_volume_errors_total{vol-a,pv-a}read":                1,
		"csi_gorbd_volume_errors_total{vol-a,pv-a}write":               0,
		"csi_gorbd_volume_operation_duration_seconds{vol-a,pv-a}write": 3,
		"csi_gorbd_volume_operations_in_flight{vol-a,pv-a}":            1,
		"csi_gorbd_volume_throttled_seconds_total{vol-a,pv-a}":         2,
		"csi_gorbd_volume_throttled_operations_total{vol-a,pv-a}read":  1,
		"csi_gorbd_volume_bytes_total{vol-b,}discard":                  1 << 20,
	}
	for k, v := range want {
		if got, ok := s[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}

	again, releaseAgain := m.Volume("vol-a", "pv-a") // a recovery reopens it
	release()
	release() // idempotent
	again.End(nbd.OpFlush, 0, time.Millisecond, 0, 0)
	if s := volumeSamples(t, m); s["csi_gorbd_volume_operations_total{vol-a,pv-a}flush"] != 1 || s["csi_gorbd_volume_operations_total{vol-a,pv-a}write"] != 3 {
		t.Errorf("series after the first of two releases: %v", s)
	}
	releaseAgain()
	for k := range volumeSamples(t, m) {
		if strings.Contains(k, "vol-a") {
			t.Errorf("%s left after the last release", k)
		}
	}
	if s := volumeSamples(t, m); s["csi_gorbd_volume_bytes_total{vol-b,}discard"] != 1<<20 {
		t.Error("another volume's series went too")
	}
}
