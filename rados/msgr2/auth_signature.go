package msgr2

import "fmt"

// SignatureLen is the length of an AUTH_SIGNATURE payload (HMAC-SHA256).
const SignatureLen = 32

// AuthSignature is the AUTH_SIGNATURE payload: the HMAC-SHA256, keyed with
// the session key, of every byte the sender received before AUTH_SIGNATURE
// (all zeros when the session key is empty, as with auth none).
type AuthSignature struct {
	HMAC [SignatureLen]byte
}

// Encode appends the payload to dst.
func (a *AuthSignature) Encode(dst []byte) []byte { return append(dst, a.HMAC[:]...) }

// Decode decodes the payload.
func (a *AuthSignature) Decode(b []byte) error {
	if len(b) < SignatureLen {
		return payloadErr(TagAuthSignature, fmt.Errorf("%d bytes, need %d", len(b), SignatureLen))
	}
	copy(a.HMAC[:], b)
	return nil
}
