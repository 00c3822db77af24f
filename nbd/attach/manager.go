package attach

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/csi-gorbd/csi-gorbd/nbd"
)

const (
	// DefaultDeadConnTimeout is how long the kernel holds I/O for a device
	// whose sockets all died (a restart of the serving process) before it
	// fails it. A restart that runs Recover within it loses no I/O.
	DefaultDeadConnTimeout = 120 * time.Second
	// DefaultCheckInterval is how often the kernel looks at each request
	// in flight on a device with one connection and no request timeout
	// (Spec.Timeout 0, the default). The nbd driver then never fails or
	// re-sends a slow request on a live socket: it logs "Possible stuck
	// request" and waits on. But a request that was in flight on a socket
	// that has since been replaced (RECONFIGURE after a restart of the
	// serving process) is re-sent on the new one at its next check: the
	// kernel has no other way to learn that its server died with the
	// request. The block layer's default, 30 s, would stall the
	// application that long after every restart. The block layer rounds
	// its timer up to whole seconds, so a request is checked on the first
	// second boundary after its deadline: with a 1 s interval that is
	// every 2 s (seen in dmesg: "Possible stuck request ... Runtime 1
	// seconds", then 2 s later "Runtime 2"), with anything under a second
	// every 1 s. 500 ms is that, with room for the timer's slack.
	// Devices with several connections or a Timeout keep the driver's
	// timeout semantics (it marks the socket dead and re-sends, also
	// against a live server), so the interval is not shortened there.
	DefaultCheckInterval = 500 * time.Millisecond
	// DefaultBlockSize is the logical block size of the devices.
	DefaultBlockSize = 512
	// maxConnections bounds Spec.Connections.
	maxConnections = 16
	// flagCanMultiConn is NBD_FLAG_CAN_MULTI_CONN: the kernel refuses more
	// than one socket without it.
	flagCanMultiConn = 1 << 8
)

// Server serves the NBD transmission phase (what the kernel speaks: no
// handshake) of backend b on conn until the kernel sends NBD_CMD_DISC, the
// connection breaks or ctx ends. NBDServer is the real one.
type Server interface {
	ServeTransmission(ctx context.Context, conn net.Conn, b nbd.Backend, readOnly bool) error
	// TransmissionFlags are the NBD_FLAG_* bits to hand the kernel for b.
	TransmissionFlags(b nbd.Backend, readOnly bool) uint64
}

// Factory opens the backend named by an image spec string. It is called by
// Attach and, after a restart, by Recover with the recorded string; it gets
// any credentials from the caller's own configuration, never from the
// state directory.
type Factory func(ctx context.Context, image string, readOnly bool) (nbd.Backend, error)

// Resizer is implemented by backends whose size the manager may change.
type Resizer interface {
	Resize(size int64) error
}

// Event reports something that happened to an attachment while serving;
// the manager never logs, the caller may.
type Event struct {
	Index int
	ID    string
	Msg   string
	Err   error
}

func (e Event) String() string {
	s := fmt.Sprintf("nbd%d (%s): %s", e.Index, e.ID, e.Msg)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Config configures a Manager.
type Config struct {
	// StateDir holds the attachment records.
	StateDir string
	// Server serves the connections; nil means NBDServer{}.
	Server  Server
	Factory Factory
	// OnEvent, if set, receives events (connection lost, reconnected,
	// detached by someone else). It must not block.
	OnEvent func(Event)
	// Kernel is the kernel interface; nil means the real one (nbdnl).
	Kernel Kernel
}

// Spec describes a new attachment.
type Spec struct {
	// ID is the backend identifier (the volume id); required, unique per
	// node.
	ID string
	// Image is the image spec string passed to the Factory and recorded.
	Image    string
	ReadOnly bool
	// Connections is the number of sockets (default 1).
	Connections int
	// Device asks for a given device ("/dev/nbd3"); "" lets the kernel pick.
	Device string
	// BlockSize is the device's logical block size; 0 takes the
	// backend's PreferredBlockSize when it is larger than
	// DefaultBlockSize (at most 4096), else DefaultBlockSize.
	BlockSize int64
	// Timeout is the kernel's per-request timeout (0: kernel default).
	Timeout time.Duration
	// DeadConnTimeout defaults to DefaultDeadConnTimeout.
	DeadConnTimeout time.Duration
}

// Manager serves attached devices and records them.
type Manager struct {
	cfg    Config
	store  Store
	kernel Kernel
	ctx    context.Context
	cancel context.CancelFunc

	ioflusher    sync.Once
	ioflusherErr error

	mu   sync.Mutex
	atts map[int]*attachment
}

type attachment struct {
	rec     Record
	backend nbd.Backend
	ctx     context.Context
	cancel  context.CancelFunc
	ready   chan struct{} // closed once the kernel has the device
	done    chan struct{} // closed when every connection has ended
	wg      sync.WaitGroup

	detaching    atomic.Bool // Detach in this process
	disconnected atomic.Bool // the kernel sent NBD_CMD_DISC
}

// New makes a Manager. Serving stops when ctx ends or Close is called;
// neither disconnects any device.
func New(ctx context.Context, cfg Config) (*Manager, error) {
	if cfg.Factory == nil {
		return nil, errors.New("attach: Config needs a Factory")
	}
	if cfg.Server == nil {
		cfg.Server = NBDServer{}
	}
	k := cfg.Kernel
	if k == nil {
		k = netlinkKernel{}
	}
	m := &Manager{cfg: cfg, store: Store{Dir: cfg.StateDir}, kernel: k, atts: map[int]*attachment{}}
	// A crash while saving a record leaves its temporary file behind.
	if _, err := m.store.dir().RemoveTemps(staleTempAge); err != nil {
		return nil, fmt.Errorf("attach: removing stale temporary records: %w", err)
	}
	m.ctx, m.cancel = context.WithCancel(ctx)
	return m, nil
}

// IOFlusherError is the result of setting PR_SET_IO_FLUSHER (nil before
// the first Attach or Recover, or when it worked).
func (m *Manager) IOFlusherError() error { return m.ioflusherErr }

func (m *Manager) setIOFlusher() {
	m.ioflusher.Do(func() { m.ioflusherErr = SetIOFlusher() })
}

func (m *Manager) event(a *attachment, err error, format string, args ...any) {
	if m.cfg.OnEvent != nil {
		m.cfg.OnEvent(Event{Index: a.rec.Index, ID: a.rec.ID, Msg: fmt.Sprintf(format, args...), Err: err})
	}
}

// Close stops serving every device without disconnecting it and waits for
// the connections to end. The records stay: Recover in a new process
// takes the devices over.
func (m *Manager) Close() error {
	m.cancel()
	m.mu.Lock()
	var as []*attachment
	for _, a := range m.atts {
		as = append(as, a)
	}
	m.mu.Unlock()
	for _, a := range as {
		<-a.done
	}
	return nil
}

// Attach opens the backend, connects a kernel device served by this
// process and records it. It returns the record (Index is the device).
func (m *Manager) Attach(ctx context.Context, spec Spec) (*Record, error) {
	if spec.ID == "" {
		return nil, errors.New("attach: Spec.ID is required")
	}
	if spec.Connections == 0 {
		spec.Connections = 1
	}
	if spec.Connections < 0 || spec.Connections > maxConnections {
		return nil, fmt.Errorf("attach: %d connections (1..%d)", spec.Connections, maxConnections)
	}
	if spec.DeadConnTimeout == 0 {
		spec.DeadConnTimeout = DefaultDeadConnTimeout
	}
	index := -1
	if spec.Device != "" {
		n, err := parseDevice(spec.Device)
		if err != nil {
			return nil, err
		}
		index = n
	}
	if r, err := m.store.Find(spec.ID); err == nil {
		return nil, fmt.Errorf("attach: %s is already attached as %s", spec.ID, r.Device())
	}
	m.setIOFlusher()
	b, err := m.cfg.Factory(ctx, spec.Image, spec.ReadOnly)
	if err != nil {
		return nil, fmt.Errorf("attach: open %s: %w", spec.Image, err)
	}
	if spec.BlockSize == 0 {
		spec.BlockSize = blockSize(b)
	}
	size := b.Size()
	if size <= 0 || size%spec.BlockSize != 0 {
		closeBackend(b)
		return nil, fmt.Errorf("attach: export size %d is not a positive multiple of the block size %d", size, spec.BlockSize)
	}
	flags := m.cfg.Server.TransmissionFlags(b, spec.ReadOnly)
	if spec.Connections > 1 && flags&flagCanMultiConn == 0 {
		closeBackend(b)
		return nil, fmt.Errorf("attach: the backend of %s does not allow %d connections (no NBD_FLAG_CAN_MULTI_CONN)", spec.Image, spec.Connections)
	}
	a := m.newAttachment(Record{
		Index:                  index,
		ID:                     spec.ID,
		Image:                  spec.Image,
		Size:                   size,
		BlockSize:              spec.BlockSize,
		ReadOnly:               spec.ReadOnly,
		Connections:            spec.Connections,
		TimeoutSeconds:         int64(seconds(spec.Timeout)),
		DeadConnTimeoutSeconds: int64(seconds(spec.DeadConnTimeout)),
		Created:                time.Now().UTC().Truncate(time.Second),
	}, b)
	theirs, err := m.startConns(a)
	if err != nil {
		m.abandon(a)
		return nil, err
	}
	got, err := m.kernel.Connect(ctx, theirs, ConnectParams{
		Index:           index,
		Size:            size,
		BlockSize:       spec.BlockSize,
		ServerFlags:     flags,
		Timeout:         spec.Timeout,
		DeadConnTimeout: spec.DeadConnTimeout,
		BackendID:       spec.ID,
	})
	closeFiles(theirs)
	if err != nil {
		m.abandon(a)
		return nil, err
	}
	a.rec.Index = got
	m.setCheckInterval(a)
	if err := m.store.Save(&a.rec); err != nil {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		m.kernel.Disconnect(dctx, got)
		cancel()
		m.abandon(a)
		return nil, err
	}
	m.register(a)
	r := a.rec
	return &r, nil
}

// blockSize is the logical block size for a backend's device: its
// preferred block size when it has one above DefaultBlockSize (an
// encrypted export's sector: 4096-byte LUKS sectors make a 4096-byte
// device, as dm-crypt does, so that filesystems made on either fit the
// other and no kernel I/O needs read-modify-write), else
// DefaultBlockSize.
func blockSize(b nbd.Backend) int64 {
	if p, ok := b.(interface{ PreferredBlockSize() uint32 }); ok {
		if n := int64(p.PreferredBlockSize()); n > DefaultBlockSize && n <= 4096 && n&(n-1) == 0 {
			return n
		}
	}
	return DefaultBlockSize
}

func (m *Manager) newAttachment(rec Record, b nbd.Backend) *attachment {
	a := &attachment{rec: rec, backend: b, ready: make(chan struct{}), done: make(chan struct{})}
	a.ctx, a.cancel = context.WithCancel(m.ctx)
	return a
}

// startConns makes the socketpairs and serves our ends; it returns the
// kernel's ends. a.done is closed once every connection has ended (also
// when startConns fails).
func (m *Manager) startConns(a *attachment) ([]*os.File, error) {
	var (
		ours   []net.Conn
		theirs []*os.File
		err    error
	)
	for i := 0; i < a.rec.Connections && err == nil; i++ {
		var o net.Conn
		var t *os.File
		if o, t, err = socketPair(); err == nil {
			ours, theirs = append(ours, o), append(theirs, t)
		}
	}
	if err != nil {
		for _, o := range ours {
			o.Close()
		}
		closeFiles(theirs)
		ours, theirs = nil, nil
	}
	for _, o := range ours {
		a.wg.Add(1)
		go m.serveSlot(a, o)
	}
	go func() {
		a.wg.Wait()
		m.finish(a)
	}()
	return theirs, err
}

// abandon stops an attachment that never reached the kernel.
func (m *Manager) abandon(a *attachment) {
	a.detaching.Store(true)
	a.cancel()
	<-a.done
}

func (m *Manager) register(a *attachment) {
	m.mu.Lock()
	m.atts[a.rec.Index] = a
	m.mu.Unlock()
	close(a.ready)
}

// finish runs when every connection of a has ended.
func (m *Manager) finish(a *attachment) {
	if a.disconnected.Load() && !a.detaching.Load() && m.ctx.Err() == nil {
		// Disconnected by someone else (csi-gorbd nbd unmap in another
		// process): the record goes too.
		m.store.Remove(a.rec.Index)
		m.event(a, nil, "disconnected by the kernel; record removed")
	}
	m.mu.Lock()
	if m.atts[a.rec.Index] == a {
		delete(m.atts, a.rec.Index)
	}
	m.mu.Unlock()
	closeBackend(a.backend)
	a.cancel()
	close(a.done)
}

// serveSlot serves one connection slot; when the kernel drops the socket
// while the device lives on, it hands the kernel a fresh one.
func (m *Manager) serveSlot(a *attachment, conn net.Conn) {
	defer a.wg.Done()
	quick := 0
	for {
		start := time.Now()
		dw := &discWatch{Conn: conn}
		err := m.cfg.Server.ServeTransmission(a.ctx, dw, a.backend, a.rec.ReadOnly)
		conn.Close()
		if a.ctx.Err() != nil || a.detaching.Load() {
			return
		}
		if dw.sawDisc.Load() {
			a.disconnected.Store(true)
			return
		}
		if err == nil {
			err = errors.New("connection closed by the kernel")
		}
		select {
		case <-a.ready:
		case <-a.ctx.Done():
			return
		}
		if time.Since(start) < time.Second {
			quick++
		} else {
			quick = 0
		}
		if quick > 10 {
			m.event(a, err, "connection keeps failing; giving this slot up")
			return
		}
		m.event(a, err, "connection lost; reconnecting")
		conn, err = m.reconnect(a)
		if err != nil {
			if !a.detaching.Load() && a.ctx.Err() == nil {
				m.event(a, err, "reconnect failed")
			}
			return
		}
		m.event(a, nil, "reconnected")
	}
}

// reconnect gives the kernel a new socket for a dead one, retrying until
// the dead-connection timeout. It fails at once if the device is no longer
// ours.
func (m *Manager) reconnect(a *attachment) (net.Conn, error) {
	deadline := time.Now().Add(time.Duration(a.rec.DeadConnTimeoutSeconds) * time.Second)
	ctx, cancel := context.WithDeadline(a.ctx, deadline)
	defer cancel()
	delay := 50 * time.Millisecond
	for {
		if ok, err := m.kernel.Owns(ctx, a.rec.Index, a.rec.ID); err == nil && !ok {
			a.disconnected.Store(true)
			return nil, errors.New("device is no longer connected to this backend")
		}
		ours, theirs, err := socketPair()
		if err == nil {
			err = m.kernel.Reconfigure(ctx, a.rec.Index, []*os.File{theirs}, ReconfigureParams{BackendID: a.rec.ID})
			theirs.Close()
			if err == nil {
				return ours, nil
			}
			ours.Close()
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-t.C:
		}
		delay = min(2*delay, 2*time.Second)
	}
}

// Recover takes over every recorded device: it reopens the backend through
// the factory, serves fresh sockets and hands them to the kernel with
// NBD_CMD_RECONFIGURE (carrying the recorded backend identifier). Records
// of devices the kernel no longer has (or that now belong to another
// backend) are removed. It returns the devices now served.
func (m *Manager) Recover(ctx context.Context) ([]*Record, error) {
	recs, lerr := m.store.List()
	m.setIOFlusher()
	// Every device at once: each waits mostly on its cluster (connect,
	// image open, lock takeover), and the kernel holds its I/O until then.
	out := make([]*Record, len(recs))
	errs := make([]error, len(recs))
	var wg sync.WaitGroup
	for i, r := range recs {
		m.mu.Lock()
		_, served := m.atts[r.Index]
		m.mu.Unlock()
		if served {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec, err := m.recoverOne(ctx, r)
			if err != nil {
				errs[i] = fmt.Errorf("attach: recover %s (%s): %w", r.Device(), r.ID, err)
			}
			out[i] = rec
		}()
	}
	wg.Wait()
	served := make([]*Record, 0, len(recs))
	for _, r := range out {
		if r != nil {
			served = append(served, r)
		}
	}
	return served, errors.Join(append([]error{lerr}, errs...)...)
}

// ErrStale marks a record whose device the kernel no longer has for it.
var ErrStale = errors.New("attach: stale record")

func (m *Manager) recoverOne(ctx context.Context, r *Record) (*Record, error) {
	t0 := time.Now()
	owns, err := m.kernel.Owns(ctx, r.Index, r.ID)
	if err != nil {
		return nil, err
	}
	if !owns {
		m.store.Remove(r.Index)
		return nil, fmt.Errorf("%w: device not connected to %s; record removed", ErrStale, r.ID)
	}
	b, err := m.cfg.Factory(ctx, r.Image, r.ReadOnly)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", r.Image, err)
	}
	t1 := time.Now()
	a := m.newAttachment(*r, b)
	theirs, err := m.startConns(a)
	if err != nil {
		m.abandon(a)
		return nil, err
	}
	size := b.Size()
	err = m.kernel.Reconfigure(ctx, r.Index, theirs, ReconfigureParams{
		BackendID:       r.ID,
		Size:            size,
		DeadConnTimeout: time.Duration(r.DeadConnTimeoutSeconds) * time.Second,
	})
	closeFiles(theirs)
	if err != nil {
		m.abandon(a)
		return nil, err
	}
	m.setCheckInterval(a) // also for devices connected by an older version
	m.event(a, nil, "taken over in %v (open %v, reconfigure %v)", time.Since(t0).Round(time.Millisecond),
		t1.Sub(t0).Round(time.Millisecond), time.Since(t1).Round(time.Millisecond))
	if size != r.Size {
		a.rec.Size = size
		if err := m.store.Save(&a.rec); err != nil {
			m.event(a, err, "record not updated")
		}
	}
	m.register(a)
	rec := a.rec
	return &rec, nil
}

// setCheckInterval shortens the kernel's check of requests in flight
// (DefaultCheckInterval) on a device with one connection and no request
// timeout; a failure is reported as an event (I/O still works, a restart
// just stalls it longer).
func (m *Manager) setCheckInterval(a *attachment) {
	ci, ok := m.kernel.(CheckIntervaler)
	if !ok || a.rec.Connections != 1 || a.rec.TimeoutSeconds != 0 {
		return
	}
	if err := ci.SetCheckInterval(a.rec.Index, DefaultCheckInterval); err != nil {
		m.event(a, err, "setting the request check interval")
	}
}

// Detach disconnects the device given by path ("/dev/nbdN") or backend
// identifier and removes its record. It works for devices served by this
// process and by others (the other process sees NBD_CMD_DISC and lets go).
func (m *Manager) Detach(ctx context.Context, deviceOrID string) error {
	a := m.lookup(deviceOrID)
	var rec *Record
	if a != nil {
		r := a.rec
		rec = &r
		a.detaching.Store(true)
	} else {
		r, err := m.store.Find(deviceOrID)
		if err != nil {
			return err
		}
		rec = r
	}
	owns, err := m.kernel.Owns(ctx, rec.Index, rec.ID)
	if err != nil {
		return err
	}
	if owns {
		if err := m.kernel.Disconnect(ctx, rec.Index); err != nil {
			return err
		}
	}
	if err := m.store.Remove(rec.Index); err != nil {
		return err
	}
	if a != nil {
		select {
		case <-a.done:
		case <-ctx.Done():
			a.cancel()
			return ctx.Err()
		}
	}
	return nil
}

// Resize changes the export size of a device served by this process: the
// backend is resized (it must implement Resizer, unless it already has the
// size) and the kernel is told with NBD_CMD_RECONFIGURE.
func (m *Manager) Resize(ctx context.Context, deviceOrID string, size int64) error {
	a := m.lookup(deviceOrID)
	if a == nil {
		return fmt.Errorf("%w served by this process: %s", ErrNoRecord, deviceOrID)
	}
	if size <= 0 || size%a.rec.BlockSize != 0 {
		return fmt.Errorf("attach: size %d is not a positive multiple of the block size %d", size, a.rec.BlockSize)
	}
	if a.backend.Size() != size {
		rz, ok := a.backend.(Resizer)
		if !ok {
			return fmt.Errorf("attach: backend of %s cannot be resized", a.rec.Device())
		}
		if err := rz.Resize(size); err != nil {
			return err
		}
	}
	if err := m.kernel.Reconfigure(ctx, a.rec.Index, nil, ReconfigureParams{BackendID: a.rec.ID, Size: size}); err != nil {
		return err
	}
	m.mu.Lock()
	a.rec.Size = size
	r := a.rec
	m.mu.Unlock()
	return m.store.Save(&r)
}

// Done is closed when the device is no longer served by this process
// (detached, disconnected by someone else, or the manager closed). It is
// nil for devices this manager does not serve.
func (m *Manager) Done(deviceOrID string) <-chan struct{} {
	if a := m.lookup(deviceOrID); a != nil {
		return a.done
	}
	return nil
}

// Served lists the records of the devices this process serves.
func (m *Manager) Served() []Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Record
	for _, a := range m.atts {
		out = append(out, a.rec)
	}
	return out
}

func (m *Manager) lookup(deviceOrID string) *attachment {
	m.mu.Lock()
	defer m.mu.Unlock()
	if n, err := parseDevice(deviceOrID); err == nil {
		return m.atts[n]
	}
	for _, a := range m.atts {
		if a.rec.ID == deviceOrID {
			return a
		}
	}
	return nil
}

func parseDevice(s string) (int, error) {
	t := s
	if len(t) > 5 && t[:5] == "/dev/" {
		t = t[5:]
	}
	if len(t) > 3 && t[:3] == "nbd" {
		if n, err := strconv.Atoi(t[3:]); err == nil && n >= 0 && t[3] != '+' {
			return n, nil
		}
	}
	return -1, fmt.Errorf("attach: %q is not an nbd device", s)
}

func closeBackend(b nbd.Backend) {
	if c, ok := b.(io.Closer); ok {
		c.Close()
	}
}

func closeFiles(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

func seconds(d time.Duration) uint64 {
	if d <= 0 {
		return 0
	}
	return uint64((d + time.Second - 1) / time.Second)
}
