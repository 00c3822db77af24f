package hostfwd

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"strconv"
	"testing"
	"time"
)

func TestParsePorts(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []int
	}{
		{"7500", []int{7500}},
		{"7502-7504,7500, 7503", []int{7500, 7502, 7503, 7504}},
		{" 1-2 ,", []int{1, 2}},
	} {
		got, err := ParsePorts(tt.in)
		if err != nil || !equal(got, tt.want) {
			t.Errorf("ParsePorts(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", ",", "0", "65536", "x", "10-9", "1-5000", "7500-", "-1"} {
		if _, err := ParsePorts(bad); !errors.Is(err, ErrPorts) {
			t.Errorf("ParsePorts(%q): err %v, want ErrPorts", bad, err)
		}
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestRelay forwards 127.0.0.2:PORT to an echo server on 127.0.0.1:PORT (a
// real TCP peer, as the guest's loopback and the host are in the VM) and
// checks bytes both ways, half-close, and that a closed target port shows
// up as a closed connection and a DialFailed count.
func TestRelay(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(c, c)
				c.(*net.TCPConn).CloseWrite()
				c.Close()
			}()
		}
	}()
	_, ps, _ := net.SplitHostPort(echo.Addr().String())
	port, _ := strconv.Atoi(ps)
	// A second port nobody listens on: take one and free it.
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, ds, _ := net.SplitHostPort(dead.Addr().String())
	deadPort, _ := strconv.Atoi(ds)
	dead.Close()

	f, err := Start(ctx, Config{ListenHost: "127.0.0.2", TargetHost: "127.0.0.1", Ports: []int{port, deadPort}})
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	defer f.Close()

	c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.2", ps))
	if err != nil {
		t.Fatal(err)
	}
	msg := make([]byte, 3<<20)
	rand.Read(msg)
	go func() {
		c.Write(msg)
		c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	c.Close()
	if err != nil {
		t.Fatalf("read through the relay: %v", err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("relayed %d bytes, want the %d sent back unchanged", len(got), len(msg))
	}

	d, err := net.Dial("tcp", net.JoinHostPort("127.0.0.2", ds))
	if err != nil {
		t.Fatal(err)
	}
	d.SetReadDeadline(time.Now().Add(30 * time.Second))
	if n, err := d.Read(make([]byte, 1)); err == nil {
		t.Errorf("read %d bytes from a relay to a closed port", n)
	}
	d.Close()

	f.Close()
	st := f.Stats()
	if st.Accepted != 2 || st.DialFailed != 1 || st.Active != 0 {
		t.Errorf("stats %+v: want 2 accepted, 1 dial failure, 0 active", st)
	}
	if st.BytesOut != int64(len(msg)) || st.BytesIn != int64(len(msg)) {
		t.Errorf("stats %+v: want %d bytes each way", st, len(msg))
	}
	if _, err := net.Dial("tcp", net.JoinHostPort("127.0.0.2", ps)); err == nil {
		t.Error("still listening after Close")
	}
}

// TestStartBusyPort: a port already taken fails Start and leaves nothing
// listening.
func TestStartBusyPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, ps, _ := net.SplitHostPort(l.Addr().String())
	port, _ := strconv.Atoi(ps)
	free, _ := net.Listen("tcp", "127.0.0.1:0")
	_, fs, _ := net.SplitHostPort(free.Addr().String())
	freePort, _ := strconv.Atoi(fs)
	free.Close()
	if _, err := Start(context.Background(), Config{Ports: []int{freePort, port}}); err == nil {
		t.Fatal("Start on a taken port succeeded")
	}
	if c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", fs)); err == nil {
		c.Close()
		t.Error("a port of the failed Start is still listening")
	}
}

// FuzzParsePorts: any input gives an error or a sorted, unique, bounded
// list of valid ports.
func FuzzParsePorts(f *testing.F) {
	for _, s := range []string{"7500", "7500,7501,7502-7549", "1-1024", "65535", "0", "5-1", "1-99999", ",,", "7500-7500,7500"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ports, err := ParsePorts(s)
		if err != nil {
			if !errors.Is(err, ErrPorts) {
				t.Fatalf("error %v is not ErrPorts", err)
			}
			return
		}
		if len(ports) == 0 || len(ports) > maxPorts {
			t.Fatalf("%d ports", len(ports))
		}
		for i, p := range ports {
			if p < 1 || p > 65535 || i > 0 && p <= ports[i-1] {
				t.Fatalf("bad list %v", ports)
			}
		}
	})
}
