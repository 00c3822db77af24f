//go:build !amd64 || purego

package luks

const haveAESNI = false

func aesniKeys(key []byte) (enc, dec []byte, nr int) { panic("luks: no AES-NI") }

func xtsBlocksAESNI(xk []byte, nr int, dec bool, dst, src, tw []byte) { panic("luks: no AES-NI") }
