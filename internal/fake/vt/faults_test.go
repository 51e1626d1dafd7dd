package vt_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	fakevt "github.com/vtconnector/vtconnector/internal/fake/vt"
)

// answerKind classifies one answer of the simulator as a client sees it.
func answerKind(code int, body []byte, retryAfter string, took time.Duration) string {
	switch {
	case code == 503:
		return "503"
	case code == 429 && len(body) == 0 && retryAfter == "":
		return "bare429"
	case code == 429:
		return "429"
	case code == 200 && !json.Valid(body):
		return "malformed"
	case code == 200 && took > 0:
		return "slow"
	case code == 200:
		return "ok"
	}
	return fmt.Sprint(code)
}

func TestFaultKnobsFollowTheSeededSequence(t *testing.T) {
	run := func(seed int64) ([]string, fakevt.Stats) {
		var kinds []string
		var st fakevt.Stats
		synctest.Test(t, func(t *testing.T) {
			s := fakevt.New(fakevt.Config{Seed: seed, FaultRate: 0.1, Bare429Rate: 0.1, MalformedRate: 0.1, SlowRate: 0.1, SlowDelay: 3 * time.Second})
			for range 400 {
				start := time.Now()
				rec := get(t, s, ipPath)
				kinds = append(kinds, answerKind(rec.Code, rec.Body.Bytes(), rec.Header().Get("Retry-After"), time.Since(start)))
				if d := time.Since(start); d != 0 && d != 3*time.Second {
					t.Fatalf("an answer took %s: slow answers take SlowDelay, others no time", d)
				}
			}
			st = s.Stats()
		})
		return kinds, st
	}
	first, st := run(11)
	count := map[string]int{}
	for _, k := range first {
		count[k]++
	}
	for _, k := range []string{"503", "bare429", "malformed", "slow"} {
		if count[k] < 20 || count[k] > 65 {
			t.Errorf("%d %s answers of 400, want about 40", count[k], k)
		}
	}
	if count["ok"]+count["503"]+count["bare429"]+count["malformed"]+count["slow"] != 400 {
		t.Errorf("unexpected answers: %v", count)
	}
	if st.Faults != count["503"] || st.Bare429 != count["bare429"] || st.Malformed != count["malformed"] || st.Slow != count["slow"] {
		t.Errorf("stats %+v do not match the answers %v", st, count)
	}
	again, _ := run(11)
	if diff := cmp.Diff(first, again); diff != "" {
		t.Errorf("same seed, different fault sequence (-first +second):\n%s", diff)
	}
}

func TestBare429CountsAsAnotherToolsUse(t *testing.T) {
	s := fakevt.New(fakevt.Config{Bare429Rate: 1, QuotaPerDay: 2})
	for i := range 3 {
		rec := get(t, s, ipPath)
		if rec.Code != 429 || rec.Body.Len() != 0 || rec.Header().Get("Retry-After") != "" {
			t.Fatalf("request %d: %d %q, want a bare 429", i, rec.Code, rec.Body.String())
		}
	}
	q := overallQuotas(t, s, testKey)
	if got := q["api_requests_daily"].User; got.Allowed != 2 || got.Used != 2 {
		t.Errorf("daily %+v: the bare 429s should count as another tool's use, up to the allowance", got)
	}
}

type quotaWindow struct {
	User struct{ Allowed, Used int64 } `json:"user"`
}

func overallQuotas(t *testing.T, s http.Handler, id string) map[string]quotaWindow {
	t.Helper()
	rec := get(t, s, "/api/v3/users/"+id+"/overall_quotas")
	mustStatus(t, rec, 200)
	return decode[struct {
		Data map[string]quotaWindow `json:"data"`
	}](t, rec.Body.Bytes()).Data
}

func TestOverallQuotasReportsAllowancesAndUse(t *testing.T) {
	s := fakevt.New(fakevt.Config{QuotaPerMinute: 2, QuotaPerDay: 500, QuotaPerMonth: 15_500})
	mustStatus(t, get(t, s, ipPath), 200)
	mustStatus(t, get(t, s, ipPath), 200)
	wantError(t, get(t, s, ipPath), 429, "QuotaExceededError")
	// Reading the quotas is never charged nor refused.
	var q map[string]quotaWindow
	for range 3 {
		q = overallQuotas(t, s, testKey)
	}
	want := map[string][2]int64{"api_requests_hourly": {120, 2}, "api_requests_daily": {500, 2}, "api_requests_monthly": {15_500, 2}}
	for w, au := range want {
		if got := q[w].User; got.Allowed != au[0] || got.Used != au[1] {
			t.Errorf("%s: %+v, want allowed %d used %d", w, got, au[0], au[1])
		}
	}
	wantError(t, get(t, s, "/api/v3/users/someone-else/overall_quotas"), 403, "ForbiddenError")

	unlimited := overallQuotas(t, fakevt.New(fakevt.Config{}), testKey)
	if got := unlimited["api_requests_daily"].User.Allowed; got != 1_000_000_000 {
		t.Errorf("unlimited daily allowance reported as %d", got)
	}
}

func TestMonthlyQuota(t *testing.T) {
	s := fakevt.New(fakevt.Config{QuotaPerMonth: 2})
	mustStatus(t, get(t, s, ipPath), 200)
	mustStatus(t, get(t, s, ipPath), 200)
	wantError(t, get(t, s, ipPath), 429, "QuotaExceededError")
}
