package controllerserver

import (
	"context"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/csi-gorbd/csi-gorbd/internal/csiceph"
	"github.com/csi-gorbd/csi-gorbd/internal/csicrypt"
	"github.com/csi-gorbd/csi-gorbd/internal/journal"
	"github.com/csi-gorbd/csi-gorbd/internal/kms"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// Encrypted volumes (StorageClass encrypted: "true"; internal/csicrypt
// has the rules). CreateVolume stores the passphrase through the
// volume's KMS and writes the LUKS2 header before it answers, so no node
// ever sees a blank encrypted volume of this driver; the image is the
// requested size plus the header area, and the capacity it reports is the
// plaintext. A restore or clone shares its source's header and volume
// key and gets its own passphrase (csicrypt.Inherit). Snapshots report
// the plaintext size; expansion grows the image to plaintext plus header.
// The journal carries ceph-csi's csi.volume.encryptKMS and
// csi.volume.encryptionType, so ceph-csi's controller knows the volume.

// provisionerSecret names CreateVolume's secrets in messages.
const provisionerSecret = "the provisioner secret (StorageClass csi.storage.k8s.io/provisioner-secret-name/-namespace)"

// encStore opens the store of KMS kmsID for a request's secrets.
func (s *Server) encStore(ctx context.Context, kmsID, tenant string, secrets map[string]string) (kms.Store, error) {
	st, err := kms.Open(ctx, s.kms, s.kube, kms.Request{KMSID: kmsID, Tenant: tenant, Secrets: secrets, SecretsName: provisionerSecret})
	if err != nil {
		return nil, csiceph.Status(err, "encryption")
	}
	return st, nil
}

// encAttrs are the journal attributes of an encrypted volume (ceph-csi's).
func encAttrs(enc *csiceph.Encryption) map[string]string {
	if enc == nil {
		return nil
	}
	return map[string]string{journal.KeyEncryptKMS: enc.KMSID, journal.KeyEncryptionType: csiceph.EncryptionTypeBlock}
}

// encSrc is the encrypted content source of a CreateVolume: the image
// that holds its passphrase (read-only, at its head), the id the
// passphrase is bound to and its KMS store.
type encSrc struct {
	csicrypt.Volume
	img  *rbd.Image
	name string
}

// encSource finds the content source's encryption: nil (and no image
// open) when the source is not encrypted; close the source otherwise.
func (se *session) encSource(ctx context.Context, cr createRequest, secrets map[string]string) (*encSrc, error) {
	var (
		ref   *volRef
		image string
		id    string
		entry journal.Entry
	)
	switch {
	case cr.srcVol != nil:
		_, v, err := se.s.openVolume(ctx, *cr.srcVol, secrets)
		if err != nil {
			return nil, gone(err, "source volume "+cr.source)
		}
		ref, image, id, entry = v, v.image, cr.source, v.entry
	case cr.srcSnap != nil:
		_, r, err := se.s.openSnapshot(ctx, *cr.srcSnap, secrets)
		if err != nil {
			return nil, gone(err, "source snapshot "+cr.source)
		}
		// A native snapshot's passphrase is its source volume's, sealed
		// for that volume's id in its image; ceph-csi's snapshot image
		// has its own, sealed for the snapshot id.
		ref, image, id, entry = &volRef{io: r.io}, r.holder, cr.source, r.entry
		if r.native {
			if id = r.entry.Attrs[journal.KeySourceVolume]; id == "" {
				id = cr.source
			}
		}
	default:
		return nil, nil
	}
	img, _, err := openImage(ctx, ref.io, image, &rbd.OpenOptions{ReadOnly: true})
	if err != nil {
		if notFound(err) {
			return nil, status.Errorf(codes.NotFound, "content source %s: image %q does not exist in pool %s", cr.source, image, poolSpec(ref.io))
		}
		return nil, se.fail(err)
	}
	st, err := csicrypt.State(ctx, img)
	if err != nil || st == "" {
		se.s.closeImage(ctx, img, image)
		if err != nil {
			return nil, se.fail(err)
		}
		return nil, nil
	}
	kmsID := entry.Attrs[journal.KeyEncryptKMS]
	if kmsID == "" && cr.params.Encryption != nil {
		kmsID = cr.params.Encryption.KMSID // not journalled: assume the new volume's
	}
	store, err := se.s.encStore(ctx, kmsID, entry.Attrs[journal.KeyOwner], secrets)
	if err != nil {
		se.s.closeImage(ctx, img, image)
		return nil, err
	}
	return &encSrc{Volume: csicrypt.Volume{ID: id, Image: img, Store: store, KDF: se.s.kdf}, img: img, name: image}, nil
}

// checkSourceEncryption refuses mixing encrypted and plain volumes: a
// plain volume cloned from an encrypted one would show ciphertext, and
// an encrypted one cannot be made from plaintext without rewriting it.
// It returns the source (close its Image) or nil.
func (se *session) checkSourceEncryption(ctx context.Context, cr createRequest, secrets map[string]string) (*encSrc, error) {
	src, err := se.encSource(ctx, cr, secrets)
	if err != nil {
		return nil, err
	}
	switch {
	case src != nil && cr.params.Encryption == nil:
		se.closeSource(ctx, src)
		return nil, status.Errorf(codes.InvalidArgument, "content source %s is encrypted: the StorageClass must set encrypted: \"true\"", cr.source)
	case src == nil && cr.params.Encryption != nil && cr.source != "":
		return nil, status.Errorf(codes.InvalidArgument, "content source %s is not encrypted: an encrypted volume cannot be made from it", cr.source)
	}
	return src, nil
}

func (se *session) closeSource(ctx context.Context, src *encSrc) {
	se.s.closeImage(ctx, src.img, src.name)
}

// encryptImage finishes an encrypted volume's image (made by
// createImage): a header for a blank one, its own passphrase for a clone,
// then the image grown to plaintext rec.Size plus the header. Retries
// finish what a failed call began.
func (se *session) encryptImage(ctx context.Context, cr createRequest, rec volumeRecord, secrets map[string]string) error {
	enc := cr.params.Encryption
	img, err := rbd.Open(ctx, se.io, rec.Image, nil)
	if err != nil {
		return se.fail(err)
	}
	defer se.s.closeImage(ctx, img, rec.Image)
	store, err := se.s.encStore(ctx, enc.KMSID, cr.params.PVCNamespace, secrets)
	if err != nil {
		return err
	}
	dst := csicrypt.Volume{ID: se.volumeHandle(rec), Image: img, Store: store, KDF: se.s.kdf}
	if cr.source == "" {
		err = csicrypt.FormatNew(ctx, dst, enc.Layout)
	} else {
		var src *encSrc
		if src, err = se.checkSourceEncryption(ctx, cr, secrets); err != nil {
			return err
		}
		err = csicrypt.Inherit(ctx, src.Volume, dst)
		se.closeSource(ctx, src)
	}
	if err != nil {
		return csiceph.Status(err, fmt.Sprintf("encrypting volume %q (image %s)", cr.name, rec.Image))
	}
	raw, err := csicrypt.RawSize(ctx, img, rec.Size)
	if err != nil {
		return se.fail(err)
	}
	if img.Size() < raw {
		if err := img.Resize(ctx, raw); err != nil {
			return se.fail(err)
		}
	}
	return nil
}

// plainSize is what a volume of size raw bytes holds: raw itself, or for
// an encrypted image (open as img) raw minus its header area.
func plainSize(ctx context.Context, img *rbd.Image, raw uint64) (uint64, error) {
	st, err := csicrypt.State(ctx, img)
	if err != nil || st == "" {
		return raw, err
	}
	off, err := csicrypt.DataOffset(ctx, img)
	if err != nil {
		return 0, err
	}
	if raw < off {
		return 0, nil
	}
	return raw - off, nil
}
