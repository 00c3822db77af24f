package rados

import (
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/cephx"
	"github.com/csi-gorbd/csi-gorbd/rados/entity"
	"github.com/csi-gorbd/csi-gorbd/rados/messenger"
	"github.com/csi-gorbd/csi-gorbd/rados/mon"
)

type authenticator = mon.Authenticator

func noneAuth(n entity.Name) authenticator { return &mon.NoAuth{Name: n} }

// cephxAuth adapts a cephx.Client (keys and tickets of one client) to the
// monitor client's Authenticator.
type cephxAuth struct {
	c     *cephx.Client
	modes []uint32
}

func newCephxAuth(c *cephx.Client, modes []uint32) *cephxAuth {
	return &cephxAuth{c: c, modes: modes}
}

func (a *cephxAuth) AuthClient(uint64) messenger.AuthClient { return a.c.MonAuth(a.modes...) }

func (a *cephxAuth) RenewAfter() time.Time { return a.c.RenewAfter() }

func (a *cephxAuth) BuildRenewal() (uint32, []byte, error) { return a.c.BuildRenewal() }

func (a *cephxAuth) HandleRenewal(result int32, globalID uint64, payload []byte) error {
	return a.c.HandleRenewal(result, globalID, payload)
}
