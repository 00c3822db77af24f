package rbd_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/csi-gorbd/csi-gorbd/rados"
	"github.com/csi-gorbd/csi-gorbd/rados/entity"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// TestInteropLockOwnerAndWatchers: what a caller needs to refuse a second
// user and name the first: an exclusive open that finds the lock held
// fails with a *LockedError naming the owner as `rbd lock ls` does;
// Watchers lists the other users' watches, not the image's own, and a
// NoWatch open is nobody's user.
func TestInteropLockOwnerAndWatchers(t *testing.T) {
	for _, c := range clusters {
		t.Run(c, func(t *testing.T) {
			e := newEnv(t, c)
			ctx := tctx(t)
			name := iname("owner")
			if _, err := rbd.Create(ctx, e.io, name, 8<<20, &rbd.CreateOptions{Features: rbd.FeaturesDefault}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = rbd.Remove(context.Background(), e.io, name) })

			peek, err := rbd.Open(ctx, e.io, name, &rbd.OpenOptions{NoWatch: true})
			if err != nil {
				t.Fatal(err)
			}
			defer peek.Close(context.Background())
			if ws, err := peek.Watchers(ctx); err != nil || len(ws) != 0 {
				t.Fatalf("watchers of an unused image seen through a NoWatch open: %+v %v", ws, err)
			}
			if _, err := peek.WriteAt(ctx, []byte("x"), 0); err == nil {
				t.Fatal("a NoWatch open wrote to an exclusive-lock image without the lock")
			}

			a, err := rbd.Open(ctx, e.io, name, &rbd.OpenOptions{Exclusive: true})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close(context.Background())
			if ws, err := a.Watchers(ctx); err != nil || len(ws) != 0 {
				t.Fatalf("the owner's own watch listed by Watchers: %+v %v", ws, err)
			}
			ws, err := peek.Watchers(ctx)
			if err != nil || len(ws) != 1 {
				t.Fatalf("watchers with one user: %+v %v", ws, err)
			}
			self := entity.NumName{Type: entity.TypeClient, Num: int64(e.conn.GlobalID())}
			if ws[0].Entity != self {
				t.Fatalf("watcher %v, want %v", ws[0].Entity, self)
			}

			_, err = rbd.Open(ctx, e.io, name, &rbd.OpenOptions{Exclusive: true})
			var le *rbd.LockedError
			if !errors.As(err, &le) || !errors.Is(err, rbd.ErrBusy) {
				t.Fatalf("second exclusive open: %v, want a *LockedError matching ErrBusy", err)
			}
			ls := e.lockers(t, name)
			if len(ls) != 1 {
				t.Fatalf("rbd lock ls: %+v", ls)
			}
			if le.Owner.String() != ls[0].Locker || le.Owner != self {
				t.Fatalf("LockedError owner %v, rbd lock ls %s, us %v", le.Owner, ls[0].Locker, self)
			}
			if want := ws[0].Addr; le.Addr.IP.Addr() != want.IP.Addr() || le.Addr.Nonce != want.Nonce ||
				!strings.HasSuffix(ls[0].Address, "/"+strconv.FormatUint(uint64(want.Nonce), 10)) {
				t.Fatalf("LockedError address %v, watcher %v, rbd lock ls %s", le.Addr, want, ls[0].Address)
			}
			if !strings.Contains(err.Error(), ls[0].Locker) {
				t.Fatalf("error does not name the owner: %v", err)
			}

			// Blocklist fences another client found watching: its next op
			// fails with ESHUTDOWN (EBLOCKLISTED).
			conn2, err := rados.Connect(ctx, rados.Config{ConfFile: e.cl.Conf(), Keyring: e.cl.Keyring()})
			if err != nil {
				t.Fatal(err)
			}
			defer conn2.Close()
			io2, err := conn2.OpenIOContext(ctx, e.pool)
			if err != nil {
				t.Fatal(err)
			}
			r2, err := rbd.Open(ctx, io2, name, &rbd.OpenOptions{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer r2.Close(ctx)
			ws, err = a.Watchers(ctx)
			if err != nil || len(ws) != 1 || ws[0].Entity.Num != int64(conn2.GlobalID()) {
				t.Fatalf("watchers besides the owner: %+v %v (second client %d)", ws, err, conn2.GlobalID())
			}
			obj := name + ".fence"
			if err := io2.WriteFull(ctx, obj, []byte("before")); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = e.io.Remove(context.Background(), obj) })
			if err := rbd.Blocklist(ctx, e.io, ws[0].Addr); err != nil {
				t.Fatal(err)
			}
			if !blocklisted(t, ctx, e.conn, "/"+strconv.FormatUint(uint64(ws[0].Addr.Nonce), 10)) {
				t.Fatalf("%v not in osd blocklist ls", ws[0].Addr)
			}
			if err := io2.WriteFull(ctx, obj, []byte("after")); !errors.Is(err, syscall.ESHUTDOWN) {
				t.Fatalf("write of a blocklisted client: %v, want ESHUTDOWN", err)
			}
		})
	}
}
