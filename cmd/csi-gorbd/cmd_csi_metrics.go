package main

import (
	"context"

	"k8s.io/klog/v2"

	"github.com/csi-gorbd/csi-gorbd/controllerserver"
	"github.com/csi-gorbd/csi-gorbd/driver"
)

// serveMetrics starts /metrics, /healthz and /readyz on addr ("" is off).
// Liveness is the HTTP server answering; readiness is ready (the Ceph
// session check).
func serveMetrics(ctx context.Context, addr string, m *driver.Metrics, ready func(context.Context) bool) error {
	if addr == "" {
		return nil
	}
	a, err := driver.ServeMetrics(ctx, addr, m, driver.HealthOptions{Ready: ready})
	if err != nil {
		return err
	}
	klog.InfoS("serving metrics", "address", a.String(), "paths", "/metrics /healthz /readyz")
	return nil
}

// controllerHealth reports the controller's cached Ceph sessions to the
// metrics.
func controllerHealth(cs *controllerserver.Server) driver.HealthReporter {
	return driver.HealthReporterFunc(func(ctx context.Context) []driver.SessionHealth {
		var out []driver.SessionHealth
		for _, s := range cs.SessionHealth(ctx) {
			out = append(out, driver.SessionHealth{Cluster: s.Cluster, User: s.User, Up: s.Up})
		}
		return out
	})
}
