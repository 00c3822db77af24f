package main

import (
	"context"
	"errors"

	"github.com/spf13/pflag"
	"k8s.io/klog/v2"

	"github.com/csi-gorbd/csi-gorbd/driver"
	"github.com/csi-gorbd/csi-gorbd/driver/registration"
)

// registrationFlags turn on the plugin's own kubelet plugin registration
// (what the node-driver-registrar sidecar does otherwise).
type registrationFlags struct {
	kubeletPath, dir string
}

func (r *registrationFlags) add(fl *pflag.FlagSet) {
	fl.StringVar(&r.kubeletPath, "kubelet-registration-path", "",
		"register with the kubelet (node and all modes): the CSI endpoint's socket path as the kubelet sees it, e.g. /var/lib/kubelet/plugins/<driver>/csi.sock; empty: no registration (use node-driver-registrar)")
	fl.StringVar(&r.dir, "registration-dir", "/var/lib/kubelet/plugins_registry",
		"the kubelet's plugins_registry directory as this process sees it; the registration socket <driver>-reg.sock goes there")
}

// nodeRegistration is the running registration, nil when off.
type nodeRegistration struct{ srv *registration.Server }

// startRegistration serves the kubelet plugin registration socket when
// --kubelet-registration-path is set and the mode serves the Node service.
func startRegistration(mode string, f csiFlags) (*nodeRegistration, error) {
	if f.reg.kubeletPath == "" {
		return nil, nil
	}
	if mode == driver.ModeController {
		return nil, errors.New("--kubelet-registration-path registers a node plugin: use it in node or all mode")
	}
	srv, err := registration.Start(registration.Options{
		DriverName: f.driverName,
		Endpoint:   f.reg.kubeletPath,
		Dir:        f.reg.dir,
		OnStatus:   logRegistration,
	})
	if err != nil {
		return nil, err
	}
	return &nodeRegistration{srv: srv}, nil
}

// logRegistration logs every change of the kubelet's verdict; a failure
// is an error with the kubelet's message (it also fails /readyz).
func logRegistration(st registration.Status) {
	switch st.State {
	case registration.Failed:
		klog.ErrorS(errors.New(st.Err), "kubelet plugin registration failed; the kubelet retries", "socket", st.Socket)
	case registration.Replaced:
		klog.InfoS("kubelet plugin registration socket taken over by another process; leaving it", "socket", st.Socket)
	default:
		if st.Err != "" {
			klog.ErrorS(errors.New(st.Err), "kubelet plugin registration", "state", st.State, "socket", st.Socket)
			return
		}
		klog.InfoS("kubelet plugin registration", "state", st.State, "socket", st.Socket)
	}
}

// readyToo adds "registered with the kubelet" to a readiness check.
func (r *nodeRegistration) readyToo(ready func(context.Context) bool) func(context.Context) bool {
	if r == nil {
		return ready
	}
	return func(ctx context.Context) bool {
		return r.srv.Ready(ctx) && (ready == nil || ready(ctx))
	}
}

func closeRegistration(r *nodeRegistration) {
	if r == nil {
		return
	}
	if err := r.srv.Close(); err != nil {
		klog.ErrorS(err, "closing the kubelet registration socket")
	}
}
