package attach

import (
	"testing"

	"github.com/csi-gorbd/csi-gorbd/nbd"
	"github.com/csi-gorbd/csi-gorbd/nbd/memory"
	"github.com/csi-gorbd/csi-gorbd/nbd/qos"
)

// configured is a backend that puts its limiter on its exports.
type configured struct {
	*memory.Backend
	lim *qos.Limiter
}

func (c configured) ConfigureExport(e *nbd.Export) { e.Limiter = c.lim }

// Every export NBDServer makes for a backend (one per connection) gets
// what the backend's ConfigureExport sets: one limiter for the device.
func TestNBDServerConfiguresExports(t *testing.T) {
	b := configured{Backend: memory.New(1 << 20), lim: qos.New(qos.Limits{IOPS: qos.Limit{Rate: 10}})}
	var s NBDServer
	e1, e2 := s.export(b, false), s.export(b, true)
	if e1.Limiter != b.lim || e2.Limiter != b.lim || !e2.ReadOnly || e1.Backend != nbd.Backend(b) {
		t.Errorf("exports: %+v %+v", e1, e2)
	}
	if e := s.export(memory.New(1<<20), false); e.Limiter != nil {
		t.Errorf("a plain backend got a limiter")
	}
}
