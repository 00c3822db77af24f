// Package csicrypt is what both CSI services do to encrypted volumes, on
// the image, in ceph-csi's on-disk terms so that volumes move between the
// two drivers either way:
//
//   - the image metadata rbd.csi.ceph.com/encrypted holds the state:
//     "encryptionPrepared" once the passphrase is stored, "encrypted" once
//     the LUKS header is written (ceph-csi's node writes it at the first
//     stage; this driver's controller at CreateVolume, so a node never
//     sees a blank encrypted volume of its own);
//   - FormatNew (CreateVolume of a blank volume) makes and stores the
//     passphrase through a kms.Store, then formats LUKS2 over the whole
//     image in the chosen layout;
//   - Inherit (a restore or clone, which shares its source's LUKS header
//     and volume key) gives the new volume the passphrase its own store
//     makes: a keyslot for it in the clone's copy of the header, the
//     source's keyslot removed there (one passphrase opens one volume);
//   - Unlock (NodeStage) returns the volume key, formatting first a volume
//     ceph-csi prepared and never staged, as its node would.
//
// Errors say which secret does not unlock (kms.Store.Source) and never
// hold key material. The package never logs.
package csicrypt
