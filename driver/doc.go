// Package driver is the CSI plugin's gRPC server: it listens on the
// endpoint (unix:///path or tcp://host:port), serves the Identity service
// and, depending on the mode, the Controller and/or Node services given to
// it, and logs every call through an interceptor that strips secrets
// (protosanitizer) before anything reaches the log.
//
// Modes: "controller" registers the Controller service, "node" the Node
// service, "all" both. GetPluginCapabilities advertises CONTROLLER_SERVICE
// only when a Controller service is served.
//
// Probe: ready when the Ready hook (if any) says so. The controller's hook
// reports Ceph reachability: every cached connection (they are dialled
// lazily per (cluster, user) from request secrets) must answer a monitor
// command within 5 seconds, and every configured cluster without one must
// have a monitor accepting TCP connections. A broken connection also
// fails the request that uses it and is redialled by the next one.
//
// Metrics (metrics.go, metrics_http.go): with Options.Metrics set, an
// interceptor counts and times every call (csi_gorbd_grpc_requests_total,
// csi_gorbd_grpc_errors_total, csi_gorbd_grpc_request_duration_seconds,
// csi_gorbd_grpc_requests_in_flight, labelled by method and code);
// csi_gorbd_attached_volumes sums AttachedCounter sources (the node
// service) and csi_gorbd_ceph_session_up reports HealthReporter sources
// (the controller's sessions) at scrape time. MetricsHandler serves
// /metrics, /healthz (liveness: the process answers) and /readyz
// (readiness: the Ready hook).
package driver
