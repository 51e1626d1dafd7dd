package main

import (
	"fmt"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	beginMark    = "<!-- benchdoc:begin %s -->"
	endMark      = "<!-- benchdoc:end %s -->"
	measuredMark = "<!-- benchdoc:measured -->"
	keptNote     = "> Not re-run"
)

var sectionRE = regexp.MustCompile(`(?s)<!-- benchdoc:begin (\S+) -->\n(.*?)<!-- benchdoc:end (\S+) -->`)

// parseSections returns the generated sections of an earlier
// BENCHMARKS.md by group id (their text between the markers).
func parseSections(doc string) map[string]string {
	out := map[string]string{}
	for _, m := range sectionRE.FindAllStringSubmatch(doc, -1) {
		if m[1] == m[3] {
			out[m[1]] = m[2]
		}
	}
	return out
}

// render builds BENCHMARKS.md.
func render(m machine, rs []groupResult, previous map[string]string, now time.Time) string {
	var b strings.Builder
	b.WriteString(`# Benchmarks

<!-- Written by ` + "`make bench`" + ` (go run ./scripts/benchdoc). Edit the explanations in
scripts/benchdoc/groups.go, not here: the next run rewrites this file. -->

` + "`make bench`" + ` runs every benchmark of the project, group by group, and rewrites this file. Each
section gives the command that produced its figures, when it ran, on which machine and under what
load: figures measured while other jobs shared the machine are lower bounds on throughput. Groups
that need a server run only when it is configured (` + "`VTC_TEST_POSTGRES_DSN`, `VTC_TEST_AMQP_URL`" + `, as
` + "`.ci/run`" + ` sets them); the 1,000,000-object store run also wants ` + "`VTC_BENCH_BIG=1`" + `. A group that
was not run says why, and keeps the figures of its last run when there were any.

`)
	fmt.Fprintf(&b, "## Machine of the last run (%s)\n\n", now.UTC().Format("2006-01-02 15:04 MST"))
	b.WriteString("| | |\n|---|---|\n")
	cpu := fmt.Sprintf("%s: `nproc` = %d, GOMAXPROCS %d", cmpOr(m.CPUModel, "unknown"), m.CPUs, m.GOMAXPROC)
	fmt.Fprintf(&b, "| CPU | %s |\n", cell(cpu))
	if m.MemTotal != "" {
		fmt.Fprintf(&b, "| memory | %s total, %s available at start |\n", m.MemTotal, cmpOr(m.MemAvail, "?"))
	}
	sys := strings.TrimSuffix(strings.Join(nonEmpty(m.OS, prefixed("kernel ", m.Kernel), m.GoOSArch), ", "), ", ")
	if sys != "" {
		fmt.Fprintf(&b, "| system | %s |\n", cell(sys))
	}
	if m.GoVersion != "" {
		fmt.Fprintf(&b, "| Go | %s |\n", m.GoVersion)
	}
	if m.Load != "" {
		fmt.Fprintf(&b, "| load average at start (1, 5, 15 min) | %s |\n", m.Load)
	}
	b.WriteString("\n")

	area := ""
	for _, r := range rs {
		if r.Area != area {
			area = r.Area
			fmt.Fprintf(&b, "## %s\n\n", area)
		}
		fmt.Fprintf(&b, beginMark+"\n", r.ID)
		b.WriteString(section(r, previous[r.ID], now))
		fmt.Fprintf(&b, endMark+"\n\n", r.ID)
	}
	return strings.TrimRight(b.String(), "\n") + "\n"
}

// section is one group's text between its markers.
func section(r groupResult, prev string, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### %s\n\n", r.Title)
	if r.skipReason != "" {
		if strings.Contains(prev, measuredMark) {
			fmt.Fprintf(&b, "%s on %s (%s). The figures below are from the earlier run described under this heading.\n\n",
				keptNote, now.UTC().Format("2006-01-02"), r.skipReason)
			b.WriteString(keptBody(prev))
			return b.String()
		}
		fmt.Fprintf(&b, "**Not run** (%s): %s.\n\n", now.UTC().Format("2006-01-02"), r.skipReason)
		fmt.Fprintf(&b, "```\n%s\n```\n\n", r.command(os.Getenv))
		fmt.Fprintf(&b, "%s\n\n", strings.TrimSpace(r.Intro))
		return b.String()
	}

	b.WriteString(measuredMark + "\n")
	fmt.Fprintf(&b, "Measured %s, in %s, on %s", r.start.UTC().Format("2006-01-02 15:04 MST"), roundDuration(r.took), r.machine)
	if r.load != "" {
		fmt.Fprintf(&b, " (load average %s at start)", r.load)
	}
	b.WriteString(".\n")
	for _, s := range r.services {
		fmt.Fprintf(&b, "%s.\n", s)
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "```\n%s\n```\n\n", r.command(os.Getenv))
	fmt.Fprintf(&b, "%s\n\n", strings.TrimSpace(r.Intro))
	if r.err != nil {
		fmt.Fprintf(&b, "**Failed:** %s. The end of its output:\n\n```\n%s\n```\n\n", r.err, r.tail)
	}
	if len(r.benches) > 0 {
		b.WriteString(table(r.group, r.benches))
		b.WriteString("\n")
	}
	for _, s := range r.skipped {
		fmt.Fprintf(&b, "Skipped: %s\n\n", s)
	}
	if miss := missingRows(r.group, r.benches); len(miss) > 0 && r.err == nil {
		fmt.Fprintf(&b, "No figures from %s (skipped: `go test -v` with the command above says why).\n\n", strings.Join(miss, ", "))
	}
	if n := strings.TrimSpace(r.Notes); n != "" {
		fmt.Fprintf(&b, "%s\n\n", n)
	}
	return b.String()
}

// keptBody is an earlier section without its heading and earlier notes.
func keptBody(prev string) string {
	var keep []string
	lines := strings.Split(prev, "\n")
	for i, l := range lines {
		if i == 0 && strings.HasPrefix(l, "### ") {
			continue
		}
		if strings.HasPrefix(l, keptNote) {
			continue
		}
		keep = append(keep, l)
	}
	return strings.TrimLeft(strings.Join(keep, "\n"), "\n")
}

// missingRows are the group's known benchmarks that printed no result
// (go test prints nothing for a skipped benchmark without -v).
func missingRows(g group, bs []bench) []string {
	var miss []string
	for name := range g.Rows {
		if !slices.ContainsFunc(bs, func(b bench) bool { return b.Name == name }) {
			miss = append(miss, "`"+name+"`")
		}
	}
	slices.Sort(miss)
	return miss
}

// row is one benchmark in a table.
type row struct {
	label string
	b     bench
}

func rows(g group, bs []bench) []row {
	count := map[string]int{}
	for _, b := range bs {
		count[b.Name]++
	}
	seen := map[string]int{}
	out := make([]row, 0, len(bs))
	for _, b := range bs {
		label := b.Name
		if l, ok := g.Rows[b.Name]; ok {
			label = l
		}
		if count[b.Name] > 1 {
			seen[b.Name]++
			label += fmt.Sprintf(" (run %d)", seen[b.Name])
		}
		out = append(out, row{label, b})
	}
	return out
}

// units lists the units present, the group's known ones first in its
// order, then the others as they appear.
func units(g group, bs []bench) []metric {
	present := map[string]bool{}
	var order []string
	for _, b := range bs {
		for _, v := range b.Values {
			if !present[v.Unit] {
				present[v.Unit] = true
				order = append(order, v.Unit)
			}
		}
	}
	var out []metric
	known := map[string]bool{}
	for _, m := range g.Metrics {
		known[m.Unit] = true
		if present[m.Unit] {
			out = append(out, m)
		}
	}
	for _, u := range order {
		if !known[u] {
			label := u
			if u == "ns/op" {
				label = "time/op"
			}
			out = append(out, metric{Unit: u, Label: label})
		}
	}
	return out
}

// table renders the figures in the group's layout.
func table(g group, bs []bench) string {
	rs := rows(g, bs)
	ms := units(g, bs)
	var b strings.Builder
	switch g.Layout {
	case transposed:
		hasTarget := slices.ContainsFunc(ms, func(m metric) bool { return m.Target != "" })
		b.WriteString("| figure |")
		for _, r := range rs {
			fmt.Fprintf(&b, " %s |", cell(r.label))
		}
		if hasTarget {
			b.WriteString(" target |")
		}
		b.WriteString("\n|---|" + strings.Repeat("---|", len(rs)))
		if hasTarget {
			b.WriteString("---|")
		}
		b.WriteString("\n")
		for _, m := range ms {
			fmt.Fprintf(&b, "| %s |", cell(m.Label))
			for _, r := range rs {
				fmt.Fprintf(&b, " %s |", cellValue(r.b, m.Unit))
			}
			if hasTarget {
				fmt.Fprintf(&b, " %s |", cell(m.Target))
			}
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "| iterations |")
		for _, r := range rs {
			fmt.Fprintf(&b, " %s |", formatInt(r.b.N))
		}
		if hasTarget {
			b.WriteString(" |")
		}
		b.WriteString("\n")
	case compact:
		b.WriteString("| benchmark | iterations | time/op | other figures |\n|---|---|---|---|\n")
		for _, r := range rs {
			var other []string
			for _, m := range ms {
				if m.Unit == "ns/op" {
					continue
				}
				if v, ok := r.b.get(m.Unit); ok {
					other = append(other, m.Label+": "+formatValue(m.Unit, v))
				}
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", cell(r.label), formatInt(r.b.N), cellValue(r.b, "ns/op"), cell(strings.Join(other, "; ")))
		}
	default:
		b.WriteString("| benchmark | iterations |")
		for _, m := range ms {
			fmt.Fprintf(&b, " %s |", cell(m.Label))
		}
		b.WriteString("\n|---|---|" + strings.Repeat("---|", len(ms)) + "\n")
		for _, r := range rs {
			fmt.Fprintf(&b, "| %s | %s |", cell(r.label), formatInt(r.b.N))
			for _, m := range ms {
				fmt.Fprintf(&b, " %s |", cellValue(r.b, m.Unit))
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

func cellValue(b bench, unit string) string {
	v, ok := b.get(unit)
	if !ok {
		return "—"
	}
	return cell(formatValue(unit, v))
}

// cell escapes a table cell.
func cell(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ")
}

// formatValue shows a figure in its unit's natural form.
func formatValue(unit string, v float64) string {
	switch unit {
	case "ns/op":
		return formatDuration(v)
	case "B/op":
		return formatBytes(v)
	case "allocs/op":
		return formatNumber(v)
	}
	return formatNumber(v)
}

func formatDuration(ns float64) string {
	switch a := math.Abs(ns); {
	case a < 1e3:
		return formatNumber(ns) + " ns"
	case a < 1e6:
		return formatNumber(ns/1e3) + " µs"
	case a < 1e9:
		return formatNumber(ns/1e6) + " ms"
	default:
		return formatNumber(ns/1e9) + " s"
	}
}

func formatBytes(n float64) string {
	switch a := math.Abs(n); {
	case a < 1e3:
		return formatNumber(n) + " B"
	case a < 1e6:
		return formatNumber(n/1e3) + " kB"
	case a < 1e9:
		return formatNumber(n/1e6) + " MB"
	default:
		return formatNumber(n/1e9) + " GB"
	}
}

// formatNumber gives 4 significant digits below 1,000 and whole numbers
// with thousands separators above.
func formatNumber(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	a := math.Abs(v)
	if a >= 1000 || v == math.Trunc(v) {
		return formatInt(int64(math.Round(v)))
	}
	decimals := 3 - int(math.Floor(math.Log10(a)))
	decimals = max(0, min(decimals, 9))
	s := strconv.FormatFloat(v, 'f', decimals, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

func formatInt(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

func roundDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Round(time.Second)/time.Second))
	default:
		m := int(d / time.Minute)
		s := int((d % time.Minute).Round(time.Second) / time.Second)
		return fmt.Sprintf("%d min %d s", m, s)
	}
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func prefixed(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}
