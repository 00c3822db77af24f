// Package kubenodes tells the controller which node ids exist in a
// Kubernetes cluster: those the CSINode objects list for the driver (the
// kubelet writes them when the node plugin registers). It is one GET (and
// a LIST when the node id is not the node's name) with the pod's
// ServiceAccount, which the chart lets read csinodes for the CSI
// sidecars anyway.
//
// The KMS of encrypted volumes reads Secrets and the KMS ConfigMap with
// the same client (Secret, ConfigMap).
//
// It speaks HTTP itself instead of through client-go: for this one read,
// client-go's rest package adds 4.6 MB to the binary and its typed
// clientset (which registers every API group) 25 MB, more than the whole
// driver. What it needs of the API is small and stable: the in-cluster
// address (KUBERNETES_SERVICE_HOST/PORT), the ServiceAccount's token
// (read again for every request, since kubelet rotates projected
// tokens) and CA, and CSINode's spec.drivers[].name/nodeID.
package kubenodes

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ServiceAccountDir is where a pod finds its ServiceAccount's token and
// the cluster's CA.
const ServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// maxBody bounds what is read of an API answer (a CSINode list of a
// large cluster stays far below it).
const maxBody = 32 << 20

// Directory answers whether a node id belongs to a node running the
// driver's node plugin.
type Directory struct {
	driver    string
	server    string // https://host:port
	tokenFile string
	hc        *http.Client
}

// New reads the API server's address from KUBERNETES_SERVICE_HOST and
// KUBERNETES_SERVICE_PORT and the CA (ca.crt) from saDir, where the
// token file is read at each request ("" is ServiceAccountDir).
func New(driver, saDir string) (*Directory, error) {
	if saDir == "" {
		saDir = ServiceAccountDir
	}
	host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return nil, errors.New("kubenodes: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set (not in a pod?)")
	}
	ca, err := os.ReadFile(filepath.Join(saDir, "ca.crt"))
	if err != nil {
		return nil, fmt.Errorf("kubenodes: the cluster CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("kubenodes: no certificate in %s", filepath.Join(saDir, "ca.crt"))
	}
	d := &Directory{
		driver:    driver,
		server:    "https://" + net.JoinHostPort(host, port),
		tokenFile: filepath.Join(saDir, "token"),
		hc: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
			Proxy:               nil, // the API server is reached directly, as client-go does in-cluster
			MaxIdleConnsPerHost: 2,
			IdleConnTimeout:     90 * time.Second,
		}},
	}
	if _, err := d.token(); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *Directory) token() (string, error) {
	b, err := os.ReadFile(d.tokenFile)
	if err != nil {
		return "", fmt.Errorf("kubenodes: the ServiceAccount token: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// csiNode is the part of a storage.k8s.io/v1 CSINode this package reads.
type csiNode struct {
	Spec struct {
		Drivers []struct {
			Name   string `json:"name"`
			NodeID string `json:"nodeID"`
		} `json:"drivers"`
	} `json:"spec"`
}

func (n *csiNode) lists(driver, nodeID string) bool {
	for _, dr := range n.Spec.Drivers {
		if dr.Name == driver && dr.NodeID == nodeID {
			return true
		}
	}
	return false
}

// errNotFound: the API server answered 404.
var errNotFound = errors.New("kubenodes: not found")

// get GETs path and decodes the JSON answer into v.
func (d *Directory) get(ctx context.Context, path string, v any) error {
	tok, err := d.token()
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.server+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "csi-gorbd-controller")
	resp, err := d.hc.Do(req)
	if err != nil {
		return fmt.Errorf("kubenodes: GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("kubenodes: GET %s: %w", path, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return errNotFound
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("kubenodes: GET %s: %s: %s", path, resp.Status, strings.TrimSpace(string(body[:min(len(body), 512)])))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("kubenodes: GET %s: %w", path, err)
	}
	return nil
}

// NodeExists reports whether a CSINode lists the driver with nodeID. The
// node plugin's id is normally its node's name, so the CSINode of that
// name is read first; otherwise every CSINode is.
func (d *Directory) NodeExists(ctx context.Context, nodeID string) (bool, error) {
	const base = "/apis/storage.k8s.io/v1/csinodes"
	var n csiNode
	err := d.get(ctx, base+"/"+url.PathEscape(nodeID), &n)
	switch {
	case err == nil:
		if n.lists(d.driver, nodeID) {
			return true, nil
		}
	case !errors.Is(err, errNotFound):
		return false, err
	}
	var all struct {
		Items []csiNode `json:"items"`
	}
	if err := d.get(ctx, base, &all); err != nil {
		return false, err
	}
	for i := range all.Items {
		if all.Items[i].lists(d.driver, nodeID) {
			return true, nil
		}
	}
	return false, nil
}

// NodeLabels returns the labels of the Node called name (the node
// plugin's topology: its domain labels; the ServiceAccount needs get on
// nodes).
func (d *Directory) NodeLabels(ctx context.Context, name string) (map[string]string, error) {
	var n struct {
		Metadata struct {
			Labels map[string]string `json:"labels"`
		} `json:"metadata"`
	}
	if err := d.get(ctx, "/api/v1/nodes/"+url.PathEscape(name), &n); err != nil {
		if errors.Is(err, errNotFound) {
			return nil, fmt.Errorf("kubenodes: node %q does not exist", name)
		}
		return nil, err
	}
	return n.Metadata.Labels, nil
}

// Secret returns the data of the Secret namespace/name (the KMS's
// secretName entries; the ServiceAccount needs get on that Secret).
func (d *Directory) Secret(ctx context.Context, namespace, name string) (map[string][]byte, error) {
	var s struct {
		Data map[string][]byte `json:"data"`
	}
	if err := d.get(ctx, "/api/v1/namespaces/"+url.PathEscape(namespace)+"/secrets/"+url.PathEscape(name), &s); err != nil {
		if errors.Is(err, errNotFound) {
			return nil, fmt.Errorf("kubenodes: Secret %s/%s does not exist", namespace, name)
		}
		return nil, err
	}
	return s.Data, nil
}

// ConfigMap returns the data of the ConfigMap namespace/name (the KMS
// configuration's csi-kms-connection-details).
func (d *Directory) ConfigMap(ctx context.Context, namespace, name string) (map[string]string, error) {
	var c struct {
		Data map[string]string `json:"data"`
	}
	if err := d.get(ctx, "/api/v1/namespaces/"+url.PathEscape(namespace)+"/configmaps/"+url.PathEscape(name), &c); err != nil {
		if errors.Is(err, errNotFound) {
			return nil, fmt.Errorf("kubenodes: ConfigMap %s/%s does not exist", namespace, name)
		}
		return nil, err
	}
	return c.Data, nil
}
