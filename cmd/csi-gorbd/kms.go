package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/pflag"
	"k8s.io/klog/v2"

	"github.com/csi-gorbd/csi-gorbd/crypt/luks"
	"github.com/csi-gorbd/csi-gorbd/internal/kms"
	"github.com/csi-gorbd/csi-gorbd/internal/kubenodes"
	"github.com/csi-gorbd/csi-gorbd/nodeserver"
)

// Encrypted volumes: where the KMS configuration and the Secrets it names
// come from (as in ceph-csi: the config.json of the
// ceph-csi-encryption-kms-config ConfigMap mounted into the plugin, else
// the csi-kms-connection-details ConfigMap of the plugin's namespace read
// through the API), the keyslot KDF, and the node's key directory.
type encryptionFlags struct {
	kmsConfig, kmsConfigMap, kdf, keyDir string
}

func (e *encryptionFlags) add(fl *pflag.FlagSet) {
	fl.StringVar(&e.kmsConfig, "kms-config", kms.DefaultConfigFile,
		"encrypted volumes: ceph-csi's KMS configuration (config.json: {\"<encryptionKMSID>\": {\"encryptionKMSType\": \"metadata\", ...}})")
	fl.StringVar(&e.kmsConfigMap, "kms-configmap", kms.DefaultConfigMap,
		"encrypted volumes: the ConfigMap (in $POD_NAMESPACE) read through the Kubernetes API when --kms-config does not exist; empty: none")
	fl.StringVar(&e.kdf, "encryption-kdf", "",
		"keyslot KDF of new encrypted volumes: argon2id|argon2i|pbkdf2[:iterations=N,memory=KiB,parallel=N,hash=H] (default argon2id:iterations=3,memory=65536,parallel=4)")
	fl.StringVar(&e.keyDir, "volume-key-dir", nodeserver.DefaultKeyDir,
		"node: directory on tmpfs for the key that seals encrypted volumes' keys in the state directory (a hostPath of /run)")
}

// encryption builds the KMS loader, the Secret reader (nil outside a
// pod) and the KDF.
func (e *encryptionFlags) encryption(saDir, driverName string) (kms.Loader, kms.SecretReader, luks.KDF, error) {
	var kdf luks.KDF
	if e.kdf != "" {
		k, err := luks.ParseKDF(e.kdf)
		if err != nil {
			return kms.Loader{}, nil, kdf, fmt.Errorf("--encryption-kdf: %w", err)
		}
		kdf = k
	}
	l := kms.Loader{File: e.kmsConfig}
	if os.Getenv("KUBERNETES_SERVICE_HOST") == "" {
		return l, nil, kdf, nil
	}
	kube, err := kubenodes.New(driverName, saDir)
	if err != nil {
		// Encrypted volumes whose KMS names a Secret fail, saying so.
		klog.InfoS("no Kubernetes API for the KMS: KMS entries naming a Secret and the KMS ConfigMap are unavailable", "err", err)
		return l, nil, kdf, nil
	}
	if ns := os.Getenv("POD_NAMESPACE"); e.kmsConfigMap != "" && ns != "" {
		name := e.kmsConfigMap
		l.Where = "ConfigMap " + ns + "/" + name
		l.ConfigMap = func(ctx context.Context) (map[string]string, error) { return kube.ConfigMap(ctx, ns, name) }
	}
	return l, kube, kdf, nil
}
