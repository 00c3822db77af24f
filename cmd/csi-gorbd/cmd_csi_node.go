package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/klog/v2"

	"github.com/csi-gorbd/csi-gorbd/crypt/luks"
	"github.com/csi-gorbd/csi-gorbd/driver"
	"github.com/csi-gorbd/csi-gorbd/internal/csiceph"
	"github.com/csi-gorbd/csi-gorbd/internal/kms"
	"github.com/csi-gorbd/csi-gorbd/nbd/attach"
	"github.com/csi-gorbd/csi-gorbd/nbd/qos"
	"github.com/csi-gorbd/csi-gorbd/nodeserver"
)

// startNode makes the Node service with its state under --state-dir and
// takes over the devices a previous process left (kill -9, upgrade):
// every recorded image is reopened and the kernel gets fresh sockets
// before the gRPC endpoint opens, so the kubelet never sees a volume
// whose device nobody serves. A device that cannot be recovered is
// logged; its volume reports an abnormal condition and NodeStageVolume
// retries the recovery.
// nodeEncryption is what the node needs for encrypted volumes.
type nodeEncryption struct {
	kms  kms.Loader
	kube kms.SecretReader
	kdf  luks.KDF
}

func startNode(ctx context.Context, f csiFlags, clusters csiceph.Clusters, mapping csiceph.ClusterMapping, metrics *driver.Metrics, enc nodeEncryption) (*nodeserver.Server, error) {
	if f.nodeID == "" {
		return nil, errors.New("--nodeid is required for the node service (the Kubernetes node name)")
	}
	var topo map[string]string
	if f.domainLabels != "" {
		var err error
		if topo, err = nodeTopology(ctx, f.nodeID, f.domainLabels, f.driverName, f.kubeSADir); err != nil {
			return nil, err
		}
		klog.InfoS("node topology", "segments", topo)
	}
	restartPhase("node service starting")
	ns, err := nodeserver.New(ctx, nodeserver.Options{
		NodeID:   f.nodeID,
		Clusters: clusters,
		StateDir: filepath.Join(f.stateDir, "node"),
		OnEvent:  func(e attach.Event) { klog.InfoS("nbd", "event", e.String()) },
		Mapping:  mapping,
		Topology: topo,
		OnQoS: func(volumeID string, l qos.Limits, err error) {
			if err != nil {
				klog.ErrorS(err, "QoS settings", "volume", volumeID, "limits", l.String())
				return
			}
			klog.InfoS("QoS limits", "volume", volumeID, "limits", l.String())
		},
		VolumeMetrics: metrics,
		KMS:           enc.kms,
		Kube:          enc.kube,
		KDF:           enc.kdf,
		KeyDir:        f.enc.keyDir,
	})
	if err != nil {
		return nil, err
	}
	if err := ns.KeyDirError(); err != nil {
		klog.ErrorS(err, "encrypted volumes cannot be staged or recovered by this node plugin (--volume-key-dir)")
	}
	restartPhase("state directory owned")
	recs, err := ns.Recover(ctx)
	for _, r := range recs {
		klog.InfoS("recovered device", "device", r.Device(), "volume", r.ID, "size", r.Size)
	}
	if err != nil {
		klog.ErrorS(err, "recovering devices")
	}
	restartPhase("devices recovered", "devices", len(recs))
	return ns, nil
}

// restartPhase logs how long after the process started (as the kernel
// counts it: exec, runtime start and package init included) a step of
// the node plugin's start was done: the restart budget (bench/restart.sh).
func restartPhase(what string, kv ...any) {
	if age, err := processAge(); err == nil {
		kv = append([]any{"phase", what, "since_exec", age.Round(time.Millisecond)}, kv...)
		klog.InfoS("restart phase", kv...)
	}
}

// processAge is the time since this process was started (/proc/self/stat
// starttime against /proc/uptime, both from boot; 10 ms resolution).
func processAge() (time.Duration, error) {
	st, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, err
	}
	up, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0, err
	}
	rest := st[bytes.LastIndexByte(st, ')')+1:]
	f := strings.Fields(string(rest))
	if len(f) < 20 {
		return 0, errors.New("short /proc/self/stat")
	}
	ticks, err := strconv.ParseUint(f[19], 10, 64) // field 22: starttime
	if err != nil {
		return 0, err
	}
	upf := strings.Fields(string(up))
	if len(upf) == 0 {
		return 0, errors.New("empty /proc/uptime")
	}
	sec, err := strconv.ParseFloat(upf[0], 64)
	if err != nil {
		return 0, err
	}
	const hz = 100 // USER_HZ
	return time.Duration(sec*float64(time.Second)) - time.Duration(ticks)*time.Second/hz, nil
}

// nodeHealth reports the node's Ceph sessions (one per cluster and user
// of the staged volumes) to the metrics.
func nodeHealth(ns *nodeserver.Server) driver.HealthReporter {
	return driver.HealthReporterFunc(func(ctx context.Context) []driver.SessionHealth {
		var out []driver.SessionHealth
		for _, s := range ns.SessionHealth(ctx) {
			out = append(out, driver.SessionHealth{Cluster: s.Cluster, User: s.User, Up: s.Up})
		}
		return out
	})
}
