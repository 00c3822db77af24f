package driver

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// metricsNamespace prefixes every metric name.
const metricsNamespace = "csi_gorbd"

// AttachedCounter is what the node service offers the metrics: the number
// of volumes it has attached (NBD devices served) right now.
type AttachedCounter interface {
	AttachedVolumes() int
}

// SessionHealth is the state of one cluster session as the controller
// (or node) sees it.
type SessionHealth struct {
	Cluster string // clusterID from the clusters file
	User    string // Ceph user of the session
	Up      bool   // the monitors answered
}

// HealthReporter is what a service offers the metrics about its Ceph
// sessions. It is called on every scrape and must honour ctx.
type HealthReporter interface {
	SessionHealth(ctx context.Context) []SessionHealth
}

// HealthReporterFunc adapts a function to HealthReporter.
type HealthReporterFunc func(ctx context.Context) []SessionHealth

// SessionHealth calls f.
func (f HealthReporterFunc) SessionHealth(ctx context.Context) []SessionHealth { return f(ctx) }

// Metrics holds the plugin's Prometheus collectors, on a registry of its
// own (so tests can make as many as they like).
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	errors   *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	inflight *prometheus.GaugeVec
	vols     *volumeMetrics

	mu       sync.Mutex
	attached []AttachedCounter
	health   []HealthReporter
}

// NewMetrics makes the collectors: per-RPC request and error counts and
// latency (filled by the gRPC interceptor), calls in flight, attached
// volumes (from AttachedCounter sources), Ceph session health (from
// HealthReporter sources), the per-volume I/O of the node plugin (see
// Volume), plus the Go runtime and process collectors.
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace, Name: "grpc_requests_total",
		Help: "CSI gRPC calls handled, by method and gRPC status code.",
	}, []string{"method", "code"})
	m.errors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace, Name: "grpc_errors_total",
		Help: "CSI gRPC calls that returned an error, by method and gRPC status code.",
	}, []string{"method", "code"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: metricsNamespace, Name: "grpc_request_duration_seconds",
		Help:    "Latency of CSI gRPC calls, by method.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
	}, []string{"method"})
	m.inflight = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: metricsNamespace, Name: "grpc_requests_in_flight",
		Help: "CSI gRPC calls being handled, by method.",
	}, []string{"method"})
	m.reg.MustRegister(m.requests, m.errors, m.latency, m.inflight,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Name: "attached_volumes",
			Help: "Volumes attached by this node plugin (NBD devices served).",
		}, m.attachedVolumes),
		&sessionCollector{m: m},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	m.vols = newVolumeMetrics(m.reg)
	return m
}

// Registry returns the registry to expose (see MetricsHandler).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// AddAttachedSource adds a source for the attached volumes gauge; the
// gauge is the sum over all sources.
func (m *Metrics) AddAttachedSource(a AttachedCounter) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.attached = append(m.attached, a)
}

// AddHealthSource adds a source of Ceph session health.
func (m *Metrics) AddHealthSource(h HealthReporter) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.health = append(m.health, h)
}

func (m *Metrics) attachedVolumes() float64 {
	m.mu.Lock()
	src := append([]AttachedCounter(nil), m.attached...)
	m.mu.Unlock()
	n := 0
	for _, a := range src {
		n += a.AttachedVolumes()
	}
	return float64(n)
}

// UnaryInterceptor counts and times every call.
func (m *Metrics) UnaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	method := shortMethod(info.FullMethod)
	g := m.inflight.WithLabelValues(method)
	g.Inc()
	start := time.Now()
	resp, err := handler(ctx, req)
	m.latency.WithLabelValues(method).Observe(time.Since(start).Seconds())
	g.Dec()
	code := status.Code(err).String()
	m.requests.WithLabelValues(method, code).Inc()
	if err != nil {
		m.errors.WithLabelValues(method, code).Inc()
	}
	return resp, err
}

// shortMethod turns "/csi.v1.Controller/CreateVolume" into "CreateVolume".
func shortMethod(full string) string {
	for i := len(full) - 1; i >= 0; i-- {
		if full[i] == '/' {
			return full[i+1:]
		}
	}
	return full
}

// sessionTimeout bounds one scrape's health checks.
const sessionTimeout = 5 * time.Second

var sessionDesc = prometheus.NewDesc(metricsNamespace+"_ceph_session_up",
	"1 when the Ceph monitors of a cached cluster session answer, 0 when they do not.",
	[]string{"cluster", "user"}, nil)

// sessionCollector asks the health sources on each scrape.
type sessionCollector struct{ m *Metrics }

func (c *sessionCollector) Describe(ch chan<- *prometheus.Desc) { ch <- sessionDesc }

func (c *sessionCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	src := append([]HealthReporter(nil), c.m.health...)
	c.m.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), sessionTimeout)
	defer cancel()
	seen := map[[2]string]bool{}
	for _, h := range src {
		for _, s := range h.SessionHealth(ctx) {
			k := [2]string{s.Cluster, s.User}
			if seen[k] {
				continue
			}
			seen[k] = true
			v := 0.0
			if s.Up {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(sessionDesc, prometheus.GaugeValue, v, s.Cluster, s.User)
		}
	}
}
