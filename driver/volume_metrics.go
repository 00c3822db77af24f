package driver

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/csi-gorbd/csi-gorbd/nbd"
)

// Per-volume I/O metrics of the node plugin: every request the NBD server
// answers for a staged volume, labelled by volume id and, when the
// volume context names it, the PersistentVolume (label persistentvolume,
// as kube-state-metrics spells it, so the two join). A volume's series
// exist while this process serves it and are deleted when its device is
// closed (NodeUnstageVolume), so their number follows the volumes staged
// here, not the volumes ever seen.

// volumeLatencyBuckets span a memory-speed request (tens of µs) to one
// held by a QoS limit for seconds.
var volumeLatencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// volumeMetrics holds the per-volume collectors.
type volumeMetrics struct {
	ops          *prometheus.CounterVec
	bytes        *prometheus.CounterVec
	errors       *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	inflight     *prometheus.GaugeVec
	throttled    *prometheus.CounterVec
	throttledOps *prometheus.CounterVec

	mu   sync.Mutex
	vols map[string]*volumeSeries // by volume id
}

func newVolumeMetrics(reg prometheus.Registerer) *volumeMetrics {
	opLabels := []string{"volume_id", "persistentvolume", "op"}
	volLabels := []string{"volume_id", "persistentvolume"}
	m := &volumeMetrics{
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "volume_operations_total",
			Help: "Requests served for a staged volume, by kind (read, write, flush, discard, write_zeroes), refused ones included.",
		}, opLabels),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "volume_bytes_total",
			Help: "Bytes of the requests served for a staged volume, by kind (read, write, discard, write_zeroes).",
		}, opLabels),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "volume_errors_total",
			Help: "Requests of a staged volume answered with an error, by kind.",
		}, opLabels),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Name: "volume_operation_duration_seconds",
			Help:    "Time from reading a request of a staged volume to its answer being ready, by kind (QoS waits included).",
			Buckets: volumeLatencyBuckets,
		}, opLabels),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Name: "volume_operations_in_flight",
			Help: "Requests of a staged volume read and not yet answered.",
		}, volLabels),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "volume_throttled_seconds_total",
			Help: "Time requests of a staged volume spent held by its QoS limits, summed over requests.",
		}, volLabels),
		throttledOps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "volume_throttled_operations_total",
			Help: "Requests of a staged volume its QoS limits held, by kind.",
		}, opLabels),
		vols: map[string]*volumeSeries{},
	}
	reg.MustRegister(m.ops, m.bytes, m.errors, m.latency, m.inflight, m.throttled, m.throttledOps)
	return m
}

// volumeSeries is one volume's resolved series: an nbd.Observer that
// only adds to atomics.
type volumeSeries struct {
	id    string
	opens int // guarded by volumeMetrics.mu

	ops, bytes, errors, throttledOps [nbd.NumOps]prometheus.Counter
	latency                          [nbd.NumOps]prometheus.Observer
	inflight                         prometheus.Gauge
	throttled                        prometheus.Counter
}

func (s *volumeSeries) Begin(nbd.Op) { s.inflight.Inc() }

func (s *volumeSeries) End(op nbd.Op, n uint32, latency, throttled time.Duration, errno nbd.Errno) {
	s.inflight.Dec()
	if op >= nbd.NumOps {
		return
	}
	s.ops[op].Inc()
	if n > 0 && op != nbd.OpFlush {
		s.bytes[op].Add(float64(n))
	}
	if errno != 0 {
		s.errors[op].Inc()
	}
	s.latency[op].Observe(latency.Seconds())
	if throttled > 0 {
		s.throttled.Add(throttled.Seconds())
		s.throttledOps[op].Inc()
	}
}

// Volume implements nodeserver.VolumeMetrics: the series of one volume,
// made on its first open and deleted when its last open is released.
func (m *Metrics) Volume(volumeID, pvName string) (nbd.Observer, func()) {
	vm := m.vols
	vm.mu.Lock()
	defer vm.mu.Unlock()
	s := vm.vols[volumeID]
	if s == nil {
		s = &volumeSeries{id: volumeID}
		for op := range nbd.NumOps {
			lv := []string{volumeID, pvName, op.String()}
			s.ops[op] = vm.ops.WithLabelValues(lv...)
			s.bytes[op] = vm.bytes.WithLabelValues(lv...)
			s.errors[op] = vm.errors.WithLabelValues(lv...)
			s.throttledOps[op] = vm.throttledOps.WithLabelValues(lv...)
			s.latency[op] = vm.latency.WithLabelValues(lv...)
		}
		s.inflight = vm.inflight.WithLabelValues(volumeID, pvName)
		s.throttled = vm.throttled.WithLabelValues(volumeID, pvName)
		vm.vols[volumeID] = s
	}
	s.opens++
	var once sync.Once
	return s, func() { once.Do(func() { vm.release(s) }) }
}

// release ends one open of a volume; the last deletes its series.
func (vm *volumeMetrics) release(s *volumeSeries) {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	if s.opens--; s.opens > 0 || vm.vols[s.id] != s {
		return
	}
	delete(vm.vols, s.id)
	match := prometheus.Labels{"volume_id": s.id}
	for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{
		vm.ops, vm.bytes, vm.errors, vm.latency, vm.inflight, vm.throttled, vm.throttledOps,
	} {
		v.DeletePartialMatch(match)
	}
}
