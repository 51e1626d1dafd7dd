package vt_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	fakevt "github.com/vtconnector/vtconnector/internal/fake/vt"
)

const ipPath = "/api/v3/ip_addresses/8.8.4.4"

func TestAuthentication(t *testing.T) {
	tests := []struct {
		name    string
		keys    []string
		header  http.Header
		status  int
		code    string
		message string
	}{
		{"missing header is AuthenticationRequiredError", nil, http.Header{}, 401, "AuthenticationRequiredError", "X-Apikey header is missing"},
		{"empty key is AuthenticationRequiredError", nil, http.Header{"X-Apikey": {""}}, 401, "AuthenticationRequiredError", "X-Apikey header is missing"},
		{"unlisted key is WrongCredentialsError", []string{"good"}, http.Header{"X-Apikey": {"bad"}}, 401, "WrongCredentialsError", "Wrong API key"},
		{"listed key is accepted", []string{"good"}, http.Header{"X-Apikey": {"good"}}, 200, "", ""},
		{"any key is accepted when Keys is empty", nil, http.Header{"X-Apikey": {"whatever"}}, 200, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := fakevt.New(fakevt.Config{Keys: tc.keys})
			rec := call(t, s, http.MethodGet, ipPath, nil, tc.header)
			if tc.code == "" {
				mustStatus(t, rec, tc.status)
				return
			}
			if msg := wantError(t, rec, tc.status, tc.code); msg != tc.message {
				t.Errorf("message %q, want %q", msg, tc.message)
			}
		})
	}
}

func TestRoutingErrors(t *testing.T) {
	s := fakevt.New(fakevt.Config{})
	sha := sha256Hex("x")
	tests := []struct {
		name, method, path string
		status             int
		code, allow        string
	}{
		{"unknown API path is NotFoundError", "GET", "/api/v3/no_such_collection/x", 404, "NotFoundError", ""},
		{"path outside the API is NotFoundError", "GET", "/favicon.ico", 404, "NotFoundError", ""},
		{"trailing slash matches nothing", "GET", "/api/v3/files/" + sha + "/", 404, "NotFoundError", ""},
		{"wrong method on a file is 405", "DELETE", "/api/v3/files/" + sha, 405, "MethodNotAllowedError", "GET"},
		{"POST to upload_url is 405", "POST", "/api/v3/files/upload_url", 405, "MethodNotAllowedError", "GET"},
		{"GET on the upload collection is 405", "GET", "/api/v3/files", 405, "MethodNotAllowedError", "POST"},
		{"GET on an upload URL is 405", "GET", "/_ah/upload/abc/", 405, "MethodNotAllowedError", "POST"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := call(t, s, tc.method, tc.path, nil, nil)
			wantError(t, rec, tc.status, tc.code)
			if got := rec.Header().Get("Allow"); got != tc.allow {
				t.Errorf("Allow %q, want %q", got, tc.allow)
			}
		})
	}
}

func TestQuotaPerMinuteIsASlidingWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := fakevt.New(fakevt.Config{QuotaPerMinute: 4})
		expect := func(when string, status int) {
			t.Helper()
			rec := get(t, s, ipPath)
			if rec.Code != status {
				t.Fatalf("%s: status %d, want %d", when, rec.Code, status)
			}
			if status == http.StatusTooManyRequests {
				want := `{"error":{"code":"QuotaExceededError","message":"Quota exceeded"}}`
				if diff := cmp.Diff(want, rec.Body.String()); diff != "" {
					t.Fatalf("%s: 429 body (-want +got):\n%s", when, diff)
				}
			}
		}
		for i := range 4 { // t = 0, 10, 20, 30 s
			expect(fmt.Sprintf("request %d", i+1), 200)
			time.Sleep(10 * time.Second)
		}
		expect("5th request at 40s", 429)
		time.Sleep(19 * time.Second)
		expect("at 59s the first request is still in the window", 429)
		time.Sleep(time.Second)
		expect("at 60s the first request has left the window", 200)
		expect("at 60s the window is full again", 429)
		time.Sleep(10 * time.Second)
		expect("at 70s the second request has left the window", 200)

		st := s.Stats()
		if st.QuotaExceeded != 3 || st.ByStatus[429] != 3 || st.ByStatus[200] != 6 {
			t.Errorf("stats: quota exceeded %d, by status %v; want 3 and 6x200", st.QuotaExceeded, st.ByStatus)
		}
	})
}

func TestQuotaPerDayResetsAtMidnightUTC(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Bubbles start at midnight UTC; move to mid-day first.
		time.Sleep(12 * time.Hour)
		s := fakevt.New(fakevt.Config{QuotaPerDay: 3})
		for i := range 3 {
			mustStatus(t, get(t, s, ipPath), 200)
			time.Sleep(time.Duration(i+1) * time.Hour)
		}
		wantError(t, get(t, s, ipPath), 429, "QuotaExceededError")
		now := time.Now().UTC()
		midnight := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, time.UTC)
		time.Sleep(midnight.Sub(now) - time.Second)
		wantError(t, get(t, s, ipPath), 429, "QuotaExceededError")
		time.Sleep(time.Second)
		mustStatus(t, get(t, s, ipPath), 200)
	})
}

func TestQuotaIsPerKeyAndCheckedAfterAuth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := fakevt.New(fakevt.Config{QuotaPerMinute: 1})
		a := http.Header{"X-Apikey": {"key-a"}}
		b := http.Header{"X-Apikey": {"key-b"}}
		mustStatus(t, call(t, s, "GET", ipPath, nil, a), 200)
		wantError(t, call(t, s, "GET", ipPath, nil, a), 429, "QuotaExceededError")
		mustStatus(t, call(t, s, "GET", ipPath, nil, b), 200)
		wantError(t, call(t, s, "GET", ipPath, nil, http.Header{}), 401, "AuthenticationRequiredError")
		st := s.Stats()
		if diff := cmp.Diff(map[string]int{"key-a": 2, "key-b": 1}, st.ByKey); diff != "" {
			t.Errorf("ByKey (-want +got):\n%s", diff)
		}
	})
}

func TestFaultInjection(t *testing.T) {
	statuses := func(cfg fakevt.Config) []int {
		s := fakevt.New(cfg)
		var out []int
		for range 400 {
			out = append(out, get(t, s, ipPath).Code)
		}
		return out
	}
	cfg := fakevt.Config{FaultRate: 0.25, Seed: 7}
	first := statuses(cfg)
	faults := 0
	for _, c := range first {
		switch c {
		case 503:
			faults++
		case 200:
		default:
			t.Fatalf("unexpected status %d", c)
		}
	}
	if faults < 70 || faults > 130 {
		t.Errorf("%d of 400 requests faulted, want about 100", faults)
	}
	if diff := cmp.Diff(first, statuses(cfg)); diff != "" {
		t.Errorf("same seed, different fault sequence (-first +second):\n%s", diff)
	}
	cfg.Seed = 8
	if slices.Equal(first, statuses(cfg)) {
		t.Error("different seeds gave the same fault sequence")
	}

	s := fakevt.New(fakevt.Config{FaultRate: 1})
	wantError(t, call(t, s, "GET", ipPath, nil, http.Header{}), 401, "AuthenticationRequiredError")
	wantError(t, get(t, s, ipPath), 503, "TransientError")
}

func TestFaultsDoNotConsumeQuota(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := fakevt.New(fakevt.Config{FaultRate: 0.5, QuotaPerMinute: 3, Seed: 3})
		ok, faults := 0, 0
		for ok < 3 {
			switch c := get(t, s, ipPath).Code; c {
			case 200:
				ok++
			case 503:
				faults++
			default:
				t.Fatalf("status %d after %d successes and %d faults", c, ok, faults)
			}
		}
		if faults == 0 {
			t.Fatal("seed produced no faults; pick another")
		}
		for {
			c := get(t, s, ipPath).Code
			if c == 503 {
				continue
			}
			if c != 429 {
				t.Fatalf("4th admitted request: status %d, want 429", c)
			}
			break
		}
	})
}

func TestLatencyHonoursCancellation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := fakevt.New(fakevt.Config{Latency: 3 * time.Second})
		start := time.Now()
		mustStatus(t, get(t, s, ipPath), 200)
		if d := time.Since(start); d != 3*time.Second {
			t.Errorf("answer after %v, want 3s", d)
		}

		ctx, cancel := context.WithCancel(t.Context())
		req := httptest.NewRequestWithContext(ctx, "GET", "http://sim.test"+ipPath, nil)
		req.Header.Set("X-Apikey", testKey)
		rec := httptest.NewRecorder()
		start = time.Now()
		go func() {
			time.Sleep(time.Second)
			cancel()
		}()
		s.ServeHTTP(rec, req)
		if d := time.Since(start); d != time.Second {
			t.Errorf("canceled request returned after %v, want 1s", d)
		}
		if rec.Body.Len() != 0 {
			t.Errorf("canceled request got a body: %s", rec.Body)
		}
		if st := s.Stats(); st.Canceled != 1 || st.Requests != 2 {
			t.Errorf("stats %+v, want 1 canceled of 2", st)
		}
	})
}

func TestStatsAndReset(t *testing.T) {
	s := fakevt.New(fakevt.Config{UnknownPercent: -1})
	sha := sha256Hex("stats")
	get(t, s, "/api/v3/files/"+sha)
	get(t, s, "/api/v3/files/"+sha)
	get(t, s, "/api/v3/files/nothex")
	get(t, s, "/api/v3/domains/example.org/resolutions")
	call(t, s, "GET", ipPath, nil, http.Header{})
	get(t, s, "/api/v3/nope")
	got := s.Stats()
	want := fakevt.Stats{
		Requests: 6,
		ByEndpoint: map[string]int{
			"GET /files/{id}":                   3,
			"GET /domains/{domain}/resolutions": 1,
			"GET /ip_addresses/{ip}":            1,
			"unmatched":                         1,
		},
		ByStatus: map[int]int{200: 3, 400: 1, 401: 1, 404: 1},
		ByKey:    map[string]int{testKey: 5},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Stats (-want +got):\n%s", diff)
	}
	s.Reset()
	if diff := cmp.Diff(fakevt.Stats{ByEndpoint: map[string]int{}, ByStatus: map[int]int{}, ByKey: map[string]int{}}, s.Stats()); diff != "" {
		t.Errorf("Stats after Reset (-want +got):\n%s", diff)
	}
}

func TestConcurrentUse(t *testing.T) {
	s := fakevt.New(fakevt.Config{QuotaPerMinute: 100000, FaultRate: 0.05, AnalysisDelay: -1})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 40 {
				id := sha256Hex(fmt.Sprint(g, i%5))
				get(t, s, "/api/v3/files/"+id)
				get(t, s, fmt.Sprintf("/api/v3/ip_addresses/10.0.%d.%d", g, i))
				if i%10 == 0 {
					body, ct := multipartFile(t, "f.bin", []byte(fmt.Sprint("content", g, i)), nil)
					call(t, s, "POST", "/api/v3/files", body, http.Header{"X-Apikey": {testKey}, "Content-Type": {ct}})
				}
				s.Stats()
			}
		})
	}
	wg.Wait()
	if st := s.Stats(); st.Requests != 8*(80+4) {
		t.Errorf("Requests %d, want %d", st.Requests, 8*84)
	}
}
