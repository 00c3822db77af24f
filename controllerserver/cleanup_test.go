package controllerserver

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
)

// TestCleanupOutlivesTheRequest: a cleanup runs on a live context with a
// bounded deadline even when the request's context has ended, and its
// failure is logged with what it left behind.
func TestCleanupOutlivesTheRequest(t *testing.T) {
	var mu sync.Mutex
	var logged []string
	s := New(Options{Logger: funcr.New(func(prefix, args string) {
		mu.Lock()
		defer mu.Unlock()
		logged = append(logged, args)
	}, funcr.Options{})})
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var ctxErr error
	var deadline time.Time
	s.cleanup(ctx, "the journal entry of volume \"x\"", func(c context.Context) error {
		ctxErr = c.Err()
		deadline, _ = c.Deadline()
		return errors.New("osd went away")
	})
	if ctxErr != nil {
		t.Errorf("cleanup ran on the ended request context: %v", ctxErr)
	}
	if deadline.IsZero() || time.Until(deadline) > cleanupTimeout {
		t.Errorf("cleanup deadline %v, want one within %v", deadline, cleanupTimeout)
	}
	s.cleanup(ctx, "nothing", func(context.Context) error { return nil })
	mu.Lock()
	defer mu.Unlock()
	if len(logged) != 1 || !strings.Contains(logged[0], `the journal entry of volume \"x\"`) || !strings.Contains(logged[0], "osd went away") {
		t.Errorf("logged %q, want one line naming what was left and the error", logged)
	}
}
