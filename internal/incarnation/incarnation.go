package incarnation

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// ErrBusy: another live process holds the directory's lock.
var ErrBusy = errors.New("incarnation: state is in use by another process")

// keep bounds how many tokens of earlier incarnations are carried over: a
// process that crashes again while recovering must still know the clients
// of the one before it, but the list must not grow forever.
const keep = 256

// maxLine bounds one recorded token.
const maxLine = 4096

// Dir is a held state lock with the tokens of earlier incarnations.
type Dir struct {
	mu   sync.Mutex
	path string
	f    *os.File
	prev map[string]bool
}

// Acquire takes the lock file at path (created 0600 if missing), waiting
// while another process holds it until ctx ends (then ErrBusy). It reads
// the tokens the earlier incarnations recorded; they stay in the file,
// the newest keep of them, and new Records are appended after them.
func Acquire(ctx context.Context, path string) (*Dir, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("incarnation: %w", err)
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("incarnation: lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("%w: %s is locked (%w)", ErrBusy, path, ctx.Err())
		case <-tick.C:
		}
	}
	d := &Dir{path: path, f: f, prev: map[string]bool{}}
	if err := d.load(); err != nil {
		f.Close()
		return nil, err
	}
	return d, nil
}

// load reads the recorded tokens and rewrites the file with the newest
// keep of them.
func (d *Dir) load() error {
	var toks []string
	sc := bufio.NewScanner(d.f)
	sc.Buffer(make([]byte, 0, 512), maxLine)
	for sc.Scan() {
		if t := strings.TrimSpace(sc.Text()); t != "" {
			toks = append(toks, t)
		}
	}
	if err := sc.Err(); err != nil {
		// A damaged file (a line too long): start over rather than refuse
		// to start; the only loss is a slower lock takeover.
		toks = nil
	}
	if len(toks) > keep {
		toks = toks[len(toks)-keep:]
	}
	for _, t := range toks {
		d.prev[t] = true
	}
	var b strings.Builder
	for _, t := range toks {
		b.WriteString(t)
		b.WriteByte('\n')
	}
	if err := d.f.Truncate(0); err != nil {
		return fmt.Errorf("incarnation: %w", err)
	}
	if _, err := d.f.WriteAt([]byte(b.String()), 0); err != nil {
		return fmt.Errorf("incarnation: %w", err)
	}
	if _, err := d.f.Seek(0, 2); err != nil {
		return fmt.Errorf("incarnation: %w", err)
	}
	return d.f.Sync()
}

// Previous reports whether an earlier incarnation recorded token.
func (d *Dir) Previous(token string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.prev[token]
}

// Record appends token (it must not contain a newline) and syncs it, so
// that the next incarnation knows it even if this one is killed.
func (d *Dir) Record(token string) error {
	if token == "" || strings.ContainsAny(token, "\r\n") || len(token) >= maxLine {
		return fmt.Errorf("incarnation: bad token %q", token)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		return errors.New("incarnation: closed")
	}
	if _, err := d.f.Write([]byte(token + "\n")); err != nil {
		return fmt.Errorf("incarnation: %w", err)
	}
	return d.f.Sync()
}

// Close releases the lock. The recorded tokens stay for the next
// incarnation (a cleanly stopped process's clients are closed, and
// naming them dead then is harmless: their locks are gone). Closing a
// nil Dir does nothing.
func (d *Dir) Close() error { return d.release(false) }

// Remove deletes the file and releases the lock, for a state that ended
// cleanly: nothing of it is left for a next incarnation to take over.
func (d *Dir) Remove() error { return d.release(true) }

// release closes the file (releasing the lock), unlinking it first when
// unlink is set: while still holding the lock, so no process that takes
// it next can read a half-truncated list.
func (d *Dir) release(unlink bool) error {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		return nil
	}
	var err error
	if unlink {
		err = os.Remove(d.path)
	}
	if cerr := d.f.Close(); err == nil {
		err = cerr
	}
	d.f = nil
	return err
}
