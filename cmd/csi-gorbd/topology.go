package main

import (
	"bytes"
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
	"sort"
	"strings"
	"time"

	"github.com/csi-gorbd/csi-gorbd/controllerserver"
)

// Node topology from domain labels, as ceph-csi's --domainlabels: the
// node plugin reads the labels of its Kubernetes node and reports each
// listed one as topology.<driver name>/<label name after its first '/'>,
// which StorageClasses' topologyConstrainedPools match.

// topologyFromLabels picks the domain labels out of a node's labels.
func topologyFromLabels(labels map[string]string, domainLabels, driver string) (map[string]string, error) {
	prefix := controllerserver.TopologyPrefix(driver)
	if len(prefix) > 63 {
		return nil, fmt.Errorf("topology key prefix %q is longer than a label's 63 characters (driver name %q)", prefix, driver)
	}
	out := map[string]string{}
	var missing []string
	seen := map[string]bool{}
	for _, l := range strings.Split(domainLabels, ",") {
		if l = strings.TrimSpace(l); l == "" {
			continue
		}
		if seen[l] {
			return nil, fmt.Errorf("--domainlabels names %q twice", l)
		}
		seen[l] = true
		v, ok := labels[l]
		if !ok {
			missing = append(missing, l)
			continue
		}
		domain := l
		if i := strings.IndexByte(l, '/'); i >= 0 {
			domain = l[i+1:]
		}
		out[prefix+"/"+domain] = v
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fmt.Errorf("the node lacks the domain labels %v", missing)
	}
	return out, nil
}

// In-cluster API access, as client-go's rest.InClusterConfig finds it:
// the service host and port from the environment, the pod's service
// account token and CA. One GET does not justify client-go's weight in
// the plugin binary.
var serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// nodeTopology reads the node's labels from the Kubernetes API (the pod's
// service account; it needs get on nodes) and returns its topology.
func nodeTopology(ctx context.Context, node, domainLabels, driver string) (map[string]string, error) {
	host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return nil, errors.New("--domainlabels needs the Kubernetes API: KUBERNETES_SERVICE_HOST/PORT are not set (not in a pod?)")
	}
	token, err := os.ReadFile(filepath.Join(serviceAccountDir, "token"))
	if err != nil {
		return nil, fmt.Errorf("--domainlabels needs the pod's service account token: %w", err)
	}
	ca, err := os.ReadFile(filepath.Join(serviceAccountDir, "ca.crt"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, errors.New("the service account's ca.crt holds no certificate")
	}
	client := &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	u := "https://" + net.JoinHostPort(host, port) + "/api/v1/nodes/" + url.PathEscape(node)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reading the labels of node %q: %w", node, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("reading the labels of node %q: %s: %s", node, resp.Status, bytes.TrimSpace(body))
	}
	var n struct {
		Metadata struct {
			Labels map[string]string `json:"labels"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(body, &n); err != nil {
		return nil, fmt.Errorf("node %q: %w", node, err)
	}
	return topologyFromLabels(n.Metadata.Labels, domainLabels, driver)
}
