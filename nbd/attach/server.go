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

func (s NBDServer) export(b nbd.Backend, readOnly bool) *nbd.Export {
	return &nbd.Export{Name: "kernel", Backend: b, ReadOnly: readOnly}
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
