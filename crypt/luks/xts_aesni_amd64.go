//go:build amd64 && !purego

package luks

import "golang.org/x/sys/cpu"

//go:noescape
func xtsEncAESNI(xk *byte, nr int, dst, src, tw *byte, n int)

//go:noescape
func xtsDecAESNI(xk *byte, nr int, dst, src, tw *byte, n int)

//go:noescape
func invMixColumnsAESNI(dst, src *byte)

var haveAESNI = cpu.X86.HasAES

// aesniKeys expands key for xtsEncAESNI and xtsDecAESNI: the encryption
// round keys, and the decryption round keys of the equivalent inverse
// cipher (reversed, InvMixColumns applied to the middle ones).
func aesniKeys(key []byte) (enc, dec []byte, nr int) {
	enc, nr = expandKey(key)
	dec = make([]byte, len(enc))
	copy(dec[:16], enc[nr*16:])
	for i := 1; i < nr; i++ {
		invMixColumnsAESNI(&dec[i*16], &enc[(nr-i)*16])
	}
	copy(dec[nr*16:], enc[:16])
	return enc, dec, nr
}

func xtsBlocksAESNI(xk []byte, nr int, dec bool, dst, src, tw []byte) {
	n := len(src) / xtsBlock
	if n == 0 {
		return
	}
	_ = dst[len(src)-1]
	_ = tw[len(src)-1]
	if dec {
		xtsDecAESNI(&xk[0], nr, &dst[0], &src[0], &tw[0], n)
	} else {
		xtsEncAESNI(&xk[0], nr, &dst[0], &src[0], &tw[0], n)
	}
}
