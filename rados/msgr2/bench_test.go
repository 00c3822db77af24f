package msgr2

import (
	"bytes"
	"io"
	"testing"
)

func benchSizes() []struct {
	name string
	n    int
} {
	return []struct {
		name string
		n    int
	}{{"4KiB", 4 << 10}, {"64KiB", 64 << 10}, {"4MiB", 4 << 20}}
}

func BenchmarkWriteFrame(b *testing.B) {
	for _, secure := range []bool{false, true} {
		for _, sz := range benchSizes() {
			name := "crc/" + sz.name
			if secure {
				name = "secure/" + sz.name
			}
			b.Run(name, func(b *testing.B) {
				w := NewWriter()
				if secure {
					key, _, tx, _ := ClientSecret(testSecret())
					w.EnableSecure(key, tx)
				}
				hdr := make([]byte, MessageHeaderLen)
				front, data := make([]byte, 200), make([]byte, sz.n)
				b.SetBytes(int64(sz.n))
				b.ReportAllocs()
				for b.Loop() {
					bufs, err := w.Frame(TagMessage, hdr, front, nil, data)
					if err != nil {
						b.Fatal(err)
					}
					for _, p := range bufs {
						io.Discard.Write(p)
					}
				}
			})
		}
	}
}

// loopReader replays one frame forever.
type loopReader struct {
	frame []byte
	off   int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := copy(p, l.frame[l.off:])
	l.off = (l.off + n) % len(l.frame)
	return n, nil
}

func BenchmarkReadFrame(b *testing.B) {
	for _, secure := range []bool{false, true} {
		for _, sz := range benchSizes() {
			name := "crc/" + sz.name
			if secure {
				name = "secure/" + sz.name
			}
			b.Run(name, func(b *testing.B) {
				key, _, tx, _ := ClientSecret(testSecret())
				w := NewWriter()
				if secure {
					w.EnableSecure(key, tx)
				}
				bufs, _ := w.Frame(TagMessage, make([]byte, MessageHeaderLen), make([]byte, 200), nil, make([]byte, sz.n))
				frame := bytes.Join(bufs, nil)
				lr := &loopReader{frame: frame}
				r := NewReader(lr, Limits{})
				b.SetBytes(int64(sz.n))
				b.ReportAllocs()
				var f Frame
				for b.Loop() {
					if secure {
						// every replay needs the nonce of that frame
						r.EnableSecure(key, tx)
					}
					if err := r.ReadFrame(&f); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
