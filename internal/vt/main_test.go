package vt

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testKey is recognisable so that a test can prove it never leaks into an
// error message.
const testKey = "k3y-5f1c9e2a7b-MUST-NOT-LEAK"

// sharedVT is the shared directory of VirusTotal answers, read in place.
const sharedVT = "../../../shared/testdata/vt"

// sharedDir returns sharedVT, skipping the test when it is absent: only
// fidelity tests (real VirusTotal answers) read it.
func sharedDir(t *testing.T) string {
	t.Helper()
	st, err := os.Stat(sharedVT)
	if err != nil || !st.IsDir() {
		t.Skipf("fidelity test: ../shared/testdata/vt absent (%v); the real VirusTotal answers live outside the repository", err)
	}
	return sharedVT
}

// newTestClient returns a client with testKey pointed at srv's /api/v3.
func newTestClient(t *testing.T, srv *httptest.Server, opts ...Option) *Client {
	t.Helper()
	c, err := New(testKey, append([]Option{WithBaseURL(srv.URL + "/api/v3")}, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// newServer starts an httptest server that is closed when the test ends.
func newServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// sentinels are every class an error can be matched against.
var sentinels = []struct {
	name string
	err  error
}{
	{"ErrNotFound", ErrNotFound},
	{"ErrQuota", ErrQuota},
	{"ErrAuth", ErrAuth},
	{"ErrForbidden", ErrForbidden},
	{"ErrTransient", ErrTransient},
	{"ErrDeadlineExceeded", ErrDeadlineExceeded},
	{"ErrBadRequest", ErrBadRequest},
	{"ErrNotAvailableYet", ErrNotAvailableYet},
	{"ErrAlreadyExists", ErrAlreadyExists},
	{"ErrTooLarge", ErrTooLarge},
}

// matchedSentinels lists the sentinels err matches with errors.Is.
func matchedSentinels(err error) []string {
	var out []string
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			out = append(out, s.name)
		}
	}
	return out
}
