package csiceph

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/mount-utils"

	"github.com/csi-gorbd/csi-gorbd/crypt/luks"
	"github.com/csi-gorbd/csi-gorbd/internal/csicrypt"
	"github.com/csi-gorbd/csi-gorbd/internal/kms"
	"github.com/csi-gorbd/csi-gorbd/rados"
	"github.com/csi-gorbd/csi-gorbd/rados/cephx"
	"github.com/csi-gorbd/csi-gorbd/rados/config"
	"github.com/csi-gorbd/csi-gorbd/rbd"
	"github.com/csi-gorbd/csi-gorbd/rbd/encryption"
)

func TestCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want codes.Code
	}{
		{fmt.Errorf("open: %w", rbd.ErrNotFound), codes.NotFound},
		{fmt.Errorf("osd: %w", syscall.ENOENT), codes.NotFound},
		{fmt.Errorf("x: %w", rados.ErrPoolNotFound), codes.NotFound},
		{rbd.ErrExists, codes.AlreadyExists},
		{fmt.Errorf("remove: %w", rbd.ErrBusy), codes.FailedPrecondition},
		{&rbd.FeatureError{}, codes.FailedPrecondition},
		{rbd.ErrInvalid, codes.InvalidArgument},
		{fmt.Errorf("%w: x", ErrBadID), codes.InvalidArgument},
		{fmt.Errorf("connect: %w", rados.ErrPermission), codes.PermissionDenied},
		{rados.ErrPoolFull, codes.ResourceExhausted},
		{fmt.Errorf("dial: %w", rados.ErrNoMonitor), codes.Unavailable},
		{context.DeadlineExceeded, codes.DeadlineExceeded},
		{context.Canceled, codes.Canceled},
		{errors.New("boom"), codes.Internal},
		// What the node service met first (it had a table of its own).
		{fmt.Errorf("open: %w", cephx.ErrBadKey), codes.InvalidArgument},
		{fmt.Errorf("x: %w", ErrUnknownCluster), codes.InvalidArgument},
		{fmt.Errorf("x: %w", ErrNotStaged), codes.NotFound},
		{fmt.Errorf("x: %w", ErrMutableParams), codes.InvalidArgument},
		{mount.NewMountError(mount.UnformattedReadOnly, "blank"), codes.FailedPrecondition},
		{mount.NewMountError(mount.FormatFailed, "mkfs"), codes.Internal},
	} {
		if got := Code(tc.err); got != tc.want {
			t.Errorf("Code(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
	if got := status.Code(Status(status.Error(codes.Aborted, "x"), "")); got != codes.Aborted {
		t.Errorf("status passed through as %v", got)
	}
	if got := status.Code(Status(fmt.Errorf("w: %w", rbd.ErrNotFound), "")); got != codes.NotFound {
		t.Errorf("toStatus: %v", got)
	}
}

// typedErrors is every exported error (Err* variable or *Error type) of
// the packages whose errors reach the CSI services, with the code both
// services answer for it. TestEveryTypedErrorHasACode fails when one of
// those packages gains an error this table does not list.
var typedErrors = map[string]struct {
	err  error
	want codes.Code
}{
	"rados.ErrPoolFull":         {rados.ErrPoolFull, codes.ResourceExhausted},
	"rados.ErrPoolNotFound":     {rados.ErrPoolNotFound, codes.NotFound},
	"rados.ErrPermission":       {rados.ErrPermission, codes.PermissionDenied},
	"rados.ErrSecureRequired":   {rados.ErrSecureRequired, codes.Unavailable},
	"rados.ErrAuthMethod":       {rados.ErrAuthMethod, codes.Unavailable},
	"rados.ErrNoMonitor":        {rados.ErrNoMonitor, codes.Unavailable},
	"rados.ErrWrongCluster":     {rados.ErrWrongCluster, codes.Unavailable},
	"rados.ErrClosed":           {rados.ErrClosed, codes.Unavailable},
	"rados.ErrPaused":           {rados.ErrPaused, codes.Unavailable},
	"rados.ErrNoKey":            {rados.ErrNoKey, codes.InvalidArgument},
	"rados.MonError":            {&rados.MonError{Op: "osd pool get", Errno: syscall.ENOENT}, codes.NotFound},
	"rados.HuntError":           {&rados.HuntError{Err: syscall.ECONNREFUSED}, codes.Unavailable},
	"rbd.ErrUnsupportedFeature": {rbd.ErrUnsupportedFeature, codes.FailedPrecondition},
	"rbd.ErrNotFound":           {rbd.ErrNotFound, codes.NotFound},
	"rbd.ErrExists":             {rbd.ErrExists, codes.AlreadyExists},
	"rbd.ErrReadOnly":           {rbd.ErrReadOnly, codes.FailedPrecondition},
	"rbd.ErrBusy":               {rbd.ErrBusy, codes.FailedPrecondition},
	"rbd.ErrFormat1":            {rbd.ErrFormat1, codes.FailedPrecondition},
	"rbd.ErrInvalid":            {rbd.ErrInvalid, codes.InvalidArgument},
	"rbd.ErrQoSValue":           {rbd.ErrQoSValue, codes.InvalidArgument},
	"rbd.ErrMalformed":          {rbd.ErrMalformed, codes.Internal},
	"rbd.ErrOutOfRange":         {rbd.ErrOutOfRange, codes.OutOfRange},
	"rbd.FeatureError":          {&rbd.FeatureError{}, codes.FailedPrecondition},
	"rbd.LockedError":           {&rbd.LockedError{Image: "i"}, codes.FailedPrecondition},
	"rbd.ErrQuiesce":            {rbd.ErrQuiesce, codes.Unavailable},
	"rbd.QuiesceError":          {&rbd.QuiesceError{Image: "i", Result: -16}, codes.Unavailable},
	"cephx.ErrBadKey":           {cephx.ErrBadKey, codes.InvalidArgument},
	"cephx.ErrDecrypt":          {cephx.ErrDecrypt, codes.Internal},
	"cephx.ErrProtocol":         {cephx.ErrProtocol, codes.Internal},
	"cephx.ErrPermission":       {cephx.ErrPermission, codes.PermissionDenied},
	"cephx.ErrNoTicket":         {cephx.ErrNoTicket, codes.Unavailable},
	"cephx.ErrBadMethod":        {cephx.ErrBadMethod, codes.Unavailable},
	"cephx.ErrKeyring":          {cephx.ErrKeyring, codes.InvalidArgument},
	// Encryption (issue 17): a wrong key is PermissionDenied, a missing
	// or misconfigured one InvalidArgument, an image whose encryption is
	// not what the request needs FailedPrecondition.
	"kms.ErrSecret":               {kms.ErrSecret, codes.InvalidArgument},
	"kms.ErrConfig":               {kms.ErrConfig, codes.InvalidArgument},
	"kms.ErrUnsupported":          {kms.ErrUnsupported, codes.InvalidArgument},
	"kms.ErrWrongPassphrase":      {kms.ErrWrongPassphrase, codes.PermissionDenied},
	"kms.ErrNoKey":                {kms.ErrNoKey, codes.FailedPrecondition},
	"kms.ErrCorrupt":              {kms.ErrCorrupt, codes.FailedPrecondition},
	"csicrypt.ErrState":           {csicrypt.ErrState, codes.FailedPrecondition},
	"csicrypt.ErrWrongPassphrase": {csicrypt.ErrWrongPassphrase, codes.PermissionDenied},
	"luks.ErrWrongPassphrase":     {luks.ErrWrongPassphrase, codes.PermissionDenied},
	"luks.ErrNotLUKS":             {luks.ErrNotLUKS, codes.FailedPrecondition},
	"luks.ErrCorrupt":             {luks.ErrCorrupt, codes.FailedPrecondition},
	"luks.ErrUnsupported":         {luks.ErrUnsupported, codes.FailedPrecondition},
	"luks.ErrKDFLimit":            {luks.ErrKDFLimit, codes.FailedPrecondition},
	"luks.ErrNoSpace":             {luks.ErrNoSpace, codes.FailedPrecondition},
	"luks.ErrInvalid":             {luks.ErrInvalid, codes.FailedPrecondition},
	"encryption.ErrNotEncrypted":  {encryption.ErrNotEncrypted, codes.FailedPrecondition},
	"encryption.ErrClonedFormat":  {encryption.ErrClonedFormat, codes.FailedPrecondition},
	"encryption.ErrTooSmall":      {encryption.ErrTooSmall, codes.FailedPrecondition},
	"encryption.ErrExists":        {encryption.ErrExists, codes.FailedPrecondition},
	"encryption.ErrNoPassphrase":  {encryption.ErrNoPassphrase, codes.InvalidArgument},
	"encryption.ErrReadOnly":      {encryption.ErrReadOnly, codes.FailedPrecondition},
	"encryption.ErrOutOfRange":    {encryption.ErrOutOfRange, codes.OutOfRange},
}

// otherErrors are the errors that are not typed errors of those packages
// but reach the services all the same: this package's own, the errnos
// OSDs and monitors answer with (rados passes them on), the monitor list
// of the clusters file, mount-utils' and the request's context.
var otherErrors = []struct {
	name string
	err  error
	want codes.Code
}{
	{"ErrBadID", ErrBadID, codes.InvalidArgument},
	{"ErrUnknownCluster", ErrUnknownCluster, codes.InvalidArgument},
	{"ErrSecrets", ErrSecrets, codes.InvalidArgument},
	{"ErrNotStaged", ErrNotStaged, codes.NotFound},
	{"ErrNoVolume", ErrNoVolume, codes.NotFound},
	{"ErrSizeMismatch", ErrSizeMismatch, codes.FailedPrecondition},
	{"ErrPublished", ErrPublished, codes.FailedPrecondition},
	{"ErrPublishedOther", ErrPublishedOther, codes.AlreadyExists},
	{"ENOENT", syscall.ENOENT, codes.NotFound},
	{"EEXIST", syscall.EEXIST, codes.AlreadyExists},
	{"EACCES", syscall.EACCES, codes.PermissionDenied},
	{"EPERM", syscall.EPERM, codes.PermissionDenied},
	{"ENOSPC", syscall.ENOSPC, codes.ResourceExhausted},
	{"EDQUOT", syscall.EDQUOT, codes.ResourceExhausted},
	{"EBUSY", syscall.EBUSY, codes.FailedPrecondition},
	{"EINVAL", syscall.EINVAL, codes.InvalidArgument},
	{"EAGAIN", syscall.EAGAIN, codes.Unavailable},
	{"ESHUTDOWN (blocklisted)", syscall.ESHUTDOWN, codes.Unavailable},
	{"EIO", syscall.EIO, codes.Internal},
	{"config.ErrBadMonHost", config.ErrBadMonHost, codes.InvalidArgument},
	{"config.ErrNoMonitors", config.ErrNoMonitors, codes.InvalidArgument},
	{"mount UnformattedReadOnly", mount.NewMountError(mount.UnformattedReadOnly, "blank"), codes.FailedPrecondition},
	{"mount FilesystemMismatch", mount.NewMountError(mount.FilesystemMismatch, "xfs"), codes.FailedPrecondition},
	{"mount HasFilesystemErrors", mount.NewMountError(mount.HasFilesystemErrors, "fsck"), codes.FailedPrecondition},
	{"mount FormatFailed", mount.NewMountError(mount.FormatFailed, "mkfs"), codes.Internal},
	{"context.DeadlineExceeded", context.DeadlineExceeded, codes.DeadlineExceeded},
	{"context.Canceled", context.Canceled, codes.Canceled},
	{"a paused cluster until the deadline", fmt.Errorf("op: %w", pausedUntil(context.DeadlineExceeded)), codes.DeadlineExceeded},
}

// pausedUntil is what a request that waited for a paused cluster gets:
// ErrPaused and EAGAIN around the context's error.
func pausedUntil(cause error) error { return errors.Join(rados.ErrPaused, syscall.EAGAIN, cause) }

// TestEveryTypedErrorHasACode: the one error table, for both services.
// Every exported error of rados, rbd and rados/cephx is listed with its
// code, bare and wrapped (as the services meet them), and gRPC statuses
// carry the code.
func TestEveryTypedErrorHasACode(t *testing.T) {
	declared := exportedErrors(t, "../../rados", "../../rbd", "../../rados/cephx",
		"../kms", "../csicrypt", "../../crypt/luks", "../../rbd/encryption")
	for _, name := range declared {
		if _, ok := typedErrors[name]; !ok {
			t.Errorf("%s has no code in the table: add it to Code (codes.go) and to typedErrors", name)
		}
	}
	check := func(name string, err error, want codes.Code) {
		t.Helper()
		for _, e := range []error{err, fmt.Errorf("rbd: open img: %w", err)} {
			if got := Code(e); got != want {
				t.Errorf("%s: Code(%v) = %v, want %v", name, e, got, want)
			}
			if got := status.Code(Status(e, "doing")); got != want {
				t.Errorf("%s: Status code %v, want %v", name, got, want)
			}
		}
		t.Logf("%-36s %v", name, want)
	}
	for _, name := range declared {
		if tc, ok := typedErrors[name]; ok {
			check(name, tc.err, tc.want)
		}
	}
	for _, tc := range otherErrors {
		check(tc.name, tc.err, tc.want)
	}
	if n := len(typedErrors); n != len(declared) {
		t.Errorf("typedErrors lists %d errors, the packages declare %d", n, len(declared))
	}
}

// exportedErrors lists the exported Err* variables and *Error types the
// non-test Go files of dirs declare, as "package.Name".
func exportedErrors(t *testing.T, dirs ...string) []string {
	t.Helper()
	var out []string
	for _, dir := range dirs {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no Go files in %s: %v", dir, err)
		}
		for _, file := range files {
			if strings.HasSuffix(file, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range f.Decls {
				g, ok := d.(*ast.GenDecl)
				if !ok {
					continue
				}
				for _, s := range g.Specs {
					switch s := s.(type) {
					case *ast.ValueSpec:
						for _, n := range s.Names {
							if n.IsExported() && strings.HasPrefix(n.Name, "Err") {
								out = append(out, f.Name.Name+"."+n.Name)
							}
						}
					case *ast.TypeSpec:
						if s.Name.IsExported() && strings.HasSuffix(s.Name.Name, "Error") {
							out = append(out, f.Name.Name+"."+s.Name.Name)
						}
					}
				}
			}
		}
	}
	sort.Strings(out)
	return out
}
