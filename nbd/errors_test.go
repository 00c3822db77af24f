package nbd

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"syscall"
	"testing"
)

func TestErrnoOf(t *testing.T) {
	for _, c := range []struct {
		err  error
		want Errno
	}{
		{nil, 0},
		{syscall.EPERM, EPERM},
		{syscall.EROFS, EPERM},
		{fmt.Errorf("osd: %w", syscall.ENOSPC), ENOSPC},
		{syscall.EDQUOT, ENOSPC},
		{&fs.PathError{Op: "write", Path: "x", Err: syscall.EINVAL}, EINVAL},
		{syscall.EOVERFLOW, EOVERFLOW},
		{syscall.EOPNOTSUPP, ENOTSUP},
		{syscall.ENOMEM, ENOMEM},
		{syscall.ETIMEDOUT, EIO},
		{fmt.Errorf("x: %w", ENOTSUP), ENOTSUP},
		{context.Canceled, ESHUTDOWN},
		{errors.New("anything else"), EIO},
	} {
		if got := ErrnoOf(c.err); got != c.want {
			t.Errorf("ErrnoOf(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}

// failing fails every call with err.
type failing struct {
	*countingBackend
	err error
}

func (f failing) ReadAt(context.Context, []byte, int64) error           { return f.err }
func (f failing) WriteAt(context.Context, []byte, int64, bool) error    { return f.err }
func (f failing) Flush(context.Context) error                           { return f.err }
func (f failing) Discard(context.Context, int64, int64) error           { return f.err }
func (f failing) WriteZeroes(context.Context, int64, int64, bool) error { return f.err }

// TestBackendErrors: backend errors reach the client as NBD errnos, in
// simple replies (no payload) and in structured ERROR chunks.
func TestBackendErrors(t *testing.T) {
	for _, structured := range []bool{false, true} {
		be := failing{newCounting(1 << 20), fmt.Errorf("osd write: %w", syscall.ENOSPC)}
		cl, errc, _ := serveKernel(t, &Export{Backend: be}, &Options{Structured: structured})
		cl.request(cmdRead, 0, 1, 0, 4096, nil)
		cl.request(cmdWrite, 0, 2, 0, 4096, make([]byte, 4096))
		cl.request(cmdFlush, 0, 3, 0, 0, nil)
		cl.request(cmdTrim, 0, 4, 0, 4096, nil)
		cl.request(cmdWriteZeroes, 0, 5, 0, 4096, nil)
		seen := map[uint64]bool{}
		for range 5 {
			var errno Errno
			var cookie uint64
			if structured {
				ch := cl.chunk()
				if ch.typ != replyError || ch.flags&replyFlagDone == 0 {
					t.Fatalf("chunk %+v", ch)
				}
				errno, cookie = Errno(binary.BigEndian.Uint32(ch.payload)), ch.cookie
			} else {
				errno, cookie = cl.simpleReply() // a failed read has no payload
			}
			if errno != ENOSPC {
				t.Errorf("cookie %d: errno %d, want ENOSPC", cookie, errno)
			}
			seen[cookie] = true
		}
		if len(seen) != 5 {
			t.Errorf("cookies %v", seen)
		}
		cl.c.Close()
		waitErr(t, errc)
	}
}
