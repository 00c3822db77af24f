package nodeserver

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	"github.com/csi-gorbd/csi-gorbd/crypt/luks"
	"github.com/csi-gorbd/csi-gorbd/internal/csiceph"
	"github.com/csi-gorbd/csi-gorbd/internal/csicrypt"
	"github.com/csi-gorbd/csi-gorbd/internal/kms"
	"github.com/csi-gorbd/csi-gorbd/rados"
	"github.com/csi-gorbd/csi-gorbd/rbd"
	"github.com/csi-gorbd/csi-gorbd/rbd/encryption"
	"github.com/csi-gorbd/csi-gorbd/test/cephcsi"
)

// encNode is a node plugin over the replayed capture, with the captured
// handles resolving through cluster-mapping.json (so that the metadata
// KMS's salt, the handle, is the one ceph-csi sealed with).
type encNode struct {
	t      *testing.T
	top    *testing.T // owns the servers' cleanups
	ctx    context.Context
	e      *cephcsi.ReplayEnv
	opts   Options
	s      *Server
	kernel *fakeKernel
	pass   string // the captured encryptionPassphrase
}

func newEncNode(t *testing.T) *encNode {
	e := cephcsi.NewReplayEnv(t, "pacific", "../test/cephcsi/testdata", "v3.12.2")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	t.Cleanup(cancel)
	var entries []map[string]any
	if err := json.Unmarshal(e.State.ConfigJSON, &entries); err != nil {
		t.Fatal(err)
	}
	for _, en := range entries {
		en["monitors"] = []string{e.Cluster.Get("CEPH_MON_V2")}
	}
	b, _ := json.Marshal(entries)
	clusters, err := csiceph.ParseClusters(b)
	if err != nil {
		t.Fatal(err)
	}
	cm, err := e.Replayed.ClusterMapping(e.State)
	if err != nil {
		t.Fatal(err)
	}
	mapping, err := csiceph.ParseClusterMapping(cm)
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "kms.json")
	if err := os.WriteFile(cfg, e.State.KMSConfigJSON, 0o600); err != nil {
		t.Fatal(err)
	}
	n := &encNode{t: t, top: t, ctx: ctx, e: e, kernel: &fakeKernel{socks: map[int][]*os.File{}}}
	n.opts = Options{NodeID: "n1", Clusters: clusters, Mapping: mapping, StateDir: t.TempDir(), Kernel: n.kernel,
		KMS: kms.Loader{File: cfg}, KeyDir: t.TempDir(), KeyDirAnyFS: true,
		KDF: luks.KDF{Type: luks.KDFPBKDF2, Hash: "sha256", Iterations: 10000}}
	n.start()
	c, _ := e.State.Step("vol-encrypted", "CreateVolume")
	var req struct {
		Secrets map[string]string `json:"secrets"`
	}
	_ = json.Unmarshal(c.Request, &req)
	n.pass = req.Secrets[kms.SecretPassphraseKey]
	if n.pass == "" {
		t.Fatal("the capture has no encryptionPassphrase")
	}
	return n
}

func (n *encNode) start() {
	n.t.Helper()
	s, err := New(n.ctx, n.opts)
	if err != nil {
		n.t.Fatal(err)
	}
	n.s = s
	n.top.Cleanup(func() { s.Close() })
}

// secrets are node-stage secrets with pass as the encryptionPassphrase
// ("": none).
func (n *encNode) secrets(pass string) map[string]string {
	s := map[string]string{"userID": "admin", "userKey": n.e.Cluster.Get("CEPH_ADMIN_KEY")}
	if pass != "" {
		s[kms.SecretPassphraseKey] = pass
	}
	return s
}

// volume is a captured encrypted volume: its original handle and the
// volume context ceph-csi answered.
func (n *encNode) volume(step string) (string, map[string]string) {
	n.t.Helper()
	id, err := n.e.State.VolumeID(step)
	if err != nil {
		n.t.Fatal(err)
	}
	c, _ := n.e.State.Step(step, "CreateVolume")
	var resp struct {
		Volume struct {
			VolumeContext map[string]string `json:"volumeContext"`
		} `json:"volume"`
	}
	if err := json.Unmarshal(c.Response, &resp); err != nil {
		n.t.Fatal(err)
	}
	return id, resp.Volume.VolumeContext
}

// image opens the replayed image of a captured volume.
func (n *encNode) image(vctx map[string]string) *rbd.Image {
	n.t.Helper()
	io, err := n.e.Conn.OpenIOContext(n.ctx, n.e.Replayed.Pools[vctx["pool"]])
	if err != nil {
		n.t.Fatal(err)
	}
	// NoWatch: the test's handle is no user of the image, or the node's
	// exclusive stage of these images (no exclusive-lock feature, as
	// ceph-csi makes them) would refuse it as another watcher.
	img, err := rbd.Open(n.ctx, io, vctx["imageName"], &rbd.OpenOptions{NoWatch: true})
	if err != nil {
		n.t.Fatal(err)
	}
	n.top.Cleanup(func() { _ = img.Close(context.Background()) })
	return img
}

func (n *encNode) stage(id string, vctx, secrets map[string]string, staging string) error {
	_, err := n.s.NodeStageVolume(n.ctx, &csi.NodeStageVolumeRequest{VolumeId: id, StagingTargetPath: staging,
		VolumeCapability: blockCap(snw), Secrets: secrets, VolumeContext: vctx})
	return err
}

// wantRefusal checks a stage error's code and that its message names
// what to fix and shows no passphrase.
func (n *encNode) wantRefusal(what string, err error, code codes.Code, names ...string) {
	n.t.Helper()
	wantCode(n.t, what, err, code)
	for _, s := range names {
		if err != nil && !strings.Contains(err.Error(), s) {
			n.t.Errorf("%s: %v does not name %q", what, err, s)
		}
	}
	if err != nil && (strings.Contains(err.Error(), n.pass) || strings.Contains(err.Error(), "wrong-pass")) {
		n.t.Errorf("%s: the message shows a passphrase: %v", what, err)
	}
	if ents, _ := os.ReadDir(filepath.Join(n.opts.StateDir, "volumes")); len(ents) != 0 {
		n.t.Errorf("%s: volume records left: %v", what, ents)
	}
}

// TestEncryptedTakeoverStage: the node plugin stages ceph-csi's encrypted
// volumes (the v3.12.2 capture replayed, original handles through the
// cluster mapping), as its node would have:
//
//   - vol-encrypted-metadata-kms (metadata KMS "secrets-metadata", never
//     staged: encryptionPrepared, blank): a missing passphrase is
//     InvalidArgument and a wrong one PermissionDenied, both naming the
//     node-stage secret; the right one unseals ceph-csi's DEK, the first
//     stage formats LUKS2 (dm-crypt layout) and marks the image
//     encrypted, and host cryptsetup accepts the header with the DEK (so
//     ceph-csi's node opens it after a rollback);
//   - vol-encrypted-clone (default KMS) after ceph-csi's node formatted
//     it: a header made by host cryptsetup with ceph-csi's luksFormat
//     arguments, written into the image, unlocks here.
//
// Each serves plaintext (the image minus the header) through the
// backend; the record on disk holds the volume key only sealed; a new
// plugin process on the same state directory recovers the device with
// no secrets, and reads what was written; a wrong default-KMS passphrase
// is PermissionDenied once the header exists.
func TestEncryptedTakeoverStage(t *testing.T) {
	n := newEncNode(t)
	cephcsiFormat(t, n, "vol-encrypted-clone")
	for _, step := range []string{"vol-encrypted-metadata-kms", "vol-encrypted-clone"} {
		t.Run(step, func(t *testing.T) { n.t = t; n.stageEncrypted(step) })
	}
}

func (n *encNode) stageEncrypted(step string) {
	t := n.t
	id, vctx := n.volume(step)
	img := n.image(vctx)
	metaKMS := vctx["encryptionKMSID"] != ""
	// The captured volumes are 16 MiB: all header. Grown as an expansion
	// would (ControllerExpandVolume of an encrypted volume adds the
	// header).
	if err := img.Resize(n.ctx, 48<<20); err != nil {
		t.Fatal(err)
	}
	staging := t.TempDir()
	n.wantRefusal("no encryptionPassphrase", n.stage(id, vctx, n.secrets(""), staging), codes.InvalidArgument,
		"node-stage secret", "encryptionPassphrase")
	if metaKMS {
		n.wantRefusal("wrong encryptionPassphrase", n.stage(id, vctx, n.secrets("wrong-pass"), staging), codes.PermissionDenied,
			"node-stage secret", "encryptionPassphrase does not open", kms.MetaDEK)
	}
	start := time.Now()
	if err := n.stage(id, vctx, n.secrets(n.pass), staging); err != nil {
		t.Fatalf("NodeStageVolume: %v", err)
	}
	t.Logf("staged in %v", time.Since(start).Round(time.Millisecond))
	if st, err := csicrypt.State(n.ctx, img); err != nil || st != csicrypt.StateEncrypted {
		t.Errorf("state %q %v, want encrypted", st, err)
	}
	be := n.s.backend(id)
	if be == nil || be.Encrypted() == nil {
		t.Fatalf("not served in plaintext: %v", be)
	}
	_ = img.Refresh(n.ctx)
	if got, want := be.Size(), int64(img.Size()-be.Encrypted().DataOffset()); got != want || be.PreferredBlockSize() < 512 {
		t.Errorf("device of %d bytes, block %d; want %d", got, be.PreferredBlockSize(), want)
	}
	data := bytes.Repeat([]byte(step+" plaintext "), 1000)[:8192]
	if err := be.WriteAt(n.ctx, data, 4096, true); err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, len(data))
	if _, err := img.ReadAt(n.ctx, raw, be.Encrypted().DataOffset()+4096); err != nil || bytes.Contains(raw, []byte("plaintext")) {
		t.Errorf("the image holds plaintext (%v)", err)
	}
	pass := n.lukspass(id, vctx, img)
	n.checkRecord(id, img, pass)
	if metaKMS {
		cryptsetupAccepts(t, n.ctx, img, pass)
	}

	// A new process on the same state directory serves the device again
	// with what the record holds: no secrets.
	n.s.Close()
	n.start()
	if _, err := n.s.Recover(n.ctx); err != nil {
		t.Fatalf("Recover: %v", err)
	}
	be = n.s.backend(id)
	if be == nil || be.Encrypted() == nil {
		t.Fatal("the restarted plugin does not serve the volume in plaintext")
	}
	got := make([]byte, len(data))
	if err := be.ReadAt(n.ctx, got, 4096); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("after the restart: %v", err)
	}
	if _, err := n.s.NodeUnstageVolume(n.ctx, &csi.NodeUnstageVolumeRequest{VolumeId: id, StagingTargetPath: staging}); err != nil {
		t.Fatal(err)
	}
	if !metaKMS {
		n.wantRefusal("wrong default passphrase", n.stage(id, vctx, n.secrets("wrong-pass"), staging), codes.PermissionDenied,
			"node-stage secret", "encryptionPassphrase")
	}
}

// lukspass is the volume's LUKS passphrase, through the kms package.
func (n *encNode) lukspass(id string, vctx map[string]string, img *rbd.Image) []byte {
	n.t.Helper()
	st, err := kms.Open(n.ctx, n.opts.KMS, nil, kms.Request{KMSID: vctx["encryptionKMSID"], Secrets: n.secrets(n.pass)})
	if err != nil {
		n.t.Fatal(err)
	}
	p, err := st.Passphrase(n.ctx, encryption.Volume{ID: id, Meta: img})
	if err != nil {
		n.t.Fatal(err)
	}
	return p
}

// checkRecord: the volume's record holds the key sealed, never the key
// or a passphrase.
func (n *encNode) checkRecord(id string, img *rbd.Image, pass []byte) {
	n.t.Helper()
	b, err := os.ReadFile(n.s.vols.path(id))
	if err != nil {
		n.t.Fatal(err)
	}
	e, err := encryption.Open(n.ctx, img, pass, &encryption.OpenOptions{ReadOnly: true})
	if err != nil {
		n.t.Fatal(err)
	}
	key := e.VolumeKey()
	defer clear(key)
	var rec volumeRecord
	if err := json.Unmarshal(b, &rec); err != nil || rec.Encryption == nil || len(rec.Encryption.SealedKey) == 0 {
		n.t.Fatalf("record %s: %v", b, err)
	}
	for what, secret := range map[string][]byte{"volume key": key, "passphrase": pass, "wrapping passphrase": []byte(n.pass)} {
		if bytes.Contains(b, secret) || bytes.Contains(rec.Encryption.SealedKey, secret) || bytes.Contains(b, []byte(jsonBytes(secret))) {
			n.t.Errorf("the record holds the %s", what)
		}
	}
}

func jsonBytes(b []byte) string { s, _ := json.Marshal(b); return strings.Trim(string(s), `"`) }

// cephcsiFormat does what ceph-csi's node does at a prepared volume's
// first stage, with host cryptsetup: luksFormat with its arguments (on
// a file the size of the header area, written into the image) and the
// encrypted state.
func cephcsiFormat(t *testing.T, n *encNode, step string) {
	t.Helper()
	if _, err := exec.LookPath("cryptsetup"); err != nil {
		t.Fatal("cryptsetup is not installed (test/deps.sh)")
	}
	_, vctx := n.volume(step)
	img := n.image(vctx)
	f := filepath.Join(t.TempDir(), "header")
	if err := os.WriteFile(f, make([]byte, 48<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("cryptsetup", "-q", "luksFormat", "--type", "luks2", "--hash", "sha256", "--pbkdf-memory", "32768",
		f, "-d", "/dev/stdin")
	cmd.Stdin = strings.NewReader(n.pass)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cryptsetup luksFormat: %v\n%s", err, out)
	}
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	h, err := luks.ReadHeader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := img.WriteAt(n.ctx, b[:h.DataOffset()], 0); err != nil {
		t.Fatal(err)
	}
	if err := img.SetMetadata(n.ctx, csicrypt.MetaState, []byte(csicrypt.StateEncrypted)); err != nil {
		t.Fatal(err)
	}
}

// cryptsetupAccepts checks the header on img with host cryptsetup:
// luksDump reads it, the passphrase opens a keyslot.
func cryptsetupAccepts(t *testing.T, ctx context.Context, img *rbd.Image, pass []byte) {
	t.Helper()
	h, err := encryption.ReadHeader(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, h.DataOffset()+1<<20)
	if _, err := img.ReadAt(ctx, b, 0); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "export")
	kf := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kf, pass, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cryptsetup", "luksDump", f).CombinedOutput(); err != nil || !strings.Contains(string(out), "LUKS header information") {
		t.Fatalf("cryptsetup luksDump: %v\n%s", err, out)
	}
	if out, err := exec.Command("cryptsetup", "open", "--test-passphrase", "--key-file", kf, f).CombinedOutput(); err != nil {
		t.Fatalf("cryptsetup open --test-passphrase: %v\n%s", err, out)
	}
}

var _ = rados.ErrClosed
