package cli

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	fakecb "github.com/vtconnector/vtconnector/internal/fake/carbonblack"
	fakevt "github.com/vtconnector/vtconnector/internal/fake/vt"
)

// The Carbon Black pipeline benchmark runs `vtconnector carbonblack` as a
// child process (the test binary itself, see TestMain) against a Carbon
// Black simulator holding n binaries and an unlimited VirusTotal
// simulator, both served by the benchmark's process over loopback HTTP.
// The connector runs the configuration of issue 13's measurement: no
// quota keys (the budget is learned: unlimited), 16 quick-scan threads, a
// 1 s poll, 1,000-binary pages, SQLite in a temporary directory. The
// benchmark watches the connector from outside: binaries analysed (the
// simulator's GET /files answers), the child's CPU time
// (/proc/<pid>/stat utime+stime) and memory (/proc/<pid>/status VmRSS,
// VmHWM), and the queue backlog (the connector's /metrics), and reports
// them per tenth of the run as sub-benchmarks.

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times (100 on
// every Linux architecture Go supports).
const clockTicks = 100

// procCPU returns the process's user + system CPU time.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: count from its ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad times %q %q", pid, f[11], f[12])
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// procMem returns the process's VmRSS and VmHWM in bytes.
func procMem(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/%d/status %s: %w", pid, name, err)
		}
		if name == "VmRSS" {
			rss = kb << 10
		} else {
			hwm = kb << 10
		}
	}
	return rss, hwm, nil
}

// queueOpen reads the connector's open cb.binary items (queued, retry,
// pending, leased) from its /metrics.
func queueOpen(base string) (int, error) {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("/metrics: %s", resp.Status)
	}
	open, seen := 0, false
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "vtconnector_queue_items{") || !strings.Contains(line, `kind="cb.binary"`) {
			continue
		}
		seen = true
		for _, st := range []string{"queued", "retry", "pending", "leased"} {
			if strings.Contains(line, `state="`+st+`"`) {
				f := strings.Fields(line)
				v, err := strconv.ParseFloat(f[len(f)-1], 64)
				if err != nil {
					return 0, err
				}
				open += int(v)
			}
		}
	}
	if !seen {
		return 0, fmt.Errorf("/metrics: no vtconnector_queue_items for cb.binary")
	}
	return open, sc.Err()
}

// feedETag is the ETag of the connector's gzip feed (HEAD /feed.json), ""
// while it is not rendered yet.
func feedETag(base string) (string, error) {
	req, _ := http.NewRequest(http.MethodHead, base+"/feed.json", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", nil
	}
	return resp.Header.Get("ETag"), nil
}

// feedHolds fetches the connector's gzip feed and says whether it holds
// the report id, with the ETag of the version read. The body is searched
// as it is inflated, never held whole (hundreds of MB at a million
// binaries).
func feedHolds(base string, id []byte) (string, bool, error) {
	req, _ := http.NewRequest(http.MethodGet, base+"/feed.json", nil)
	req.Header.Set("Accept-Encoding", "gzip") // set by hand: the body stays compressed
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", false, nil
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		return "", false, fmt.Errorf("/feed.json: %w", err)
	}
	holds, err := streamContains(zr, id)
	if err != nil {
		return "", false, fmt.Errorf("/feed.json: %w", err)
	}
	return resp.Header.Get("ETag"), holds, nil
}

// streamContains says whether r's text holds s, reading it a MB at a time.
func streamContains(r io.Reader, s []byte) (bool, error) {
	buf := make([]byte, 0, 1<<20+len(s))
	for {
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if bytes.Contains(buf, s) {
			return true, nil
		}
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if keep := len(s) - 1; len(buf) > keep { // a match may straddle reads
			buf = buf[:copy(buf, buf[len(buf)-keep:])]
		}
	}
}

// watchFeed times a new detection, added to the simulator at start: when
// it was looked up (lookedUp, set by the VirusTotal simulator) and when
// /feed.json first served a version holding its report id. The feed is
// watched with HEAD requests every 20 ms, which note when each version
// (ETag) was first seen; the versions seen after the lookup are fetched
// and searched (the feed cannot hold the report before), the newest
// first. The time is when the version found to hold the report was first
// seen. It also says how many versions were seen after the lookup: with
// more than one per fetch, the time is that of the version fetched, an
// upper bound.
func watchFeed(base string, id []byte, start time.Time, lookedUp *atomic.Int64) (toLookup, toFeed time.Duration, versions int, err error) {
	type version struct {
		etag string
		at   time.Duration // first seen, since start
	}
	var (
		mu   sync.Mutex
		seen []version
		errc = make(chan error, 1)
		done = make(chan struct{})
	)
	defer close(done)
	go func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			etag, err := feedETag(base)
			at := time.Since(start)
			if err != nil {
				errc <- err
				return
			}
			mu.Lock()
			if etag != "" && (len(seen) == 0 || seen[len(seen)-1].etag != etag) {
				seen = append(seen, version{etag, at})
			}
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
	}()
	// latest is the newest version first seen after the lookup, if any,
	// and how many were.
	latest := func(after time.Duration) (version, int) {
		mu.Lock()
		defer mu.Unlock()
		k := 0
		for k < len(seen) && seen[len(seen)-1-k].at >= after {
			k++
		}
		if k == 0 {
			return version{}, 0
		}
		return seen[len(seen)-1], k
	}
	checked := ""
	for {
		if time.Since(start) > 2*time.Minute {
			if lookedUp.Load() == 0 {
				return 0, 0, 0, fmt.Errorf("%s not looked up at VirusTotal after 2 minutes", id)
			}
			return 0, 0, 0, fmt.Errorf("%s not in the feed after 2 minutes", id)
		}
		select {
		case err := <-errc:
			return 0, 0, 0, err
		default:
		}
		at := lookedUp.Load()
		if at == 0 {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		toLookup = time.Unix(0, at).Sub(start)
		v, _ := latest(toLookup)
		if v.etag == "" || v.etag == checked {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		got, holds, err := feedHolds(base, id)
		if err != nil {
			return 0, 0, 0, err
		}
		if holds {
			toFeed = time.Since(start) // a version newer than any HEAD saw
			mu.Lock()
			for _, s := range seen {
				if s.etag == got {
					toFeed = s.at
				}
			}
			mu.Unlock()
			_, k := latest(toLookup)
			return toLookup, toFeed, k, nil
		}
		checked = got
	}
}

// pipeWindow is what one tenth of a run cost.
type pipeWindow struct {
	binaries int
	wall     time.Duration
	cpu      time.Duration
	rss, hwm int64
	backlog  int
}

// pipeSizes are the runs: 100,000 binaries, 1,000,000 with
// VTC_BENCH_BIG=1, or VTC_BENCH_CB_BINARIES alone (for a quick look).
func pipeSizes() []int {
	if v, err := strconv.Atoi(os.Getenv("VTC_BENCH_CB_BINARIES")); err == nil && v > 0 {
		return []int{v}
	}
	return []int{100_000, 1_000_000}
}

// BenchmarkCarbonBlackPipeline: n binaries on the Carbon Black simulator,
// all new to the connector, analysed through an unlimited VirusTotal
// simulator; figures per tenth of n, then the time for one new detection
// to reach /feed.json. Run with -benchtime 1x.
func BenchmarkCarbonBlackPipeline(b *testing.B) {
	for _, n := range pipeSizes() {
		b.Run("n="+strconv.Itoa(n), func(b *testing.B) {
			if n > 100_000 && os.Getenv("VTC_BENCH_BIG") != "1" && os.Getenv("VTC_BENCH_CB_BINARIES") == "" {
				b.Skip("VTC_BENCH_BIG=1 is not set (about an hour)")
			}
			benchPipeline(b, n)
		})
	}
}

func benchPipeline(b *testing.B, n int) {
	dir := b.TempDir()
	const vtSeed = 13
	cb := fakecb.New(fakecb.Config{Token: "cb-token", Seed: 5})
	began := time.Now()
	cb.AddSyntheticBinaries(n, began.Add(-time.Duration(n)*time.Minute), time.Minute)
	fmt.Fprintf(os.Stderr, "cb-pipeline n=%d: binaries added to the Carbon Black simulator in %s\n", n, time.Since(began).Round(time.Millisecond))
	cbts := httptest.NewServer(cb)
	defer cbts.Close()

	sim := fakevt.New(fakevt.Config{Seed: vtSeed})
	var (
		fileLookups atomic.Int64
		watch       atomic.Pointer[string] // a hash whose first lookup is timed
		watchedAt   atomic.Int64           // when it was looked up (Unix ns)
	)
	vtts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/api/v3/files/") {
			fileLookups.Add(1)
			if h := watch.Load(); h != nil && strings.EqualFold(strings.TrimPrefix(r.URL.Path, "/api/v3/files/"), *h) {
				watchedAt.CompareAndSwap(0, time.Now().UnixNano())
			}
		}
		sim.ServeHTTP(w, r)
	}))
	defer vtts.Close()

	port := freePort(b)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	conf := filepath.Join(dir, "connector.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`[bridge]
carbonblack_server_url=%s
carbonblack_server_token=cb-token
virustotal_api_token=bench-key
virustotal_url=%s
listener_port=%d
listener_address=127.0.0.1
feed_host=127.0.0.1
database_url=%s
log_file=%s
sleep_between_batches=1
poll_page_size=1000
virustotal_quick_scan_threads=16
`, cbts.URL, vtts.URL+"/api/v3", port, filepath.Join(dir, "cb.db"), filepath.Join(dir, "connector.log"))), 0o600); err != nil {
		b.Fatal(err)
	}

	args, _ := json.Marshal([]string{"carbonblack", "--config", conf})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	rssFile := filepath.Join(dir, "peak-rss")
	cmd.Env = append(os.Environ(), "VTC_CLI_CHILD_ARGS="+string(args), peakRSSEnv+"="+rssFile)
	var errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &errb
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	pid := cmd.Process.Pid
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	defer stop()
	fail := func(format string, a ...any) {
		b.Helper()
		logTail, _ := os.ReadFile(filepath.Join(dir, "connector.log"))
		stop()
		b.Fatalf(format+"\nconnector log:\n%s\nstderr:\n%s", append(a, lastLines(string(logTail), 30), lastLines(errb.String(), 20))...)
	}

	// Per tenth of n analysed: wall, CPU, memory and backlog.
	var (
		windows  []pipeWindow
		lastAt   = start
		lastCPU  time.Duration
		lastDone int64
		deadline = start.Add(time.Duration(n)*10*time.Millisecond + 10*time.Minute) // 100/s at worst
	)
	for k := 1; k <= 10; k++ {
		target := int64(n) * int64(k) / 10
		for fileLookups.Load() < target {
			select {
			case err := <-exited:
				exited <- err
				fail("the connector exited: %v", err)
			default:
			}
			if time.Now().After(deadline) {
				fail("%d of %d binaries analysed after %s", fileLookups.Load(), n, time.Since(start).Round(time.Second))
			}
			time.Sleep(100 * time.Millisecond)
		}
		now := time.Now()
		done := fileLookups.Load()
		cpu, err := procCPU(pid)
		if err != nil {
			fail("%v", err)
		}
		rss, hwm, err := procMem(pid)
		if err != nil {
			fail("%v", err)
		}
		backlog, err := queueOpen(base)
		if err != nil {
			fail("%v", err)
		}
		windows = append(windows, pipeWindow{binaries: int(done - lastDone), wall: now.Sub(lastAt), cpu: cpu - lastCPU, rss: rss, hwm: hwm, backlog: backlog})
		// On standard error as it goes: a long run shows its figures
		// before it ends.
		w := windows[len(windows)-1]
		fmt.Fprintf(os.Stderr, "cb-pipeline n=%d: %3d%% at %s: %d binaries in %s: %.1f binaries/s, %d µs CPU/binary, RSS %d MB (peak %d MB), backlog %d\n",
			n, k*10, now.UTC().Format(time.TimeOnly), w.binaries, w.wall.Round(time.Millisecond), float64(w.binaries)/w.wall.Seconds(),
			w.cpu.Microseconds()/int64(max(w.binaries, 1)), rss>>20, hwm>>20, backlog)
		lastAt, lastCPU, lastDone = now, cpu, done
	}
	// Every binary analysed: the queue is empty.
	for {
		open, err := queueOpen(base)
		if err != nil {
			fail("%v", err)
		}
		if open == 0 {
			break
		}
		if time.Now().After(deadline) {
			fail("%d binaries still open after %s", open, time.Since(start).Round(time.Second))
		}
		time.Sleep(100 * time.Millisecond)
	}
	whole := time.Since(start)
	totalCPU, err := procCPU(pid)
	if err != nil {
		fail("%v", err)
	}

	// One new detection: from its arrival on the Carbon Black server to
	// its report in /feed.json.
	twin := &cbWorld{vtCfg: fakevt.Config{Seed: vtSeed}} // its expected() asks a twin of the simulator
	var bin fakecb.Binary
	for i := 0; ; i++ {
		bin = fakecb.Binary{Content: []byte(fmt.Sprintf("pipeline bench detection %d", i))}
		if len(twin.expected(b, []string{md5hex(bin.Content)})) > 0 {
			break
		}
	}
	id := []byte("Binary_" + strings.ToUpper(md5hex(bin.Content)))
	bin.ServerAdded = time.Now().UTC()
	watched := md5hex(bin.Content)
	watch.Store(&watched)
	feedStart := time.Now()
	cb.AddBinary(bin)
	toLookup, toFeed, versions, err := watchFeed(base, id, feedStart, &watchedAt)
	if err != nil {
		fail("%v", err)
	}
	fmt.Fprintf(os.Stderr, "cb-pipeline n=%d: new detection: looked up after %s, in the feed after %s (%d versions of the feed since the lookup)\n",
		n, toLookup.Round(time.Millisecond), toFeed.Round(time.Millisecond), versions)
	stop()
	peak, err := os.ReadFile(rssFile)
	if err != nil {
		b.Fatalf("the connector did not report its peak RSS: %v\n%s", err, lastLines(errb.String(), 20))
	}
	peakRSS, _ := strconv.ParseInt(string(peak), 10, 64)

	for k, w := range windows {
		b.Run(fmt.Sprintf("tenth=%02d", k+1), func(b *testing.B) {
			b.ReportMetric(float64(w.binaries)/w.wall.Seconds(), "binaries/s")
			b.ReportMetric(float64(w.cpu.Microseconds())/float64(max(w.binaries, 1)), "cpu_us/binary")
			b.ReportMetric(float64(w.rss)/(1<<20), "rss_MB")
			b.ReportMetric(float64(w.hwm)/(1<<20), "peak_rss_MB")
			b.ReportMetric(float64(w.backlog), "backlog")
			b.ReportMetric(float64(w.wall.Nanoseconds()), "ns/op") // the tenth's duration
		})
	}
	b.Run("whole", func(b *testing.B) {
		b.ReportMetric(float64(n)/whole.Seconds(), "binaries/s")
		b.ReportMetric(float64(totalCPU.Microseconds())/float64(n), "cpu_us/binary")
		b.ReportMetric(float64(peakRSS)/(1<<20), "peak_rss_MB")
		b.ReportMetric(float64(whole.Nanoseconds()), "ns/op")
		b.ReportMetric(float64(toFeed.Milliseconds()), "to_feed_ms")
		b.ReportMetric(float64(toLookup.Milliseconds()), "to_lookup_ms")
	})
}

// TestStreamContains: the benchmark's search of the feed finds a match
// that straddles reads, and none that is not there.
func TestStreamContains(t *testing.T) {
	text := bytes.Repeat([]byte("x"), 3<<20)
	copy(text[1<<20-3:], "Binary_ABC") // across the first MB read
	for _, c := range []struct {
		s    string
		want bool
	}{{"Binary_ABC", true}, {"Binary_ABD", false}, {"xxxxB", true}, {"Cxxx", true}} {
		for name, r := range map[string]io.Reader{
			"whole":    bytes.NewReader(text),
			"half":     iotest.HalfReader(bytes.NewReader(text)),
			"one byte": iotest.OneByteReader(bytes.NewReader(text[1<<20-20 : 1<<20+20])),
			"data+EOF": iotest.DataErrReader(bytes.NewReader(text)),
		} {
			got, err := streamContains(r, []byte(c.s))
			if err != nil || got != c.want {
				t.Errorf("%s: %q: %v, %v; want %v", name, c.s, got, err, c.want)
			}
		}
	}
	// A body cut short is an error, not an absence.
	if got, err := streamContains(iotest.TimeoutReader(bytes.NewReader(text)), []byte("Binary_ABD")); err == nil {
		t.Errorf("a failed read: %v, no error", got)
	}
}
