package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/csi-gorbd/csi-gorbd/rados/cephx"
	"github.com/csi-gorbd/csi-gorbd/rados/entity"
)

// csiClientFlags are the options of `csi-gorbd csi ...`, a small CSI
// client (like csc) for the demo, the bench and operators: it talks to a
// running plugin over its endpoint, exactly as the sidecars do.
var csiClientFlags struct {
	endpoint string
	user     string
	timeout  time.Duration
	params   []string
}

func init() {
	cmd := &cobra.Command{
		Use:   "csi",
		Short: "Call a running CSI plugin (controller and identity RPCs)",
		Long: "Call a running CSI plugin over its endpoint. Secrets are userID (--user) and userKey, read from\n" +
			"--key or from the keyring (-k) entry of client.<user>. Parameters are StorageClass parameters\n" +
			"given as --param key=value (repeatable).",
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&csiClientFlags.endpoint, "endpoint", "unix:///csi/csi.sock", "CSI endpoint of the plugin (unix:///path or host:port)")
	pf.StringVar(&csiClientFlags.user, "user", "admin", "Ceph user for the secrets (userID)")
	pf.DurationVar(&csiClientFlags.timeout, "timeout", 2*time.Minute, "deadline of each call")
	pf.StringArrayVar(&csiClientFlags.params, "param", nil, "StorageClass parameter key=value (repeatable)")
	cmd.AddCommand(csiProbeCmd(), csiCreateVolumeCmd(), csiDeleteVolumeCmd(), csiExpandCmd(),
		csiCreateSnapshotCmd(), csiDeleteSnapshotCmd(), csiListSnapshotsCmd(), csiBenchCmd())
	rootCmd.AddCommand(cmd)
}

// csiClient dials the endpoint.
type csiClient struct {
	conn *grpc.ClientConn
	id   csi.IdentityClient
	ctl  csi.ControllerClient
}

func dialCSI() (*csiClient, error) {
	target := csiClientFlags.endpoint
	if strings.HasPrefix(target, "tcp://") {
		target = strings.TrimPrefix(target, "tcp://")
	}
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	return &csiClient{conn: conn, id: csi.NewIdentityClient(conn), ctl: csi.NewControllerClient(conn)}, nil
}

// call runs fn with the per-call deadline.
func call[T any](cmd *cobra.Command, fn func(ctx context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(cmd.Context(), csiClientFlags.timeout)
	defer cancel()
	return fn(ctx)
}

// csiSecrets builds userID/userKey from --user and --key or the keyring.
func csiSecrets() (map[string]string, error) {
	key := cephFlags.key
	if key == "" {
		path := cephFlags.keyring
		if path == "" {
			return nil, fmt.Errorf("give the user's key with --key or a keyring with -k")
		}
		kr, err := cephx.LoadKeyring(path)
		if err != nil {
			return nil, err
		}
		name, err := entity.ParseName("client." + csiClientFlags.user)
		if err != nil {
			return nil, err
		}
		k, err := kr.Get(name)
		if err != nil {
			return nil, err
		}
		key = k.String()
	}
	return map[string]string{"userID": csiClientFlags.user, "userKey": key}, nil
}

func csiParams() (map[string]string, error) {
	m := map[string]string{}
	for _, kv := range csiClientFlags.params {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--param %q: want key=value", kv)
		}
		m[k] = v
	}
	return m, nil
}

func csiProbeCmd() *cobra.Command {
	return &cobra.Command{
		Use: "probe", Short: "GetPluginInfo, Probe and controller capabilities", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := dialCSI()
			if err != nil {
				return err
			}
			defer c.conn.Close()
			info, err := call(cmd, func(ctx context.Context) (*csi.GetPluginInfoResponse, error) {
				return c.id.GetPluginInfo(ctx, &csi.GetPluginInfoRequest{})
			})
			if err != nil {
				return err
			}
			pr, err := call(cmd, func(ctx context.Context) (*csi.ProbeResponse, error) { return c.id.Probe(ctx, &csi.ProbeRequest{}) })
			if err != nil {
				return err
			}
			fmt.Printf("driver %s %s, ready %v\n", info.GetName(), info.GetVendorVersion(), pr.GetReady().GetValue())
			caps, err := call(cmd, func(ctx context.Context) (*csi.ControllerGetCapabilitiesResponse, error) {
				return c.ctl.ControllerGetCapabilities(ctx, &csi.ControllerGetCapabilitiesRequest{})
			})
			if err == nil {
				var names []string
				for _, cp := range caps.GetCapabilities() {
					names = append(names, cp.GetRpc().GetType().String())
				}
				sort.Strings(names)
				fmt.Printf("controller: %s\n", strings.Join(names, " "))
			}
			return nil
		},
	}
}

var mountCapability = []*csi.VolumeCapability{{
	AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
	AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
}}

func csiCreateVolumeCmd() *cobra.Command {
	var size int64
	var fromSnap, fromVol string
	cmd := &cobra.Command{
		Use: "create-volume NAME", Short: "CreateVolume; prints the volume id", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := dialCSI()
			if err != nil {
				return err
			}
			defer c.conn.Close()
			sec, err := csiSecrets()
			if err != nil {
				return err
			}
			params, err := csiParams()
			if err != nil {
				return err
			}
			req := &csi.CreateVolumeRequest{Name: args[0], Parameters: params, Secrets: sec, VolumeCapabilities: mountCapability,
				CapacityRange: &csi.CapacityRange{RequiredBytes: size << 20}}
			switch {
			case fromSnap != "":
				req.VolumeContentSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
					Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: fromSnap}}}
			case fromVol != "":
				req.VolumeContentSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{
					Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: fromVol}}}
			}
			r, err := call(cmd, func(ctx context.Context) (*csi.CreateVolumeResponse, error) { return c.ctl.CreateVolume(ctx, req) })
			if err != nil {
				return err
			}
			v := r.GetVolume()
			fmt.Println(v.GetVolumeId())
			fmt.Fprintf(os.Stderr, "capacity %d MiB, context %v\n", v.GetCapacityBytes()>>20, v.GetVolumeContext())
			return nil
		},
	}
	cmd.Flags().Int64Var(&size, "size", 1024, "capacity in MiB")
	cmd.Flags().StringVar(&fromSnap, "from-snapshot", "", "restore from this snapshot id")
	cmd.Flags().StringVar(&fromVol, "from-volume", "", "clone this volume id")
	return cmd
}

func csiDeleteVolumeCmd() *cobra.Command {
	return &cobra.Command{
		Use: "delete-volume VOLUME_ID", Short: "DeleteVolume", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := dialCSI()
			if err != nil {
				return err
			}
			defer c.conn.Close()
			sec, err := csiSecrets()
			if err != nil {
				return err
			}
			_, err = call(cmd, func(ctx context.Context) (*csi.DeleteVolumeResponse, error) {
				return c.ctl.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: args[0], Secrets: sec})
			})
			return err
		},
	}
}

func csiExpandCmd() *cobra.Command {
	var size int64
	cmd := &cobra.Command{
		Use: "expand-volume VOLUME_ID --size MiB", Short: "ControllerExpandVolume", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := dialCSI()
			if err != nil {
				return err
			}
			defer c.conn.Close()
			sec, err := csiSecrets()
			if err != nil {
				return err
			}
			r, err := call(cmd, func(ctx context.Context) (*csi.ControllerExpandVolumeResponse, error) {
				return c.ctl.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{VolumeId: args[0], Secrets: sec,
					CapacityRange: &csi.CapacityRange{RequiredBytes: size << 20}, VolumeCapability: mountCapability[0]})
			})
			if err != nil {
				return err
			}
			fmt.Printf("capacity %d MiB, node expansion required %v\n", r.GetCapacityBytes()>>20, r.GetNodeExpansionRequired())
			return nil
		},
	}
	cmd.Flags().Int64Var(&size, "size", 0, "new capacity in MiB")
	_ = cmd.MarkFlagRequired("size")
	return cmd
}

func csiCreateSnapshotCmd() *cobra.Command {
	return &cobra.Command{
		Use: "create-snapshot NAME VOLUME_ID", Short: "CreateSnapshot; prints the snapshot id", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := dialCSI()
			if err != nil {
				return err
			}
			defer c.conn.Close()
			sec, err := csiSecrets()
			if err != nil {
				return err
			}
			params, err := csiParams()
			if err != nil {
				return err
			}
			r, err := call(cmd, func(ctx context.Context) (*csi.CreateSnapshotResponse, error) {
				return c.ctl.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: args[0], SourceVolumeId: args[1], Secrets: sec, Parameters: params})
			})
			if err != nil {
				return err
			}
			fmt.Println(r.GetSnapshot().GetSnapshotId())
			return nil
		},
	}
}

func csiDeleteSnapshotCmd() *cobra.Command {
	return &cobra.Command{
		Use: "delete-snapshot SNAPSHOT_ID", Short: "DeleteSnapshot", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := dialCSI()
			if err != nil {
				return err
			}
			defer c.conn.Close()
			sec, err := csiSecrets()
			if err != nil {
				return err
			}
			_, err = call(cmd, func(ctx context.Context) (*csi.DeleteSnapshotResponse, error) {
				return c.ctl.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: args[0], Secrets: sec})
			})
			return err
		},
	}
}

func csiListSnapshotsCmd() *cobra.Command {
	var source string
	cmd := &cobra.Command{
		Use: "list-snapshots", Short: "ListSnapshots (all, or of --source VOLUME_ID)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := dialCSI()
			if err != nil {
				return err
			}
			defer c.conn.Close()
			sec, err := csiSecrets()
			if err != nil {
				return err
			}
			token := ""
			for {
				r, err := call(cmd, func(ctx context.Context) (*csi.ListSnapshotsResponse, error) {
					return c.ctl.ListSnapshots(ctx, &csi.ListSnapshotsRequest{SourceVolumeId: source, Secrets: sec,
						StartingToken: token, MaxEntries: 100})
				})
				if err != nil {
					return err
				}
				for _, e := range r.GetEntries() {
					s := e.GetSnapshot()
					fmt.Printf("%s\t%d MiB\tsource %s\t%s\n", s.GetSnapshotId(), s.GetSizeBytes()>>20, s.GetSourceVolumeId(),
						s.GetCreationTime().AsTime().Format(time.RFC3339))
				}
				if token = r.GetNextToken(); token == "" {
					return nil
				}
			}
		},
	}
	cmd.Flags().StringVar(&source, "source", "", "only snapshots of this volume id")
	return cmd
}
