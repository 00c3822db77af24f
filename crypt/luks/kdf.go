package luks

import (
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
	"strings"

	"golang.org/x/crypto/argon2"
)

// KDF names as they appear in LUKS2 keyslots.
const (
	KDFPBKDF2   = "pbkdf2"
	KDFArgon2i  = "argon2i"
	KDFArgon2id = "argon2id"
)

// KDF says how a keyslot turns a passphrase into the key that encrypts
// its area. PBKDF2 uses Hash and Iterations; Argon2i/Argon2id use Time,
// MemoryKiB and Threads (LUKS2's "time", "memory", "cpus").
type KDF struct {
	Type       string
	Hash       string // pbkdf2 only: sha1, sha256, sha512
	Iterations int    // pbkdf2 only
	Time       int    // argon2: passes
	MemoryKiB  int    // argon2: memory in KiB
	Threads    int    // argon2: lanes
}

// DefaultKDF is Argon2id with RFC 9106's second recommended option
// (t=3, m=64 MiB, p=4): memory-hard, and small enough that a node plugin
// with a memory limit can unlock a few volumes at once. cryptsetup's own
// default benchmarks up to 1 GiB; ask for more with an explicit KDF.
func DefaultKDF() KDF {
	return KDF{Type: KDFArgon2id, Time: 3, MemoryKiB: 64 << 10, Threads: 4}
}

// Limits bound what an unlock will spend on a keyslot's KDF; a header
// read from a device is input and must not make the caller allocate
// gigabytes. Zero fields take the defaults.
type Limits struct {
	MaxMemoryKiB  int // default 1 GiB (cryptsetup's format maximum)
	MaxThreads    int // default 16
	MaxIterations int // pbkdf2; default 1<<31-1 (the field's range)
	MaxTime       int // argon2 passes; default 1<<20
}

func (l *Limits) withDefaults() Limits {
	var r Limits
	if l != nil {
		r = *l
	}
	if r.MaxMemoryKiB == 0 {
		r.MaxMemoryKiB = 1 << 20
	}
	if r.MaxThreads == 0 {
		r.MaxThreads = 16
	}
	if r.MaxIterations == 0 {
		r.MaxIterations = 1<<31 - 1
	}
	if r.MaxTime == 0 {
		r.MaxTime = 1 << 20
	}
	return r
}

// check validates the parameters (shape errors are ErrCorrupt for
// headers read from disk, ErrInvalid for options; the caller wraps) and
// the limits (ErrKDFLimit).
func (k *KDF) check(lim Limits) error {
	switch k.Type {
	case KDFPBKDF2:
		if _, err := hashByName(k.Hash); err != nil {
			return err
		}
		if k.Iterations < 1 {
			return fmt.Errorf("%w: pbkdf2 iterations %d", ErrInvalid, k.Iterations)
		}
		if k.Iterations > lim.MaxIterations {
			return fmt.Errorf("%w: pbkdf2 iterations %d > %d", ErrKDFLimit, k.Iterations, lim.MaxIterations)
		}
	case KDFArgon2i, KDFArgon2id:
		if k.Time < 1 || k.Threads < 1 || k.Threads > 255 || k.MemoryKiB < 8*k.Threads {
			return fmt.Errorf("%w: %s time %d memory %d KiB threads %d", ErrInvalid, k.Type, k.Time, k.MemoryKiB, k.Threads)
		}
		if k.MemoryKiB > lim.MaxMemoryKiB || k.Threads > lim.MaxThreads || k.Time > lim.MaxTime {
			return fmt.Errorf("%w: %s time %d memory %d KiB threads %d (limits %d, %d KiB, %d)",
				ErrKDFLimit, k.Type, k.Time, k.MemoryKiB, k.Threads, lim.MaxTime, lim.MaxMemoryKiB, lim.MaxThreads)
		}
	default:
		return fmt.Errorf("%w: KDF %q", ErrUnsupported, k.Type)
	}
	return nil
}

// derive runs the KDF. check must have passed.
func (k *KDF) derive(passphrase, salt []byte, keyLen int) ([]byte, error) {
	switch k.Type {
	case KDFPBKDF2:
		h, err := hashByName(k.Hash)
		if err != nil {
			return nil, err
		}
		return pbkdf2Key(h, passphrase, salt, k.Iterations, keyLen)
	case KDFArgon2i:
		return argon2.Key(passphrase, salt, uint32(k.Time), uint32(k.MemoryKiB), uint8(k.Threads), uint32(keyLen)), nil
	case KDFArgon2id:
		return argon2.IDKey(passphrase, salt, uint32(k.Time), uint32(k.MemoryKiB), uint8(k.Threads), uint32(keyLen)), nil
	}
	return nil, fmt.Errorf("%w: KDF %q", ErrUnsupported, k.Type)
}

// pbkdf2Key is PBKDF2-HMAC. The standard library refuses passwords that
// are not valid in FIPS mode only when FIPS mode is on; LUKS passphrases
// are arbitrary bytes, so they go in as a string of those bytes.
func pbkdf2Key(h func() hash.Hash, password, salt []byte, iter, keyLen int) ([]byte, error) {
	k, err := pbkdf2.Key(h, string(password), salt, iter, keyLen)
	if err != nil {
		return nil, fmt.Errorf("luks: pbkdf2: %w", err)
	}
	return k, nil
}

// hashByName maps cryptsetup's hash names to constructors.
func hashByName(name string) (func() hash.Hash, error) {
	switch strings.ToLower(name) {
	case "sha1":
		return sha1.New, nil
	case "sha256":
		return sha256.New, nil
	case "sha512":
		return sha512.New, nil
	}
	return nil, fmt.Errorf("%w: hash %q", ErrUnsupported, name)
}

// ParseKDF reads a KDF written as TYPE[:KEY=VALUE,...] — argon2id or
// argon2i with iterations (passes), memory (KiB) and parallel (lanes),
// pbkdf2 with iterations and hash; the names are cryptsetup's
// --pbkdf-force-iterations, --pbkdf-memory, --pbkdf-parallel and --hash.
// Parameters not given take DefaultKDF's (argon2), or sha256 and 100000
// iterations (pbkdf2). String writes the same form.
func ParseKDF(s string) (KDF, error) {
	typ, rest, _ := strings.Cut(s, ":")
	var k KDF
	switch typ {
	case KDFArgon2i, KDFArgon2id:
		k = DefaultKDF()
		k.Type = typ
	case KDFPBKDF2:
		k = KDF{Type: KDFPBKDF2, Hash: "sha256", Iterations: 100000}
	default:
		return KDF{}, fmt.Errorf("%w: KDF %q (argon2id, argon2i or pbkdf2)", ErrInvalid, typ)
	}
	for _, kv := range strings.Split(rest, ",") {
		if kv == "" {
			continue
		}
		key, val, ok := strings.Cut(kv, "=")
		if !ok {
			return KDF{}, fmt.Errorf("%w: KDF parameter %q is not KEY=VALUE", ErrInvalid, kv)
		}
		if key == "hash" && k.Type == KDFPBKDF2 {
			k.Hash = val
			continue
		}
		var n int
		if _, err := fmt.Sscanf(val, "%d", &n); err != nil || fmt.Sprint(n) != val {
			return KDF{}, fmt.Errorf("%w: KDF parameter %s=%q is not a number", ErrInvalid, key, val)
		}
		switch {
		case key == "iterations" && k.Type == KDFPBKDF2:
			k.Iterations = n
		case key == "iterations":
			k.Time = n
		case key == "memory" && k.Type != KDFPBKDF2:
			k.MemoryKiB = n
		case key == "parallel" && k.Type != KDFPBKDF2:
			k.Threads = n
		default:
			return KDF{}, fmt.Errorf("%w: KDF parameter %q does not apply to %s", ErrInvalid, key, k.Type)
		}
	}
	if err := k.check((*Limits)(nil).withDefaults()); err != nil {
		return KDF{}, err
	}
	return k, nil
}

// String writes k as ParseKDF reads it.
func (k KDF) String() string {
	if k.Type == KDFPBKDF2 {
		return fmt.Sprintf("%s:hash=%s,iterations=%d", k.Type, k.Hash, k.Iterations)
	}
	return fmt.Sprintf("%s:iterations=%d,memory=%d,parallel=%d", k.Type, k.Time, k.MemoryKiB, k.Threads)
}
