// Command fuzzrun runs every Go fuzz target of the module for a set time
// each and writes what it measured (executions, new inputs, outcome) to
// the fuzzing section of RELIABILITY.md. A failing target stops nothing:
// every target runs, the failures are listed, and the exit status is 1.
// Crashers go where `go test -fuzz` puts them (testdata/fuzz/<Target>
// next to the test), to be kept as regression seeds.
//
//	go run ./scripts/fuzzrun -time 60s            # make fuzz
//	go run ./scripts/fuzzrun -time 3s -out ""     # CI: run, print, write nothing
//
// It uses the standard library only and is imported by nothing.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"time"
)

type result struct {
	pkg, target string
	execs       string
	interesting string
	took        time.Duration
	err         string
	note        string
}

// engineDeadline recognises the fuzzing engine's own deadline failure: a
// "context deadline exceeded" with no failing input written.
func engineDeadline(out string) bool {
	return strings.Contains(out, "context deadline exceeded") && !strings.Contains(out, "Failing input written") &&
		!strings.Contains(out, "panic:") && !strings.Contains(out, "_test.go:")
}

var (
	execsRe       = regexp.MustCompile(`execs: (\d+)`)
	interestingRe = regexp.MustCompile(`new interesting: (\d+)`)
)

func main() {
	fuzztime := flag.Duration("time", time.Minute, "how long each target runs")
	out := flag.String("out", "RELIABILITY.md", "file whose fuzzing section is rewritten (empty: none)")
	pkgs := flag.String("pkgs", "./...", "packages to search for fuzz targets")
	flag.Parse()
	goBin := os.Getenv("GO")
	if goBin == "" {
		goBin = "go"
	}
	list, err := exec.Command(goBin, "test", "-list", "^Fuzz", *pkgs).Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fuzzrun: list targets:", err)
		os.Exit(2)
	}
	// go test -list prints the targets of a package, then "ok  <pkg>".
	var targets [][2]string
	var pending []string
	sc := bufio.NewScanner(bytes.NewReader(list))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "Fuzz"):
			pending = append(pending, line)
		case strings.HasPrefix(line, "ok "):
			f := strings.Fields(line)
			for _, t := range pending {
				targets = append(targets, [2]string{f[1], t})
			}
			pending = nil
		}
	}
	var results []result
	failed := 0
	for _, t := range targets {
		began := time.Now()
		cmd := exec.Command(goBin, "test", "-run", "^$", "-fuzz", "^"+t[1]+"$", "-fuzztime", fuzztime.String(), t[0])
		b, err := cmd.CombinedOutput()
		r := result{pkg: t[0], target: t[1], took: time.Since(began)}
		if m := execsRe.FindAllStringSubmatch(string(b), -1); len(m) > 0 {
			r.execs = m[len(m)-1][1]
		}
		if m := interestingRe.FindAllStringSubmatch(string(b), -1); len(m) > 0 {
			r.interesting = m[len(m)-1][1]
		}
		switch {
		case err != nil && engineDeadline(string(b)):
			// Go's fuzzing engine sometimes ends a run that reached its
			// -fuzztime with "context deadline exceeded" and no failing
			// input (a harness timeout seen on loaded machines): nothing was found,
			// so nothing failed.
			r.note = "engine deadline, no failing input"
		case err != nil:
			failed++
			r.err = lastLines(string(b), 12)
		}
		fmt.Printf("%-60s %-28s execs %-10s %s\n", t[0], t[1], r.execs, status(r))
		if r.err != "" {
			fmt.Println(r.err)
		}
		results = append(results, r)
	}
	if *out != "" {
		if err := writeSection(*out, *fuzztime, results); err != nil {
			fmt.Fprintln(os.Stderr, "fuzzrun:", err)
			os.Exit(2)
		}
	}
	if failed > 0 {
		fmt.Fprintf(os.Stderr, "fuzzrun: %d of %d targets failed\n", failed, len(results))
		os.Exit(1)
	}
	fmt.Printf("fuzzrun: %d targets, %s each, none failed\n", len(results), fuzztime)
}

func status(r result) string {
	switch {
	case r.err != "":
		return "FAILED"
	case r.note != "":
		return "ok (" + r.note + ")"
	}
	return "ok"
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

const (
	begin = "<!-- fuzzrun:begin -->"
	end   = "<!-- fuzzrun:end -->"
)

// writeSection replaces the text between the markers (or appends it).
func writeSection(path string, each time.Duration, rs []result) error {
	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "%s\nLast long run: %s, %s per target, on %s (%d cores, shared with other jobs: executions are a lower bound).\n\n",
		begin, time.Now().UTC().Format("2006-01-02 15:04 UTC"), each, host, numCPU())
	b.WriteString("| package | target | executions | new inputs | result |\n|---|---|---|---|---|\n")
	for _, r := range rs {
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s | %s |\n", strings.TrimPrefix(r.pkg, "github.com/vtconnector/vtconnector/"), r.target, dash(r.execs), dash(r.interesting), status(r))
	}
	b.WriteString(end)
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	s := string(old)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i >= 0 && j > i {
		s = s[:i] + b.String() + s[j+len(end):]
	} else {
		s = strings.TrimRight(s, "\n") + "\n\n" + b.String() + "\n"
	}
	return os.WriteFile(path, []byte(s), 0o644)
}

func dash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func numCPU() int {
	out, err := exec.Command("nproc").Output()
	if err != nil {
		return 0
	}
	var n int
	fmt.Sscan(string(out), &n)
	return n
}
