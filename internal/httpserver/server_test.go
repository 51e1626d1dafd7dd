package httpserver

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vtconnector/vtconnector/internal/httpserver/httpservertest"
)

// logLines is a slog.Handler that sends every record, as one text line
// with its attributes, to a channel; a test reads the channel to wait for
// a line. Lines beyond the channel's room are dropped.
type logLines struct {
	ch    chan string
	attrs []slog.Attr
}

func newLogLines() logLines { return logLines{ch: make(chan string, 1000)} }

func (h logLines) Enabled(context.Context, slog.Level) bool { return true }
func (h logLines) WithGroup(string) slog.Handler            { return h }
func (h logLines) WithAttrs(as []slog.Attr) slog.Handler {
	h.attrs = append(h.attrs[:len(h.attrs):len(h.attrs)], as...)
	return h
}

func (h logLines) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Level, r.Message)
	for _, a := range h.attrs {
		fmt.Fprintf(&b, " %s", a)
	}
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s", a)
		return true
	})
	select {
	case h.ch <- b.String():
	default:
	}
	return nil
}

// waitLine returns the first line containing want, failing the test when
// none comes.
func (h logLines) waitLine(t *testing.T, want string) string {
	t.Helper()
	lines := h.linesUntil(t, want)
	return lines[len(lines)-1]
}

// linesUntil returns the lines logged up to the first one containing want
// included, failing the test when none comes.
func (h logLines) linesUntil(t *testing.T, want string) []string {
	t.Helper()
	var lines []string
	timeout := time.After(10 * time.Second)
	for {
		select {
		case l := <-h.ch:
			lines = append(lines, l)
			if strings.Contains(l, want) {
				return lines
			}
		case <-timeout:
			t.Fatalf("no log line with %q in:\n%s", want, strings.Join(lines, "\n"))
			return nil
		}
	}
}

// client returns a client with its own transport, closed at the end of
// the test.
func client(t *testing.T, tlsCfg *tls.Config) *http.Client {
	tr := &http.Transport{TLSClientConfig: tlsCfg}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func get(t *testing.T, c *http.Client, url string) (int, string, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func TestDefaults(t *testing.T) {
	got := Config{}.withDefaults()
	got.OnListen = nil
	want := Config{
		Name:              "http server",
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       15 * time.Minute,
		WriteTimeout:      15 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ShutdownTimeout:   15 * time.Second,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	set := Config{Name: "feed", ReadHeaderTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 3 * time.Second,
		IdleTimeout: 4 * time.Second, MaxHeaderBytes: 5, ShutdownTimeout: 6 * time.Second}
	if diff := cmp.Diff(set, set.withDefaults()); diff != "" {
		t.Errorf("set values were changed (-want +got):\n%s", diff)
	}
}

func TestPortZeroReadiness(t *testing.T) {
	urls := make(chan string, 1)
	s := New(Config{Addr: "127.0.0.1:0", OnListen: func(u string) { urls <- u }},
		http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "hello") }), nil)
	if s.Addr() != "" {
		t.Errorf("Addr before Run = %q", s.Addr())
	}
	httpservertest.Start(t, s)
	host, port, err := net.SplitHostPort(s.Addr())
	if err != nil || host != "127.0.0.1" || port == "0" {
		t.Fatalf("Addr = %q", s.Addr())
	}
	if u := <-urls; u != "http://"+s.Addr() {
		t.Errorf("OnListen got %q, want http://%s", u, s.Addr())
	}
	if code, body, err := get(t, client(t, nil), "http://"+s.Addr()+"/"); err != nil || code != 200 || body != "hello" {
		t.Errorf("GET = %d %q %v", code, body, err)
	}
}

func TestGivenListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{Listener: ln}, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") }), nil)
	cancel, wait := httpservertest.Start(t, s)
	if s.Addr() != ln.Addr().String() {
		t.Errorf("Addr = %q, want the listener's %q", s.Addr(), ln.Addr())
	}
	if code, _, err := get(t, client(t, nil), "http://"+s.Addr()+"/"); err != nil || code != 200 {
		t.Errorf("GET = %d %v", code, err)
	}
	cancel()
	if err := wait(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if _, err := ln.Accept(); err == nil {
		t.Error("the listener is still open after Run returned")
	}
}

func TestGracefulShutdownFinishesRequestInFlight(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	s := New(Config{Addr: "127.0.0.1:0"}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		if r.Context().Err() != nil {
			http.Error(w, "context ended", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "finished")
	}), nil)
	cancel, wait := httpservertest.Start(t, s)
	type result struct {
		code int
		body string
		err  error
	}
	inflight := make(chan result, 1)
	c := client(t, nil)
	go func() {
		code, body, err := get(t, c, "http://"+s.Addr()+"/slow")
		inflight <- result{code, body, err}
	}()
	<-entered
	cancel() // shutdown starts while the request is in flight
	close(release)
	if r := <-inflight; r.err != nil || r.code != http.StatusOK || r.body != "finished" {
		t.Errorf("in-flight request: %d %q %v", r.code, r.body, r.err)
	}
	if err := wait(); err != nil {
		t.Errorf("Run = %v, want nil after a graceful shutdown", err)
	}
	if conn, err := net.Dial("tcp", s.Addr()); err == nil {
		conn.Close()
		t.Error("the server still accepts connections after Run returned")
	}
	if err := s.Run(t.Context()); err == nil {
		t.Error("a second Run did not fail")
	}
}

func TestShutdownGraceOverClosesConnections(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	logs := newLogLines()
	s := New(Config{Name: "stuck", Addr: "127.0.0.1:0", ShutdownTimeout: 50 * time.Millisecond},
		http.HandlerFunc(func(http.ResponseWriter, *http.Request) { close(entered); <-release }), slog.New(logs))
	cancel, wait := httpservertest.Start(t, s)
	failed := make(chan error, 1)
	c := client(t, nil)
	go func() {
		_, _, err := get(t, c, "http://"+s.Addr()+"/")
		failed <- err
	}()
	<-entered
	cancel()
	if err := wait(); err != nil {
		t.Errorf("Run = %v", err)
	}
	if err := <-failed; err == nil {
		t.Error("the stuck request succeeded; want its connection closed")
	}
	if line := logs.waitLine(t, "shutdown grace period over"); !strings.Contains(line, "server=stuck") {
		t.Errorf("the shutdown warning does not name the server: %s", line)
	}
}

func TestPanicGives500AndServerKeepsServing(t *testing.T) {
	logs := newLogLines()
	mux := http.NewServeMux()
	mux.HandleFunc("/panic", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("ETag", `"half-built"`)
		panic("handler exploded: detail-42")
	})
	mux.HandleFunc("/late-panic", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "partial")
		w.(http.Flusher).Flush()
		panic("exploded after writing")
	})
	mux.HandleFunc("/ok", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "fine") })
	s := New(Config{Name: "feed server", Addr: "127.0.0.1:0"}, mux, slog.New(logs))
	httpservertest.Start(t, s)
	c := client(t, nil)
	base := "http://" + s.Addr()

	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/panic", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError || string(body) != "500 internal server error\n" {
		t.Errorf("GET /panic = %d %q, want 500 and the generic message", resp.StatusCode, body)
	}
	if etag := resp.Header.Get("ETag"); etag != "" {
		t.Errorf("the 500 carries the half-built answer's ETag %s", etag)
	}
	line := logs.waitLine(t, "handler panic")
	for _, want := range []string{"ERROR", "server=feed server", "path=/panic", "detail-42", "stack="} {
		if !strings.Contains(line, want) {
			t.Errorf("the panic's log line lacks %q: %s", want, line)
		}
	}
	if code, body, err := get(t, c, base+"/ok"); err != nil || code != 200 || body != "fine" {
		t.Errorf("GET /ok after the panic = %d %q %v", code, body, err)
	}

	// A panic after the answer started cannot become a 500: the client
	// must see a broken answer, not a short one that looks whole.
	if _, body, err := get(t, c, base+"/late-panic"); err == nil {
		t.Errorf("GET /late-panic read %q without error", body)
	}
	logs.waitLine(t, "exploded after writing")
	if code, _, err := get(t, c, base+"/ok"); err != nil || code != 200 {
		t.Errorf("GET /ok after the late panic = %d %v", code, err)
	}
}

func TestAbortHandlerIsNotLogged(t *testing.T) {
	logs := newLogLines()
	s := New(Config{Addr: "127.0.0.1:0"}, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic(http.ErrAbortHandler)
	}), slog.New(logs))
	httpservertest.Start(t, s)
	if _, _, err := get(t, client(t, nil), "http://"+s.Addr()+"/"); err == nil {
		t.Error("an aborted handler's request succeeded")
	}
	// The request's own log line comes after the recovery would have
	// logged a panic.
	for _, l := range logs.linesUntil(t, "http request") {
		if strings.Contains(l, "handler panic") {
			t.Errorf("http.ErrAbortHandler was logged as a panic: %s", l)
		}
	}
}

func TestSlowlorisIsCutOff(t *testing.T) {
	s := New(Config{Addr: "127.0.0.1:0", ReadHeaderTimeout: 100 * time.Millisecond},
		http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") }), nil)
	httpservertest.Start(t, s)
	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Headers begun, never finished.
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: example\r\nX-Slow: "); err != nil {
		t.Fatal(err)
	}
	// A safety net for a server that never cuts: the test fails instead
	// of hanging.
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	b, err := io.ReadAll(bufio.NewReader(conn))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the server kept the connection of a client that never finished its headers")
	}
	if strings.Contains(string(b), "200 OK") {
		t.Errorf("the unfinished request was answered: %q", b)
	}
}

func TestListenErrorNamesTheAddress(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, addr := range []string{busy.Addr().String(), "256.0.0.1:0", "no-port"} {
		s := New(Config{Addr: addr}, http.NotFoundHandler(), nil)
		err := s.Run(t.Context())
		if err == nil || !strings.Contains(err.Error(), "listen on "+addr) {
			t.Errorf("Run on %s = %v, want an error naming the address", addr, err)
		}
		select {
		case <-s.Ready():
			t.Errorf("%s: Ready closed although the server never listened", addr)
		default:
		}
	}
	if err := New(Config{}, http.NotFoundHandler(), nil).Run(t.Context()); err == nil {
		t.Error("Run without an address: no error")
	}
}

func TestTLS(t *testing.T) {
	certFile, keyFile, pool := httpservertest.SelfSignedCert(t)
	logs := newLogLines()
	urls := make(chan string, 1)
	s := New(Config{Name: "tls server", Addr: "127.0.0.1:0", CertFile: certFile, KeyFile: keyFile, OnListen: func(u string) { urls <- u }},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.TLS == nil {
				http.Error(w, "not over TLS", http.StatusInternalServerError)
				return
			}
			fmt.Fprint(w, "secure")
		}), slog.New(logs))
	httpservertest.Start(t, s)
	if u := <-urls; u != "https://"+s.Addr() {
		t.Errorf("OnListen got %q, want https://%s", u, s.Addr())
	}
	if code, body, err := get(t, client(t, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}), "https://"+s.Addr()+"/"); err != nil || code != 200 || body != "secure" {
		t.Errorf("GET over TLS = %d %q %v", code, body, err)
	}

	// Plain HTTP to the TLS port is refused, and the http.Server's
	// complaint reaches the injected logger.
	if code, _, err := get(t, client(t, nil), "http://"+s.Addr()+"/"); err == nil && code == http.StatusOK {
		t.Error("plain HTTP got 200 from the TLS server")
	}
	if line := logs.waitLine(t, "TLS handshake error"); !strings.Contains(line, "WARN") || !strings.Contains(line, "server=tls server") {
		t.Errorf("the http.Server's error log line: %s", line)
	}

	for _, tc := range []struct {
		name      string
		cert, key string
		want      string
	}{
		{"missing key file", certFile, keyFile + ".missing", "key.pem.missing"},
		{"key without certificate", "", keyFile, "both be set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			err = New(Config{Listener: ln, CertFile: tc.cert, KeyFile: tc.key}, http.NotFoundHandler(), nil).Run(t.Context())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Run = %v, want an error with %q", err, tc.want)
			}
			if _, err := ln.Accept(); err == nil {
				t.Error("the given listener was left open")
			}
		})
	}
}

func TestClientURL(t *testing.T) {
	for _, tc := range []struct {
		addr  net.Addr
		https bool
		want  string
	}{
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8990}, false, "http://127.0.0.1:8990"},
		{&net.TCPAddr{IP: net.IPv4zero, Port: 8990}, false, "http://localhost:8990"},
		{&net.TCPAddr{IP: net.IPv6unspecified, Port: 443}, true, "https://localhost:443"},
		{&net.TCPAddr{IP: net.IPv6loopback, Port: 80}, false, "http://[::1]:80"},
		{&net.UnixAddr{Name: "/run/x.sock", Net: "unix"}, false, "http:///run/x.sock"},
	} {
		if got := clientURL(tc.addr, tc.https); got != tc.want {
			t.Errorf("clientURL(%v, %v) = %q, want %q", tc.addr, tc.https, got, tc.want)
		}
	}
}
