package carbonblack

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/vtconnector/vtconnector/internal/httpserver"
)

const (
	// trickleEvery and trickleCount pace the binaries ListenAndServe keeps
	// adding, so that a connector always has new work.
	trickleEvery = 5 * time.Second
	trickleCount = 3
	// backfillStep spaces the initial binaries' server_added_timestamp.
	backfillStep = time.Minute
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

	srv := httpserver.New(httpserver.Config{Name: "carbon black simulator", Addr: addr, OnListen: func(url string) {
		log.Info("carbon black simulator listening",
			"url", url, "binaries", binaries,
			"token_required", cfg.Token != "", "fault_rate", cfg.FaultRate, "latency", cfg.Latency)
	}}, s, log)

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

	err := srv.Run(ctx)
	close(stop)
	wg.Wait()
	st := s.Stats()
	log.Info("carbon black simulator stopped", "requests", st.Requests, "downloads", st.Downloads, "syncs", st.Syncs)
	if err != nil {
		return fmt.Errorf("carbonblack: %w", err)
	}
	return nil
}
