package vt_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	fakevt "github.com/vtconnector/vtconnector/internal/fake/vt"
)

// baseURLHandler captures the base_url a server logs.
type baseURLHandler struct{ got chan string }

func (h baseURLHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h baseURLHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h baseURLHandler) WithGroup(string) slog.Handler            { return h }
func (h baseURLHandler) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "base_url" {
			h.got <- a.Value.String()
		}
		return true
	})
	return nil
}

func TestListenAndServe(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	logs := baseURLHandler{got: make(chan string, 1)}
	done := make(chan error, 1)
	go func() {
		done <- fakevt.ListenAndServe(ctx, "127.0.0.1:0", fakevt.Config{UnknownPercent: -1}, slog.New(logs))
	}()
	var base string
	select {
	case base = <-logs.got:
	case err := <-done:
		t.Fatalf("ListenAndServe returned early: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no base_url logged")
	}
	if !strings.HasPrefix(base, "http://127.0.0.1:") || !strings.HasSuffix(base, "/api/v3") {
		t.Fatalf("logged base URL %q", base)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/ip_addresses/192.0.2.1", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("x-apikey", testKey)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"type":"ip_address"`) {
		t.Fatalf("GET through the listener: %d %s", resp.StatusCode, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("graceful shutdown returned %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("server did not stop after its context ended")
	}

	if err := fakevt.ListenAndServe(t.Context(), "256.0.0.1:0", fakevt.Config{}, nil); err == nil {
		t.Error("listening on an invalid address: no error")
	}
}
