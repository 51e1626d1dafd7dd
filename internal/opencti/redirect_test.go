package opencti

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// TestTokenNeverFollowsARedirectToAnotherHost: the platform (or a proxy)
// answering 307 to another host must not hand it the bearer token or the
// custom headers.
func TestTokenNeverFollowsARedirectToAnotherHost(t *testing.T) {
	var leaked atomic.Value
	leaked.Store("")
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a := r.Header.Get("Authorization") + r.Header.Get("X-Proxy-Key"); a != "" {
			leaked.Store(a)
		}
		w.WriteHeader(http.StatusNotFound)
	}))
	defer other.Close()
	home := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer home.Close()
	p := NewPlatform(home.URL, "secret-octi-token", false, map[string]string{"X-Proxy-Key": "secret-proxy"})
	for _, pl := range []*Platform{p, NewPlatform(home.URL, "secret-octi-token", false, map[string]string{"X-Proxy-Key": "secret-proxy"}).WithHTTPClient(&http.Client{})} {
		_, _ = pl.Version(t.Context())
	}
	if a := leaked.Load().(string); a != "" {
		t.Errorf("the other host received credentials %q", a)
	}
}
