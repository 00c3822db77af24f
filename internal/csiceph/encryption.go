package csiceph

import (
	"fmt"
	"strconv"

	"github.com/csi-gorbd/csi-gorbd/internal/kms"
	"github.com/csi-gorbd/csi-gorbd/rbd/encryption"
)

// Encryption keys of StorageClasses and volume contexts: ceph-csi's
// (encrypted, encryptionKMSID, encryptionType) and csi-gorbd's own
// encryptionLayout, which ceph-csi ignores like any unknown key.
const (
	ParamEncryptionKMSID  = "encryptionKMSID"
	ParamEncryptionType   = "encryptionType"
	ParamEncryptionLayout = "encryptionLayout"
)

// Values of encryptionType and encryptionLayout.
const (
	EncryptionTypeBlock   = "block"
	EncryptionTypeFile    = "file"
	EncryptionLayoutDM    = "dm-crypt"
	EncryptionLayoutRBD   = "librbd"
	defaultEncryptionType = EncryptionTypeBlock
)

// Encryption is how a volume is encrypted: LUKS2 over the whole image,
// the passphrase from the KMS KMSID names.
type Encryption struct {
	// KMSID is the encryptionKMSID (kms.DefaultID when none is named).
	KMSID string
	// Layout is the header layout of new volumes: the dm-crypt layout
	// (ceph-csi's, the default) or librbd's (encryptionLayout: librbd).
	// Existing volumes open whatever their header says.
	Layout encryption.Layout
}

// ParseEncryption reads the encryption keys of StorageClass parameters
// or a volume context: nil when encrypted is absent or false (the KMS
// keys then mean nothing, as in ceph-csi). encryptionType file (ceph-csi's
// fscrypt) is refused: this driver encrypts the block device.
func ParseEncryption(p map[string]string) (*Encryption, error) {
	e, ok := p[ParamEncrypted]
	if !ok {
		return nil, nil
	}
	on, err := strconv.ParseBool(e)
	if err != nil {
		return nil, fmt.Errorf("parameter %s %q must be true or false", ParamEncrypted, e)
	}
	if !on {
		return nil, nil
	}
	enc := &Encryption{KMSID: p[ParamEncryptionKMSID], Layout: encryption.LayoutDMCrypt}
	if enc.KMSID == "" {
		enc.KMSID = kms.DefaultID
	}
	typ, ok := p[ParamEncryptionType]
	if !ok {
		typ = defaultEncryptionType
	}
	switch typ {
	case EncryptionTypeBlock:
	case EncryptionTypeFile:
		return nil, fmt.Errorf("parameter %s=%s (ceph-csi's fscrypt in the filesystem) is not supported: this driver encrypts the whole block device with LUKS2; use %s=%s",
			ParamEncryptionType, typ, ParamEncryptionType, EncryptionTypeBlock)
	default:
		return nil, fmt.Errorf("parameter %s %q must be %s", ParamEncryptionType, typ, EncryptionTypeBlock)
	}
	switch l := p[ParamEncryptionLayout]; l {
	case "", EncryptionLayoutDM:
	case EncryptionLayoutRBD:
		enc.Layout = encryption.LayoutLibrbd
	default:
		return nil, fmt.Errorf("parameter %s %q must be %s (the default: cryptsetup's, as ceph-csi's volumes) or %s (rbd encryption format's)",
			ParamEncryptionLayout, l, EncryptionLayoutDM, EncryptionLayoutRBD)
	}
	return enc, nil
}
