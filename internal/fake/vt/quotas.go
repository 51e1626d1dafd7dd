package vt

import (
	"net/http"
	"time"
)

// overallQuotasPattern is the quota summary route. Its id is the API key
// itself (VirusTotal also accepts a user id, which the simulator has not).
const overallQuotasPattern = "users/{id}/overall_quotas"

// unlimitedAllowance is what the simulator reports for a window it does
// not limit, as VirusTotal reports 1,000,000,000 for one it hardly does.
const unlimitedAllowance = 1_000_000_000

// keyQuota is the usage of one API key.
type keyQuota struct {
	minute []time.Time // receipt times of accepted requests in the last 60 s
	hour   string      // UTC hour of hourCount
	day    string      // UTC day of count
	month  string      // UTC month of monthCount
	count  int
	// hourCount and monthCount are kept for the quota summary.
	hourCount, monthCount int
}

// roll starts new periods at t. It changes nothing else.
func (q *keyQuota) roll(t time.Time) {
	t = t.UTC()
	if h := t.Format("2006-01-02T15"); q.hour != h {
		q.hour, q.hourCount = h, 0
	}
	if d := t.Format(time.DateOnly); q.day != d {
		q.day, q.count = d, 0
	}
	if m := t.Format("2006-01"); q.month != m {
		q.month, q.monthCount = m, 0
	}
}

func (s *Server) keyQuota(key string) *keyQuota {
	q := s.quotas[key]
	if q == nil {
		q = &keyQuota{}
		s.quotas[key] = q
	}
	return q
}

// takeQuota records a request received at t for key if the key has quota
// left; rejected requests are not recorded. s.mu must be held.
func (s *Server) takeQuota(key string, t time.Time) bool {
	q := s.keyQuota(key)
	if s.cfg.QuotaPerMinute > 0 {
		kept := q.minute[:0]
		for _, at := range q.minute {
			if t.Sub(at) < time.Minute {
				kept = append(kept, at)
			}
		}
		q.minute = kept
		if len(q.minute) >= s.cfg.QuotaPerMinute {
			return false
		}
	}
	q.roll(t)
	if s.cfg.QuotaPerDay > 0 && q.count >= s.cfg.QuotaPerDay {
		return false
	}
	if s.cfg.QuotaPerMonth > 0 && q.monthCount >= s.cfg.QuotaPerMonth {
		return false
	}
	if s.cfg.QuotaPerMinute > 0 {
		q.minute = append(q.minute, t)
	}
	q.count++
	q.hourCount++
	q.monthCount++
	return true
}

// handleOverallQuotas reports the key's allowances (the configured
// quotas; the hourly one is 60 × QuotaPerMinute) and its use, including
// what bare 429s charged as another tool's. Asking for another id is
// forbidden.
func (s *Server) handleOverallQuotas(w http.ResponseWriter, _ *http.Request, rq *request) {
	if rq.params[0] != rq.key {
		writeError(w, http.StatusForbidden, "ForbiddenError", "You are not authorized to perform the requested operation")
		return
	}
	s.mu.Lock()
	q := s.keyQuota(rq.key)
	q.roll(rq.received)
	hour, day, month := q.hourCount, q.count, q.monthCount
	s.mu.Unlock()
	window := func(allowed, used int) obj {
		if allowed <= 0 {
			allowed = unlimitedAllowance
		}
		return obj{"user": obj{"allowed": allowed, "used": used}}
	}
	writeJSON(w, http.StatusOK, dataEnvelope(obj{
		"api_requests_hourly":  window(s.cfg.QuotaPerMinute*60, hour),
		"api_requests_daily":   window(s.cfg.QuotaPerDay, day),
		"api_requests_monthly": window(s.cfg.QuotaPerMonth, month),
	}))
}

// APIRequests is Requests without the reads of the key's quota summary
// (GET /users/{id}/overall_quotas), which VirusTotal does not charge: the
// requests that cost the key's budget.
func (s Stats) APIRequests() int {
	return s.Requests - s.ByEndpoint["GET /"+overallQuotasPattern]
}
