package carbonblack

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vtconnector/vtconnector/internal/logbuf"
)

func TestRequestsWithoutTheTokenAre401(t *testing.T) {
	for _, tc := range []struct {
		name       string
		configured string
		sent       string
		want       int
	}{
		{"no token", "secret", "", http.StatusUnauthorized},
		{"wrong token", "secret", "guess", http.StatusUnauthorized},
		{"right token", "secret", "secret", http.StatusOK},
		{"any token when none is configured", "", "whatever", http.StatusOK},
		{"still a token when none is configured", "", "", http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Config{Token: tc.configured, Now: fixedNow})
			for _, path := range []string{"/api/info", "/api/v1/binary", "/api/v1/feed"} {
				req := httptest.NewRequest(http.MethodGet, path, nil)
				if tc.sent != "" {
					req.Header.Set("X-Auth-Token", tc.sent)
				}
				rec := httptest.NewRecorder()
				s.ServeHTTP(rec, req)
				if rec.Code != tc.want {
					t.Errorf("%s: status %d, want %d", path, rec.Code, tc.want)
				}
				if tc.want == http.StatusUnauthorized {
					var body apiError
					if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Reason != "unauthorized" {
						t.Errorf("%s: body %s", path, rec.Body)
					}
				}
			}
			if tc.want == http.StatusUnauthorized && s.Stats().Unauthorized != 3 {
				t.Errorf("Stats.Unauthorized = %d, want 3", s.Stats().Unauthorized)
			}
		})
	}
}

// statuses sends n searches and returns their statuses.
func statuses(t *testing.T, s *Server, n int) []int {
	t.Helper()
	out := make([]int, n)
	for i := range out {
		resp := call(t, s, http.MethodGet, "/api/v1/binary?rows=0", nil)
		resp.Body.Close()
		out[i] = resp.StatusCode
	}
	return out
}

func TestFaultsFollowTheRateAndTheSeed(t *testing.T) {
	const n = 2000
	a := statuses(t, newServer(t, Config{FaultRate: 0.25, Seed: 7}), n)
	b := statuses(t, newServer(t, Config{FaultRate: 0.25, Seed: 7}), n)
	c := statuses(t, newServer(t, Config{FaultRate: 0.25, Seed: 8}), n)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("same seed, different fault sequence")
	}
	if cmp.Equal(a, c) {
		t.Errorf("seeds 7 and 8 gave the same fault sequence")
	}
	counts := map[int]int{}
	for _, st := range a {
		counts[st]++
	}
	faults := counts[500] + counts[503]
	if faults < n*20/100 || faults > n*30/100 || counts[500] == 0 || counts[503] == 0 || faults+counts[200] != n {
		t.Errorf("statuses %v: want about 25%% of 500 and 503, the rest 200", counts)
	}
	s := newServer(t, Config{FaultRate: 0.25, Seed: 7})
	statuses(t, s, n)
	if st := s.Stats(); st.Faults != faults || st.ByStatus[200] != counts[200] || st.Requests != n {
		t.Errorf("Stats: faults %d by status %v requests %d", st.Faults, st.ByStatus, st.Requests)
	}
	for _, st := range statuses(t, newServer(t, Config{}), 200) {
		if st != http.StatusOK {
			t.Fatalf("fault without a fault rate: %d", st)
		}
	}
}

func TestStatsCountRequestsByEndpointAndStatus(t *testing.T) {
	s := newServer(t, Config{})
	s.AddBinary(Binary{MD5: mdA, Size: 3})
	call(t, s, http.MethodGet, "/api/v1/binary/"+mdA+"/summary", nil).Body.Close()
	call(t, s, http.MethodGet, "/api/v1/binary/"+mdB+"/summary", nil).Body.Close()
	call(t, s, http.MethodGet, "/api/v1/binary/"+mdA, nil).Body.Close()
	call(t, s, http.MethodGet, "/api/v1/nothing", nil).Body.Close()
	call(t, s, http.MethodGet, "/api/v1/binary?q=", nil).Body.Close()
	st := s.Stats()
	wantEndpoints := map[string]int{
		"GET /api/v1/binary/{md5}/summary": 2,
		"GET /api/v1/binary/{md5}":         1,
		"GET /api/v1/binary":               1,
		"unmatched":                        1,
	}
	if diff := cmp.Diff(wantEndpoints, st.ByEndpoint); diff != "" {
		t.Errorf("ByEndpoint (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[int]int{200: 3, 404: 2}, st.ByStatus); diff != "" {
		t.Errorf("ByStatus (-want +got):\n%s", diff)
	}
	if st.Downloads != 1 || st.DownloadedBytes != 3 || st.Searches != 1 || st.Requests != 5 {
		t.Errorf("Stats %+v", st)
	}
}

func TestLatencyIsAppliedAndCanceledRequestsGetNoAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(Config{Token: testToken, Latency: 2 * time.Second})
		began := time.Now()
		resp := call(t, s, http.MethodGet, "/api/info", nil)
		resp.Body.Close()
		if took := time.Since(began); took != 2*time.Second || resp.StatusCode != http.StatusOK {
			t.Errorf("answered %d after %v, want 200 after 2s", resp.StatusCode, took)
		}

		ctx, cancel := context.WithCancel(t.Context())
		req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/api/info", nil)
		req.Header.Set("X-Auth-Token", testToken)
		rec := httptest.NewRecorder()
		done := make(chan struct{})
		go func() {
			s.ServeHTTP(rec, req)
			close(done)
		}()
		time.Sleep(time.Second)
		cancel()
		<-done
		if rec.Body.Len() != 0 || s.Stats().Canceled != 1 {
			t.Errorf("canceled request: body %q, Canceled %d", rec.Body, s.Stats().Canceled)
		}
	})
}

// handlerTransport serves HTTP requests with an in-process handler.
type handlerTransport struct{ h http.Handler }

func (ht handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	ht.h.ServeHTTP(rec, r)
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}

// TestAFeedLifecycleRunsInASynctestBubble drives the whole feed flow with
// the bubble's clock and an in-process feed server.
func TestAFeedLifecycleRunsInASynctestBubble(t *testing.T) {
	doc := feedDoc(t, report("Binary_A", 66, 1, mdA))
	synctest.Test(t, func(t *testing.T) {
		feedHandler := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(doc) })
		s := New(Config{
			Token:      testToken,
			Latency:    100 * time.Millisecond,
			FeedClient: &http.Client{Transport: handlerTransport{feedHandler}},
		})
		start := time.Now()
		s.AddSyntheticBinaries(2, start, time.Second)
		s.AddBinary(Binary{MD5: mdA, Size: 10})
		time.Sleep(time.Hour)
		id := createFeed(t, s, "http://feeds.invalid/feed.json", nil)
		syncFeed(t, s, id, false)
		var doc map[string]any
		callJSON(t, s, http.MethodGet, "/api/v1/binary/"+mdA+"/summary", nil, http.StatusOK, &doc)
		want := start.Add(time.Hour + 200*time.Millisecond).UTC().Format("2006-01-02T15:04:05Z")
		if doc["alliance_updated_virustotalconnector"] != want || doc["alliance_score_virustotalconnector"] != 66.0 {
			t.Errorf("alliance_updated %v (want %s) score %v", doc["alliance_updated_virustotalconnector"], want, doc["alliance_score_virustotalconnector"])
		}
		res := search(t, s, "-alliance_score_virustotalconnector:*", nil)
		if res.TotalResults != 2 {
			t.Errorf("%d untagged binaries, want 2", res.TotalResults)
		}
		if got := time.Since(start); got != time.Hour+4*100*time.Millisecond {
			t.Errorf("took %v", got)
		}
	})
}

func TestListenAndServeServesSyntheticBinariesAndStopsWithItsContext(t *testing.T) {
	var logs logbuf.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- ListenAndServe(ctx, "127.0.0.1:0", Config{Token: testToken}, log, 25) }()

	var base string
	for deadline := time.Now().Add(5 * time.Second); base == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for line := range strings.SplitSeq(logs.String(), "\n") {
			var rec struct{ URL string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.URL != "" {
				base = rec.URL
			}
		}
	}
	if base == "" {
		t.Fatalf("no listening address logged: %s", logs.String())
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/binary?rows=1&sort=server_added_timestamp%20asc", nil)
	req.Header.Set("X-Auth-Token", testToken)
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var res searchResult
	if err := json.Unmarshal(raw, &res); err != nil || res.TotalResults < 25 || len(res.Results) != 1 {
		t.Fatalf("search answered %d: %s", resp.StatusCode, raw)
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("ListenAndServe = %v, want nil after the context ends", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ListenAndServe did not return after the context ended")
	}
	if !strings.Contains(logs.String(), "carbon black simulator stopped") {
		t.Errorf("no stop log: %s", logs.String())
	}
}

func TestListenAndServeReportsAnAddressInUse(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	err := ListenAndServe(t.Context(), addr, Config{}, nil, 0)
	if err == nil || !strings.Contains(err.Error(), "listen") {
		t.Errorf("ListenAndServe(%s in use) = %v", addr, err)
	}
	var unwrapped interface{ Unwrap() error }
	if !errors.As(err, &unwrapped) {
		t.Errorf("error %v does not wrap its cause", err)
	}
}
