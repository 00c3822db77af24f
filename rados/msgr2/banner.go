package msgr2

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Banner strings.
const (
	BannerV2 = "ceph v2\n" // msgr2
	BannerV1 = "ceph v027" // msgr v1, detected only to report it
)

// msgr2 feature bits exchanged in the banner.
const (
	FeatureRevision1   uint64 = 1 << 0 // msgr2.1 frame format
	FeatureCompression uint64 = 1 << 1 // on-wire compression (never advertised)
)

// Our msgr2 features: rev1 supported and required; no compression.
const (
	SupportedFeatures = FeatureRevision1
	RequiredFeatures  = FeatureRevision1
)

// BannerPrefixLen is the fixed part of a banner: the string and a u16
// payload length.
const BannerPrefixLen = len(BannerV2) + 2

// bannerPayloadLen is the payload we send: two u64 feature masks.
const bannerPayloadLen = 16

// maxBannerPayload bounds the payload length a peer may announce.
const maxBannerPayload = 4096

// BannerLen is the length of the banner we send.
const BannerLen = BannerPrefixLen + bannerPayloadLen

// Banner is the msgr2 feature negotiation carried by the banner.
type Banner struct {
	Supported uint64
	Required  uint64
}

// AppendBanner appends our banner ("ceph v2\n", u16 16, u64 supported,
// u64 required) to dst.
func AppendBanner(dst []byte, b Banner) []byte {
	dst = append(dst, BannerV2...)
	dst = binary.LittleEndian.AppendUint16(dst, bannerPayloadLen)
	dst = binary.LittleEndian.AppendUint64(dst, b.Supported)
	dst = binary.LittleEndian.AppendUint64(dst, b.Required)
	return dst
}

// ReadBanner reads the peer's banner from r. It returns the decoded feature
// masks and the raw bytes read (the prefix and payload), which the caller
// needs for the AUTH_SIGNATURE HMAC. A msgr v1 peer yields ErrMsgr1.
func ReadBanner(r io.Reader) (Banner, []byte, error) {
	raw := make([]byte, BannerPrefixLen, BannerPrefixLen+bannerPayloadLen)
	if n, err := io.ReadFull(r, raw); err != nil {
		if n >= len(BannerV1) && string(raw[:len(BannerV1)]) == BannerV1 {
			return Banner{}, raw[:n], ErrMsgr1
		}
		return Banner{}, raw[:n], err
	}
	b, n, err := DecodeBannerPrefix(raw)
	if err != nil {
		return Banner{}, raw, err
	}
	raw = append(raw, make([]byte, n)...)
	if m, err := io.ReadFull(r, raw[BannerPrefixLen:]); err != nil {
		return Banner{}, raw[:BannerPrefixLen+m], eof(err)
	}
	b, err = DecodeBannerPayload(raw[BannerPrefixLen:])
	return b, raw, err
}

// DecodeBannerPrefix checks the 10-byte banner prefix and returns the
// payload length that follows.
func DecodeBannerPrefix(p []byte) (Banner, int, error) {
	if len(p) < BannerPrefixLen {
		return Banner{}, 0, fmt.Errorf("%w: %d bytes", ErrBadBanner, len(p))
	}
	if string(p[:len(BannerV2)]) != BannerV2 {
		if string(p[:len(BannerV1)]) == BannerV1 {
			return Banner{}, 0, ErrMsgr1
		}
		return Banner{}, 0, fmt.Errorf("%w: %q", ErrBadBanner, p[:len(BannerV2)])
	}
	n := int(binary.LittleEndian.Uint16(p[len(BannerV2):]))
	if n < bannerPayloadLen || n > maxBannerPayload {
		return Banner{}, 0, fmt.Errorf("%w: payload length %d", ErrBadBanner, n)
	}
	return Banner{}, n, nil
}

// DecodeBannerPayload decodes the banner payload (two u64 masks; any
// trailing bytes are ignored).
func DecodeBannerPayload(p []byte) (Banner, error) {
	if len(p) < bannerPayloadLen {
		return Banner{}, fmt.Errorf("%w: payload of %d bytes", ErrBadBanner, len(p))
	}
	return Banner{
		Supported: binary.LittleEndian.Uint64(p[0:]),
		Required:  binary.LittleEndian.Uint64(p[8:]),
	}, nil
}

// Check verifies that the peer's banner is compatible with ours: our
// required features are in its supported set and its required features in
// ours.
func (b Banner) Check(ours Banner) error {
	if miss := ours.Required &^ b.Supported; miss != 0 {
		return fmt.Errorf("%w: peer lacks required msgr2 features %#x", ErrFeatures, miss)
	}
	if miss := b.Required &^ ours.Supported; miss != 0 {
		return fmt.Errorf("%w: peer requires msgr2 features %#x we do not support", ErrFeatures, miss)
	}
	return nil
}
