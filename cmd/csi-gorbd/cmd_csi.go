package main

import (
	"context"
	goflag "flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	"github.com/csi-gorbd/csi-gorbd/controllerserver"
	"github.com/csi-gorbd/csi-gorbd/driver"
	"github.com/csi-gorbd/csi-gorbd/internal/csiceph"
	"github.com/csi-gorbd/csi-gorbd/internal/kubenodes"
)

// csiFlags are the CSI plugin's options, shared by controller, node and all.
type csiFlags struct {
	endpoint, driverName, nodeID, clusters, stateDir, metricsAddr, instance string
	nodeDirectory, kubeSADir                                                string
	clusterMapping, domainLabels                                            string
	maxCloneDepth                                                           int
	reg                                                                     registrationFlags
	enc                                                                     encryptionFlags
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
	fl.StringVar(&f.endpoint, "endpoint", "unix:///csi/csi.sock", "CSI endpoint (unix:///path; tcp://host:port only in controller mode)")
	fl.StringVar(&f.driverName, "drivername", "rbd.csi-gorbd.io", "CSI driver name")
	fl.StringVar(&f.nodeID, "nodeid", "", "node id (required for node and all)")
	fl.StringVar(&f.clusters, "clusters", "/etc/csi-gorbd/clusters.json",
		`clusters file, ceph-csi's config.json: JSON [{"clusterID": "...", "monitors": ["host:port"], "rbd": {"radosNamespace": "..."}, "cephOptions": {"ms_mode": "secure"}}]`)
	fl.StringVar(&f.clusterMapping, "cluster-mapping", "", "ceph-csi's cluster-mapping.json (default: cluster-mapping.json beside the clusters file, if there)")
	fl.StringVar(&f.domainLabels, "domainlabels", "", "node labels (comma-separated) reported as topology.<drivername>/<name> for topologyConstrainedPools, as ceph-csi's --domainlabels; in controller mode it turns topology-aware placement on")
	fl.StringVar(&f.stateDir, "state-dir", "/var/lib/csi-gorbd", "directory for the plugin's local state")
	fl.StringVar(&f.metricsAddr, "metrics-address", "", "serve /metrics (Prometheus), /healthz (liveness) and /readyz (Ceph sessions) on this host:port; empty: off")
	fl.StringVar(&f.instance, "instance-id", "default", "journal instance id (drivers sharing a pool need distinct ids)")
	fl.IntVar(&f.maxCloneDepth, "max-clone-depth", controllerserver.DefaultMaxCloneDepth, "flatten new clones in the background past this clone chain depth (StorageClass maxCloneDepth overrides)")
	fl.StringVar(&f.nodeDirectory, "node-directory", "none", `where ControllerPublishVolume looks node ids up: "kubernetes" (the CSINode objects; NotFound for a node without this driver) or "none" (every node exists)`)
	fl.StringVar(&f.kubeSADir, "kube-serviceaccount-dir", kubenodes.ServiceAccountDir, "--node-directory=kubernetes: directory with the ServiceAccount token and ca.crt (the API server comes from KUBERNETES_SERVICE_HOST/PORT)")
	f.reg.add(fl)
	f.enc.add(fl)
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
	opts := driver.Options{Name: f.driverName, Version: version, NodeID: f.nodeID, Mode: mode, Topology: f.domainLabels != ""}
	clusters, err := csiceph.LoadClusters(f.clusters)
	if err != nil {
		return err
	}
	for _, n := range clusters.Notes() {
		klog.InfoS("clusters file: accepted, not honoured", "note", n)
	}
	mapping, err := loadMapping(f)
	if err != nil {
		return err
	}
	if f.stateDir != "" {
		if err := os.MkdirAll(f.stateDir, 0o750); err != nil {
			return err
		}
	}
	kmsLoader, kube, kdf, err := f.enc.encryption(f.kubeSADir, f.driverName)
	if err != nil {
		return err
	}
	opts.Metrics = driver.NewMetrics()
	var ready []func(context.Context) bool
	if mode != driver.ModeNode {
		co := controllerserver.Options{Clusters: clusters, Instance: f.instance, MaxCloneDepth: f.maxCloneDepth,
			Logger: klog.Background().WithName("controller"), Mapping: mapping, DriverName: f.driverName,
			KMS: kmsLoader, Kube: kube, KDF: kdf}
		switch f.nodeDirectory {
		case "kubernetes":
			nd, err := kubenodes.New(f.driverName, f.kubeSADir)
			if err != nil {
				return err
			}
			co.Nodes = nd
		case "none", "":
		default:
			return fmt.Errorf("--node-directory %q: want kubernetes or none", f.nodeDirectory)
		}
		cs := controllerserver.New(co)
		defer cs.Close()
		opts.Controller = cs
		ready = append(ready, cs.Ready)
		opts.Metrics.AddHealthSource(controllerHealth(cs))
	}
	if mode != driver.ModeController {
		// The node service takes its devices over (restart recovery)
		// before the endpoint opens: see startNode.
		ns, err := startNode(ctx, f, clusters, mapping, opts.Metrics, nodeEncryption{kmsLoader, kube, kdf})
		if err != nil {
			return err
		}
		defer ns.Close()
		opts.Node = ns
		ready = append(ready, ns.Ready)
		opts.Metrics.AddAttachedSource(ns)
		opts.Metrics.AddHealthSource(nodeHealth(ns))
	}
	opts.Ready = func(ctx context.Context) bool {
		for _, r := range ready {
			if !r(ctx) {
				return false
			}
		}
		return true
	}
	d, err := driver.New(opts)
	if err != nil {
		return err
	}
	if mode != driver.ModeController {
		restartPhase("gRPC endpoint opening")
	}
	klog.InfoS("starting CSI plugin", "mode", mode, "driver", f.driverName, "version", version,
		"endpoint", f.endpoint, "clusters", len(clusters))
	ln, err := driver.Listen(f.endpoint)
	if err != nil {
		return err
	}
	defer ln.Close()
	// Registered with the kubelet only once the endpoint listens.
	reg, err := startRegistration(mode, f)
	if err != nil {
		return err
	}
	defer closeRegistration(reg)
	if err := serveMetrics(ctx, f.metricsAddr, opts.Metrics, reg.readyToo(opts.Ready)); err != nil {
		return err
	}
	return d.Serve(ctx, ln)
}

// loadMapping reads --cluster-mapping, or cluster-mapping.json beside the
// clusters file (ceph-csi keeps both in its config map).
func loadMapping(f csiFlags) (csiceph.ClusterMapping, error) {
	path := f.clusterMapping
	if path == "" {
		path = filepath.Join(filepath.Dir(f.clusters), "cluster-mapping.json")
	} else if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("--cluster-mapping: %w", err)
	}
	m, err := csiceph.LoadClusterMapping(path)
	if err != nil {
		return nil, err
	}
	if len(m) > 0 {
		klog.InfoS("cluster mapping", "file", path, "entries", len(m))
	}
	return m, nil
}
