package httpservertest

import (
	"context"
	"testing"
)

// Runner is a server with the lifecycle of httpserver.Server (which the
// feed server wraps).
type Runner interface {
	Run(ctx context.Context) error
	Ready() <-chan struct{}
}

// Start runs s until the test ends and returns once it listens, failing
// the test when Run returns first. cancel ends Run's context; wait returns
// Run's result (it may be called more than once).
func Start(t testing.TB, s Runner) (cancel context.CancelFunc, wait func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var runErr error
	done := make(chan struct{})
	go func() {
		runErr = s.Run(ctx)
		close(done)
	}()
	wait = func() error { <-done; return runErr }
	select {
	case <-s.Ready():
	case <-done:
		cancel()
		t.Fatalf("Run = %v before the server got ready", runErr)
	}
	t.Cleanup(func() {
		cancel()
		_ = wait()
	})
	return cancel, wait
}
