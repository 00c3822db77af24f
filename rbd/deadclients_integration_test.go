package rbd_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/entity"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// TestInteropLockDeadClients: a lock owner killed with -9 leaves its
// header watch on the OSD for osd_client_watch_timeout (30 s), so a plain
// next writer must wait that long. A caller that knows the owner is dead
// (a restarted plugin recognising its previous incarnation) names it in
// OpenOptions.DeadClients and takes the lock over at once: the owner is
// blocklisted and its lock broken while its watch still looks alive.
func TestInteropLockDeadClients(t *testing.T) {
	if os.Getenv(holderEnv) != "" {
		t.Skip("in the helper process")
	}
	for _, c := range clusters {
		t.Run(c, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, c)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			name := iname("deadcl")
			if _, err := rbd.Create(ctx, e.io, name, 4<<20, &rbd.CreateOptions{Features: rbd.FeaturesDefault}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = rbd.Remove(context.Background(), e.io, name) })
			victim := startLockHolder(t, ctx, e, c, name)
			nm, err := entity.ParseName(victim.Locker) // "client.4140"
			if err != nil {
				t.Fatalf("locker %q: %v", victim.Locker, err)
			}
			num, err := strconv.ParseInt(nm.ID, 10, 64)
			if err != nil {
				t.Fatalf("locker %q: %v", victim.Locker, err)
			}
			dead := entity.NumName{Type: nm.Type, Num: num}

			// Naming somebody else changes nothing: the watch is alive,
			// the lock stays (a short deadline, well inside the 30 s).
			other := dead
			other.Num++
			img, err := rbd.Open(ctx, e.io, name, &rbd.OpenOptions{DeadClients: func(n entity.NumName) bool { return n == other }})
			if err != nil {
				t.Fatal(err)
			}
			short, cancelShort := context.WithTimeout(ctx, 3*time.Second)
			_, err = img.WriteAt(short, []byte("too early"), 0)
			cancelShort()
			img.Close(context.Background())
			if !errors.Is(err, rbd.ErrBusy) {
				t.Fatalf("write while the dead owner's watch lives, owner not named: %v, want ErrBusy", err)
			}

			// Naming the dead owner: taken over well before its watch
			// times out (the deadline is below osd_client_watch_timeout),
			// here in the background as the node plugin does
			// (LockInBackground): the write waits for it.
			start := time.Now()
			img, err = rbd.Open(ctx, e.io, name, &rbd.OpenOptions{LockInBackground: true,
				DeadClients: func(n entity.NumName) bool { return n == dead }})
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close(context.Background())
			quick, cancelQuick := context.WithTimeout(ctx, 15*time.Second)
			defer cancelQuick()
			if _, err := img.WriteAt(quick, []byte("successor"), 0); err != nil {
				t.Fatalf("write with the dead owner named: %v", err)
			}
			t.Logf("lock of %s taken over after %v", victim.Locker, time.Since(start).Round(time.Millisecond))
			if !img.OwnsLock() {
				t.Fatal("the write went through but the lock is not ours")
			}
			if ls := e.lockers(t, name); len(ls) != 1 || ls[0].Address == victim.Address {
				t.Fatalf("rbd lock ls after the takeover: %+v (victim %s)", ls, victim.Address)
			}
			if !blocklisted(t, ctx, e.conn, victim.Address) {
				t.Fatalf("the dead owner %s is not blocklisted", victim.Address)
			}
		})
	}
}
