package messenger

import (
	"context"
	"encoding/binary"
	"testing"
	"time"
)

// BenchmarkSendFake measures Send → writer goroutine → socket with a fake
// peer that reads and verifies every frame (crc or secure mode).
func BenchmarkSendFake(b *testing.B) {
	for _, mode := range []uint32{ModeCRC, ModeSecure} {
		for _, size := range []int{0, 4 << 10, 64 << 10} {
			name := map[uint32]string{ModeCRC: "crc", ModeSecure: "secure"}[mode] + "/" + itoa(size)
			b.Run(name, func(b *testing.B) { benchSend(b, mode, size) })
		}
	}
}

func benchSend(b *testing.B, mode uint32, size int) {
	t := &testing.T{}
	p := newFakePeer(t)
	defer p.ln.Close()
	auth := secureAuth()
	auth.modes = []uint32{mode}
	got := make(chan int, 1)
	go func() {
		s, err := p.accept()
		if err != nil {
			return
		}
		defer s.nc.Close()
		if err := p.handshake(s, serverOpts{mode: mode, sessionKey: auth.sessionKey, conSecret: auth.conSecret, features: 0xff}); err != nil {
			b.Error(err)
			return
		}
		n := 0
		for {
			if _, err := s.recv(0); err != nil {
				got <- n
				return
			}
			n++
		}
	}()
	c, err := Dial(context.Background(), fakeConfig(p, auth))
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, size)
	front := make([]byte, 100)
	ctx := context.Background()
	b.SetBytes(int64(size + len(front)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.Send(ctx, &Message{Type: 42, Front: front, Data: data}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	c.Close()
	<-got
}

// BenchmarkIntegrationGetVersion is the round-trip latency of an
// MMonGetVersion to the real noauth mon over one connection.
func BenchmarkIntegrationGetVersion(b *testing.B) {
	c0 := cephtestNeed(b)
	got := make(chan *Message, 1)
	cfg := noauthConfig(c0)
	cfg.Dispatch = func(m *Message) { got <- m }
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := Dial(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.ReportAllocs()
	var tid uint64
	for b.Loop() {
		tid++
		if err := c.Send(ctx, getVersion(tid, "osdmap")); err != nil {
			b.Fatal(err)
		}
		m := <-got
		if binary.LittleEndian.Uint64(m.Front) != tid {
			b.Fatal("bad handle")
		}
	}
}

// BenchmarkIntegrationDial is the cost of a full handshake (auth none)
// with the real noauth mon.
func BenchmarkIntegrationDial(b *testing.B) {
	addr := cephtestNeed(b)
	ctx := context.Background()
	for b.Loop() {
		c, err := Dial(ctx, noauthConfig(addr))
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}
