package nodeserver

import (
	"context"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/csi-gorbd/csi-gorbd/internal/csiceph"
	"github.com/csi-gorbd/csi-gorbd/internal/csicrypt"
	"github.com/csi-gorbd/csi-gorbd/internal/kms"
	"github.com/csi-gorbd/csi-gorbd/internal/rbdbackend"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// Encrypted volumes (volume context encrypted: "true"). NodeStageVolume
// unlocks the LUKS header in this process with the passphrase the
// volume's KMS yields from the node-stage secrets (csicrypt.Unlock; a
// volume ceph-csi prepared and never staged is formatted first, as its
// node would), keeps the volume key sealed in the volume's record (see
// sealer.go) and serves the plaintext: the kernel sees a device the size
// of the plaintext with the LUKS sector as its logical block size. A
// restarted plugin reopens the image with the sealed key: no secret, no
// KDF, nothing the kernel notices. The passphrase is never kept.

// nodeStageSecret names NodeStageVolume's secrets in messages.
const nodeStageSecret = "the node-stage secret (the PersistentVolume's spec.csi.nodeStageSecretRef, from the StorageClass's " +
	"csi.storage.k8s.io/node-stage-secret-name/-namespace)"

// KeyDirError says why encrypted volumes cannot be staged or recovered
// (the key directory is unusable), or nil.
func (s *Server) KeyDirError() error { return s.sealErr }

// encryptionRecord is what a staged encrypted volume's record keeps.
type encryptionRecord struct {
	// KMSID is the volume's encryptionKMSID (for the record's reader).
	KMSID string `json:"kmsID"`
	// SealedKey is the LUKS volume key sealed with the node's record key
	// for this volume id.
	SealedKey []byte `json:"sealedKey"`
}

// unlock opens the volume's image, gets its volume key through the KMS
// and records it sealed in rec.
func (s *Server) unlock(ctx context.Context, rec *volumeRecord, enc *csiceph.Encryption, owner string,
	secrets map[string]string) error {
	if s.sealErr != nil {
		return status.Errorf(codes.FailedPrecondition, "volume %q is encrypted, but this node plugin cannot keep volume keys: %v",
			rec.VolumeID, s.sealErr)
	}
	c, err := s.conns.Get(ctx, rec.ClusterID, rec.credentials())
	if err != nil {
		return csiceph.Status(err, "connecting to cluster "+rec.ClusterID)
	}
	io, err := c.OpenIOContextByID(ctx, rec.PoolID)
	if err != nil {
		s.conns.Failed(c, err)
		return csiceph.Status(err, fmt.Sprintf("opening pool id %d", rec.PoolID))
	}
	io.SetNamespace(rec.Namespace)
	img, err := rbd.Open(ctx, io, rec.Image, &rbd.OpenOptions{ReadOnly: rec.ReadOnly})
	if err != nil {
		s.conns.Failed(c, err)
		return csiceph.Status(err, "opening image "+rec.Image)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
		defer cancel()
		_ = img.Close(cctx)
	}()
	store, err := kms.Open(ctx, s.o.KMS, s.o.Kube, kms.Request{KMSID: enc.KMSID, Tenant: owner, Secrets: secrets,
		SecretsName: nodeStageSecret})
	if err != nil {
		return csiceph.Status(err, fmt.Sprintf("volume %q: encryption", rec.VolumeID))
	}
	key, err := csicrypt.Unlock(ctx, csicrypt.Volume{ID: rec.VolumeID, Image: img, Store: store, KDF: s.o.KDF}, rec.ReadOnly)
	if err != nil {
		return csiceph.Status(err, fmt.Sprintf("unlocking volume %q", rec.VolumeID))
	}
	defer clear(key)
	sealed, err := s.sealer.seal(key, []byte(rec.VolumeID))
	if err != nil {
		return status.Errorf(codes.Internal, "sealing the volume key of %q: %v", rec.VolumeID, err)
	}
	rec.Encryption = &encryptionRecord{KMSID: store.ID(), SealedKey: sealed}
	return nil
}

// openEncrypted unlocks an open backend with the key sealed in rec.
func (s *Server) openEncrypted(ctx context.Context, b *rbdbackend.Backend, rec *volumeRecord) error {
	if s.sealer == nil {
		return fmt.Errorf("volume %q: %w", rec.VolumeID, s.sealErr)
	}
	key, err := s.sealer.open(rec.Encryption.SealedKey, []byte(rec.VolumeID))
	if err != nil {
		return fmt.Errorf("volume %q: %w", rec.VolumeID, err)
	}
	defer clear(key)
	return b.EncryptKey(ctx, key, nil)
}
