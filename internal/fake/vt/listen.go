package vt

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/vtconnector/vtconnector/internal/httpserver"
)

// ListenAndServe runs a simulator configured by cfg on addr until ctx ends,
// then shuts it down gracefully. It logs the base URL clients should use
// (http://ADDR/api/v3). It is what `vtconnector simulate vt` runs.
func ListenAndServe(ctx context.Context, addr string, cfg Config, log *slog.Logger) error {
	return New(cfg).ListenAndServe(ctx, addr, log)
}

// ListenAndServe serves s on addr until ctx ends, then shuts down
// gracefully. Use it instead of the package function to serve loaded test
// data.
func (s *Server) ListenAndServe(ctx context.Context, addr string, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv := httpserver.New(httpserver.Config{Name: "virustotal simulator", Addr: addr, OnListen: func(url string) {
		log.Info("virustotal simulator listening",
			"base_url", url+"/api/v3",
			"quota_per_minute", s.cfg.QuotaPerMinute,
			"quota_per_day", s.cfg.QuotaPerDay,
			"fault_rate", s.cfg.FaultRate,
			"analysis_delay", s.analysisDelay,
			"seed", s.cfg.Seed)
	}}, s, log)
	if err := srv.Run(ctx); err != nil {
		return fmt.Errorf("fakevt: %w", err)
	}
	st := s.Stats()
	log.Info("virustotal simulator stopped", "requests", st.Requests, "quota_exceeded", st.QuotaExceeded, "faults", st.Faults)
	return nil
}
