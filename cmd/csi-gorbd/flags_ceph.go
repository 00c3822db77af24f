package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/csi-gorbd/csi-gorbd/rados"
)

// cephFlags are the ceph-CLI-style global options every command that
// talks to a cluster uses.
var cephFlags struct {
	conf           string
	keyring        string
	id             string
	name           string
	monHost        string
	key            string
	msMode         string
	connectTimeout time.Duration
}

func init() {
	pf := rootCmd.PersistentFlags()
	pf.StringVarP(&cephFlags.conf, "conf", "c", "", "ceph.conf path (default $CEPH_CONF or /etc/ceph/ceph.conf)")
	pf.StringVarP(&cephFlags.keyring, "keyring", "k", "", "keyring path")
	pf.StringVar(&cephFlags.id, "id", "", "client id (the part after client.), e.g. admin")
	pf.StringVarP(&cephFlags.name, "name", "n", "", "entity name, e.g. client.admin")
	pf.StringVarP(&cephFlags.monHost, "mon-host", "m", "", "monitor addresses (mon_host syntax)")
	pf.StringVar(&cephFlags.key, "key", "", "base64 cephx key (instead of a keyring)")
	pf.StringVar(&cephFlags.msMode, "ms-mode", "", "connection mode: crc, secure, prefer-crc or prefer-secure")
	pf.DurationVar(&cephFlags.connectTimeout, "connect-timeout", 30*time.Second, "give up connecting after this long")
}

// cephConfig builds a rados.Config from the global flags.
func cephConfig() rados.Config {
	cfg := rados.Config{
		ConfFile:       cephFlags.conf,
		Keyring:        cephFlags.keyring,
		Key:            cephFlags.key,
		MsMode:         cephFlags.msMode,
		ConnectTimeout: cephFlags.connectTimeout,
	}
	switch {
	case cephFlags.name != "":
		cfg.User = cephFlags.name
	case cephFlags.id != "":
		cfg.User = "client." + cephFlags.id
	}
	if cephFlags.monHost != "" {
		cfg.Monitors = []string{cephFlags.monHost}
	}
	return cfg
}

// connectCeph connects with the global flags; the connect timeout bounds
// only the connection, not the command that follows.
func connectCeph(cmd *cobra.Command) (*rados.Conn, error) {
	ctx, cancel := context.WithTimeout(cmd.Context(), cephFlags.connectTimeout)
	defer cancel()
	return rados.Connect(ctx, cephConfig())
}
