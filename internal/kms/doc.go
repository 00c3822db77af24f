// Package kms is where encrypted volumes' passphrases come from: ceph-csi's
// KMS configuration (the encryptionKMSID a StorageClass names, looked up in
// config.json or the csi-kms-connection-details ConfigMap) and the key
// stores that need nothing outside Kubernetes, written so that volumes
// ceph-csi made unlock here and the other way round.
//
//	default   no encryptionKMSID: the LUKS passphrase is the request
//	          secret's encryptionPassphrase, the same for every volume of
//	          the StorageClass; nothing is stored with the image.
//	metadata  a passphrase per volume, made by the driver (20 random bytes,
//	          URL-safe base64), sealed with AES-256-GCM under
//	          scrypt(encryptionPassphrase, salt = the CSI volume id,
//	          N=32768, r=8, p=1) and kept in the image metadata
//	          rbd.csi.ceph.com/dek as {"dek","nonce"}. The wrapping
//	          passphrase is the request secret's encryptionPassphrase, or
//	          the Secret the KMS entry names (secretName, secretNamespace
//	          defaulting to the volume's owner namespace).
//
// Other types (vault, vaulttokens, vaulttenantsa, kmip, aws-metadata,
// aws-sts-metadata, azure-kv, ibmkeyprotect, hpcs) are recognised and
// refused with ErrUnsupported; a Store for one of them is a Factory passed
// to Register.
//
// A Store implements encryption.PassphraseCreator: Passphrase and
// NewPassphrase are called with an encryption.Volume whose ID is the CSI
// volume (or snapshot) id and whose Meta is the open image. Errors name
// the secret to fix and never carry key material. The package never logs.
package kms
