package main

import (
	"strings"
	"testing"
	"time"
)

const sample = `goos: linux
goarch: amd64
pkg: github.com/vtconnector/vtconnector/internal/carbonblack
cpu: AMD EPYC
BenchmarkRender100k-2               	       3	 445000000 ns/op	        76.10 body-MB	         9.000 gzip-MB	93600000 B/op	  120000 allocs/op
BenchmarkServeFeed/gzip-200-2       	  300000	     11000 ns/op	 818.00 MB/s	     512 B/op	       6 allocs/op
BenchmarkOpenCTIThroughput/concurrency=1-2         	       1	4935000000 ns/op	        60.59 ms/enrichment	        16.50 enrichments/s
BenchmarkOpenCTIThroughput/concurrency=1-2         	       1	4800000000 ns/op	        58.94 ms/enrichment	        16.97 enrichments/s
--- SKIP: BenchmarkCacheBig
    bench_test.go:153: VTC_BENCH_BIG=1 not set
PASS
ok  	github.com/vtconnector/vtconnector/internal/carbonblack	12.3s
`

func TestParseOutput(t *testing.T) {
	p := parseOutput(sample, 2)
	if p.cpu != "AMD EPYC" {
		t.Errorf("cpu = %q", p.cpu)
	}
	if len(p.benches) != 4 {
		t.Fatalf("%d results: %+v", len(p.benches), p.benches)
	}
	r := p.benches[0]
	if r.Name != "BenchmarkRender100k" || r.N != 3 {
		t.Errorf("first = %+v", r)
	}
	if v, _ := r.get("gzip-MB"); v != 9 {
		t.Errorf("gzip-MB = %v", v)
	}
	if v, _ := r.get("allocs/op"); v != 120000 {
		t.Errorf("allocs/op = %v", v)
	}
	// Only the -GOMAXPROCS suffix goes, not a name's own "-200".
	if got := p.benches[1].Name; got != "BenchmarkServeFeed/gzip-200" {
		t.Errorf("name = %q", got)
	}
	if len(p.skipped) != 1 || p.skipped[0] != "BenchmarkCacheBig: bench_test.go:153: VTC_BENCH_BIG=1 not set" {
		t.Errorf("skipped = %q", p.skipped)
	}
	if got := parseOutput("BenchmarkX/gzip-200 \t 5\t 10 ns/op\n", 1).benches[0].Name; got != "BenchmarkX/gzip-200" {
		t.Errorf("GOMAXPROCS=1: name = %q", got)
	}
}

func TestFormat(t *testing.T) {
	for _, c := range []struct {
		unit string
		v    float64
		want string
	}{
		{"ns/op", 481571, "481.6 µs"},
		{"ns/op", 216, "216 ns"},
		{"ns/op", 180.3e9, "180.3 s"},
		{"B/op", 93.6e6, "93.6 MB"},
		{"allocs/op", 1234567, "1,234,567"},
		{"items/s", 1446.4, "1,446"},
		{"min_budget_used/full_minute", 1, "1"},
		{"x", 0.99834, "0.9983"},
		{"x", 16.934, "16.93"},
	} {
		if got := formatValue(c.unit, c.v); got != c.want {
			t.Errorf("formatValue(%s, %v) = %q, want %q", c.unit, c.v, got, c.want)
		}
	}
}

func TestCommand(t *testing.T) {
	g := group{Pkg: "./internal/store/", Pattern: "BenchmarkQueue|BenchmarkCache$", Benchtime: "3s",
		Needs: []string{"VTC_TEST_POSTGRES_DSN"}, OptIn: "VTC_BENCH_BIG"}
	env := map[string]string{"VTC_TEST_POSTGRES_DSN": "postgres://u:secret@db/test?sslmode=disable"}
	got := g.command(func(k string) string { return env[k] })
	want := "VTC_BENCH_BIG=1 VTC_TEST_POSTGRES_DSN='postgres://u:xxxxx@db/test?sslmode=disable' \\\n" +
		"  go test -run '^$' -bench 'BenchmarkQueue|BenchmarkCache$' -benchtime 3s ./internal/store/"
	if got != want {
		t.Errorf("command:\n%s\nwant:\n%s", got, want)
	}
	if why := g.missing(func(k string) string { return env[k] }); !strings.Contains(why, "VTC_BENCH_BIG=1") {
		t.Errorf("missing = %q", why)
	}
}

// A group that is not run keeps the figures of its earlier run.
func TestKeepEarlierFigures(t *testing.T) {
	g := group{ID: "g", Area: "A", Title: "T", Pkg: "./p/", Pattern: "B", Benchtime: "1x",
		Rows: map[string]string{"BenchmarkB": "b"}}
	t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	run := groupResult{group: g, start: t0, took: 3 * time.Second, machine: "2 × CPU",
		benches: []bench{{Name: "BenchmarkB", N: 1, Values: []value{{1e6, "ns/op"}}}}}
	first := render(machine{}, []groupResult{run}, nil, t0)
	if !strings.Contains(first, "| b | 1 | 1 ms |") {
		t.Fatalf("first render:\n%s", first)
	}
	prev := parseSections(first)
	second := render(machine{}, []groupResult{{group: g, skipReason: "not selected"}}, prev, t0.Add(24*time.Hour))
	if !strings.Contains(second, "> Not re-run on 2026-11-25 (not selected)") || !strings.Contains(second, "| b | 1 | 1 ms |") {
		t.Fatalf("second render:\n%s", second)
	}
	third := render(machine{}, []groupResult{{group: g, skipReason: "still not"}}, parseSections(second), t0.Add(48*time.Hour))
	if strings.Count(third, "> Not re-run") != 1 || !strings.Contains(third, "Measured 2026-11-24 12:00 UTC") {
		t.Fatalf("third render:\n%s", third)
	}
	none := render(machine{}, []groupResult{{group: g, skipReason: "X is not set"}}, nil, t0)
	if !strings.Contains(none, "**Not run** (2026-11-24): X is not set.") {
		t.Fatalf("not run:\n%s", none)
	}
}
