package opencti

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/vtconnector/vtconnector/internal/engine"
	"github.com/vtconnector/vtconnector/internal/store"
	"github.com/vtconnector/vtconnector/internal/vt"
)

// fakePublisher records the bundles published on the push queue.
type fakePublisher struct {
	mu     sync.Mutex
	bodies [][]byte
}

func (f *fakePublisher) publish(_ context.Context, body []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bodies = append(f.bodies, body)
	return nil
}

func (f *fakePublisher) close() {}

// newResendWorld is a connector pushing through RabbitMQ (a fake
// publisher) whose platform already knows the work "work-crash" as wp: a
// previous run processed the request and was killed before it could
// record that it had.
func newResendWorld(t *testing.T, wp WorkProgress) (*octiWorld, *fakePublisher) {
	t.Helper()
	w := newOctiWorld(t, map[string]string{"CONNECTOR_QUEUE_PROTOCOL": "amqp"})
	pub := &fakePublisher{}
	w.c.pub = pub
	w.p.works = map[string]WorkProgress{"work-crash": wp}
	w.eng.lookup = func(r engine.Request) (engine.Result, error) {
		return engine.Result{Kind: vt.KindIP, ID: r.ID, Found: true, Object: ipReport()}, nil
	}
	return w, pub
}

// TestRequestPartlySentBeforeACrashLeavesNoWorkWaiting: the killed run
// announced 2 bundles and published one; the request processed again must
// not announce its bundles a second time, or the work waits for ever for
// bundles nobody sends (found by the fault suite, opencti/sigkill).
func TestRequestPartlySentBeforeACrashLeavesNoWorkWaiting(t *testing.T) {
	w, pub := newResendWorld(t, WorkProgress{Found: true, Status: "progress", Expected: 2, Processed: 1})
	if !w.handle(t.Context(), enrichMessage(t, "work-crash", testIP(), "IPv4-Addr")) {
		t.Fatal("not acknowledged")
	}
	sent := len(pub.bodies)
	if sent == 0 {
		t.Fatal("nothing published: the bundles the killed run did not send are missing")
	}
	// The killed run published at least the bundle imported (1): the work
	// completes only if what is announced in all is at most what arrives.
	if total := 2 + w.p.announced["work-crash"]; total > 1+sent || total < sent {
		t.Errorf("%d bundles announced in all, %d sent now and at least 1 before: the work never completes (or completes early)", total, sent)
	}
	if ends := w.p.ended(); len(ends) != 1 || ends[0].inError {
		t.Errorf("work ends %+v, want one", ends)
	}
}

// TestRequestAllSentBeforeACrashIsOnlyReported: the killed run published
// every bundle and they were imported; only the work's end is missing.
func TestRequestAllSentBeforeACrashIsOnlyReported(t *testing.T) {
	w, pub := newResendWorld(t, WorkProgress{Found: true, Status: "complete", Expected: 3, Processed: 3})
	if !w.handle(t.Context(), enrichMessage(t, "work-crash", testIP(), "IPv4-Addr")) {
		t.Fatal("not acknowledged")
	}
	if len(pub.bodies) != 0 || w.p.announced["work-crash"] != 0 {
		t.Errorf("%d bundles sent again, %d more announced; want none", len(pub.bodies), w.p.announced["work-crash"])
	}
	if ends := w.p.ended(); len(ends) != 1 || ends[0].inError {
		t.Errorf("work ends %+v, want one", ends)
	}
}

// TestRequestReportedBeforeACrashIsNotProcessedAgain: the killed run
// reported the work (toProcessed) but died before recording it; the
// request is done, not sent nor reported twice, and its work is not put
// back in progress (toReceived would).
func TestRequestReportedBeforeACrashIsNotProcessedAgain(t *testing.T) {
	w, pub := newResendWorld(t, WorkProgress{Found: true, Status: "complete", Reported: true, Expected: 3, Processed: 3})
	if !w.handle(t.Context(), enrichMessage(t, "work-crash", testIP(), "IPv4-Addr")) {
		t.Fatal("not acknowledged")
	}
	if len(pub.bodies) != 0 || len(w.p.ended()) != 0 || len(w.p.received) != 0 {
		t.Errorf("%d bundles, work ends %+v, received %v: want nothing sent again", len(pub.bodies), w.p.ended(), w.p.received)
	}
	it, ok, err := w.st.GetItem(t.Context(), KindMessage, "work:work-crash")
	if err != nil || !ok || it.State != store.StateDone {
		t.Errorf("request %+v %v %v: want it done", it, ok, err)
	}
}

// TestWorksTheConnectorMayNotReadAreSentAsBefore: a platform that refuses
// the work query (a user without the right, an older platform) gets the
// request processed as pycti does.
func TestWorksTheConnectorMayNotReadAreSentAsBefore(t *testing.T) {
	w, pub := newResendWorld(t, WorkProgress{})
	w.p.readErr = fmt.Errorf("opencti: work: %w: %w", ErrPlatformAuth, &GraphQLError{Name: "FORBIDDEN_ACCESS", Message: "no"})
	if !w.handle(t.Context(), enrichMessage(t, "work-crash", testIP(), "IPv4-Addr")) {
		t.Fatal("not acknowledged")
	}
	if len(pub.bodies) == 0 || w.p.announced["work-crash"] != len(pub.bodies) {
		t.Errorf("%d bundles sent, %d announced: want every bundle sent and announced", len(pub.bodies), w.p.announced["work-crash"])
	}
	if ends := w.p.ended(); len(ends) != 1 || ends[0].inError {
		t.Errorf("work ends %+v, want one", ends)
	}
}
