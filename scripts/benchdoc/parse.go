package main

import (
	"regexp"
	"strconv"
	"strings"
)

// bench is one result line of go test -bench.
type bench struct {
	Name   string // without the -GOMAXPROCS suffix
	N      int64  // iterations
	Values []value
}

// value is one "value unit" pair of a result line (ns/op, B/op, custom
// metrics from b.ReportMetric).
type value struct {
	V    float64
	Unit string
}

// get returns the value of unit.
func (b bench) get(unit string) (float64, bool) {
	for _, v := range b.Values {
		if v.Unit == unit {
			return v.V, true
		}
	}
	return 0, false
}

type parsed struct {
	benches []bench
	skipped []string // "BenchmarkX/y: reason"
	cpu     string   // go test's "cpu:" line
}

var resultLine = regexp.MustCompile(`^(Benchmark\S*)\s+(\d+)\s+(.*)$`)

// parseOutput reads go test -bench output. procs is GOMAXPROCS, which go
// test appends to names as "-N" when it is not 1.
func parseOutput(out string, procs int) parsed {
	var p parsed
	suffix := ""
	if procs > 1 {
		suffix = "-" + strconv.Itoa(procs)
	}
	lines := strings.Split(out, "\n")
	for i := 0; i < len(lines); i++ {
		line := strings.TrimRight(lines[i], "\r")
		if c, ok := strings.CutPrefix(line, "cpu: "); ok && p.cpu == "" {
			p.cpu = strings.TrimSpace(c)
			continue
		}
		if name, ok := cutSkip(line); ok {
			// The reason is on the indented lines that follow.
			var why []string
			for i+1 < len(lines) && strings.HasPrefix(lines[i+1], "    ") {
				i++
				why = append(why, strings.TrimSpace(lines[i]))
			}
			p.skipped = append(p.skipped, strings.TrimSuffix(name+": "+strings.Join(why, " "), ": "))
			continue
		}
		m := resultLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		n, err := strconv.ParseInt(m[2], 10, 64)
		if err != nil {
			continue
		}
		b := bench{Name: strings.TrimSuffix(m[1], suffix), N: n}
		f := strings.Fields(m[3])
		ok := len(f)%2 == 0
		for j := 0; ok && j+1 < len(f); j += 2 {
			v, err := strconv.ParseFloat(f[j], 64)
			if err != nil {
				ok = false
				break
			}
			b.Values = append(b.Values, value{V: v, Unit: f[j+1]})
		}
		if ok {
			p.benches = append(p.benches, b)
		}
	}
	return p
}

// cutSkip recognises "--- SKIP: BenchmarkX" (printed with -v, or for a
// sub-benchmark), possibly indented.
func cutSkip(line string) (string, bool) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(line), "--- SKIP: ")
	if !ok {
		return "", false
	}
	name, _, _ := strings.Cut(rest, " ")
	return name, true
}
