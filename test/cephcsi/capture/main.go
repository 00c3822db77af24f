// Command capture drives a running ceph-csi RBD controller (the oracle,
// started by test/cephcsi/controller.sh) through the CSI API — volumes with
// and without a RADOS namespace, striping, data pool, name prefixes,
// topology, encryption with the default and the "metadata" KMS, snapshots,
// restores, clones, expansion and deletions — then dumps what it left in the
// pools with the rados/rbd CLIs into one state.json (test/cephcsi.State).
// test/cephcsi/capture.sh sets up the pools and runs it; see README.md.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/csi-gorbd/csi-gorbd/test/cephcsi"
)

type options struct {
	endpoint   string
	conf       string
	keyring    string
	cluster    string
	out        string
	oracle     string
	config     string
	kmsConfig  string
	clusterID  string
	nsCluster  string
	pool       string
	dataPool   string
	topoPool   string
	namespace  string
	driverArgs string
}

func main() {
	var o options
	flag.StringVar(&o.endpoint, "endpoint", "", "ceph-csi controller endpoint (unix:///path)")
	flag.StringVar(&o.conf, "conf", "", "ceph.conf of the cluster")
	flag.StringVar(&o.keyring, "keyring", "", "client.admin keyring")
	flag.StringVar(&o.cluster, "cluster", "pacific", "test/cluster name (recorded)")
	flag.StringVar(&o.out, "out", "", "state.json to write")
	flag.StringVar(&o.oracle, "oracle", "", "cephcsi.version written by build.sh")
	flag.StringVar(&o.config, "config", "", "the config.json given to ceph-csi")
	flag.StringVar(&o.kmsConfig, "kms-config", "", "the KMS config.json given to ceph-csi")
	flag.StringVar(&o.clusterID, "cluster-id", "", "config.json clusterID without a RADOS namespace")
	flag.StringVar(&o.nsCluster, "ns-cluster-id", "", "config.json clusterID with rbd.radosNamespace")
	flag.StringVar(&o.pool, "pool", "", "pool for images and the journal")
	flag.StringVar(&o.dataPool, "data-pool", "", "pool used as dataPool")
	flag.StringVar(&o.topoPool, "topology-pool", "", "pool of topologyConstrainedPools")
	flag.StringVar(&o.namespace, "namespace", "", "the RADOS namespace of -ns-cluster-id")
	flag.StringVar(&o.driverArgs, "driver-args", "", "the controller's command line (recorded)")
	flag.Parse()
	if err := run(context.Background(), &o); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, o *options) error {
	cli := &cephcsi.CLI{Conf: o.conf, Keyring: o.keyring}
	key, err := adminKey(o.keyring)
	if err != nil {
		return err
	}
	st := &cephcsi.State{Format: cephcsi.StateFormat, CapturedAt: time.Now().UTC().Format(time.RFC3339)}
	if err := readJSON(o.oracle, &st.Oracle); err != nil {
		return err
	}
	if st.ConfigJSON, err = os.ReadFile(o.config); err != nil {
		return err
	}
	if st.KMSConfigJSON, err = os.ReadFile(o.kmsConfig); err != nil {
		return err
	}
	ver, err := cli.Ceph(ctx, "version")
	if err != nil {
		return err
	}
	fsid, err := cli.Ceph(ctx, "fsid")
	if err != nil {
		return err
	}
	st.Ceph = cephcsi.Ceph{Cluster: o.cluster, Version: strings.TrimSpace(string(ver)), FSID: strings.TrimSpace(string(fsid))}
	st.Driver = cephcsi.Driver{Name: "rbd.csi.ceph.com", InstanceID: "default", Args: strings.Fields(o.driverArgs)}

	conn, err := grpc.NewClient(o.endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	r := &recorder{st: st, ctl: csi.NewControllerClient(conn), ids: csi.NewIdentityClient(conn)}
	r.secrets = map[string]string{"userID": "admin", "userKey": key}
	if err := scenario(ctx, r, o); err != nil {
		return err
	}

	pools := map[string][]string{o.pool: {"", o.namespace}, o.dataPool: {""}, o.topoPool: {""}}
	layout, err := cephcsi.Dump(ctx, cli, pools)
	if err != nil {
		return err
	}
	st.Layout = *layout
	if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
		return err
	}
	return cephcsi.WriteJSON(o.out, st)
}

// scenario is the capture: every step's name is how tests find its handles.
func scenario(ctx context.Context, r *recorder, o *options) error {
	c := &capture{r: r, o: o, vols: map[string]*csi.Volume{}, snaps: map[string]*csi.Snapshot{}}
	r.step = "identity"
	if _, err := record(r, "GetPluginInfo", &csi.GetPluginInfoRequest{}, r.ids.GetPluginInfo); err != nil {
		return err
	}
	if _, err := record(r, "GetPluginCapabilities", &csi.GetPluginCapabilitiesRequest{}, r.ids.GetPluginCapabilities); err != nil {
		return err
	}
	if _, err := record(r, "ControllerGetCapabilities", &csi.ControllerGetCapabilitiesRequest{}, r.ctl.ControllerGetCapabilities); err != nil {
		return err
	}
	for _, group := range [][]func() error{c.volumeSteps(), c.snapshotSteps(), c.deleteSteps(), c.namespaceSteps()} {
		for _, s := range group {
			if err := s(); err != nil {
				return err
			}
		}
	}
	// Let background work the controller queued (mgr flatten/trash tasks) settle.
	time.Sleep(5 * time.Second)
	return nil
}

const mib = 1 << 20

// pvcNS is the namespace the captured requests name as the PVC's.
const pvcNS = "ccsi"

// capture holds what the scenario's steps created, by step name.
type capture struct {
	r     *recorder
	o     *options
	vols  map[string]*csi.Volume
	snaps map[string]*csi.Snapshot
}

// vol is one CreateVolume step.
type vol struct {
	step   string
	size   int64
	params map[string]string
	src    *csi.VolumeContentSource
	topo   *csi.TopologyRequirement
	enc    bool
}

// base is a StorageClass's parameters for clusterID; extra are key,
// value pairs to set (an empty value deletes the key).
func (c *capture) base(clusterID string, extra ...string) map[string]string {
	p := map[string]string{"clusterID": clusterID, "pool": c.o.pool, "imageFeatures": "layering"}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "" {
			delete(p, extra[i])
			continue
		}
		p[extra[i]] = extra[i+1]
	}
	return p
}

func (c *capture) create(v vol) error {
	r := c.r
	r.step = v.step
	params := map[string]string{}
	for k, val := range v.params {
		params[k] = val
	}
	name := "pvc-" + uuid.NewString()
	// What external-provisioner --extra-create-metadata adds.
	params["csi.storage.k8s.io/pvc/name"] = v.step
	params["csi.storage.k8s.io/pvc/namespace"] = pvcNS
	params["csi.storage.k8s.io/pv/name"] = name
	req := &csi.CreateVolumeRequest{
		Name:                      name,
		CapacityRange:             &csi.CapacityRange{RequiredBytes: v.size},
		VolumeCapabilities:        []*csi.VolumeCapability{mountCap()},
		Parameters:                params,
		Secrets:                   r.secretsFor(v.enc),
		VolumeContentSource:       v.src,
		AccessibilityRequirements: v.topo,
	}
	resp, err := record(r, "CreateVolume", req, r.ctl.CreateVolume)
	if err != nil {
		return err
	}
	c.vols[v.step] = resp.GetVolume()
	return nil
}

func (c *capture) snapshot(step, srcStep, clusterID string, enc bool, extra ...string) error {
	r := c.r
	r.step = step
	name := "snapshot-" + uuid.NewString()
	params := map[string]string{"clusterID": clusterID,
		// What external-snapshotter --extra-create-metadata adds.
		"csi.storage.k8s.io/volumesnapshot/name":        step,
		"csi.storage.k8s.io/volumesnapshot/namespace":   pvcNS,
		"csi.storage.k8s.io/volumesnapshotcontent/name": "snapcontent-" + strings.TrimPrefix(name, "snapshot-"),
	}
	for i := 0; i+1 < len(extra); i += 2 {
		params[extra[i]] = extra[i+1]
	}
	req := &csi.CreateSnapshotRequest{Name: name, SourceVolumeId: c.vols[srcStep].GetVolumeId(),
		Parameters: params, Secrets: r.secretsFor(enc)}
	resp, err := record(r, "CreateSnapshot", req, r.ctl.CreateSnapshot)
	if err != nil {
		return err
	}
	c.snaps[step] = resp.GetSnapshot()
	return nil
}

func (c *capture) fromSnap(step string) *csi.VolumeContentSource {
	return &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
		Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: c.snaps[step].GetSnapshotId()}}}
}

func (c *capture) fromVol(step string) *csi.VolumeContentSource {
	return &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{
		Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: c.vols[step].GetVolumeId()}}}
}

func (c *capture) expand(step, volStep string, size int64) error {
	r := c.r
	r.step = step
	req := &csi.ControllerExpandVolumeRequest{VolumeId: c.vols[volStep].GetVolumeId(),
		CapacityRange: &csi.CapacityRange{RequiredBytes: size}, VolumeCapability: mountCap(), Secrets: r.secrets}
	_, err := record(r, "ControllerExpandVolume", req, r.ctl.ControllerExpandVolume)
	return err
}

func (c *capture) deleteVol(step, id string) error {
	r := c.r
	r.step = step
	_, err := record(r, "DeleteVolume", &csi.DeleteVolumeRequest{VolumeId: id, Secrets: r.secrets}, r.ctl.DeleteVolume)
	return err
}

func (c *capture) deleteSnap(step, id string) error {
	r := c.r
	r.step = step
	_, err := record(r, "DeleteSnapshot", &csi.DeleteSnapshotRequest{SnapshotId: id, Secrets: r.secrets}, r.ctl.DeleteSnapshot)
	return err
}

// volumeSteps create volumes in the pool's default namespace.
func (c *capture) volumeSteps() []func() error {
	a := c.o.clusterID
	topo := fmt.Sprintf(`[{"poolName":%q,"domainSegments":[{"domainLabel":"zone","value":"zone1"}]}]`, c.o.topoPool)
	return []func() error{
		// Volumes in the pool's default namespace.
		func() error { return c.create(vol{step: "vol-plain", size: 16 * mib, params: c.base(a)}) },
		func() error {
			return c.create(vol{step: "vol-features", size: 16 * mib, params: c.base(a,
				"imageFeatures", "layering,exclusive-lock,object-map,fast-diff,deep-flatten")})
		},
		func() error {
			return c.create(vol{step: "vol-striped", size: 16 * mib, params: c.base(a,
				"stripeUnit", "65536", "stripeCount", "4", "objectSize", "1048576")})
		},
		func() error {
			return c.create(vol{step: "vol-datapool", size: 16 * mib, params: c.base(a, "dataPool", c.o.dataPool)})
		},
		func() error {
			return c.create(vol{step: "vol-prefix", size: 16 * mib, params: c.base(a, "volumeNamePrefix", "foo-bar-")})
		},
		func() error {
			return c.create(vol{step: "vol-topology", size: 16 * mib, params: c.base(a, "topologyConstrainedPools", topo),
				topo: &csi.TopologyRequirement{Preferred: []*csi.Topology{{Segments: map[string]string{
					"topology.rbd.csi.ceph.com/zone": "zone1"}}}}})
		},
		func() error {
			return c.create(vol{step: "vol-encrypted", size: 16 * mib, params: c.base(a, "encrypted", "true"), enc: true})
		},
		func() error {
			return c.create(vol{step: "vol-encrypted-metadata-kms", size: 16 * mib, params: c.base(a, "encrypted", "true",
				"encryptionKMSID", "secrets-metadata"), enc: true})
		},
		func() error {
			return c.create(vol{step: "vol-unknown-param", size: 16 * mib, params: c.base(a, "bogusKey", "x")})
		},
		// No imageFeatures: librbd's rbd_default_features decide.
		func() error {
			return c.create(vol{step: "vol-default-features", size: 16 * mib, params: c.base(a, "imageFeatures", "")})
		},
		// Node-side knobs: they only travel in the volume context the PV keeps.
		func() error {
			return c.create(vol{step: "vol-node-params", size: 16 * mib, params: c.base(a, "mounter", "rbd-nbd",
				"mapOptions", "krbd:lock_on_read,queue_depth=1024;nbd:try-netlink", "unmapOptions", "krbd:force;nbd:force",
				"mkfsOptions", "-m0 -Ediscard -i1024", "tryOtherMounters", "true", "cephLogDir", "/var/log/ceph",
				"cephLogStrategy", "preserve", "csi.storage.k8s.io/fstype", "xfs")})
		},
	}
}

// snapshotSteps take snapshots and restore, clone and expand volumes.
func (c *capture) snapshotSteps() []func() error {
	a := c.o.clusterID
	return []func() error{
		// Snapshots, restores, clones, expansion.
		func() error { return c.snapshot("snap-plain", "vol-plain", a, false) },
		func() error {
			return c.snapshot("snap-prefix", "vol-striped", a, false, "snapshotNamePrefix", "snap-foo-")
		},
		func() error { return c.snapshot("snap-encrypted-metadata-kms", "vol-encrypted-metadata-kms", a, true) },
		func() error { return c.snapshot("snap-topology", "vol-topology", a, false) },
		func() error {
			return c.create(vol{step: "vol-restore", size: 16 * mib, params: c.base(a), src: c.fromSnap("snap-plain")})
		},
		func() error {
			return c.create(vol{step: "vol-restore-bigger", size: 32 * mib, params: c.base(a), src: c.fromSnap("snap-plain")})
		},
		func() error {
			return c.create(vol{step: "vol-restore-striped", size: 16 * mib, params: c.base(a), src: c.fromSnap("snap-prefix")})
		},
		func() error {
			return c.create(vol{step: "vol-clone", size: 16 * mib, params: c.base(a), src: c.fromVol("vol-plain")})
		},
		func() error {
			return c.create(vol{step: "vol-encrypted-metadata-kms-restore", size: 16 * mib, params: c.base(a, "encrypted", "true",
				"encryptionKMSID", "secrets-metadata"), src: c.fromSnap("snap-encrypted-metadata-kms"), enc: true})
		},
		func() error {
			return c.create(vol{step: "vol-encrypted-clone", size: 16 * mib, params: c.base(a, "encrypted", "true"),
				src: c.fromVol("vol-encrypted"), enc: true})
		},
		func() error { return c.expand("expand-vol-plain", "vol-plain", 32*mib) },
		func() error { return c.expand("expand-vol-clone", "vol-clone", 32*mib) },
	}
}

// deleteSteps delete sources under snapshots and clones, and what a
// clean delete leaves.
func (c *capture) deleteSteps() []func() error {
	a := c.o.clusterID
	return []func() error{
		// A source deleted while its snapshot lives; a source deleted under a clone.
		func() error { return c.create(vol{step: "vol-deleted-with-snap", size: 16 * mib, params: c.base(a)}) },
		func() error { return c.snapshot("snap-of-deleted", "vol-deleted-with-snap", a, false) },
		func() error {
			return c.deleteVol("delete-vol-deleted-with-snap", c.vols["vol-deleted-with-snap"].GetVolumeId())
		},
		func() error {
			return c.create(vol{step: "vol-restore-of-deleted-source", size: 16 * mib, params: c.base(a), src: c.fromSnap("snap-of-deleted")})
		},
		func() error { return c.create(vol{step: "vol-deleted-under-clone", size: 16 * mib, params: c.base(a)}) },
		func() error {
			return c.create(vol{step: "vol-clone-of-deleted", size: 16 * mib, params: c.base(a), src: c.fromVol("vol-deleted-under-clone")})
		},
		func() error {
			return c.deleteVol("delete-vol-deleted-under-clone", c.vols["vol-deleted-under-clone"].GetVolumeId())
		},
		// Created and deleted: what a clean delete leaves (nothing).
		func() error { return c.create(vol{step: "vol-deleted", size: 16 * mib, params: c.base(a)}) },
		func() error { return c.snapshot("snap-deleted", "vol-plain", a, false) },
		func() error { return c.deleteSnap("delete-snap-deleted", c.snaps["snap-deleted"].GetSnapshotId()) },
		func() error { return c.deleteVol("delete-vol-deleted", c.vols["vol-deleted"].GetVolumeId()) },
		func() error { return c.deleteVol("delete-vol-deleted-again", c.vols["vol-deleted"].GetVolumeId()) },
		func() error { return c.deleteVol("delete-malformed-id", "not-a-ceph-csi-volume-id") },
		func() error {
			// A well-formed handle whose pool id does not exist.
			return c.deleteVol("delete-unknown-pool", "0001-0024-"+a+"-00000000000003e7-"+uuid.NewString())
		},
	}
}

// namespaceSteps repeat the lifecycle through a clusterID whose
// config.json entry has rbd.radosNamespace.
func (c *capture) namespaceSteps() []func() error {
	b := c.o.nsCluster
	return []func() error{
		func() error { return c.create(vol{step: "ns-vol", size: 16 * mib, params: c.base(b)}) },
		func() error { return c.snapshot("ns-snap", "ns-vol", b, false) },
		func() error {
			return c.create(vol{step: "ns-restore", size: 16 * mib, params: c.base(b), src: c.fromSnap("ns-snap")})
		},
		func() error {
			return c.create(vol{step: "ns-clone", size: 16 * mib, params: c.base(b), src: c.fromVol("ns-vol")})
		},
		func() error { return c.expand("ns-expand", "ns-vol", 32*mib) },
	}
}

type recorder struct {
	st      *cephcsi.State
	ctl     csi.ControllerClient
	ids     csi.IdentityClient
	secrets map[string]string
	step    string
}

const passphrase = "ccsi-capture-passphrase"

func (r *recorder) secretsFor(enc bool) map[string]string {
	s := map[string]string{}
	for k, v := range r.secrets {
		s[k] = v
	}
	if enc {
		s["encryptionPassphrase"] = passphrase
	}
	return s
}

// record calls fn, appends the call to the state (secret values replaced by
// "<secret>"; the encryption passphrase, a test value, is kept so the
// wrapped DEK can be opened) and returns the response. A gRPC error is
// recorded and is not fatal: ceph-csi's refusals are facts too.
func record[Req, Resp proto.Message](r *recorder, method string, req Req,
	fn func(context.Context, Req, ...grpc.CallOption) (Resp, error)) (Resp, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	resp, err := fn(ctx, req)
	c := cephcsi.Call{Step: r.step, Method: method, Request: marshal(redact(req))}
	if err != nil {
		s, _ := status.FromError(err)
		c.Code, c.Error = s.Code().String(), s.Message()
		log.Printf("%s %s: %s %s", r.step, method, c.Code, c.Error)
		r.st.Calls = append(r.st.Calls, c)
		var zero Resp
		if method == "CreateVolume" || method == "CreateSnapshot" {
			return zero, fmt.Errorf("%s %s: %w", r.step, method, err)
		}
		return zero, nil
	}
	c.Response = marshal(resp)
	log.Printf("%s %s: ok", r.step, method)
	r.st.Calls = append(r.st.Calls, c)
	return resp, nil
}

func redact(m proto.Message) proto.Message {
	m = proto.Clone(m)
	type secretsHolder interface{ GetSecrets() map[string]string }
	if h, ok := m.(secretsHolder); ok && h.GetSecrets() != nil {
		for k := range h.GetSecrets() {
			if k != "encryptionPassphrase" && k != "userID" {
				h.GetSecrets()[k] = "<secret>"
			}
		}
	}
	return m
}

// marshal is protojson with sorted keys (protojson's own spacing is not stable).
func marshal(m proto.Message) json.RawMessage {
	b, err := protojson.Marshal(m)
	if err != nil {
		log.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		log.Fatal(err)
	}
	out, err := json.Marshal(v)
	if err != nil {
		log.Fatal(err)
	}
	return out
}

func mountCap() *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: "ext4"}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
	}
}

func adminKey(keyring string) (string, error) {
	out, err := exec.Command("ceph-authtool", keyring, "-n", "client.admin", "-p").Output()
	if err != nil {
		return "", fmt.Errorf("ceph-authtool %s: %w", keyring, err)
	}
	return strings.TrimSpace(string(out)), nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
