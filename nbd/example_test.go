package nbd_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/csi-gorbd/csi-gorbd/nbd"
	"github.com/csi-gorbd/csi-gorbd/nbd/memory"
)

// A server with one in-memory export on a unix socket; cancel ctx to stop
// it gracefully.
func ExampleServer() {
	dir, _ := os.MkdirTemp("", "nbd")
	defer os.RemoveAll(dir)
	l, err := net.Listen("unix", filepath.Join(dir, "nbd.sock"))
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := &nbd.Server{DefaultExport: "disk"}
	srv.AddExport(&nbd.Export{Name: "disk", Backend: memory.New(1 << 30)})

	ctx, cancel := context.WithCancel(context.Background())
	cancel() // a real program cancels on SIGTERM
	fmt.Println(srv.Serve(ctx, l))
	// Output: <nil>
}

// The kernel path: no handshake. The kernel learns size and flags over
// netlink and gets one end of a socket pair; the server takes the other.
func ExampleServeTransmission() {
	exp := &nbd.Export{Backend: memory.New(1 << 30)}
	flags := exp.TransmissionFlags(false) // NBD_ATTR_SERVER_FLAGS
	fmt.Printf("%#x\n", uint16(flags))

	kernelEnd, serverEnd := net.Pipe() // a unix socketpair in real use
	kernelEnd.Close()
	fmt.Println(nbd.ServeTransmission(context.Background(), serverEnd, exp, nil))
	// Output:
	// 0x96d
	// <nil>
}
