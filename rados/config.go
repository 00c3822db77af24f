package rados

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/cephx"
	"github.com/csi-gorbd/csi-gorbd/rados/config"
	"github.com/csi-gorbd/csi-gorbd/rados/entity"
	"github.com/csi-gorbd/csi-gorbd/rados/messenger"
)

// Connection modes for Config.MsMode.
const (
	MsModeCRC          = config.ModeCRC
	MsModeSecure       = config.ModeSecure
	MsModePreferCRC    = config.ModePreferCRC
	MsModePreferSecure = config.ModePreferSecure
)

// Config describes how to reach and authenticate to a cluster. Every
// field is optional as long as monitors and a key can be found somewhere:
// explicit fields win over the configuration file, which wins over Ceph's
// defaults.
type Config struct {
	// ConfFile is a ceph.conf path ("" = $CEPH_CONF, else
	// /etc/ceph/ceph.conf when it exists and Monitors is empty).
	ConfFile string
	// Monitors are monitor addresses in any mon_host form ("10.0.0.1",
	// "10.0.0.1:3300", "v2:10.0.0.1:3300/0", "[v2:..,v1:..]", host names).
	Monitors []string
	// User is the client id ("admin") or full name ("client.admin").
	User string
	// Key is the base64 cephx secret (AES "AQ..." or aes256k "Ag...").
	// It prints redacted (see Format).
	Key string
	// KeyFile is a file holding the base64 secret, as the ceph CLI's
	// --keyfile; Key wins over it, it wins over the configuration file
	// and keyrings.
	KeyFile string
	// Keyring is a keyring path (or comma-separated list).
	Keyring string
	// MsMode: crc, secure, prefer-crc (default) or prefer-secure.
	MsMode string
	// AuthNone forces auth method none (auth=none clusters); also set by
	// auth_client_required = none in the configuration file.
	AuthNone bool
	// ConnectTimeout bounds Connect when ctx has no deadline (0: 30s).
	ConnectTimeout time.Duration
	// FSID, if set, is the cluster we must reach.
	FSID string
}

// Format prints the configuration with Key redacted, for every verb.
func (cfg Config) Format(f fmt.State, verb rune) {
	type plain Config
	p := plain(cfg)
	if p.Key != "" {
		p.Key = config.Redacted
	}
	fmt.Fprintf(f, fmt.FormatString(f, verb), p)
}

// resolved is everything Connect needs.
type resolved struct {
	name  entity.Name
	mons  [][]entity.Addr
	auth  authenticator
	modes []uint32
}

func (cfg Config) resolve(ctx context.Context) (*resolved, error) {
	opts := config.Options{ConfPath: cfg.ConfFile, Name: cfg.User, Keyring: cfg.Keyring, Key: cfg.Key, KeyFile: cfg.KeyFile, MsMode: cfg.MsMode}
	for i, m := range cfg.Monitors {
		if i > 0 {
			opts.MonHost += ","
		}
		opts.MonHost += m
	}
	cc, err := config.Resolve(ctx, opts)
	if err != nil {
		return nil, err
	}
	r := &resolved{name: cc.Name}
	for _, m := range cc.Mons {
		r.mons = append(r.mons, m.Addrs)
	}
	switch cc.MsMode {
	case config.ModeCRC:
		r.modes = []uint32{messenger.ModeCRC}
	case config.ModeSecure:
		r.modes = []uint32{messenger.ModeSecure}
	case config.ModePreferSecure:
		r.modes = []uint32{messenger.ModeSecure, messenger.ModeCRC}
	default:
		r.modes = []uint32{messenger.ModeCRC, messenger.ModeSecure}
	}
	if cfg.AuthNone || cc.AuthNone {
		r.auth = noneAuth(cc.Name)
		return r, nil
	}
	key, err := findKey(cc)
	if err != nil {
		return nil, err
	}
	r.auth = newCephxAuth(cephx.NewClient(cc.Name, key), r.modes)
	return r, nil
}

// ErrNoKey: no key for the entity in the options, the configuration or
// any keyring searched.
var ErrNoKey = errors.New("rados: no key found")

func findKey(cc *config.Client) (*cephx.CryptoKey, error) {
	if cc.Key != "" {
		k, err := cephx.ParseKey(cc.Key)
		if err != nil {
			return nil, fmt.Errorf("rados: key for %s: %w", cc.Name, err)
		}
		return k, nil
	}
	var tried []string
	for _, p := range cc.Keyrings {
		if _, err := os.Stat(p); err != nil {
			tried = append(tried, p)
			continue
		}
		kr, err := cephx.LoadKeyring(p)
		if err != nil {
			return nil, fmt.Errorf("rados: keyring %s: %w", p, err)
		}
		k, err := kr.Get(cc.Name)
		if err != nil {
			tried = append(tried, p)
			continue
		}
		return k, nil
	}
	return nil, fmt.Errorf("%w for %s (searched %v)", ErrNoKey, cc.Name, tried)
}
