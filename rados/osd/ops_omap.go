package osd

import (
	"fmt"
	"slices"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
)

// OmapGetKeys lists up to max keys after startAfter; parse Out with
// ParseOmapKeys.
func OmapGetKeys(startAfter string, max uint64) Op {
	e := encoding.NewEncoder(make([]byte, 0, 12+len(startAfter)))
	e.String(startAfter)
	e.U64(max)
	return Op{Code: OpOmapGetKeys, In: e.Bytes()}
}

// OmapGetVals lists up to max key/value pairs after startAfter whose keys
// start with prefix; parse Out with ParseOmapVals.
func OmapGetVals(startAfter, prefix string, max uint64) Op {
	e := encoding.NewEncoder(make([]byte, 0, 16+len(startAfter)+len(prefix)))
	e.String(startAfter)
	e.U64(max)
	e.String(prefix)
	return Op{Code: OpOmapGetVals, In: e.Bytes()}
}

// OmapGetValsByKeys returns the values of the given keys (missing keys
// are left out); parse Out with ParseOmapValsByKeys.
func OmapGetValsByKeys(keys ...string) Op {
	return Op{Code: OpOmapGetValsByKeys, In: encodeKeySet(keys)}
}

// OmapGetHeader returns the omap header in Out.
func OmapGetHeader() Op { return Op{Code: OpOmapGetHeader} }

// OmapSetHeader sets the omap header.
func OmapSetHeader(h []byte) Op { return Op{Code: OpOmapSetHdr, In: h} }

// OmapSet sets key/value pairs.
func OmapSet(kv map[string][]byte) Op {
	keys := sortedKeys(kv)
	n := 4
	for _, k := range keys {
		n += 8 + len(k) + len(kv[k])
	}
	e := encoding.NewEncoder(make([]byte, 0, n))
	e.U32(uint32(len(keys)))
	for _, k := range keys {
		e.String(k)
		e.Bytes32(kv[k])
	}
	return Op{Code: OpOmapSetVals, In: e.Bytes()}
}

// OmapRmKeys removes keys.
func OmapRmKeys(keys ...string) Op { return Op{Code: OpOmapRmKeys, In: encodeKeySet(keys)} }

// OmapClear removes every key and the header.
func OmapClear() Op { return Op{Code: OpOmapClear} }

// OmapAssertion is one comparison of OmapCmp.
type OmapAssertion struct {
	Value []byte
	Op    uint8 // CmpEQ ...
}

// OmapCmp compares omap values, failing the request with ECANCELED when
// a comparison is false (a missing key compares as an empty value).
func OmapCmp(assertions map[string]OmapAssertion) Op {
	keys := make([]string, 0, len(assertions))
	for k := range assertions {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	e := encoding.NewEncoder(nil)
	e.U32(uint32(len(keys)))
	for _, k := range keys {
		a := assertions[k]
		e.String(k)
		e.Bytes32(a.Value)
		e.I32(int32(a.Op))
	}
	return Op{Code: OpOmapCmp, In: e.Bytes()}
}

func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// encodeKeySet encodes a std::set<string>: sorted, without duplicates.
func encodeKeySet(keys []string) []byte {
	ks := slices.Clone(keys)
	slices.Sort(ks)
	ks = slices.Compact(ks)
	n := 4
	for _, k := range ks {
		n += 4 + len(k)
	}
	e := encoding.NewEncoder(make([]byte, 0, n))
	e.Strings(ks)
	return e.Bytes()
}

// ParseOmapKeys decodes OmapGetKeys output: set<string>, then (Nautilus+)
// a bool telling whether more keys follow.
func ParseOmapKeys(out []byte) (keys []string, more bool, err error) {
	d := encoding.NewDecoder(out)
	n := d.Count(4)
	keys = make([]string, 0, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		keys = append(keys, d.String())
	}
	if d.Len() > 0 {
		more = d.Bool()
	}
	if err := d.Err(); err != nil {
		return nil, false, fmt.Errorf("%w: omap-get-keys output: %v", ErrProtocol, err)
	}
	return keys, more, nil
}

// ParseOmapVals decodes OmapGetVals output: map<string, bufferlist> and
// the "more" bool. Values alias out.
func ParseOmapVals(out []byte) (map[string][]byte, bool, error) {
	m, more, err := parseStringMap(out, true)
	if err != nil {
		return nil, false, fmt.Errorf("omap-get-vals output: %w", err)
	}
	return m, more, nil
}

// ParseOmapValsByKeys decodes OmapGetValsByKeys output. Values alias out.
func ParseOmapValsByKeys(out []byte) (map[string][]byte, error) {
	m, _, err := parseStringMap(out, false)
	if err != nil {
		return nil, fmt.Errorf("omap-get-vals-by-keys output: %w", err)
	}
	return m, nil
}
