package carbonblack

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// TestTokenNeverFollowsARedirectToAnotherHost: a Cb server (or a proxy)
// answering 302 to another host must not hand it X-Auth-Token.
func TestTokenNeverFollowsARedirectToAnotherHost(t *testing.T) {
	var leaked atomic.Value
	leaked.Store("")
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if k := r.Header.Get("X-Auth-Token"); k != "" {
			leaked.Store(k)
		}
		w.WriteHeader(http.StatusNotFound)
	}))
	defer other.Close()
	home := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusFound)
	}))
	defer home.Close()
	c, err := NewClient(home.URL, "secret-cb-token", false, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, cl := range []*Client{c, c.WithHTTPClient(&http.Client{})} {
		_, _ = cl.Info(t.Context())
		_, _, _ = cl.SearchBinaries(t.Context(), "x", 0, 1)
		_, _, _ = cl.DownloadBinary(t.Context(), "0123456789abcdef0123456789abcdef", t.TempDir(), 100)
	}
	if k := leaked.Load().(string); k != "" {
		t.Errorf("the other host received the token %q", k)
	}
}
