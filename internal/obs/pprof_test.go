package obs

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestProfilingOnlyForLoopbackClients(t *testing.T) {
	for _, tc := range []struct {
		name   string
		remote bool
		from   string
		want   int
	}{
		{"loopback IPv4", false, "127.0.0.1:5555", http.StatusOK},
		{"loopback IPv6", false, "[::1]:5555", http.StatusOK},
		{"another machine", false, "192.0.2.7:5555", http.StatusNotFound},
		{"unparsable address", false, "somewhere", http.StatusNotFound},
		{"another machine, remote allowed", true, "192.0.2.7:5555", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mux := http.NewServeMux()
			RegisterProfiling(mux, tc.remote)
			for _, path := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/goroutine?debug=1"} {
				req := httptest.NewRequest(http.MethodGet, path, nil)
				req.RemoteAddr = tc.from
				rec := httptest.NewRecorder()
				mux.ServeHTTP(rec, req)
				if rec.Code != tc.want {
					t.Errorf("GET %s from %s: %d, want %d", path, tc.from, rec.Code, tc.want)
				}
				if tc.want == http.StatusNotFound && strings.Contains(rec.Body.String(), "goroutine") {
					t.Errorf("GET %s from %s: profile served", path, tc.from)
				}
			}
		})
	}
}
