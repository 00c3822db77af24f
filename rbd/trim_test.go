package rbd

import (
	"context"
	"errors"
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados"
)

// fakeDataStore is an in-memory data pool for trim (dataObjects): a set
// of object names, with counters of what trim asked for.
type fakeDataStore struct {
	mu       sync.Mutex
	objs     map[string]bool
	removes  []string
	lists    int
	inFlight atomic.Int64
	maxSeen  atomic.Int64

	// With overlap > 0, a request waits (up to overlapWait) until that
	// many are in flight at once, so a test of parallelism does not
	// depend on how the scheduler happens to interleave instant fakes.
	overlap     int64
	overlapOnce sync.Once
	overlapped  chan struct{}
}

const overlapWait = 5 * time.Second

// fakeMaxRemoves is far more than any test image holds.
const fakeMaxRemoves = 100000

var errTooManyRemoves = errors.New("fake store: too many deletes")

func newFakeDataStore(names ...string) *fakeDataStore {
	f := &fakeDataStore{objs: map[string]bool{}}
	for _, n := range names {
		f.objs[n] = true
	}
	return f
}

// request counts one request in flight until the returned func runs,
// and holds it for the overlap, if set.
func (f *fakeDataStore) request(ctx context.Context) (done func(), err error) {
	n := f.inFlight.Add(1)
	done = func() { f.inFlight.Add(-1) }
	for {
		m := f.maxSeen.Load()
		if n <= m || f.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	if f.overlap > 0 {
		if n >= f.overlap {
			f.overlapOnce.Do(func() { close(f.overlapped) })
		}
		t := time.NewTimer(overlapWait)
		select {
		case <-f.overlapped:
		case <-t.C:
			// A serial caller: stop waiting for every request; the
			// test sees maxSeen 1.
			f.overlapOnce.Do(func() { close(f.overlapped) })
		case <-ctx.Done():
		}
		t.Stop()
	}
	if err := ctx.Err(); err != nil {
		done()
		return nil, err
	}
	return done, nil
}

// write accepts the boundary object's truncate or zero.
func (f *fakeDataStore) write(ctx context.Context, oid string, _ *rados.WriteOp) error {
	done, err := f.request(ctx)
	if err != nil {
		return err
	}
	done()
	return nil
}

func (f *fakeDataStore) remove(ctx context.Context, oid string) error {
	done, err := f.request(ctx)
	if err != nil {
		return err
	}
	defer done()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.removes) >= fakeMaxRemoves {
		// A trim that walks object numbers blindly fails here,
		// fast and without eating memory.
		return errTooManyRemoves
	}
	f.removes = append(f.removes, oid)
	if !f.objs[oid] {
		return syscall.ENOENT
	}
	delete(f.objs, oid)
	return nil
}

func (f *fakeDataStore) exists(_ context.Context, oid string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.objs[oid], nil
}

func (f *fakeDataStore) listObjects(ctx context.Context, fn func(string) error) error {
	f.mu.Lock()
	f.lists++
	names := make([]string, 0, len(f.objs))
	for n := range f.objs {
		names = append(names, n)
	}
	f.mu.Unlock()
	// plus objects of other images and metadata, which must be left alone
	names = append(names, "rbd_header.abc", "rbd_data.abc1.0000000000000000", "rbd_data.ab.0000000000000001",
		"rbd_data.abc.000000000000000", "rbd_data.abc.000000000000000G")
	for _, n := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(n); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeDataStore) removed() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := append([]string(nil), f.removes...)
	sort.Strings(r)
	return r
}

func trimFixture(size uint64, l Layout, data *fakeDataStore) *trimRequest {
	img := &Image{name: "t", id: "abc", snapID: NoSnap}
	return &trimRequest{img: img, size: size, layout: l, prefix: "rbd_data.abc", data: data}
}

func TestValidateImageSize(t *testing.T) {
	def := Layout{Order: 22}
	om := FeatureLayering | FeatureExclusiveLock | FeatureObjectMap
	limit := uint64(maxObjectMapObjects) << 22
	for _, c := range []struct {
		name     string
		l        Layout
		size     uint64
		features uint64
		ok       bool
	}{
		{"4E plain", def, 4 << 60, FeatureLayering, true},
		{"15E plain", def, 15 << 60, FeatureLayering, true},
		{"4E object map", def, 4 << 60, om, false},
		{"object map at the limit", def, limit, om, true},
		{"object map one byte past", def, limit + 1, om, false},
		{"object map limit with 8K objects", Layout{Order: 13}, uint64(maxObjectMapObjects)<<13 + 1, om, false},
		{"max uint64", def, math.MaxUint64, FeatureLayering, false},
		{"largest", def, math.MaxUint64 - (4 << 20), FeatureLayering, true},
		// its object count times the object size is 2^64
		{"object end wraps", def, math.MaxUint64 - (4 << 20) + 1, FeatureLayering, false},
		{"huge stripe count", Layout{Order: 22, StripeUnit: 1 << 16, StripeCount: 1 << 50}, 1 << 30, FeatureLayering, false},
		{"striped object set wraps", Layout{Order: 22, StripeUnit: 1 << 16, StripeCount: 16}, math.MaxUint64 - (32 << 20), FeatureLayering, false},
	} {
		err := validateImageSize(c.l, c.size, c.features)
		if c.ok && err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		if !c.ok && !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", c.name, err)
		}
	}
}

func TestParseDataObjectName(t *testing.T) {
	for _, c := range []struct {
		oid string
		no  uint64
		ok  bool
	}{
		{"rbd_data.abc.0000000000000000", 0, true},
		{"rbd_data.abc.00000000000fffff", 0xfffff, true},
		{"rbd_data.abc.ffffffffffffffff", math.MaxUint64, true},
		{"rbd_data.abc1.0000000000000000", 0, false},
		{"rbd_data.ab.0000000000000001", 0, false},
		{"rbd_data.abc.000000000000000", 0, false},
		{"rbd_data.abc.000000000000000G", 0, false},
		{"rbd_data.abc.000000000000000A", 0, false},
		{"rbd_data.abc_0000000000000000", 0, false},
		{"rbd_header.abc", 0, false},
	} {
		no, ok := parseDataObjectName("rbd_data.abc", c.oid)
		if ok != c.ok || no != c.no {
			t.Errorf("%s: %d %v, want %d %v", c.oid, no, ok, c.no, c.ok)
		}
	}
	if o := DataObjectName("rbd_data.abc", 0x1234); o != "rbd_data.abc.0000000000001234" {
		t.Fatal(o)
	}
}

// A sparse 4 EiB image without an object map (2^40 object numbers):
// trim must find its few objects with one listing, not walk or allocate
// per object number.
func TestTrimHugeSparseListsPool(t *testing.T) {
	l := Layout{Order: 22}
	size := uint64(4 << 60)
	want := []string{DataObjectName("rbd_data.abc", 0), DataObjectName("rbd_data.abc", 1<<39),
		DataObjectName("rbd_data.abc", l.ObjectCount(size)-1)}
	data := newFakeDataStore(want...)
	tr := trimFixture(size, l, data)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tr.run(ctx, 0, nil); err != nil {
		t.Fatal(err)
	}
	sort.Strings(want)
	if got := data.removed(); !equalStrings(got, want) {
		t.Fatalf("removed %v, want %v", got, want)
	}
	if data.lists != 1 {
		t.Fatalf("%d listings, want 1", data.lists)
	}
}

// A shrink keeps the objects before the new end: the listing path must
// skip object numbers below it.
func TestTrimListingKeepsObjectsBelowNewEnd(t *testing.T) {
	l := Layout{Order: 22}
	size := uint64(1 << 50) // 1 PiB
	keep := DataObjectName("rbd_data.abc", 5)
	gone := []string{DataObjectName("rbd_data.abc", 100000), DataObjectName("rbd_data.abc", 1<<27)}
	data := newFakeDataStore(append([]string{keep}, gone...)...)
	tr := trimFixture(size, l, data)
	if err := tr.run(context.Background(), 64<<20, nil); err != nil {
		t.Fatal(err)
	}
	sort.Strings(gone)
	if got := data.removed(); !equalStrings(got, gone) {
		t.Fatalf("removed %v, want %v", got, gone)
	}
	if ok, _ := data.exists(context.Background(), keep); !ok {
		t.Fatal("object below the new end was removed")
	}
}

// With an object map, only the objects it marks as possibly existing are
// deleted, and the pool is not listed.
func TestTrimFollowsObjectMap(t *testing.T) {
	l := Layout{Order: 22}
	n := uint64(100000)
	m := NewObjectMap(n)
	var want []string
	for _, o := range []uint64{0, 7, 4096, 50000, n - 1} {
		m.Set(o, ObjectExists)
		want = append(want, DataObjectName("rbd_data.abc", o))
	}
	m.Set(60000, ObjectPending)
	want = append(want, DataObjectName("rbd_data.abc", 60000))
	data := newFakeDataStore(want[:len(want)-1]...) // the PENDING one is already gone: ENOENT
	tr := trimFixture(n<<22, l, data)
	if err := tr.run(context.Background(), 0, &objectMapView{n: m.Len(), get: m.Get}); err != nil {
		t.Fatal(err)
	}
	sort.Strings(want)
	if got := data.removed(); !equalStrings(got, want) {
		t.Fatalf("removed %v, want %v", got, want)
	}
	if data.lists != 0 {
		t.Fatalf("%d listings with a usable object map", data.lists)
	}
}

// A map shorter than the image (an interrupted resize) answers for the
// objects it covers; the rest are found without it.
func TestTrimObjectMapShorterThanImage(t *testing.T) {
	l := Layout{Order: 22}
	m := NewObjectMap(10)
	m.Set(3, ObjectExists)
	objs := []string{DataObjectName("rbd_data.abc", 3), DataObjectName("rbd_data.abc", 12)}
	data := newFakeDataStore(objs...)
	tr := trimFixture(20<<22, l, data)
	if err := tr.run(context.Background(), 0, &objectMapView{n: m.Len(), get: m.Get}); err != nil {
		t.Fatal(err)
	}
	got := data.removed()
	if len(got) != 11 { // object 3 by the map, 10..19 blindly
		t.Fatalf("removed %d objects: %v", len(got), got)
	}
	if len(data.objs) != 0 {
		t.Fatalf("left %v", data.objs)
	}
}

// Small images keep the blind per-object deletes (no pool listing).
func TestTrimSmallImageBlind(t *testing.T) {
	l := Layout{Order: 22}
	data := newFakeDataStore(DataObjectName("rbd_data.abc", 2))
	data.overlap, data.overlapped = 2, make(chan struct{})
	tr := trimFixture(blindTrimLimit<<22, l, data)
	if err := tr.run(context.Background(), 0, nil); err != nil {
		t.Fatal(err)
	}
	if n := len(data.removed()); n != blindTrimLimit || data.lists != 0 {
		t.Fatalf("%d removes, %d listings; want %d, 0", n, data.lists, blindTrimLimit)
	}
	if m := data.maxSeen.Load(); m > maxParallel || m < 2 {
		t.Fatalf("%d deletes in flight at once, want 2..%d", m, maxParallel)
	}
}

// Shrinking a huge striped image must not map the whole removed range
// (an extent per stripe unit) to zero the last object set.
func TestTrimStripedHugeShrink(t *testing.T) {
	l := Layout{Order: 22, StripeUnit: 1 << 16, StripeCount: 4}
	size := uint64(1 << 50)
	newSize := uint64(1<<30 + 12345)
	keepNo := l.Map(newSize, 1)[0].ObjectNo
	data := newFakeDataStore(DataObjectName("rbd_data.abc", keepNo), DataObjectName("rbd_data.abc", 1<<30))
	tr := trimFixture(size, l, data)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tr.run(ctx, newSize, nil); err != nil {
		t.Fatal(err)
	}
	if got := data.removed(); len(got) != 1 || got[0] != DataObjectName("rbd_data.abc", 1<<30) {
		t.Fatalf("removed %v", got)
	}
}

// forObjects stops at the first error: the generator is told to stop, no
// new calls start, and that error is returned.
func TestForObjectsStopsAtFirstError(t *testing.T) {
	// Calls after the failing one behave like OSD ops still on the wire:
	// they hold their worker until forObjects cancels them. That pins how
	// many objects can be handed out before the failure is seen (the
	// failing call plus one per worker, plus one the generator may be
	// offering), whatever order the scheduler runs the workers in. If
	// forObjects never cancelled, the held calls give up after giveUp and
	// the generator runs to its end, far past the bound.
	const failAt, total = 20, 100_000
	boom := errors.New("boom")
	giveUp := make(chan struct{})
	timer := time.AfterFunc(5*time.Second, func() { close(giveUp) })
	defer timer.Stop()
	var calls, yielded atomic.Int64
	err := forObjects(context.Background(), func(_ context.Context, yield func(uint64) bool) error {
		for o := uint64(0); o < total; o++ {
			if !yield(o) {
				return nil
			}
			yielded.Add(1)
		}
		return nil
	}, func(ctx context.Context, o uint64) error {
		calls.Add(1)
		switch {
		case o == failAt:
			return boom
		case o > failAt:
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-giveUp:
			}
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	const bound = failAt + 1 + maxParallel + 1
	if n := yielded.Load(); n > bound {
		t.Fatalf("generator went on for %d objects after the failure, want at most %d", n, bound)
	}
	if n := calls.Load(); n > bound {
		t.Fatalf("%d calls, want at most %d", n, bound)
	}
}

func TestForObjectsCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int64
	err := forObjects(ctx, func(_ context.Context, yield func(uint64) bool) error {
		for o := uint64(0); yield(o); o++ {
		}
		return nil
	}, func(ctx context.Context, o uint64) error {
		if calls.Add(1) == 100 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
