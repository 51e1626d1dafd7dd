package carbonblack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

const (
	// trickleEvery and trickleCount pace the binaries ListenAndServe keeps
	// adding, so that a connector always has new work.
	trickleEvery = 5 * time.Second
	trickleCount = 3
	// backfillStep spaces the initial binaries' server_added_timestamp.
	backfillStep = time.Minute
	// shutdownGrace bounds the graceful shutdown.
	shutdownGrace = 5 * time.Second
)

// ListenAndServe runs a simulator on addr until ctx ends, for
// `vtconnector simulate carbonblack`. It starts with binaries synthetic
// binaries added a minute apart up to now, then adds a few more every few
// seconds. It shuts down gracefully and returns nil when ctx ends.
func ListenAndServe(ctx context.Context, addr string, cfg Config, log *slog.Logger, binaries int) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := New(cfg)
	now := s.now()
	s.AddSyntheticBinaries(binaries, now.Add(-time.Duration(binaries)*backfillStep), backfillStep)

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("carbonblack: listen: %w", err)
	}
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	log.Info("carbon black simulator listening",
		"url", "http://"+ln.Addr().String(), "binaries", binaries,
		"token_required", cfg.Token != "", "fault_rate", cfg.FaultRate, "latency", cfg.Latency)

	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		t := time.NewTicker(trickleEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				added := s.AddSyntheticBinaries(trickleCount, s.now(), time.Millisecond)
				log.Debug("binaries added", "count", len(added))
			}
		}
	})

	serveErr := make(chan error, 1)
	wg.Go(func() { serveErr <- srv.Serve(ln) })

	select {
	case <-ctx.Done():
	case err = <-serveErr:
	}
	close(stop)
	if err == nil {
		shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
		err = srv.Shutdown(shutCtx)
		cancel()
		if serr := <-serveErr; !errors.Is(serr, http.ErrServerClosed) && err == nil {
			err = serr
		}
	}
	wg.Wait()
	st := s.Stats()
	log.Info("carbon black simulator stopped", "requests", st.Requests, "downloads", st.Downloads, "syncs", st.Syncs)
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("carbonblack: serve: %w", err)
	}
	return nil
}
