package osd

import (
	"context"
	"errors"
	"fmt"

	"github.com/csi-gorbd/csi-gorbd/rados/entity"
	"github.com/csi-gorbd/csi-gorbd/rados/messenger"
)

// DialerConfig describes how to open OSD connections with the messenger.
type DialerConfig struct {
	// Base is the template for every connection: features, nonce (one per
	// client instance), keepalives, limits, GlobalSeq.
	Base messenger.Config
	// GlobalID returns our global id from the monitor session at dial
	// time (the OSD names us client.<global id>; request ids depend on it).
	GlobalID func() uint64
	// Authorizer returns a fresh authenticator for one connection attempt
	// to an OSD (cephx builds it from the OSD service ticket).
	Authorizer func(osd int32) (messenger.AuthClient, error)
}

// MessengerDialer returns a DialFunc that opens msgr2 connections.
func MessengerDialer(dc DialerConfig) DialFunc {
	return func(ctx context.Context, osd int32, addrs entity.AddrVec, h Handler) (Conn, error) {
		addr, ok := addrs.Msgr2()
		if !ok {
			return nil, fmt.Errorf("osd.%d has no msgr2 address in %v", osd, addrs)
		}
		if dc.Authorizer == nil {
			return nil, errors.New("osd: DialerConfig.Authorizer is required")
		}
		auth, err := dc.Authorizer(osd)
		if err != nil {
			return nil, fmt.Errorf("osd.%d authorizer: %w", osd, err)
		}
		cfg := dc.Base
		cfg.Addr = addr
		cfg.PeerType = entity.TypeOSD
		cfg.Auth = auth
		if dc.GlobalID != nil {
			cfg.GlobalID = dc.GlobalID()
		}
		cfg.Dispatch = h.Dispatch
		cfg.OnFault = h.OnFault
		cfg.RxBuffer = h.RxBuffer
		conn, err := messenger.Dial(ctx, cfg)
		if err != nil {
			return nil, err
		}
		return conn, nil
	}
}
