package rbdbackend

import (
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/nbd/qos"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// librbd's settings map onto the limiter field for field; its
// write_same exclusion is the NBD write-zeroes, compare_and_write has no
// NBD counterpart.
func TestLimits(t *testing.T) {
	q, err := rbd.QoSFrom(map[string]string{
		rbd.QoSIOPSLimit: "200", rbd.QoSBurst(rbd.QoSIOPSLimit): "400", rbd.QoSBurstSeconds(rbd.QoSIOPSLimit): "3",
		rbd.QoSWriteBPSLimit: "4M", rbd.QoSReadIOPSLimit: "7", rbd.QoSScheduleTickMin: "20",
		rbd.QoSExcludeOps: "discard,write_same,compare_and_write",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := qos.Limits{
		IOPS:      qos.Limit{Rate: 200, Burst: 400, BurstSeconds: 3},
		ReadIOPS:  qos.Limit{Rate: 7, BurstSeconds: 1},
		WriteIOPS: qos.Limit{BurstSeconds: 1},
		BPS:       qos.Limit{BurstSeconds: 1},
		ReadBPS:   qos.Limit{BurstSeconds: 1},
		WriteBPS:  qos.Limit{Rate: 4 << 20, BurstSeconds: 1},
		TickMin:   20 * time.Millisecond,
		Exclude:   qos.OpSet(0).With(qos.Discard).With(qos.WriteZeroes),
	}
	if got := Limits(q); got != want {
		t.Errorf("Limits = %+v\nwant %+v", got, want)
	}
	if Limits(rbd.DefaultQoS()).Enabled() {
		t.Error("librbd's defaults limit something")
	}
}
