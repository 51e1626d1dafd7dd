package cli

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	fakevt "github.com/vtconnector/vtconnector/internal/fake/vt"
)

// stopWhenAsked is a platform (OpenCTI or Carbon Black) that takes the
// daemon's first request and, while it is in flight, asks the daemon to
// stop, as a SIGTERM from systemd or docker stop during the start would.
func stopWhenAsked(cancel context.CancelFunc) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		// The server notices that the client went away only once the
		// request's body is read.
		_, _ = io.Copy(io.Discard, r.Body)
		cancel()
		<-r.Context().Done()
	}))
}

// runDaemon runs the command line in this process with ctx and the
// environment vars; it returns the exit code and stderr.
func runDaemon(ctx context.Context, vars map[string]string, args ...string) (int, string) {
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &lockedWriter{w: &errb}, getenv: func(string) string { return "" },
		environ: vars, octiTune: octiFast, analysisPoll: fastPoll}
	code := run(ctx, args, e)
	return code, errb.String()
}

func TestDaemonsStopCleanlyWhileStarting(t *testing.T) {
	octi := func(t *testing.T, platform string) map[string]string {
		return map[string]string{
			"OPENCTI_URL": platform, "OPENCTI_TOKEN": "octi-token", "CONNECTOR_ID": "2e00678f-aff7-46d1-80d4-5db54c658272",
			"VIRUSTOTAL_TOKEN": "vt-key", "VIRUSTOTAL_URL": "http://127.0.0.1:1/api/v3",
			"VTCONNECTOR_DATABASE_URL": filepath.Join(t.TempDir(), "octi.db"), "VTCONNECTOR_HTTP_ADDR": "off",
			"CONNECTOR_LOG_LEVEL": "info", "VIRUSTOTAL_FILE_UPLOAD_UNSEEN_ARTIFACTS": "false", "VIRUSTOTAL_URL_UPLOAD_UNSEEN": "false",
		}
	}
	// The Carbon Black connector's world, its server replaced by srv.
	cb := func(t *testing.T, srv *httptest.Server) string {
		return newCbWorldOn(t, func(http.Handler) *httptest.Server { return srv }, fakevt.Config{}, "").confPth
	}
	check := func(t *testing.T, code int, stderr string) {
		t.Helper()
		if code != 0 || strings.Contains(stderr, "vtconnector: ") {
			t.Errorf("a stop asked for during the start ended with exit status %d, want 0 (a stop is not a failure):\n%s", code, stderr)
		}
	}
	t.Run("opencti/while-reaching-the-platform", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		srv := stopWhenAsked(cancel)
		defer srv.Close()
		code, stderr := runDaemon(ctx, octi(t, srv.URL), "opencti")
		check(t, code, stderr)
		if !strings.Contains(stderr, "vtconnector opencti stopped before it was ready") {
			t.Errorf("the log does not say that the connector stopped before it was ready:\n%s", stderr)
		}
	})
	t.Run("opencti/while-opening-the-database", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		code, stderr := runDaemon(ctx, octi(t, "http://127.0.0.1:1"), "opencti")
		check(t, code, stderr)
	})
	t.Run("carbonblack/while-reaching-the-server", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		code, stderr := runDaemon(ctx, nil, "carbonblack", "--config", cb(t, stopWhenAsked(cancel)))
		check(t, code, stderr)
	})
	t.Run("carbonblack/while-opening-the-database", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		code, stderr := runDaemon(ctx, nil, "carbonblack", "--config", cb(t, httptest.NewServer(http.NotFoundHandler())))
		check(t, code, stderr)
	})
	// The same start that fails on its own is still a failure.
	t.Run("opencti/platform-refuses", func(t *testing.T) {
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "bad token", http.StatusUnauthorized)
		}))
		defer ts.Close()
		code, stderr := runDaemon(t.Context(), octi(t, ts.URL), "opencti")
		if code == 0 {
			t.Errorf("a platform that refuses the token: exit status 0, want a failure:\n%s", stderr)
		}
	})
}
