package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/csi-gorbd/csi-gorbd/rados"
)

// cephFlags are the ceph-CLI-style global options every command that
// talks to a cluster uses. One value belongs to one command tree.
type cephFlags struct {
	conf           string
	keyring        string
	id             string
	name           string
	monHost        string
	key            string
	msMode         string
	connectTimeout time.Duration
}

// register adds the flags to root, for every command below it.
func (f *cephFlags) register(root *cobra.Command) {
	pf := root.PersistentFlags()
	pf.StringVarP(&f.conf, "conf", "c", "", "ceph.conf path (default $CEPH_CONF or /etc/ceph/ceph.conf)")
	pf.StringVarP(&f.keyring, "keyring", "k", "", "keyring path")
	pf.StringVar(&f.id, "id", "", "client id (the part after client.), e.g. admin")
	pf.StringVarP(&f.name, "name", "n", "", "entity name, e.g. client.admin")
	pf.StringVarP(&f.monHost, "mon-host", "m", "", "monitor addresses (mon_host syntax)")
	pf.StringVar(&f.key, "key", "", "base64 cephx key (instead of a keyring)")
	pf.StringVar(&f.msMode, "ms-mode", "", "connection mode: crc, secure, prefer-crc or prefer-secure")
	pf.DurationVar(&f.connectTimeout, "connect-timeout", 30*time.Second, "give up connecting after this long")
}

// config builds a rados.Config from the flags.
func (f *cephFlags) config() rados.Config {
	cfg := rados.Config{
		ConfFile:       f.conf,
		Keyring:        f.keyring,
		Key:            f.key,
		MsMode:         f.msMode,
		ConnectTimeout: f.connectTimeout,
	}
	switch {
	case f.name != "":
		cfg.User = f.name
	case f.id != "":
		cfg.User = "client." + f.id
	}
	if f.monHost != "" {
		cfg.Monitors = []string{f.monHost}
	}
	return cfg
}

// connect connects with the flags; the connect timeout bounds only the
// connection, not the command that follows.
func (f *cephFlags) connect(cmd *cobra.Command) (*rados.Conn, error) {
	ctx, cancel := context.WithTimeout(cmd.Context(), f.connectTimeout)
	defer cancel()
	return rados.Connect(ctx, f.config())
}

// openPool connects and opens one pool's I/O context; closing the
// returned connection releases both.
func (f *cephFlags) openPool(cmd *cobra.Command, pool string) (*rados.Conn, *rados.IOContext, error) {
	conn, err := f.connect(cmd)
	if err != nil {
		return nil, nil, err
	}
	io, err := conn.OpenIOContext(cmd.Context(), pool)
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("pool %q: %w", pool, err)
	}
	return conn, io, nil
}
