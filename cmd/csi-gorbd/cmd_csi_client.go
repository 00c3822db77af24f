package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// csiClientCLI holds the options of `csi-gorbd csi ...`, a small CSI
// client (like csc) for the demo, the bench and operators: it talks to a
// running plugin over its endpoint, exactly as the sidecars do.
type csiClientCLI struct {
	ceph     *cephFlags
	endpoint string
	user     string
	timeout  time.Duration
	params   []string
}

func newCSIClientCmd(g *cephFlags) *cobra.Command {
	c := &csiClientCLI{ceph: g}
	cmd := &cobra.Command{
		Use:   "csi",
		Short: "Call a running CSI plugin (controller and identity RPCs)",
		Long: "Call a running CSI plugin over its endpoint. Secrets are userID (--user) and userKey, read from\n" +
			"--keyfile, from the keyring (-k) entry of client.<user>, or from --key. Parameters are StorageClass\n" +
			"parameters given as --param key=value (repeatable).",
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&c.endpoint, "endpoint", "unix:///csi/csi.sock", "CSI endpoint of the plugin (unix:///path or host:port)")
	pf.StringVar(&c.user, "user", "admin", "Ceph user for the secrets (userID)")
	pf.DurationVar(&c.timeout, "timeout", 2*time.Minute, "deadline of each call")
	pf.StringArrayVar(&c.params, "param", nil, "StorageClass parameter key=value (repeatable)")
	cmd.AddCommand(c.probeCmd(), c.createVolumeCmd(), c.deleteVolumeCmd(), c.expandCmd(),
		c.createSnapshotCmd(), c.deleteSnapshotCmd(), c.listSnapshotsCmd(), c.benchCmd())
	return cmd
}

// csiSession is one command's connection to the plugin with what its
// requests carry: the secrets and the StorageClass parameters.
type csiSession struct {
	cmd     *cobra.Command
	conn    *grpc.ClientConn
	id      csi.IdentityClient
	ctl     csi.ControllerClient
	timeout time.Duration
	secrets map[string]string // userID and userKey; nil for identity-only commands
	params  map[string]string
}

func (s *csiSession) Close() { s.conn.Close() }

// What a csi subcommand needs besides the connection.
const (
	needSecrets = 1 << iota
	needParams
)

// dial opens a session on the endpoint with the secrets and parameters
// need asks for (needSecrets, needParams).
func (c *csiClientCLI) dial(cmd *cobra.Command, need int) (*csiSession, error) {
	s := &csiSession{cmd: cmd, timeout: c.timeout}
	var err error
	if need&needSecrets != 0 {
		if s.secrets, err = c.secrets(); err != nil {
			return nil, err
		}
	}
	if need&needParams != 0 {
		if s.params, err = c.parameters(); err != nil {
			return nil, err
		}
	}
	target := strings.TrimPrefix(c.endpoint, "tcp://")
	s.conn, err = grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	s.id, s.ctl = csi.NewIdentityClient(s.conn), csi.NewControllerClient(s.conn)
	return s, nil
}

// call runs fn with the session's per-call deadline.
func call[T any](s *csiSession, fn func(ctx context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(s.cmd.Context(), s.timeout)
	defer cancel()
	return fn(ctx)
}

// secrets builds userID/userKey from --user and the key the global flags
// name (--key, --keyfile or the keyring's entry of client.<user>).
func (c *csiClientCLI) secrets() (map[string]string, error) {
	key, err := c.ceph.userKey(c.user)
	if err != nil {
		return nil, err
	}
	return map[string]string{"userID": c.user, "userKey": key}, nil
}

func (c *csiClientCLI) parameters() (map[string]string, error) {
	m := map[string]string{}
	for _, kv := range c.params {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--param %q: want key=value", kv)
		}
		m[k] = v
	}
	return m, nil
}

// rpcCmd is a csi subcommand: a session with what need asks for, then run.
func (c *csiClientCLI) rpcCmd(use, short string, args cobra.PositionalArgs, need int,
	run func(s *csiSession, args []string) error) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: short, Args: args,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := c.dial(cmd, need)
			if err != nil {
				return err
			}
			defer s.Close()
			return run(s, args)
		},
	}
}

func (c *csiClientCLI) probeCmd() *cobra.Command {
	return c.rpcCmd("probe", "GetPluginInfo, Probe and controller capabilities", cobra.NoArgs, 0,
		func(s *csiSession, _ []string) error {
			info, err := call(s, func(ctx context.Context) (*csi.GetPluginInfoResponse, error) {
				return s.id.GetPluginInfo(ctx, &csi.GetPluginInfoRequest{})
			})
			if err != nil {
				return err
			}
			pr, err := call(s, func(ctx context.Context) (*csi.ProbeResponse, error) { return s.id.Probe(ctx, &csi.ProbeRequest{}) })
			if err != nil {
				return err
			}
			w := s.cmd.OutOrStdout()
			fmt.Fprintf(w, "driver %s %s, ready %v\n", info.GetName(), info.GetVendorVersion(), pr.GetReady().GetValue())
			caps, err := call(s, func(ctx context.Context) (*csi.ControllerGetCapabilitiesResponse, error) {
				return s.ctl.ControllerGetCapabilities(ctx, &csi.ControllerGetCapabilitiesRequest{})
			})
			if err == nil {
				var names []string
				for _, cp := range caps.GetCapabilities() {
					names = append(names, cp.GetRpc().GetType().String())
				}
				sort.Strings(names)
				fmt.Fprintf(w, "controller: %s\n", strings.Join(names, " "))
			}
			return nil
		})
}

// mountCapability is the capability the client's requests ask for.
func mountCapability() *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
	}
}

// createVolumeRequest is a CreateVolume of sizeMiB with the session's
// secrets and parameters.
func (s *csiSession) createVolumeRequest(name string, sizeMiB int64) *csi.CreateVolumeRequest {
	return &csi.CreateVolumeRequest{Name: name, Parameters: s.params, Secrets: s.secrets,
		VolumeCapabilities: []*csi.VolumeCapability{mountCapability()},
		CapacityRange:      &csi.CapacityRange{RequiredBytes: sizeMiB << 20}}
}

func (c *csiClientCLI) createVolumeCmd() *cobra.Command {
	var size int64
	var fromSnap, fromVol string
	cmd := c.rpcCmd("create-volume NAME", "CreateVolume; prints the volume id", cobra.ExactArgs(1), needSecrets|needParams,
		func(s *csiSession, args []string) error {
			req := s.createVolumeRequest(args[0], size)
			switch {
			case fromSnap != "":
				req.VolumeContentSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
					Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: fromSnap}}}
			case fromVol != "":
				req.VolumeContentSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{
					Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: fromVol}}}
			}
			r, err := call(s, func(ctx context.Context) (*csi.CreateVolumeResponse, error) { return s.ctl.CreateVolume(ctx, req) })
			if err != nil {
				return err
			}
			v := r.GetVolume()
			fmt.Fprintln(s.cmd.OutOrStdout(), v.GetVolumeId())
			fmt.Fprintf(s.cmd.ErrOrStderr(), "capacity %d MiB, context %v\n", v.GetCapacityBytes()>>20, v.GetVolumeContext())
			return nil
		})
	cmd.Flags().Int64Var(&size, "size", 1024, "capacity in MiB")
	cmd.Flags().StringVar(&fromSnap, "from-snapshot", "", "restore from this snapshot id")
	cmd.Flags().StringVar(&fromVol, "from-volume", "", "clone this volume id")
	return cmd
}

func (c *csiClientCLI) deleteVolumeCmd() *cobra.Command {
	return c.rpcCmd("delete-volume VOLUME_ID", "DeleteVolume", cobra.ExactArgs(1), needSecrets,
		func(s *csiSession, args []string) error {
			_, err := call(s, func(ctx context.Context) (*csi.DeleteVolumeResponse, error) {
				return s.ctl.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: args[0], Secrets: s.secrets})
			})
			return err
		})
}

func (c *csiClientCLI) expandCmd() *cobra.Command {
	var size int64
	cmd := c.rpcCmd("expand-volume VOLUME_ID --size MiB", "ControllerExpandVolume", cobra.ExactArgs(1), needSecrets,
		func(s *csiSession, args []string) error {
			r, err := call(s, func(ctx context.Context) (*csi.ControllerExpandVolumeResponse, error) {
				return s.ctl.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{VolumeId: args[0], Secrets: s.secrets,
					CapacityRange: &csi.CapacityRange{RequiredBytes: size << 20}, VolumeCapability: mountCapability()})
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(s.cmd.OutOrStdout(), "capacity %d MiB, node expansion required %v\n", r.GetCapacityBytes()>>20, r.GetNodeExpansionRequired())
			return nil
		})
	cmd.Flags().Int64Var(&size, "size", 0, "new capacity in MiB")
	_ = cmd.MarkFlagRequired("size")
	return cmd
}

func (c *csiClientCLI) createSnapshotCmd() *cobra.Command {
	return c.rpcCmd("create-snapshot NAME VOLUME_ID", "CreateSnapshot; prints the snapshot id", cobra.ExactArgs(2), needSecrets|needParams,
		func(s *csiSession, args []string) error {
			r, err := call(s, func(ctx context.Context) (*csi.CreateSnapshotResponse, error) {
				return s.ctl.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: args[0], SourceVolumeId: args[1], Secrets: s.secrets, Parameters: s.params})
			})
			if err != nil {
				return err
			}
			fmt.Fprintln(s.cmd.OutOrStdout(), r.GetSnapshot().GetSnapshotId())
			return nil
		})
}

func (c *csiClientCLI) deleteSnapshotCmd() *cobra.Command {
	return c.rpcCmd("delete-snapshot SNAPSHOT_ID", "DeleteSnapshot", cobra.ExactArgs(1), needSecrets,
		func(s *csiSession, args []string) error {
			_, err := call(s, func(ctx context.Context) (*csi.DeleteSnapshotResponse, error) {
				return s.ctl.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: args[0], Secrets: s.secrets})
			})
			return err
		})
}

func (c *csiClientCLI) listSnapshotsCmd() *cobra.Command {
	var source string
	cmd := c.rpcCmd("list-snapshots", "ListSnapshots (all, or of --source VOLUME_ID)", cobra.NoArgs, needSecrets,
		func(s *csiSession, _ []string) error {
			token := ""
			for {
				r, err := call(s, func(ctx context.Context) (*csi.ListSnapshotsResponse, error) {
					return s.ctl.ListSnapshots(ctx, &csi.ListSnapshotsRequest{SourceVolumeId: source, Secrets: s.secrets,
						StartingToken: token, MaxEntries: 100})
				})
				if err != nil {
					return err
				}
				for _, e := range r.GetEntries() {
					sn := e.GetSnapshot()
					fmt.Fprintf(s.cmd.OutOrStdout(), "%s\t%d MiB\tsource %s\t%s\n", sn.GetSnapshotId(), sn.GetSizeBytes()>>20,
						sn.GetSourceVolumeId(), sn.GetCreationTime().AsTime().Format(time.RFC3339))
				}
				if token = r.GetNextToken(); token == "" {
					return nil
				}
			}
		})
	cmd.Flags().StringVar(&source, "source", "", "only snapshots of this volume id")
	return cmd
}
