package main

import (
	"context"
	"errors"
	goflag "flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	"github.com/csi-gorbd/csi-gorbd/controllerserver"
	"github.com/csi-gorbd/csi-gorbd/driver"
)

// csiFlags are the CSI plugin's options, shared by controller, node and all.
type csiFlags struct {
	endpoint, driverName, nodeID, clusters, stateDir, metricsAddr, instance string
}

func init() {
	for _, mode := range []string{driver.ModeController, driver.ModeNode, driver.ModeAll} {
		rootCmd.AddCommand(newCSICmd(mode))
	}
}

func newCSICmd(mode string) *cobra.Command {
	var f csiFlags
	cmd := &cobra.Command{
		Use:   mode,
		Short: "Run the CSI plugin (" + mode + " mode)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCSI(cmd.Context(), mode, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.endpoint, "endpoint", "unix:///csi/csi.sock", "CSI endpoint (unix:///path or tcp://host:port)")
	fl.StringVar(&f.driverName, "drivername", "rbd.csi-gorbd.io", "CSI driver name")
	fl.StringVar(&f.nodeID, "nodeid", "", "node id (required for node and all)")
	fl.StringVar(&f.clusters, "clusters", "/etc/csi-gorbd/clusters.json", `clusters file: JSON [{"clusterID": "...", "monitors": ["host:port"]}]`)
	fl.StringVar(&f.stateDir, "state-dir", "/var/lib/csi-gorbd", "directory for the plugin's local state")
	fl.StringVar(&f.metricsAddr, "metrics-address", "", "serve /healthz (and later metrics) on this address; empty: off")
	fl.StringVar(&f.instance, "instance-id", "default", "journal instance id (drivers sharing a pool need distinct ids)")
	kfs := goflag.NewFlagSet("klog", goflag.ContinueOnError)
	klog.InitFlags(kfs)
	fl.AddGoFlagSet(kfs)
	return cmd
}

func runCSI(ctx context.Context, mode string, f csiFlags) error {
	defer klog.Flush()
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	version := "devel"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		version = bi.Main.Version
	}
	opts := driver.Options{Name: f.driverName, Version: version, NodeID: f.nodeID, Mode: mode}
	if mode != driver.ModeController {
		return errors.New("the node service is not available yet; run in controller mode")
	}
	clusters, err := controllerserver.LoadClusters(f.clusters)
	if err != nil {
		return err
	}
	if f.stateDir != "" {
		if err := os.MkdirAll(f.stateDir, 0o750); err != nil {
			return err
		}
	}
	cs := controllerserver.New(controllerserver.Options{Clusters: clusters, Instance: f.instance})
	defer cs.Close()
	opts.Controller, opts.Ready = cs, cs.Ready
	d, err := driver.New(opts)
	if err != nil {
		return err
	}
	if f.metricsAddr != "" {
		ln, err := net.Listen("tcp", f.metricsAddr)
		if err != nil {
			return fmt.Errorf("metrics address: %w", err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
			if !cs.Ready(r.Context()) {
				http.Error(w, "not ready", http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintln(w, "ok")
		})
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = hs.Serve(ln) }()
		defer hs.Close()
	}
	klog.InfoS("starting CSI plugin", "mode", mode, "driver", f.driverName, "version", version,
		"endpoint", f.endpoint, "clusters", len(clusters))
	return d.Run(ctx, f.endpoint)
}
