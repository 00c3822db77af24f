package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/csi-gorbd/csi-gorbd/rados"
	"github.com/csi-gorbd/csi-gorbd/rados/cephx"
	"github.com/csi-gorbd/csi-gorbd/rados/config"
	"github.com/csi-gorbd/csi-gorbd/rados/entity"
)

// cephFlags are the ceph-CLI-style global options every command that
// talks to a cluster uses. One value belongs to one command tree.
//
// Secrets stay off the command line: --keyfile FILE and -k KEYRING name
// files, and CEPH_ARGS (read, as the ceph CLI does, as options placed
// before the command line's) can carry any of these flags. --key still
// works but warns, since every user of the host can read a process's
// arguments.
type cephFlags struct {
	conf           string
	keyring        string
	keyfile        string
	id             string
	name           string
	monHost        string
	key            string
	msMode         string
	connectTimeout time.Duration
}

// keyWarning is printed when --key is given on the command line.
const keyWarning = "warning: --key puts the secret on the command line, where every user of this host can read it " +
	"(ps, /proc/PID/cmdline); use --keyfile FILE or -k KEYRING instead"

// define adds the flags to fs.
func (f *cephFlags) define(fs *pflag.FlagSet) {
	fs.StringVarP(&f.conf, "conf", "c", "", "ceph.conf path (default $CEPH_CONF or /etc/ceph/ceph.conf)")
	fs.StringVarP(&f.keyring, "keyring", "k", "", "keyring path")
	fs.StringVar(&f.keyfile, "keyfile", "", "file holding the base64 cephx key (keeps it off the command line)")
	fs.StringVar(&f.id, "id", "", "client id (the part after client.), e.g. admin")
	fs.StringVarP(&f.name, "name", "n", "", "entity name, e.g. client.admin")
	fs.StringVarP(&f.monHost, "mon-host", "m", "", "monitor addresses (mon_host syntax)")
	fs.StringVar(&f.key, "key", "", "base64 cephx key (visible to every user in ps: prefer --keyfile)")
	fs.StringVar(&f.msMode, "ms-mode", "", "connection mode: crc, secure, prefer-crc or prefer-secure")
	fs.DurationVar(&f.connectTimeout, "connect-timeout", 30*time.Second, "give up connecting after this long")
}

// register adds the flags to root, for every command below it, and reads
// CEPH_ARGS before any command runs.
func (f *cephFlags) register(root *cobra.Command) {
	f.define(root.PersistentFlags())
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		pf := root.PersistentFlags()
		if err := applyCephArgs(pf, os.Getenv("CEPH_ARGS")); err != nil {
			return err
		}
		if pf.Changed("key") {
			fmt.Fprintln(cmd.ErrOrStderr(), "csi-gorbd:", keyWarning)
		}
		return nil
	}
}

// applyCephArgs sets the flags of fs that CEPH_ARGS (env) names and the
// command line did not: like the ceph CLI, whose CEPH_ARGS come before
// its arguments, so the command line wins. Options this CLI does not
// know are skipped; ceph's underscore spellings (--mon_host) are
// accepted.
func applyCephArgs(fs *pflag.FlagSet, env string) error {
	words := strings.Fields(env)
	if len(words) == 0 {
		return nil
	}
	var scratch cephFlags
	efs := pflag.NewFlagSet("CEPH_ARGS", pflag.ContinueOnError)
	efs.SetOutput(io.Discard)
	efs.ParseErrorsWhitelist.UnknownFlags = true
	efs.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		return pflag.NormalizedName(strings.ReplaceAll(name, "_", "-"))
	})
	scratch.define(efs)
	if err := efs.Parse(words); err != nil {
		return fmt.Errorf("CEPH_ARGS: %w", err)
	}
	var err error
	efs.Visit(func(ef *pflag.Flag) {
		if f := fs.Lookup(ef.Name); f != nil && !f.Changed && err == nil {
			if serr := f.Value.Set(ef.Value.String()); serr != nil {
				err = fmt.Errorf("CEPH_ARGS: --%s: %w", ef.Name, serr)
			}
		}
	})
	return err
}

// config builds a rados.Config from the flags.
func (f *cephFlags) config() rados.Config {
	cfg := rados.Config{
		ConfFile:       f.conf,
		Keyring:        f.keyring,
		Key:            f.key,
		KeyFile:        f.keyfile,
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

// userKey is the base64 key of client.<user> for CSI secrets (userKey):
// --key, else the --keyfile, else the user's entry in the -k keyring.
func (f *cephFlags) userKey(user string) (string, error) {
	switch {
	case f.key != "":
		return f.key, nil
	case f.keyfile != "":
		return config.ReadKeyFile(f.keyfile)
	case f.keyring == "":
		return "", fmt.Errorf("give the user's key with --keyfile FILE or a keyring with -k")
	}
	kr, err := cephx.LoadKeyring(f.keyring)
	if err != nil {
		return "", err
	}
	name, err := entity.ParseName("client." + user)
	if err != nil {
		return "", err
	}
	k, err := kr.Get(name)
	if err != nil {
		return "", err
	}
	return k.Base64(), nil
}
