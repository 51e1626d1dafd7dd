package obs

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vtconnector/vtconnector/internal/engine"
)

func TestStatusShowsWhereTheBudgetComesFrom(t *testing.T) {
	learnedAt := fixedNow.Add(-10 * time.Minute)
	budget := engine.Budget{
		Limits:     engine.Limits{PerMinute: 4, PerDay: 20_000, PerMonth: 450_000},
		Configured: engine.Limits{PerMinute: 4},
		Learned:    engine.LearnPerDay | engine.LearnPerMonth,
		ReadAt:     learnedAt,
	}
	o := New(Sources{Name: "carbonblack", Clock: func() time.Time { return fixedNow },
		Limits: engine.PublicKeyLimits, Budget: func() engine.Budget { return budget },
		Quota: func(context.Context, time.Time) (engine.Usage, error) { return engine.Usage{DayUsed: 100}, nil }}, nil)
	page := body(t, get(t, o, "/status"))
	want := "Budget source: learned from VirusTotal at 2026-03-14T14:59:26Z (per day, per month), the rest configured."
	if !strings.Contains(page, want) {
		t.Errorf("the page lacks %q", want)
	}
	// The windows use the learned budget, not the configured defaults.
	if !strings.Contains(page, `<td class="num limit">20000</td>`) {
		t.Errorf("the day window does not show the learned budget 20000")
	}
	js := body(t, get(t, o, "/status.json"))
	if !strings.Contains(js, `"budget_source": "learned from VirusTotal at 2026-03-14T14:59:26Z (per day, per month), the rest configured"`) {
		t.Errorf("status.json lacks the budget source:\n%s", js)
	}

	budget = engine.Budget{Limits: engine.PublicKeyLimits, Configured: engine.PublicKeyLimits}
	if page := body(t, get(t, o, "/status")); !strings.Contains(page, "Budget source: configured.") {
		t.Errorf("the page does not say the budget is configured")
	}
}
