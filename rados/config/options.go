package config

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/csi-gorbd/csi-gorbd/rados/entity"
)

// DefaultConfPath is where Ceph looks for its configuration.
const DefaultConfPath = "/etc/ceph/ceph.conf"

// defaultKeyrings is Ceph's keyring search list (the "keyring" option
// default), with $cluster = ceph.
const defaultKeyrings = "/etc/ceph/$cluster.$name.keyring,/etc/ceph/$cluster.keyring,/etc/ceph/keyring,/etc/ceph/keyring.bin"

// Connection modes accepted by Options.MsMode.
const (
	ModeCRC          = "crc"
	ModeSecure       = "secure"
	ModePreferCRC    = "prefer-crc"
	ModePreferSecure = "prefer-secure"
)

// ErrNoMonitors: neither the options nor the configuration name a monitor.
var ErrNoMonitors = errors.New("config: no monitor addresses (set mon_host or pass monitors)")

// Options are the explicit client settings; empty fields fall back to
// the configuration file, then to Ceph's defaults.
type Options struct {
	ConfPath string // ceph.conf; "" = $CEPH_CONF, else /etc/ceph/ceph.conf if it exists and no monitors were given
	Name     string // "client.admin", or a bare id ("admin")
	MonHost  string // mon_host syntax; ceph-csi "host:port" lists joined by commas work
	Keyring  string // keyring path(s), comma separated
	Key      string // base64 secret; wins over everything else
	KeyFile  string // file holding the base64 secret (ceph's --keyfile); after Key, before the file's key, keyfile and keyrings
	MsMode   string // crc | secure | prefer-crc | prefer-secure
}

// Format prints the options with Key redacted, for every verb.
func (o Options) Format(f fmt.State, verb rune) {
	type plain Options
	p := plain(o)
	p.Key = redact(p.Key)
	fmt.Fprintf(f, fmt.FormatString(f, verb), p)
}

// Client is the resolved configuration of one client.
type Client struct {
	Name     entity.Name
	Mons     []Mon
	Key      string   // base64 secret from Options.Key, the conf "key" or "keyfile"; "" when a keyring is to be used
	Keyrings []string // keyring paths to search (expanded), in order
	MsMode   string
	AuthNone bool // auth_client_required = none
	Conf     *File
	ConfPath string // the file read ("" if none)
}

// Format prints the client configuration with Key redacted, for every verb.
func (c Client) Format(f fmt.State, verb rune) {
	type plain Client
	p := plain(c)
	p.Key = redact(p.Key)
	fmt.Fprintf(f, fmt.FormatString(f, verb), p)
}

// Redacted is what a secret prints as.
const Redacted = "<redacted>"

// redact hides a non-empty secret.
func redact(s string) string {
	if s == "" {
		return ""
	}
	return Redacted
}

// ReadKeyFile reads a key file as Ceph's keyfile option does: the base64
// secret, surrounding white space ignored.
func ReadKeyFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("config: keyfile: %w", err)
	}
	k := strings.TrimSpace(string(b))
	if k == "" {
		return "", fmt.Errorf("config: keyfile %s is empty", path)
	}
	return k, nil
}

// Resolve combines opts with the configuration file and resolves the
// monitor addresses (host names are looked up with ctx).
func Resolve(ctx context.Context, opts Options) (*Client, error) {
	c := &Client{}
	name := opts.Name
	if name == "" {
		name = "client.admin"
	}
	n, err := entity.ParseName(name)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c.Name = n

	path := opts.ConfPath
	if path == "" {
		path = os.Getenv("CEPH_CONF")
	}
	if path == "" && opts.MonHost == "" {
		if _, err := os.Stat(DefaultConfPath); err == nil {
			path = DefaultConfPath
		}
	}
	c.Conf = &File{Sections: map[string]map[string]string{}}
	if path != "" {
		f, err := ParseFile(path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		c.Conf, c.ConfPath = f, path
	}

	monHost := opts.MonHost
	if monHost == "" {
		monHost, _ = c.Conf.Get(n, "mon_host")
	}
	if monHost == "" {
		return nil, ErrNoMonitors
	}
	c.Mons, err = ParseMonHost(ctx, monHost, nil)
	if err != nil {
		return nil, err
	}

	c.Key = opts.Key
	if c.Key == "" && opts.KeyFile != "" {
		if c.Key, err = ReadKeyFile(opts.KeyFile); err != nil {
			return nil, err
		}
	}
	if c.Key == "" {
		c.Key, _ = c.Conf.Get(n, "key")
	}
	if c.Key == "" {
		if kf, ok := c.Conf.Get(n, "keyfile"); ok && kf != "" {
			if c.Key, err = ReadKeyFile(expandMeta(kf, n)); err != nil {
				return nil, err
			}
		}
	}
	kr := opts.Keyring
	if kr == "" {
		kr, _ = c.Conf.Get(n, "keyring")
	}
	if kr == "" {
		kr = defaultKeyrings
	}
	for _, p := range strings.FieldsFunc(kr, func(r rune) bool { return r == ',' || r == ';' || r == ' ' }) {
		c.Keyrings = append(c.Keyrings, expandMeta(p, n))
	}

	mode := opts.MsMode
	if mode == "" {
		mode = confMode(c.Conf, n)
	}
	if mode == "" {
		mode = ModePreferCRC
	}
	switch mode {
	case ModeCRC, ModeSecure, ModePreferCRC, ModePreferSecure:
	default:
		return nil, fmt.Errorf("config: ms mode %q: want crc, secure, prefer-crc or prefer-secure", mode)
	}
	c.MsMode = mode

	if v, ok := c.Conf.Get(n, "auth_client_required"); ok && strings.TrimSpace(v) == "none" {
		c.AuthNone = true
	}
	return c, nil
}

// confMode maps ms_mon_client_mode / ms_client_mode ("secure crc",
// "crc", ...) to one of our mode names.
func confMode(f *File, n entity.Name) string {
	v, ok := f.Get(n, "ms_mon_client_mode")
	if !ok {
		v, ok = f.Get(n, "ms_client_mode")
	}
	if !ok {
		return ""
	}
	fields := strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' })
	switch {
	case len(fields) == 1 && fields[0] == "crc":
		return ModeCRC
	case len(fields) == 1 && fields[0] == "secure":
		return ModeSecure
	case len(fields) >= 2 && fields[0] == "secure":
		return ModePreferSecure
	case len(fields) >= 2 && fields[0] == "crc":
		return ModePreferCRC
	}
	return ""
}

// expandMeta replaces $cluster, $name, $type and $id (the metavariables
// keyring paths use).
func expandMeta(s string, n entity.Name) string {
	r := strings.NewReplacer("$cluster", "ceph", "${cluster}", "ceph", "$name", n.String(), "${name}", n.String(),
		"$type", n.Type.String(), "$id", n.ID)
	return r.Replace(s)
}
