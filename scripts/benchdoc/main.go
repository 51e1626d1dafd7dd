// Command benchdoc runs every benchmark group of vtconnector and rewrites
// BENCHMARKS.md from what they print: one section per group with its
// explanation, the exact command, the date and machine, and a table of
// every figure the benchmarks report (iterations, time per operation and
// each custom "value unit" pair).
//
//	go run ./scripts/benchdoc                       # every group, rewrites BENCHMARKS.md (make bench)
//	go run ./scripts/benchdoc -only engine-overhead -out /tmp/b.md
//	go run ./scripts/benchdoc -list                 # the groups, their commands and prerequisites
//
// The groups are the table in groups.go. A group whose prerequisite is
// missing (VTC_TEST_POSTGRES_DSN, VTC_TEST_AMQP_URL, the opt-in
// VTC_BENCH_BIG=1) is not run; its section says why and, when the output
// file already holds figures of an earlier run of that group, keeps them
// with their own date. Groups left out by -only are kept the same way, so
// one group can be re-measured without losing the others.
//
// It uses the standard library only and is imported by nothing. The go
// command it runs is $GO, else "go" (make bench passes its GO).
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(run())
}

func run() int {
	out := flag.String("out", "BENCHMARKS.md", "file to write (relative to the module root unless absolute)")
	only := flag.String("only", "", "comma-separated group ids to run (default: every group); see -list")
	list := flag.Bool("list", false, "list the groups, their commands and prerequisites, and exit")
	quiet := flag.Bool("q", false, "do not echo the benchmarks' output to standard error")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: go run ./scripts/benchdoc [flags]\n\nRuns the project's benchmarks group by group and rewrites BENCHMARKS.md.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		return 2
	}

	goBin := cmpOr(os.Getenv("GO"), "go")
	root, err := moduleRoot(goBin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchdoc:", err)
		return 2
	}
	gs := groups()

	if *list {
		for _, g := range gs {
			fmt.Printf("%-20s %s\n", g.ID, g.command(os.Getenv))
			if why := g.missing(os.Getenv); why != "" {
				fmt.Printf("%-20s (would not run: %s)\n", "", why)
			}
		}
		return 0
	}

	selected := map[string]bool{}
	if *only != "" {
		for id := range strings.SplitSeq(*only, ",") {
			id = strings.TrimSpace(id)
			if !slices.ContainsFunc(gs, func(g group) bool { return g.ID == id }) {
				fmt.Fprintf(os.Stderr, "benchdoc: -only: no group %q (see -list)\n", id)
				return 2
			}
			selected[id] = true
		}
	}

	outPath := *out
	if !filepath.IsAbs(outPath) {
		outPath = filepath.Join(root, outPath)
	}
	previous := map[string]string{}
	if b, err := os.ReadFile(outPath); err == nil {
		previous = parseSections(string(b))
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	m := probeMachine(goBin)
	var echo io.Writer = os.Stderr
	if *quiet {
		echo = io.Discard
	}
	results := make([]groupResult, len(gs))
	failed := 0
	for i, g := range gs {
		r := groupResult{group: g}
		switch {
		case len(selected) > 0 && !selected[g.ID]:
			r.skipReason = "not selected: benchdoc -only " + *only
		case g.missing(os.Getenv) != "":
			r.skipReason = g.missing(os.Getenv)
		case ctx.Err() != nil:
			r.skipReason = "interrupted"
		default:
			fmt.Fprintf(os.Stderr, "benchdoc: %s: %s\n", g.ID, g.command(os.Getenv))
			r = runGroup(ctx, goBin, root, g, m, echo)
			if r.err != nil {
				failed++
				fmt.Fprintf(os.Stderr, "benchdoc: %s: %v\n", g.ID, r.err)
			}
		}
		if r.skipReason != "" {
			fmt.Fprintf(os.Stderr, "benchdoc: %s: not run: %s\n", g.ID, r.skipReason)
		}
		results[i] = r
	}

	doc := render(m, results, previous, time.Now())
	if err := writeFile(outPath, []byte(doc)); err != nil {
		fmt.Fprintln(os.Stderr, "benchdoc:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "benchdoc: wrote %s\n", outPath)
	if failed > 0 {
		fmt.Fprintf(os.Stderr, "benchdoc: %d group(s) failed (listed in %s)\n", failed, outPath)
		return 1
	}
	return 0
}

// moduleRoot is the directory of the main module's go.mod: benchmarks run
// there, whatever the working directory.
func moduleRoot(goBin string) (string, error) {
	b, err := exec.Command(goBin, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("%s env GOMOD: %w", goBin, err)
	}
	gomod := strings.TrimSpace(string(b))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the vtconnector module (run it from the repository)")
	}
	return filepath.Dir(gomod), nil
}

// groupResult is one group's run.
type groupResult struct {
	group
	skipReason string        // not run, and why
	start      time.Time     // when it started
	took       time.Duration // how long the go test ran
	load       string        // load average when it started
	machine    string        // one-line machine summary
	services   []string      // versions of the servers it used
	benches    []bench       // parsed result lines, in output order
	skipped    []string      // "name: reason" of benchmarks that skipped
	err        error         // go test failed
	tail       string        // the end of the output, when it failed
}

// runGroup runs one group's go test and parses its output.
func runGroup(ctx context.Context, goBin, root string, g group, m machine, echo io.Writer) groupResult {
	r := groupResult{group: g, start: time.Now(), load: loadAverage(), machine: m.short()}
	r.services = g.services(os.Getenv, root, goBin)
	cmd := exec.CommandContext(ctx, goBin, g.args()...)
	cmd.Dir = root
	cmd.Env = os.Environ()
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	var buf bytes.Buffer
	w := io.MultiWriter(&buf, echo)
	cmd.Stdout, cmd.Stderr = w, w
	err := cmd.Run()
	r.took = time.Since(r.start)
	p := parseOutput(buf.String(), runtime.GOMAXPROCS(0))
	r.benches, r.skipped = p.benches, p.skipped
	if err != nil {
		r.err = fmt.Errorf("go test: %w", err)
		r.tail = lastLines(buf.String(), 30)
	} else if len(r.benches) == 0 {
		r.err = errors.New("no benchmark result in the output")
		r.tail = lastLines(buf.String(), 30)
	}
	return r
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// writeFile replaces path atomically.
func writeFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".benchdoc-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func cmpOr(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

// firstLine is the first line of a command's trimmed output, or "".
func firstLine(timeout time.Duration, name string, args ...string) string {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	b, err := exec.CommandContext(ctx, name, args...).Output()
	if err != nil {
		return ""
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	if sc.Scan() {
		return strings.TrimSpace(sc.Text())
	}
	return ""
}
