package engine_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vtconnector/vtconnector/internal/engine"
	fakevt "github.com/vtconnector/vtconnector/internal/fake/vt"
	"github.com/vtconnector/vtconnector/internal/vt"
)

// handlerTransport serves requests in process, so that the simulator runs
// inside a synctest bubble.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

func TestBudgetLearnedFromTheSimulator(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := fakevt.New(fakevt.Config{QuotaPerMinute: 6, QuotaPerDay: 30, QuotaPerMonth: 1000, Seed: 3})
		c, err := vt.New("sim-key", vt.WithBaseURL("http://vt.sim/api/v3"), vt.WithHTTPClient(&http.Client{Transport: handlerTransport{sim}}))
		if err != nil {
			t.Fatal(err)
		}
		// Another tool used 10 of the day's 30 before we start.
		for i := range 10 {
			if i%6 == 5 {
				time.Sleep(time.Minute)
			}
			if _, err := c.IPAddress(t.Context(), fmt.Sprintf("10.1.0.%d", i)); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(time.Minute)
		// Nothing configured: the free key's defaults would allow 500 a day.
		sched := engine.NewScheduler(engine.NewMemLedger(), engine.PublicKeyLimits, time.Minute, nil)
		defer sched.Close()
		e := engine.New(c, engine.NewMemCache(), sched, engine.Options{Quotas: c, Learn: engine.LearnAll})
		answered := 0
		var qe *engine.QuotaExhaustedError
		for i := range 25 {
			_, err := e.Lookup(t.Context(), engine.Request{Kind: vt.KindIP, ID: fmt.Sprintf("10.2.0.%d", i),
				CallOptions: engine.CallOptions{MaxWait: time.Hour}})
			switch {
			case err == nil:
				answered++
			case errors.As(err, &qe):
			default:
				t.Fatal(err)
			}
		}
		if answered != 20 {
			t.Errorf("%d answered, want the 20 left of the day", answered)
		}
		if qe == nil || qe.Window != engine.WindowDay {
			t.Errorf("error %v, want the day spent", qe)
		}
		if want := (engine.Limits{PerMinute: 6, PerDay: 30, PerMonth: 1000}); sched.Limits() != want {
			t.Errorf("limits %+v, want %+v learned from the simulator", sched.Limits(), want)
		}
		if st := sim.Stats(); st.QuotaExceeded != 0 {
			t.Errorf("the simulator refused %d requests: the learned budget should have foreseen every refusal", st.QuotaExceeded)
		}
	})
}
