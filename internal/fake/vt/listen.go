package vt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"
)

const (
	readHeaderTimeout = 10 * time.Second
	shutdownTimeout   = 10 * time.Second
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
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("fakevt: listen on %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("virustotal simulator listening",
		"base_url", "http://"+clientAddr(ln.Addr())+"/api/v3",
		"quota_per_minute", s.cfg.QuotaPerMinute,
		"quota_per_day", s.cfg.QuotaPerDay,
		"fault_rate", s.cfg.FaultRate,
		"analysis_delay", s.analysisDelay,
		"seed", s.cfg.Seed)

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("fakevt: serve on %s: %w", addr, err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	if serveErr := <-served; !errors.Is(serveErr, http.ErrServerClosed) && err == nil {
		err = serveErr
	}
	if err != nil {
		return fmt.Errorf("fakevt: shut down: %w", err)
	}
	st := s.Stats()
	log.Info("virustotal simulator stopped", "requests", st.Requests, "quota_exceeded", st.QuotaExceeded, "faults", st.Faults)
	return nil
}

// clientAddr turns a listening address into one a client on this host can
// dial: an unspecified IP becomes localhost.
func clientAddr(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	if tcp.IP == nil || tcp.IP.IsUnspecified() {
		return net.JoinHostPort("localhost", strconv.Itoa(tcp.Port))
	}
	return tcp.String()
}
