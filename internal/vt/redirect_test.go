package vt

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestKeyNeverFollowsARedirectToAnotherHost: a VirusTotal (or anything on
// the path) answering 302 to another host must not hand it the key, for
// lookups as for downloads.
func TestKeyNeverFollowsARedirectToAnotherHost(t *testing.T) {
	var leaked atomic.Value
	leaked.Store("")
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if k := r.Header.Get("x-apikey"); k != "" {
			leaked.Store(k)
		}
		w.WriteHeader(http.StatusNotFound)
	}))
	defer other.Close()
	home := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusFound)
	}))
	defer home.Close()
	for _, hc := range []*http.Client{nil, {}} {
		opts := []Option{WithBaseURL(home.URL + "/api/v3")}
		if hc != nil {
			opts = append(opts, WithHTTPClient(hc))
		}
		c, err := New("secret-vt-key", opts...)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.File(t.Context(), strings.Repeat("a", 64))
		_, _ = c.Download(t.Context(), strings.Repeat("a", 64), new(strings.Builder))
	}
	if k := leaked.Load().(string); k != "" {
		t.Errorf("the other host received the API key %q", k)
	}
}
