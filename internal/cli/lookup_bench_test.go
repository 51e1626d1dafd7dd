package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	fakevt "github.com/vtconnector/vtconnector/internal/fake/vt"
)

// The lookup scale benchmark runs two programs as child processes (the
// test binary itself, see TestMain) against one VirusTotal simulator
// served by the benchmark: the bare client below, then `vtconnector
// lookup`, each given the same number of distinct SHA-256s on standard
// input. The children's CPU time comes from wait4's rusage, so the
// simulator's own cost is not counted. Their peak RSS is the VmHWM each
// reads from /proc/self/status as it exits: rusage's maxrss cannot be
// used, Linux carries the parent's high-water mark into a child started
// with vfork (os/exec's way) across its exec.

// bareClientEnv names the simulator's base URL when the test binary is
// to run as the bare client.
const bareClientEnv = "VTC_BARE_CLIENT_URL"

// bareClientMain is the reference a lookup's cost is compared with: 16
// goroutines GET /files/{hash}, decode the four stats lookup prints, and
// print one CSV line per hash (in completion order). It reads hashes from
// standard input as they come. No pacing, no cache, no retries.
func bareClientMain(base string) int {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	type stats struct {
		Data struct {
			Attributes struct {
				Stats struct {
					Malicious, Suspicious, Harmless, Undetected int
				} `json:"last_analysis_stats"`
			} `json:"attributes"`
		} `json:"data"`
	}
	jobs := make(chan string, 64)
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	var wg sync.WaitGroup
	failed := false
	for range 16 {
		wg.Go(func() {
			for h := range jobs {
				req, _ := http.NewRequest(http.MethodGet, base+"/files/"+h, nil)
				req.Header.Set("x-apikey", "bench-key")
				resp, err := hc.Do(req)
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					mu.Lock()
					failed = true
					mu.Unlock()
					continue
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				var s stats
				found := resp.StatusCode == http.StatusOK
				if err == nil && found {
					err = json.Unmarshal(body, &s)
				}
				st := s.Data.Attributes.Stats
				mu.Lock()
				if err != nil {
					failed = true
				}
				fmt.Fprintf(out, "%s,%t,%d,%d,%d,%d\n", h, found, st.Malicious, st.Suspicious, st.Harmless, st.Undetected)
				mu.Unlock()
			}
		})
	}
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		jobs <- sc.Text()
	}
	close(jobs)
	wg.Wait()
	if err := out.Flush(); err != nil || failed {
		return 1
	}
	return 0
}

// peakRSSEnv names the file a child writes its peak RSS to as it exits.
const peakRSSEnv = "VTC_CHILD_PEAK_RSS_FILE"

// writePeakRSS writes this process's VmHWM (bytes) to $VTC_CHILD_PEAK_RSS_FILE.
func writePeakRSS() {
	path := os.Getenv(peakRSSEnv)
	if path == "" {
		return
	}
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err == nil {
				_ = os.WriteFile(path, []byte(strconv.FormatInt(kb<<10, 10)), 0o644)
			}
		}
	}
}

// childProfile writes a CPU profile of a child process to the file
// $VTC_CHILD_CPUPROFILE, and a heap profile at its end to
// $VTC_CHILD_MEMPROFILE, when set (for looking into a benchmark's child).
func childProfile() (stop func()) {
	if path := os.Getenv("VTC_CHILD_MEMPROFILE"); path != "" {
		return func() {
			if f, err := os.Create(path); err == nil {
				_ = pprof.Lookup("heap").WriteTo(f, 0)
				f.Close()
			}
		}
	}
	path := os.Getenv("VTC_CHILD_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return func() {}
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

// benchHash is the i-th query of a run: distinct, deterministic SHA-256s.
func benchHash(run string, i int) string {
	return fmt.Sprintf("%s%062x", run, uint64(i)*0x9E3779B97F4A7C15)
}

// childFigures are what one child process cost.
type childFigures struct {
	wall    time.Duration
	cpu     time.Duration
	peakRSS int64 // bytes (VmHWM)
	lines   int
}

// runChild runs the test binary with env, writes n queries to its
// standard input as it reads them, and checks each output line with
// check (i is the line's index).
func runChild(b *testing.B, env []string, n int, run string, check func(i int, line string) error) childFigures {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	rssFile := filepath.Join(b.TempDir(), "peak-rss")
	cmd.Env = append(append(os.Environ(), env...), peakRSSEnv+"="+rssFile)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if path := os.Getenv("VTC_CHILD_STDERR"); path != "" { // e.g. with GODEBUG=gctrace=1
		f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		cmd.Stderr = io.MultiWriter(&errb, f)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go func() {
		w := bufio.NewWriter(stdin)
		for i := range n {
			w.WriteString(benchHash(run, i))
			w.WriteByte('\n')
		}
		w.Flush()
		stdin.Close()
	}()
	var f childFigures
	var checkErr error
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if checkErr == nil {
			checkErr = check(f.lines, sc.Text())
		}
		f.lines++
	}
	werr := cmd.Wait()
	f.wall = time.Since(start)
	if werr != nil {
		b.Fatalf("child %v: %v\n%s", env[0], werr, lastLines(errb.String(), 20))
	}
	if checkErr != nil {
		b.Fatal(checkErr)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	f.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	rss, err := os.ReadFile(rssFile)
	if err != nil {
		b.Fatalf("child %v did not report its peak RSS: %v", env[0], err)
	}
	if f.peakRSS, err = strconv.ParseInt(string(rss), 10, 64); err != nil {
		b.Fatal(err)
	}
	return f
}

// BenchmarkLookupScale: n distinct SHA-256s through the bare client and
// through `vtconnector lookup --rate 0 --daily 0 --monthly 0
// --concurrency 16 --format csv`, against the same unlimited,
// zero-latency simulator (10% of the files unknown). Run with
// -benchtime 1x.
func BenchmarkLookupScale(b *testing.B) {
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		b.Run("n="+strconv.Itoa(n), func(b *testing.B) {
			for b.Loop() {
				sim := fakevt.New(fakevt.Config{Seed: 13})
				ts := httptest.NewServer(sim)
				base := ts.URL + "/api/v3"

				bare := runChild(b, []string{bareClientEnv + "=" + base}, n, "aa", func(int, string) error { return nil })
				if bare.lines != n {
					b.Fatalf("bare client printed %d lines for %d queries", bare.lines, n)
				}
				args, _ := json.Marshal([]string{"lookup", "--apikey", "bench-key", "--vt-url", base,
					"--rate", "0", "--daily", "0", "--monthly", "0", "--concurrency", "16",
					"--format", "csv", "--progress", "never", "--max-wait", "0"})
				lk := runChild(b, []string{"VTC_CLI_CHILD_ARGS=" + string(args)}, n, "bb", func(i int, line string) error {
					if i == 0 {
						return nil // header
					}
					if want := benchHash("bb", i-1); !strings.HasPrefix(line, want+",") {
						return fmt.Errorf("line %d: %q, want the result of %s (input order)", i, line, want)
					}
					if strings.Contains(line, "error") {
						return fmt.Errorf("line %d: %q", i, line)
					}
					return nil
				})
				if lk.lines != n+1 {
					b.Fatalf("lookup printed %d lines for %d queries", lk.lines-1, n)
				}
				ts.Close()

				perLookup := func(f childFigures) float64 { return float64(f.cpu.Microseconds()) / float64(n) }
				b.ReportMetric(bare.wall.Seconds(), "bare_wall_s")
				b.ReportMetric(perLookup(bare), "bare_cpu_us/lookup")
				b.ReportMetric(float64(bare.peakRSS)/(1<<20), "bare_peak_rss_MB")
				b.ReportMetric(lk.wall.Seconds(), "lookup_wall_s")
				b.ReportMetric(perLookup(lk), "lookup_cpu_us/lookup")
				b.ReportMetric(float64(lk.peakRSS)/(1<<20), "lookup_peak_rss_MB")
				b.ReportMetric(perLookup(lk)/perLookup(bare), "cpu_ratio")
			}
		})
	}
}
