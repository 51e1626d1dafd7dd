package httpserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// Defaults of the Config fields left zero.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 15 * time.Minute // a 650 MB upload to a simulator
	DefaultWriteTimeout      = 15 * time.Minute // the largest feed over a slow link
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultShutdownTimeout   = 15 * time.Second
	DefaultMaxHeaderBytes    = 64 << 10
)

// Config describes a server. Only Addr (or Listener) is required.
type Config struct {
	// Name names the server in log lines ("feed server", "virustotal
	// simulator").
	Name string
	// Addr is the listen address, host:port; port 0 picks a free one
	// (learn it from [Server.Addr] once [Server.Ready] is closed).
	Addr string
	// Listener, when set, is served instead of listening on Addr. Run
	// closes it.
	Listener net.Listener
	// CertFile and KeyFile, when both set, make the server speak HTTPS
	// (TLS 1.2 at least).
	CertFile, KeyFile string
	// Timeouts and limits of the http.Server; zero means the default.
	ReadHeaderTimeout time.Duration // a client that does not finish its headers in time is cut off
	ReadTimeout       time.Duration // the whole request, body included
	WriteTimeout      time.Duration // the whole response
	IdleTimeout       time.Duration // a kept-alive connection between requests
	MaxHeaderBytes    int
	// ShutdownTimeout is the grace period of the requests in flight once
	// the context ends; connections still busy after it are closed.
	ShutdownTimeout time.Duration
	// OnListen, when set, is called once the server listens, before it
	// serves, with the URL a client on this host can use:
	// http(s)://host:port, with localhost for an unspecified host.
	OnListen func(url string)
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	def(&c.ReadTimeout, DefaultReadTimeout)
	def(&c.WriteTimeout, DefaultWriteTimeout)
	def(&c.IdleTimeout, DefaultIdleTimeout)
	def(&c.ShutdownTimeout, DefaultShutdownTimeout)
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if c.Name == "" {
		c.Name = "http server"
	}
	return c
}

// Server runs one HTTP server; see the package documentation.
type Server struct {
	cfg     Config
	log     *slog.Logger
	handler http.Handler

	started atomic.Bool
	ready   chan struct{}
	addr    atomic.Pointer[string]
}

// New returns a server of h configured by cfg; log (nil discards) gets
// handler panics, the http.Server's errors and, at debug level, one line
// per request.
func New(cfg Config, h http.Handler, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	log = log.With("server", cfg.Name)
	return &Server{cfg: cfg, log: log, handler: recoverPanics(h, log), ready: make(chan struct{})}
}

// Handler is what Run serves: the handler given to New behind the panic
// recovery and the request log (for tests through httptest).
func (s *Server) Handler() http.Handler { return s.handler }

// Ready is closed once the server listens.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addr is the address the server listens on, host:port with the real
// port when the configured one is 0, or "" before it listens.
func (s *Server) Addr() string {
	if p := s.addr.Load(); p != nil {
		return *p
	}
	return ""
}

// Run listens and serves until ctx ends, then shuts down gracefully: it
// stops accepting connections and gives the requests in flight up to
// ShutdownTimeout to finish, then closes the connections left. It returns
// nil after a shutdown caused by ctx, and an error when the server cannot
// listen (naming the address), cannot load its certificate, or fails
// while serving. Run may be called once.
func (s *Server) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("httpserver: Run called twice")
	}
	ln, err := s.listen(ctx)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		// Requests outlive ctx by the shutdown grace period.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	addr := ln.Addr().String()
	s.addr.Store(&addr)
	if s.cfg.OnListen != nil {
		s.cfg.OnListen(clientURL(ln.Addr(), s.cfg.CertFile != ""))
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	close(s.ready)

	select {
	case err := <-served:
		return fmt.Errorf("httpserver: serve on %s: %w", addr, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		s.log.Warn("shutdown grace period over; closing the connections left",
			"addr", addr, "grace", s.cfg.ShutdownTimeout, "error", err)
		_ = srv.Close()
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("httpserver: serve on %s: %w", addr, err)
	}
	return nil
}

// listen returns the listener Run serves: the configured one or a new one
// on Addr, wrapped in TLS when a certificate is configured.
func (s *Server) listen(ctx context.Context) (net.Listener, error) {
	ln := s.cfg.Listener
	tlsCfg, err := s.tlsConfig()
	if err != nil {
		if ln != nil {
			_ = ln.Close()
		}
		return nil, err
	}
	if ln == nil {
		if s.cfg.Addr == "" {
			return nil, errors.New("httpserver: no listen address")
		}
		var lc net.ListenConfig
		ln, err = lc.Listen(ctx, "tcp", s.cfg.Addr)
		if err != nil {
			return nil, fmt.Errorf("httpserver: listen on %s: %w", s.cfg.Addr, err)
		}
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	return ln, nil
}

// tlsConfig loads the certificate, or returns nil for plain HTTP.
func (s *Server) tlsConfig() (*tls.Config, error) {
	c := s.cfg
	if (c.CertFile == "") != (c.KeyFile == "") {
		return nil, errors.New("httpserver: the certificate and key files must both be set or both be empty")
	}
	if c.CertFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("httpserver: load certificate %s and key %s: %w", c.CertFile, c.KeyFile, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// clientURL turns a listening address into a URL a client on this host
// can use: an unspecified IP becomes localhost.
func clientURL(a net.Addr, https bool) string {
	scheme := "http://"
	if https {
		scheme = "https://"
	}
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return scheme + a.String()
	}
	if tcp.IP == nil || tcp.IP.IsUnspecified() {
		return scheme + net.JoinHostPort("localhost", strconv.Itoa(tcp.Port))
	}
	return scheme + tcp.String()
}
