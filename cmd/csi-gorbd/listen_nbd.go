package main

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/csi-gorbd/csi-gorbd/internal/unixsock"
)

// listenNBD opens `nbd serve --listen`: unix:PATH, a socket only its owner
// may connect to (0600, whatever the umask; a stale socket at PATH is
// replaced, any other file there is an error), or tcp:HOST:PORT on a
// loopback address unless allowRemote: NBD has no authentication and no
// encryption, so whoever can connect can read and write every export.
func listenNBD(ctx context.Context, spec string, allowRemote bool) (net.Listener, error) {
	network, addr, ok := strings.Cut(spec, ":")
	if !ok || addr == "" {
		return nil, fmt.Errorf("--listen %q: want unix:PATH or tcp:HOST:PORT", spec)
	}
	switch network {
	case "unix":
		return unixsock.Listen(ctx, addr, 0o600)
	case "tcp", "tcp4", "tcp6":
		if !allowRemote {
			if err := loopbackOnly(ctx, addr); err != nil {
				return nil, fmt.Errorf("--listen %q: %w; NBD has no authentication or encryption, so anyone who can reach "+
					"the address could read and write the exports: pass --allow-remote to listen there anyway", spec, err)
			}
		}
		return net.Listen(network, addr)
	}
	return nil, fmt.Errorf("--listen %q: unknown network %q", spec, network)
}

// loopbackOnly checks that HOST:PORT names loopback addresses only: an IP
// literal, or a host name all of whose addresses are loopback. An empty
// host (every interface) is not.
func loopbackOnly(ctx context.Context, hostport string) error {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return err
	}
	if host == "" {
		return fmt.Errorf("no host: that listens on every interface")
	}
	if ip := net.ParseIP(host); ip != nil {
		if !ip.IsLoopback() {
			return fmt.Errorf("%s is not a loopback address", host)
		}
		return nil
	}
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		if !a.IP.IsLoopback() {
			return fmt.Errorf("%s resolves to %s, not a loopback address", host, a.IP)
		}
	}
	return nil
}
