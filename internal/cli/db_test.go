package cli

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	fakevt "github.com/vtconnector/vtconnector/internal/fake/vt"
)

func TestLookupWithDBAsksOnlyForWhatIsMissing(t *testing.T) {
	sim := fakevt.New(fakevt.Config{})
	db := filepath.Join(t.TempDir(), "vtc.db")
	var qs []string
	for i := range 5 {
		qs = append(qs, fmt.Sprintf("%064x", i+100))
	}
	base := []string{"lookup", "--apikey", "k", "--vt-url", simBase, "--db", db, "--rate", "0", "--max-wait", "1m", "--concurrency", "1"}

	// The day's budget (3) runs out: 3 answered, 2 not.
	r := runCLI(t, sim, "", nil, append(append(base, "--daily", "3"), qs...)...)
	if r.code != 1 {
		t.Fatalf("first run: exit %d, want 1\n%s", r.code, r.stderr)
	}
	got := decodeLines(t, r.stdout)
	if len(got) != 5 || got[2].Error != "" || !strings.Contains(got[3].Error, "day quota") {
		t.Fatalf("first run results: %+v", got)
	}
	if n := sim.Stats().APIRequests(); n != 3 {
		t.Fatalf("first run sent %d requests, want 3", n)
	}

	// Same input with a larger budget: the 3 answers come from the
	// database, the day's 3 used requests are remembered, and only the 2
	// missing ones are asked.
	r = runCLI(t, sim, "", nil, append(append(base, "--daily", "5"), qs...)...)
	if r.code != 0 {
		t.Fatalf("second run: exit %d\n%s", r.code, r.stderr)
	}
	got = decodeLines(t, r.stdout)
	for i, res := range got {
		if res.Error != "" || res.Cached != (i < 3) {
			t.Errorf("second run result %d: cached=%v error=%q; want the first 3 cached", i, res.Cached, res.Error)
		}
	}
	if n := sim.Stats().APIRequests(); n != 5 {
		t.Errorf("after the second run the simulator saw %d requests, want 5", n)
	}

	// A third run with the same budget asks nothing: all cached.
	r = runCLI(t, sim, "", nil, append(append(base, "--daily", "5"), qs...)...)
	if r.code != 0 || sim.Stats().APIRequests() != 5 {
		t.Errorf("third run: exit %d, %d requests; want 0 and no new request", r.code, sim.Stats().APIRequests())
	}

	// The admin commands see the same database.
	r = runCLI(t, sim, "", nil, "db", "stats", "--db", db)
	if r.code != 0 || !strings.Contains(r.stdout, "cache: ") {
		t.Fatalf("db stats: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	var entries int
	if _, err := fmt.Sscanf(r.stdout[strings.Index(r.stdout, "cache: "):], "cache: %d objects", &entries); err != nil || entries < 5 {
		t.Errorf("db stats shows %d cached objects (%v), want at least 5:\n%s", entries, err, r.stdout)
	}
	r = runCLI(t, sim, "", nil, "db", "purge-cache", "--db", db)
	if r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("%d cached objects deleted", entries)) {
		t.Errorf("db purge-cache: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, sim, "", nil, "db", "migrate", "--db", db)
	if r.code != 0 || !strings.Contains(r.stdout, "sqlite database at schema version") {
		t.Errorf("db migrate: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, sim, "", nil, "db", "requeue", "--db", db, "--state", "done")
	if r.code != 0 || !strings.Contains(r.stdout, "0 items queued again") {
		t.Errorf("db requeue: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestDBCommandUsageErrors(t *testing.T) {
	sim := fakevt.New(fakevt.Config{})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"db", "stats"}, "--db is required"},
		{[]string{"db", "requeue", "--db", filepath.Join(t.TempDir(), "x.db"), "--state", "leased"}, `--state "leased"`},
		{[]string{"db", "purge-cache", "--db", filepath.Join(t.TempDir(), "x.db"), "--older-than", "-1h"}, "must not be negative"},
	} {
		r := runCLI(t, sim, "", nil, tc.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	r := runCLI(t, sim, "", nil, "db", "stats", "--db", "postgres://nobody:secretpw@127.0.0.1:1/none")
	if r.code == 0 || strings.Contains(r.stderr, "secretpw") {
		t.Errorf("unreachable database: exit %d, stderr %q (must fail and not show the password)", r.code, r.stderr)
	}
}
