package opencti

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vtconnector/vtconnector/internal/engine"
	"github.com/vtconnector/vtconnector/internal/store"
	"github.com/vtconnector/vtconnector/internal/vt"
)

func testIP() map[string]any {
	return map[string]any{"type": "ipv4-addr", "spec_version": "2.1", "id": "ipv4-addr--1f4f2c8a-6a4b-5d3e-9c2a-1b0c9e8d7f6a", "value": "198.51.100.7"}
}

// drainUntil works parked requests until done says the test may go on,
// failing after a generous deadline (parked items become ready after the
// tuned PollEvery and store backoff of a millisecond).
func (w *octiWorld) drainUntil(t *testing.T, what string, done func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !done() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		w.drain(t.Context())
		time.Sleep(time.Millisecond)
	}
}

func (p *fakePlatform) ended() []workEnd {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]workEnd(nil), p.processed...)
}

func TestRedeliveredRequestIsRecognisedNotProcessedTwice(t *testing.T) {
	w := newOctiWorld(t, nil)
	w.eng.lookup = func(r engine.Request) (engine.Result, error) {
		return engine.Result{Kind: vt.KindIP, ID: r.ID, Found: true, Object: ipReport()}, nil
	}
	body := enrichMessage(t, "work-twice", testIP(), "IPv4-Addr")
	for i := range 3 {
		if !w.handle(t.Context(), body) {
			t.Fatalf("delivery %d not acknowledged", i+1)
		}
	}
	if len(w.eng.calls) != 1 || len(w.p.processed) != 1 || len(w.p.pushed) != 1 {
		t.Errorf("calls %v, %d work ends, %d bundles: a redelivered request must be processed once", w.eng.calls, len(w.p.processed), len(w.p.pushed))
	}
}

func TestQuotaSpentParksTheRequestThenFinishesIt(t *testing.T) {
	w := newOctiWorld(t, nil)
	spent := true
	w.eng.lookup = func(r engine.Request) (engine.Result, error) {
		if r.MaxWait != w.c.cfg.DeliveryTimeout {
			t.Errorf("lookup with MaxWait %s, want the delivery bound %s", r.MaxWait, w.c.cfg.DeliveryTimeout)
		}
		if spent {
			return engine.Result{}, &engine.QuotaExhaustedError{Window: "day", ResetAt: time.Now().Add(20 * time.Hour)}
		}
		return engine.Result{Kind: vt.KindIP, ID: r.ID, Found: true, Object: ipReport()}, nil
	}
	if !w.handle(t.Context(), enrichMessage(t, "work-quota", testIP(), "IPv4-Addr")) {
		t.Fatal("not acknowledged: a request waiting for quota must not hold its message")
	}
	it, ok, err := w.st.GetItem(t.Context(), KindMessage, "work:work-quota")
	if err != nil || !ok || it.State != store.StateRetry || it.Attempts != 0 {
		t.Fatalf("request %+v %v %v: want it parked for quota, uncounted", it, ok, err)
	}
	if it.NextAttemptAt.After(time.Now().Add(time.Minute)) {
		t.Errorf("parked until %s: a spent quota must be re-checked soon, not at its reset", it.NextAttemptAt)
	}
	if len(w.p.processed) != 0 {
		t.Fatalf("the work ended while waiting for quota: %+v", w.p.processed)
	}
	waiting := false
	for _, r := range w.p.received {
		waiting = waiting || strings.Contains(r, "Waiting for VirusTotal quota")
	}
	if !waiting {
		t.Errorf("the work does not say it waits for quota: %v", w.p.received)
	}
	spent = false
	w.drainUntil(t, "the parked request to finish", func() bool { return len(w.p.ended()) == 1 })
	if e := w.p.ended()[0]; e.inError || len(w.p.pushed) != 1 {
		t.Errorf("work end %+v, %d bundles: want one enrichment once the quota freed", e, len(w.p.pushed))
	}
}

func TestVirusTotalDownIsRetriedThenReportedFailed(t *testing.T) {
	w := newOctiWorld(t, nil)
	w.eng.lookup = func(engine.Request) (engine.Result, error) {
		return engine.Result{}, &vt.APIError{Status: 503, Code: "TransientError"}
	}
	if !w.handle(t.Context(), enrichMessage(t, "work-down", testIP(), "IPv4-Addr")) {
		t.Fatal("not acknowledged")
	}
	w.drainUntil(t, "the work to be reported failed", func() bool { return len(w.p.ended()) == 1 })
	if e := w.p.ended()[0]; !e.inError {
		t.Errorf("work end %+v: want an error after %d attempts", e, MaxAttempts)
	}
	if n := len(w.eng.calls); n != MaxAttempts {
		t.Errorf("%d lookups, want %d attempts", n, MaxAttempts)
	}
	it, _, _ := w.st.GetItem(t.Context(), KindMessage, "work:work-down")
	if it.State != store.StateFailed {
		t.Errorf("request state %s, want failed (recorded)", it.State)
	}
}

func TestPanickingRequestIsReportedAndOthersGoOn(t *testing.T) {
	w := newOctiWorld(t, nil)
	w.eng.lookup = func(r engine.Request) (engine.Result, error) {
		if r.ID == "198.51.100.66" {
			panic("boom")
		}
		return engine.Result{Kind: vt.KindIP, ID: r.ID, Found: true, Object: ipReport()}, nil
	}
	poison := testIP()
	poison["value"], poison["id"] = "198.51.100.66", "ipv4-addr--2f4f2c8a-6a4b-5d3e-9c2a-1b0c9e8d7f6a"
	if !w.handle(t.Context(), enrichMessage(t, "work-poison", poison, "IPv4-Addr")) {
		t.Fatal("a poison message was not acknowledged")
	}
	if !w.handle(t.Context(), enrichMessage(t, "work-good", testIP(), "IPv4-Addr")) {
		t.Fatal("not acknowledged")
	}
	ends := w.p.ended()
	if len(ends) != 2 || ends[0].work != "work-poison" || !ends[0].inError || !strings.Contains(ends[0].msg, "internal error") ||
		ends[1].work != "work-good" || ends[1].inError {
		t.Errorf("work ends %+v: want the poison one failed with the reason, the good one done", ends)
	}
	it, _, _ := w.st.GetItem(t.Context(), KindMessage, "work:work-poison")
	if it.State != store.StateFailed || !strings.Contains(it.LastError, "boom") {
		t.Errorf("poison request %+v: want it recorded failed", it)
	}
}

func TestUnparkableMessageIsHandedBackThenDropped(t *testing.T) {
	w := newOctiWorld(t, map[string]string{"VTCONNECTOR_DELIVERY_TIMEOUT": "1s"})
	w.c.d.Store = brokenStore{w.st}
	ctx := t.Context()
	if w.c.receive(ctx, enrichMessage(t, "work-x", testIP(), "IPv4-Addr")) {
		t.Fatal("a message the store did not take was acknowledged: it would be lost")
	}
}

// brokenStore refuses every new item.
type brokenStore struct{ *store.Store }

func (brokenStore) Enqueue(context.Context, store.NewItem) (bool, error) {
	return false, errors.New("database is down")
}
