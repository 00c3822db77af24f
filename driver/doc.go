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
// is ready when it has no cluster connection cached yet (connections are
// dialled lazily per (cluster, user) from request secrets, so before the
// first request there is nothing to check), and otherwise when every cached
// connection answers a monitor command within 5 seconds. A broken
// connection also fails the request that uses it and is redialled by the
// next one.
package driver
