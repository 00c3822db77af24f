//go:build linux

package attach

import (
	"errors"
	"runtime"
	"syscall"
	"testing"
)

func TestSetIOFlusher(t *testing.T) {
	err := SetIOFlusher()
	switch {
	case errors.Is(err, syscall.ENOTSUP):
		t.Skip("built with cgo: the runtime cannot change every thread")
	case errors.Is(err, syscall.EPERM):
		t.Skip("needs CAP_SYS_RESOURCE")
	case err != nil:
		t.Fatal(err)
	}
	// Every thread has it, including ones started afterwards.
	done := make(chan bool)
	for range 4 {
		go func() {
			runtime.LockOSThread() // this goroutine's thread exits with it
			on, _ := IOFlusher()
			done <- on
		}()
	}
	for range 4 {
		if !<-done {
			t.Error("a thread without PR_SET_IO_FLUSHER")
		}
	}
	if on, err := IOFlusher(); err != nil || !on {
		t.Errorf("IOFlusher() = %v, %v", on, err)
	}
}
