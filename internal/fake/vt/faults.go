package vt

import (
	"bytes"
	"net/http"
	"strconv"
	"time"

	"github.com/vtconnector/vtconnector/internal/retry"
)

// defaultSlowDelay is how late a slow answer comes when SlowDelay is 0.
const defaultSlowDelay = 5 * time.Second

// fault is what the fault sequence decided for one request.
type fault int

const (
	noFault fault = iota
	fault503
	faultBare429
	faultMalformed
	faultSlow
)

// drawFault takes the next value of the fault sequence, when any fault is
// configured, and maps it to a fault: the bands [0, FaultRate),
// then Bare429Rate, MalformedRate and SlowRate follow each other, so that
// a server with only FaultRate set draws exactly as before the other
// knobs existed. frac is the position inside the band, in [0,1). s.mu
// must be held.
func (s *Server) drawFault() (f fault, frac float64) {
	c := &s.cfg
	if c.FaultRate <= 0 && c.Bare429Rate <= 0 && c.MalformedRate <= 0 && c.SlowRate <= 0 {
		return noFault, 0
	}
	u := s.faults.Float64()
	lo := 0.0
	for _, b := range []struct {
		f    fault
		rate float64
	}{{fault503, c.FaultRate}, {faultBare429, c.Bare429Rate}, {faultMalformed, c.MalformedRate}, {faultSlow, c.SlowRate}} {
		if b.rate <= 0 {
			continue
		}
		if u < lo+b.rate {
			return b.f, (u - lo) / b.rate
		}
		lo += b.rate
	}
	return noFault, 0
}

// admit injects faults and enforces quota for an authenticated request;
// it writes the rejection and reports false when the request must stop.
// A slow or malformed answer is left to the caller (uploads ignore them).
func (s *Server) admit(w http.ResponseWriter, key string, received time.Time) bool {
	_, _, ok := s.admitFault(w, key, received)
	return ok
}

func (s *Server) admitFault(w http.ResponseWriter, key string, received time.Time) (fault, float64, bool) {
	s.mu.Lock()
	f, frac := s.drawFault()
	allowed := false
	switch f {
	case fault503:
	case faultBare429:
		s.takeQuota(key, received) // another tool's request, when it fits
	default:
		allowed = s.takeQuota(key, received)
	}
	s.mu.Unlock()
	switch {
	case f == fault503:
		s.count(func(st *Stats) { st.Faults++ })
		writeError(w, http.StatusServiceUnavailable, "TransientError", "Transient error, please retry")
		return f, frac, false
	case f == faultBare429:
		s.count(func(st *Stats) { st.Bare429++ })
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusTooManyRequests)
		return f, frac, false
	case !allowed:
		s.count(func(st *Stats) { st.QuotaExceeded++ })
		writeError(w, http.StatusTooManyRequests, "QuotaExceededError", "Quota exceeded")
		return f, frac, false
	}
	return f, frac, true
}

// serveAdmitted runs an API route after fault injection and quota.
func (s *Server) serveAdmitted(w http.ResponseWriter, r *http.Request, rt *route, rq *request) {
	if rt.pattern == overallQuotasPattern { // never faulted nor charged
		rt.handle(w, r, rq)
		return
	}
	f, frac, ok := s.admitFault(w, rq.key, rq.received)
	if !ok {
		return
	}
	switch f {
	case faultSlow:
		s.count(func(st *Stats) { st.Slow++ })
		d := s.cfg.SlowDelay
		if d <= 0 {
			d = defaultSlowDelay
		}
		if retry.Sleep(r.Context(), d) != nil {
			s.count(func(st *Stats) { st.Canceled++ })
			return
		}
	case faultMalformed:
		s.count(func(st *Stats) { st.Malformed++ })
		var buf bufferWriter
		rt.handle(&buf, r, rq)
		body := []byte("<html><body><h1>502 Bad Gateway</h1></body></html>")
		if frac < 0.5 { // the real answer, cut short
			body = buf.body.Bytes()[:buf.body.Len()/2]
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
		return
	}
	rt.handle(w, r, rq)
}

// bufferWriter keeps an answer to be mangled.
type bufferWriter struct {
	header http.Header
	body   bytes.Buffer
}

func (b *bufferWriter) Header() http.Header {
	if b.header == nil {
		b.header = http.Header{}
	}
	return b.header
}
func (b *bufferWriter) Write(p []byte) (int, error) { return b.body.Write(p) }
func (b *bufferWriter) WriteHeader(int)             {}
