package attach

import (
	"context"
	"net"

	"github.com/csi-gorbd/csi-gorbd/nbd"
)

// NBDServer is the Server backed by package nbd's transmission phase.
type NBDServer struct {
	// Options tunes the server (workers, in-flight bytes); nil: defaults.
	Options *nbd.Options
}

// ExportConfigurer is implemented by backends that set more of the
// export the kernel is served (a QoS limiter, an observer for metrics):
// NBDServer calls it on each export it makes for the backend, one per
// connection, so what it sets must be shared by all of them.
type ExportConfigurer interface {
	ConfigureExport(e *nbd.Export)
}

func (s NBDServer) export(b nbd.Backend, readOnly bool) *nbd.Export {
	e := &nbd.Export{Name: "kernel", Backend: b, ReadOnly: readOnly}
	if c, ok := b.(ExportConfigurer); ok {
		c.ConfigureExport(e)
	}
	return e
}

// ServeTransmission implements Server.
func (s NBDServer) ServeTransmission(ctx context.Context, conn net.Conn, b nbd.Backend, readOnly bool) error {
	var o *nbd.Options
	if s.Options != nil {
		c := *s.Options
		c.Structured = false // the kernel speaks simple replies only
		o = &c
	}
	return nbd.ServeTransmission(ctx, conn, s.export(b, readOnly), o)
}

// TransmissionFlags implements Server.
func (s NBDServer) TransmissionFlags(b nbd.Backend, readOnly bool) uint64 {
	return uint64(s.export(b, readOnly).TransmissionFlags(false))
}
