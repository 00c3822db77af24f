package rbd

import (
	"errors"
	"slices"
	"testing"
)

// The accepted and refused values are what `rbd config image set` on
// Pacific 16.2.15 took and refused (EINVAL).
func TestParseQoSValue(t *testing.T) {
	ok := map[string]uint64{"0": 0, "200": 200, "10M": 10 << 20, "1K": 1 << 10, "4Ki": 4 << 10, "2G": 2 << 30, "1E": 1 << 60}
	for v, want := range ok {
		if got, err := ParseQoSValue(QoSBPSLimit, v); err != nil || got != want {
			t.Errorf("ParseQoSValue(%q) = %d, %v; want %d", v, got, err, want)
		}
	}
	for _, v := range []string{"", "1k", "0x10", "-5", "abc", " 7", "1.5", "99999999999999999999", "16E", "10MB", "Ki", "1Bi"} {
		if got, err := ParseQoSValue(QoSBPSLimit, v); !errors.Is(err, ErrQoSValue) {
			t.Errorf("ParseQoSValue(%q) = %d, %v; want ErrQoSValue", v, got, err)
		}
	}
	for _, opt := range []string{QoSBurstSeconds(QoSIOPSLimit), QoSScheduleTickMin} {
		if _, err := ParseQoSValue(opt, "0"); !errors.Is(err, ErrQoSValue) {
			t.Errorf("%s 0: %v, want ErrQoSValue (min 1)", opt, err)
		}
	}
	if _, err := ParseQoSValue("rbd_qos_bogus", "1"); !errors.Is(err, ErrQoSValue) {
		t.Errorf("unknown option: %v", err)
	}
	for v, want := range map[string]uint64{"": 0, "discard,write_same": IOOpDiscard | IOOpWriteSame, " read , bogus": IOOpRead, "12": 12, "255": 31} {
		if got, err := ParseQoSValue(QoSExcludeOps, v); err != nil || got != want {
			t.Errorf("exclude_ops %q = %d, %v; want %d", v, got, err, want)
		}
	}
}

func TestQoSOptions(t *testing.T) {
	opts := QoSOptions()
	for _, want := range []string{"rbd_qos_iops_limit", "rbd_qos_iops_burst", "rbd_qos_iops_burst_seconds",
		"rbd_qos_write_bps_limit", "rbd_qos_write_bps_burst", "rbd_qos_write_bps_burst_seconds",
		"rbd_qos_schedule_tick_min", "rbd_qos_exclude_ops"} {
		if !slices.Contains(opts, want) || !IsQoSOption(want) {
			t.Errorf("%s missing", want)
		}
	}
	if len(opts) != 20 || IsQoSOption("rbd_cache") {
		t.Errorf("QoSOptions() = %v", opts)
	}
}

func TestQoSFrom(t *testing.T) {
	pool := map[string]string{QoSIOPSLimit: "100", QoSReadBPSLimit: "1M", "rbd_cache": "false", QoSWriteIOPSLimit: "junk"}
	image := map[string]string{QoSIOPSLimit: "200", QoSBurst(QoSIOPSLimit): "400", QoSBurstSeconds(QoSIOPSLimit): "3",
		QoSScheduleTickMin: "10", QoSExcludeOps: "discard"}
	q, err := QoSFrom(pool, image)
	if !errors.Is(err, ErrQoSValue) {
		t.Errorf("a junk value is not reported: %v", err)
	}
	want := DefaultQoS()
	want.IOPS = QoSLimit{Limit: 200, Burst: 400, BurstSeconds: 3}
	want.ReadBPS.Limit = 1 << 20
	want.ScheduleTickMin = 10
	want.ExcludeOps = IOOpDiscard
	if q != want {
		t.Errorf("QoSFrom = %+v\nwant %+v", q, want)
	}
	if !q.Limited() || DefaultQoS().Limited() {
		t.Error("Limited")
	}
	// A burst below its limit is kept (librbd ignores it when applying)
	// and reported.
	q, err = QoSFrom(map[string]string{QoSBPSLimit: "100", QoSBurst(QoSBPSLimit): "10"})
	if !errors.Is(err, ErrQoSValue) || q.BPS.Burst != 10 {
		t.Errorf("low burst: %+v %v", q.BPS, err)
	}
}
