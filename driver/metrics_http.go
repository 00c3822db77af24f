package driver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// HealthOptions back the HTTP endpoints next to /metrics.
type HealthOptions struct {
	// Live backs /healthz (liveness): nil means alive while the HTTP
	// server answers. Keep it cheap and independent of Ceph, or a Ceph
	// outage would get the plugin restarted for nothing.
	Live func(context.Context) bool
	// Ready backs /readyz (readiness), e.g. the controller's Ceph session
	// check; nil means ready.
	Ready func(context.Context) bool
}

// probeTimeout bounds one /healthz or /readyz check.
const probeTimeout = 10 * time.Second

// MetricsHandler serves /metrics (Prometheus text format), /healthz and
// /readyz.
func MetricsHandler(m *Metrics, h HealthOptions) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.Registry(), promhttp.HandlerOpts{}))
	check := func(f func(context.Context) bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			ctx, cancel := context.WithTimeout(r.Context(), probeTimeout)
			defer cancel()
			if f != nil && !f(ctx) {
				http.Error(w, "not ok", http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintln(w, "ok")
		}
	}
	mux.HandleFunc("/healthz", check(h.Live))
	mux.HandleFunc("/readyz", check(h.Ready))
	return mux
}

// ServeMetrics serves MetricsHandler on addr (host:port) until ctx ends.
// It returns once listening; errors after that end the server silently.
func ServeMetrics(ctx context.Context, addr string, m *Metrics, h HealthOptions) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("driver: metrics address: %w", err)
	}
	hs := &http.Server{Handler: MetricsHandler(m, h), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = ln.Close()
		}
	}()
	context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	})
	return ln.Addr(), nil
}
