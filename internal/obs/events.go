package obs

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vtconnector/vtconnector/internal/engine"
	"github.com/vtconnector/vtconnector/internal/vt"
)

// The Observer is the engine's engine.Events: the wiring builds the
// Observer first and gives it to the engine at construction, so the
// engine's counters are the Observer's own tally of what the engine told
// it (Sources.Engine, when set, is read instead).
var _ engine.Events = (*Observer)(nil)

// engineTally counts the engine's events.
type engineTally struct {
	calls, hits, shared, quota429, failures atomic.Int64
}

func (t *engineTally) Counters() engine.Counters {
	return engine.Counters{APICalls: t.calls.Load(), CacheHits: t.hits.Load(), Shared: t.shared.Load(),
		Quota429: t.quota429.Load(), Failures: t.failures.Load()}
}

// Request implements engine.Events: one request sent to VirusTotal.
func (o *Observer) Request(endpoint string, err error, d time.Duration) {
	o.tally.calls.Add(1)
	switch outcome := VTOutcome(err); {
	case errors.Is(err, vt.ErrQuota):
		o.tally.quota429.Add(1)
	case outcome != OutcomeOK && outcome != OutcomeNotFound:
		o.tally.failures.Add(1)
	}
	o.VTRequest(endpoint, VTOutcome(err), d)
}

// Answered implements engine.Events: a lookup answered from the cache or
// by joining another's request.
func (o *Observer) Answered(from string) {
	if from == "shared" {
		o.tally.shared.Add(1)
		return
	}
	o.tally.hits.Add(1)
}

// UploadRefused implements engine.Events: the upload policy refused an
// upload for reason.
func (o *Observer) UploadRefused(reason string) {
	o.uploadsRefused.WithLabelValues(reason).Inc()
	o.mu.Lock()
	o.refused[reason]++
	o.mu.Unlock()
}

// engineCounters are the engine's running totals: the source's when set,
// else the tally of events.
func (o *Observer) engineCounters() engine.Counters {
	if o.src.Engine != nil {
		return o.src.Engine.Counters()
	}
	return o.tally.Counters()
}

func newRefusedCounter() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "uploads_refused_total",
		Help: "Uploads to VirusTotal the upload policy refused, by reason (size, file_type, signed, tlp).",
	}, []string{"reason"})
}
