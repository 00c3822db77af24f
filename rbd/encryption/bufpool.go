package encryption

import "sync"

// bufPool recycles the buffers that hold ciphertext on the way to or
// from the device, in a few size classes; larger requests allocate.
type bufPool struct {
	pools [len(bufClasses)]sync.Pool
}

var bufClasses = [...]int{16 << 10, 128 << 10, 1 << 20, 4<<20 + 8<<10}

func (bp *bufPool) get(n int) []byte {
	for i, c := range bufClasses {
		if n <= c {
			if b, ok := bp.pools[i].Get().(*[]byte); ok {
				return (*b)[:n]
			}
			return make([]byte, n, c)
		}
	}
	return make([]byte, n)
}

func (bp *bufPool) put(b []byte) {
	for i, c := range bufClasses {
		if cap(b) == c {
			b = b[:c]
			bp.pools[i].Put(&b)
			return
		}
	}
}
