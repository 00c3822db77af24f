// Package registration registers the node plugin with the kubelet: it
// serves the kubelet's plugin registration API
// (k8s.io/kubelet/pkg/apis/pluginregistration/v1, the Registration gRPC
// service: GetInfo and NotifyRegistrationStatus) on a unix socket in the
// kubelet's plugins_registry directory, which is what the
// node-driver-registrar sidecar does for other drivers.
//
// How the kubelet uses it (pkg/kubelet/pluginmanager at v1.37): its plugin
// watcher walks plugins_registry when the kubelet starts and watches it
// with inotify afterwards. For every socket it finds or sees created it
// dials the socket, calls GetInfo (type CSIPlugin, the driver name, the
// CSI endpoint as the kubelet sees it, the supported versions), calls
// NodeGetInfo on that endpoint, records the driver in the CSINode object
// and reports the outcome with NotifyRegistrationStatus. A removed socket
// unregisters the driver; a re-created one registers it again. A failed
// registration is retried by the kubelet while the socket exists.
//
// So the socket's life is the registration's life:
//   - Start removes a stale socket left by a killed process (only if the
//     path is a socket; anything else there is an error), then listens.
//     The Remove and Create events make the kubelet drop the old
//     registration and register this process.
//   - A restarted kubelet finds the socket on its walk and registers again;
//     nothing needs to happen here.
//   - A watch checks the path every Options.CheckInterval: a socket removed
//     by someone else (a wiped kubelet directory) is re-created, so the
//     kubelet registers the plugin again; a different socket at the path
//     belongs to a newer process, which this one leaves alone.
//   - Close removes the socket if it is still this process's, so the
//     kubelet stops routing calls to a plugin that is gone.
//
// Status (Waiting, Registered, Failed with the kubelet's error text) is
// kept for health checks and reported through Options.OnStatus; the
// package never logs.
package registration
