package cli

import (
	"github.com/vtconnector/vtconnector/internal/store/storetest"

	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	fakevt "github.com/vtconnector/vtconnector/internal/fake/vt"
	"github.com/vtconnector/vtconnector/internal/store"
)

// pgSchemaDSN is a PostgreSQL schema of the test's own, dropped at the
// end, reached with password (the test server trusts local connections
// and ignores it).
func pgSchemaDSN(t testing.TB, password string) string {
	t.Helper()
	return storetest.PostgresDSN(t, "vtc_cli", password)
}

// A cache and queue filled by lookup on SQLite move to PostgreSQL and back:
// lookup on the copy answers everything from it, db stats agree, and no
// output shows the password.
func TestDBCopySQLiteToPostgresAndBack(t *testing.T) {
	const password = "copy-s3cret-pw"
	pg := pgSchemaDSN(t, password)
	sim := fakevt.New(fakevt.Config{})
	dir := t.TempDir()
	src, back := filepath.Join(dir, "src.db"), filepath.Join(dir, "back.db")
	var qs []string
	for i := range 20 {
		qs = append(qs, fmt.Sprintf("%064x", i+500))
	}
	lookup := func(db string) runResult {
		return runCLI(t, sim, "", nil, append([]string{"lookup", "--apikey", "k", "--vt-url", simBase, "--db", db, "--rate", "0", "--concurrency", "4"}, qs...)...)
	}
	if r := lookup(src); r.code != 0 {
		t.Fatalf("lookup: exit %d\n%s", r.code, r.stderr)
	}
	asked := sim.Stats().APIRequests()
	noSecret := func(what string, r runResult) {
		t.Helper()
		if strings.Contains(r.stdout+r.stderr, password) {
			t.Errorf("%s shows the password:\n%s%s", what, r.stdout, r.stderr)
		}
	}

	r := runCLI(t, sim, "", nil, "db", "copy", "--from", src, "--to", pg, "--batch-rows", "3")
	noSecret("copy to PostgreSQL", r)
	if r.code != 0 || !strings.Contains(r.stdout, "counts agree") || !strings.Contains(r.stdout, "vt_objects") || strings.Contains(r.stderr, "so far") {
		t.Fatalf("copy to PostgreSQL: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// Copying again into the now non-empty target is refused...
	r = runCLI(t, sim, "", nil, "db", "copy", "--from", src, "--to", pg)
	noSecret("second copy", r)
	if r.code != 1 || !strings.Contains(r.stderr, "not empty") || !strings.Contains(r.stderr, "--overwrite") {
		t.Fatalf("copy into a non-empty target: exit %d\n%s", r.code, r.stderr)
	}
	// ...unless told to overwrite it.
	r = runCLI(t, sim, "", nil, "db", "copy", "--from", src, "--to", pg, "--overwrite")
	if r.code != 0 {
		t.Fatalf("copy --overwrite: exit %d\n%s", r.code, r.stderr)
	}
	r = runCLI(t, sim, "", nil, "db", "copy", "--from", pg, "--to", back)
	noSecret("copy back", r)
	if r.code != 0 || !strings.Contains(r.stdout, "(postgres) to "+back+" (sqlite)") {
		t.Fatalf("copy back to SQLite: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	stats := func(db string) string {
		r := runCLI(t, sim, "", nil, "db", "stats", "--db", db)
		if r.code != 0 {
			t.Fatalf("db stats: exit %d\n%s", r.code, r.stderr)
		}
		out, _, _ := strings.Cut(r.stdout, "oldest waiting") // an age: changes
		return out
	}
	if a, b, c := stats(src), stats(pg), stats(back); a != b || a != c {
		t.Errorf("db stats differ:\nsource:\n%s\nPostgreSQL:\n%s\nback:\n%s", a, b, c)
	}
	for _, db := range []string{pg, back} {
		r := lookup(db)
		if r.code != 0 {
			t.Fatalf("lookup on the copy: exit %d\n%s", r.code, r.stderr)
		}
		for i, res := range decodeLines(t, r.stdout) {
			if !res.Cached || res.Error != "" {
				t.Errorf("lookup on the copy, result %d: cached=%v error=%q; want from the copied cache", i, res.Cached, res.Error)
			}
		}
	}
	if n := sim.Stats().APIRequests(); n != asked {
		t.Errorf("lookups on the copies asked VirusTotal %d times, want none", n-asked)
	}
}

// An item leased by a running instance stops the copy, which says how to
// go on; --release-leases copies it as queued.
func TestDBCopyLiveLeases(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.db")
	st, err := store.Open(t.Context(), src)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Enqueue(t.Context(), store.NewItem{Kind: "cb.binary", Key: "k1"}); err != nil {
		t.Fatal(err)
	}
	if items, err := st.Claim(t.Context(), "host-1/worker-0", nil, 1, time.Hour); err != nil || len(items) != 1 {
		t.Fatalf("claim: %v %v", items, err)
	}
	st.Close()
	r := runCLI(t, nil, "", nil, "db", "copy", "--from", src, "--to", filepath.Join(dir, "a.db"))
	if r.code != 1 || !strings.Contains(r.stderr, "1 work items are leased") || !strings.Contains(r.stderr, "--release-leases") {
		t.Fatalf("copy with a live lease: exit %d\n%s", r.code, r.stderr)
	}
	r = runCLI(t, nil, "", nil, "db", "copy", "--from", src, "--to", filepath.Join(dir, "a.db"), "--release-leases")
	if r.code != 0 || !strings.Contains(r.stdout, "1 leased items were copied as queued") {
		t.Fatalf("copy --release-leases: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, nil, "", nil, "db", "stats", "--db", filepath.Join(dir, "a.db"))
	if !regexp.MustCompile(`cb\.binary\s+queued\s+1\n`).MatchString(r.stdout) {
		t.Errorf("the copy's queue:\n%s; want the item queued", r.stdout)
	}
}

func TestDBCopyUsageAndBadDSNs(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "x.db")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"db", "copy", "--from", db}, 2, "--from and --to are both required"},
		{[]string{"db", "copy", "--to", db}, 2, "--from and --to are both required"},
		{[]string{"db", "copy", "--db", db, "--from", db, "--to", db}, 2, "not --db"},
		{[]string{"db", "copy", "--from", db, "--to", filepath.Join(dir, "y.db"), "--batch-rows", "0"}, 2, "--batch-rows 0"},
		{[]string{"db", "copy", "--from", "mysql://u:topsecretpw@h/db", "--to", db}, 1, `source: store: open: unsupported database URL scheme "mysql"`},
		{[]string{"db", "copy", "--from", db, "--to", "postgres://nobody:topsecretpw@127.0.0.1:1/none?connect_timeout=2"}, 1, "target: store: open postgres://nobody:[redacted]@127.0.0.1:1/none"},
		{[]string{"db", "copy", "--from", db, "--to", "host=db password=topsecretpw"}, 1, "key=value DSN"},
		{[]string{"db", "copy", "--from", db, "--to", db, "--overwrite"}, 1, "same database"},
	} {
		r := runCLI(t, nil, "", nil, tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) || strings.Contains(r.stdout+r.stderr, "topsecretpw") {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q, and no password", tc.args, r.code, r.stderr, tc.code, tc.want)
		}
	}
}
