package kms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
)

// Where ceph-csi keeps the KMS configuration; the same places here.
const (
	// DefaultConfigFile is the config.json of the
	// ceph-csi-encryption-kms-config ConfigMap, mounted into the plugin.
	DefaultConfigFile = "/etc/ceph-csi-encryption-kms-config/config.json"
	// DefaultConfigMap is read from the plugin's namespace through the
	// Kubernetes API when the file does not exist.
	DefaultConfigMap = "csi-kms-connection-details"
)

// Keys of a KMS entry that say its type (ceph-csi accepts either).
const (
	TypeKey     = "encryptionKMSType"
	ProviderKey = "KMS_PROVIDER"
)

// Section is one KMS entry: a JSON object whose type is under TypeKey or
// ProviderKey; the other keys belong to the type.
type Section map[string]any

// Type returns the entry's KMS type.
func (s Section) Type() (string, error) {
	for _, k := range []string{TypeKey, ProviderKey} {
		v, ok := s[k]
		if !ok {
			continue
		}
		t, isStr := v.(string)
		if !isStr || t == "" {
			return "", fmt.Errorf("%w: %s must be a non-empty string", ErrConfig, k)
		}
		return t, nil
	}
	return "", fmt.Errorf("%w: the entry has neither %s nor %s", ErrConfig, TypeKey, ProviderKey)
}

// String returns the string value of key ("" and false when absent); a
// value of another JSON type is an error.
func (s Section) String(key string) (string, bool, error) {
	v, ok := s[key]
	if !ok {
		return "", false, nil
	}
	t, isStr := v.(string)
	if !isStr {
		return "", false, fmt.Errorf("%w: %s must be a string", ErrConfig, key)
	}
	return t, true, nil
}

// Config maps encryptionKMSIDs to their entries.
type Config map[string]Section

// IDs lists the configured encryptionKMSIDs, sorted.
func (c Config) IDs() []string {
	ids := make([]string, 0, len(c))
	for id := range c {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// ParseConfigFile reads config.json: {"<kms id>": {<entry>}, ...}.
func ParseConfigFile(b []byte) (Config, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object of KMS entries: %v", ErrConfig, err)
	}
	c := Config{}
	for id, m := range raw {
		var s Section
		if err := json.Unmarshal(m, &s); err != nil || s == nil {
			return nil, fmt.Errorf("%w: entry %q is not a JSON object", ErrConfig, id)
		}
		c[id] = s
	}
	return c, nil
}

// ParseConfigMap reads the csi-kms-connection-details ConfigMap's data:
// each key an encryptionKMSID, each value its entry as a JSON string.
func ParseConfigMap(data map[string]string) (Config, error) {
	c := Config{}
	for id, v := range data {
		var s Section
		if err := json.Unmarshal([]byte(v), &s); err != nil || s == nil {
			return nil, fmt.Errorf("%w: ConfigMap key %q is not a JSON object", ErrConfig, id)
		}
		c[id] = s
	}
	return c, nil
}

// Loader reads the configuration, as ceph-csi does, on every use (an
// edited ConfigMap applies without a restart): File if it exists, else
// the ConfigMap.
type Loader struct {
	// File is config.json's path ("": none).
	File string
	// ConfigMap returns the data of the csi-kms-connection-details
	// ConfigMap (nil: no Kubernetes API, no fallback). Where says which
	// ConfigMap it reads, for messages.
	ConfigMap func(ctx context.Context) (map[string]string, error)
	Where     string
}

// Load returns the configuration; with neither a file nor a ConfigMap
// source it returns an empty one (only the default KMS works then).
func (l Loader) Load(ctx context.Context) (Config, error) {
	if l.File != "" {
		b, err := os.ReadFile(l.File)
		if err == nil {
			c, err := ParseConfigFile(b)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", l.File, err)
			}
			return c, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %v", ErrConfig, err)
		}
	}
	if l.ConfigMap == nil {
		return Config{}, nil
	}
	data, err := l.ConfigMap(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %v", ErrConfig, l.where(), err)
	}
	c, err := ParseConfigMap(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", l.where(), err)
	}
	return c, nil
}

func (l Loader) where() string {
	if l.Where != "" {
		return l.Where
	}
	return "ConfigMap " + DefaultConfigMap
}

// describe names where the configuration comes from, for messages.
func (l Loader) describe() string {
	var w []string
	if l.File != "" {
		w = append(w, l.File)
	}
	if l.ConfigMap != nil {
		w = append(w, l.where())
	}
	if len(w) == 0 {
		return "no KMS configuration (--kms-config)"
	}
	return strings.Join(w, " or ")
}
