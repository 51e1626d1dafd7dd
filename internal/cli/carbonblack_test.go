package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vtconnector/vtconnector/internal/carbonblack"
	fakecb "github.com/vtconnector/vtconnector/internal/fake/carbonblack"
	fakevt "github.com/vtconnector/vtconnector/internal/fake/vt"
	"github.com/vtconnector/vtconnector/internal/logbuf"
	"github.com/vtconnector/vtconnector/internal/store"
	"github.com/vtconnector/vtconnector/internal/vt"
)

// cbWorld is a Carbon Black simulator, a VirusTotal simulator and a
// connector.conf pointing at both, over real loopback HTTP (the Cb
// simulator fetches the feed from the connector's feed server).
type cbWorld struct {
	vtCfg   fakevt.Config
	cb      *fakecb.Server
	vt      *fakevt.Server
	cbURL   string
	vtURL   string
	port    int
	dir     string
	confPth string
	cbTLS   *httptest.Server // the Cb simulator's server

	// vtGate, while it holds an open channel, holds every VirusTotal
	// request until the channel is closed; vtPaths records the paths asked.
	vtGate  atomic.Pointer[chan struct{}]
	vtMu    sync.Mutex
	vtPaths []string
}

// vtAsked returns the VirusTotal paths requested so far.
func (w *cbWorld) vtAsked() []string {
	w.vtMu.Lock()
	defer w.vtMu.Unlock()
	return slices.Clone(w.vtPaths)
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func newCbWorld(t testing.TB, vtCfg fakevt.Config, extra string) *cbWorld {
	t.Helper()
	return newCbWorldOn(t, httptest.NewServer, vtCfg, extra)
}

// newCbWorldOn is newCbWorld with the Carbon Black simulator served by
// serve (httptest.NewTLSServer for an https:// server).
func newCbWorldOn(t testing.TB, serve func(http.Handler) *httptest.Server, vtCfg fakevt.Config, extra string) *cbWorld {
	t.Helper()
	w := &cbWorld{vtCfg: vtCfg, cb: fakecb.New(fakecb.Config{Token: "cb-token"}), vt: fakevt.New(vtCfg), dir: t.TempDir(), port: freePort(t)}
	cbts := serve(w.cb)
	w.cbTLS = cbts
	t.Cleanup(cbts.Close)
	vtts := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if g := w.vtGate.Load(); g != nil {
			select {
			case <-*g:
			case <-r.Context().Done():
				return
			}
		}
		w.vtMu.Lock()
		w.vtPaths = append(w.vtPaths, r.URL.Path)
		w.vtMu.Unlock()
		w.vt.ServeHTTP(rw, r)
	}))
	t.Cleanup(vtts.Close)
	w.cbURL, w.vtURL = cbts.URL, vtts.URL+"/api/v3"
	w.confPth = filepath.Join(w.dir, "connector.conf")
	conf := fmt.Sprintf(`[bridge]
carbonblack_server_url=%s
carbonblack_server_token=cb-token
virustotal_api_token=vt-test-key
virustotal_url=%s
listener_port=%d
listener_address=127.0.0.1
feed_host=127.0.0.1
database_url=%s
log_file=%s
virustotal_requests_per_minute=0
virustotal_requests_per_day=0
virustotal_requests_per_month=0
sleep_between_batches=1
virustotal_quick_scan_threads=4
%s
`, w.cbURL, w.vtURL, w.port, filepath.Join(w.dir, "cb.db"), filepath.Join(w.dir, "connector.log"), extra)
	if err := os.WriteFile(w.confPth, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return w
}

// get fetches a page of the connector's feed server.
func (w *cbWorld) get(t testing.TB, path string) string {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", w.port, path))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %d", path, resp.StatusCode)
	}
	return string(b)
}

func (w *cbWorld) metrics(t testing.TB) string { return w.get(t, "/metrics") }

// fastPoll spaces the polls of submitted analyses in tests.
const fastPoll = 200 * time.Millisecond

var fastTune = &carbonblack.Tuning{SyncEvery: 100 * time.Millisecond,
	Idle: 20 * time.Millisecond, Debounce: 20 * time.Millisecond, Recheck: time.Hour, RetryEvery: 200 * time.Millisecond}

// start runs the connector in the background; stop cancels it and
// returns its exit status.
func (w *cbWorld) start(t testing.TB) (stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }, cbTune: fastTune, analysisPoll: fastPoll}
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"carbonblack", "--config", w.confPth}, e) }()
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(w.dir, "connector.log"))
			t.Logf("connector log:\n%s\nstderr:\n%s", lastLines(string(b), 40), errb.String())
		}
	})
	return func() int {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Logf("connector stderr:\n%s", errb.String())
			}
			return code
		case <-time.After(30 * time.Second):
			t.Fatal("connector did not stop within 30 s of cancellation")
			return -1
		}
	}
}

// expected asks a twin of the VirusTotal simulator (same seed, no quota,
// no faults: the same objects) which binaries are malicious,
// independently of the connector: report id → score.
func (w *cbWorld) expected(t testing.TB, md5s []string) map[string]int {
	t.Helper()
	oracle := fakevt.New(fakevt.Config{Seed: w.vtCfg.Seed, UnknownPercent: w.vtCfg.UnknownPercent})
	c, err := vt.New("oracle", vt.WithBaseURL(simBase), vt.WithHTTPClient(&http.Client{Transport: handlerTransport{oracle}}))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	for _, m := range md5s {
		o, err := c.File(context.Background(), m)
		if errors.Is(err, vt.ErrNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		s := o.Attributes.LastAnalysisStats
		total := s.Malicious + s.Suspicious + s.Undetected + s.Harmless
		if s.Malicious >= 1 {
			want["Binary_"+strings.ToUpper(m)] = max(100*s.Malicious/total, 1)
		}
	}
	return want
}

func (w *cbWorld) feed(t testing.TB) (map[string]int, []byte) {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/feed.json", w.port))
	if err != nil {
		return nil, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return nil, nil
	}
	var f struct {
		Reports []struct {
			ID    string `json:"id"`
			Score int    `json:"score"`
		} `json:"reports"`
	}
	if err := json.Unmarshal(body, &f); err != nil {
		t.Fatalf("feed is not JSON: %v", err)
	}
	got := map[string]int{}
	for _, r := range f.Reports {
		if _, dup := got[r.ID]; dup {
			t.Errorf("report %s twice in the feed", r.ID)
		}
		got[r.ID] = r.Score
	}
	return got, body
}

func sameReports(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func keys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// waitFor polls cond every 50 ms until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func md5sOf(bs []fakecb.Binary) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.MD5
	}
	return out
}

// idle reports whether the connector's queue has no open item left.
func (w *cbWorld) idle(t testing.TB) bool {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(w.dir, "cb.db"))
	if err != nil {
		return false
	}
	defer st.Close()
	qs, err := st.Stats(context.Background())
	return err == nil && qs.Open() == 0 && len(qs.Counts) > 0
}

// waitCollectorPass waits until the Cb simulator has answered two more
// searches than searchesBefore (the collector asks the second only after
// queueing what the first returned) and the connector's queue is empty:
// whatever the collector found since the start was processed.
func (w *cbWorld) waitCollectorPass(t testing.TB, searchesBefore int) {
	t.Helper()
	waitFor(t, 30*time.Second, "a collector pass and an empty queue", func() bool {
		return w.cb.Stats().Searches >= searchesBefore+2 && w.idle(t)
	})
}

// openItems returns the number of open items in the connector's queue.
func (w *cbWorld) openItems(t testing.TB) int {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(w.dir, "cb.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	qs, err := st.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return int(qs.Open())
}

// taggedAsWanted reports whether the Cb simulator tagged exactly the
// binaries of want with their scores, i.e. it synced the current feed.
func (w *cbWorld) taggedAsWanted(md5s []string, want map[string]int) bool {
	for _, m := range md5s {
		score, tagged := w.cb.Tags(m)[carbonblack.FeedName]
		exp, inFeed := want["Binary_"+strings.ToUpper(m)]
		if tagged != inFeed || tagged && score != exp {
			return false
		}
	}
	return true
}

func TestCarbonBlackEndToEnd(t *testing.T) {
	w := newCbWorld(t, fakevt.Config{Seed: 11, UnknownPercent: 20}, "")
	start := time.Now().Add(-2 * time.Hour).UTC()
	bins := w.cb.AddSyntheticBinaries(40, start, time.Minute)
	md5s := md5sOf(bins)
	want := w.expected(t, md5s)
	if len(want) == 0 || len(want) == len(md5s) {
		t.Fatalf("%d of %d binaries malicious: the mix should have both", len(want), len(md5s))
	}

	stop := w.start(t)
	var body []byte
	var got map[string]int
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("feed %v\nwant %v", got, want)
			for _, m := range md5s {
				t.Logf("tags %s: %v", m, w.cb.Tags(m))
			}
			t.Logf("%d feeds on the Cb server", len(w.cb.Feeds()))
		}
	})
	waitFor(t, 30*time.Second, "the feed to hold exactly the malicious binaries and Cb to tag them", func() bool {
		got, body = w.feed(t)
		return sameReports(got, want) && w.taggedAsWanted(md5s, want) && w.idle(t)
	})
	if errs := carbonblack.ValidateFeedJSON(body); len(errs) > 0 {
		t.Errorf("the served feed is invalid: %v", errs)
	}
	feeds := w.cb.Feeds()
	if len(feeds) != 1 || feeds[0].Name != carbonblack.FeedName || feeds[0].FeedURL != fmt.Sprintf("http://127.0.0.1:%d/feed.json", w.port) || !feeds[0].Enabled {
		t.Fatalf("feeds on the Cb server: %+v", feeds)
	}

	// Binaries that appear while the connector runs are collected too.
	more := w.cb.AddSyntheticBinaries(10, time.Now().UTC().Add(time.Second), time.Second)
	md5s = append(md5s, md5sOf(more)...)
	want = w.expected(t, md5s)
	waitFor(t, 30*time.Second, "new binaries in the feed", func() bool {
		got, _ := w.feed(t)
		return sameReports(got, want) && w.taggedAsWanted(md5s, want) && w.idle(t)
	})
	if code := stop(); code != 0 {
		t.Fatalf("exit status %d after cancellation", code)
	}
	requests := w.vt.Stats().APIRequests()
	if requests != len(md5s) {
		t.Errorf("%d VirusTotal requests for %d binaries, want one each", requests, len(md5s))
	}

	// A restart asks VirusTotal nothing new, registers no second feed,
	// and serves the same feed.
	searches := w.cb.Stats().Searches
	stop = w.start(t)
	waitFor(t, 30*time.Second, "the feed after a restart", func() bool {
		got, _ := w.feed(t)
		return sameReports(got, want)
	})
	w.waitCollectorPass(t, searches)
	if code := stop(); code != 0 {
		t.Fatalf("exit status %d after the second cancellation", code)
	}
	if n := w.vt.Stats().APIRequests(); n != requests {
		t.Errorf("the restart sent %d VirusTotal requests, want none", n-requests)
	}
	if n := len(w.cb.Feeds()); n != 1 {
		t.Errorf("%d feeds on the Cb server after a restart, want 1", n)
	}
}

func TestCarbonBlackWithdrawsAndFullSyncs(t *testing.T) {
	w := newCbWorld(t, fakevt.Config{Seed: 5, UnknownPercent: -1}, "")
	bins := w.cb.AddSyntheticBinaries(15, time.Now().Add(-time.Hour).UTC(), time.Minute)
	md5s := md5sOf(bins)
	want := w.expected(t, md5s)
	stop := w.start(t)
	waitFor(t, 30*time.Second, "the first feed", func() bool {
		got, _ := w.feed(t)
		return sameReports(got, want) && w.taggedAsWanted(md5s, want)
	})
	stop()
	// Raise the threshold above every binary's positives: every report
	// is withdrawn, which needs a full sync to reach Carbon Black.
	conf, _ := os.ReadFile(w.confPth)
	if err := os.WriteFile(w.confPth, append(conf, []byte("feed_min_positives=1000\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	fullBefore := w.cb.Stats().FullSyncs
	stop = w.start(t)
	defer stop()
	waitFor(t, 30*time.Second, "an empty feed and no tags left", func() bool {
		got, _ := w.feed(t)
		return got != nil && len(got) == 0 && w.taggedAsWanted(md5s, map[string]int{})
	})
	if w.cb.Stats().FullSyncs == fullBefore {
		t.Errorf("no full sync after reports were withdrawn")
	}
}

func TestCarbonBlackQuotaAndOutagesLoseNothing(t *testing.T) {
	// VirusTotal allows 30 a minute and fails one request in four; the
	// connector is told 100 a minute, so it meets 429s and 503s.
	w := newCbWorld(t, fakevt.Config{Seed: 3, QuotaPerMinute: 30, FaultRate: 0.25, UnknownPercent: -1}, "virustotal_requests_per_minute=100\n")
	bins := w.cb.AddSyntheticBinaries(12, time.Now().Add(-time.Hour).UTC(), time.Minute)
	md5s := md5sOf(bins)
	want := w.expected(t, md5s)
	stop := w.start(t)
	defer stop()
	waitFor(t, 60*time.Second, "every binary despite faults", func() bool {
		got, _ := w.feed(t)
		return sameReports(got, want)
	})
}

func TestConfigCheck(t *testing.T) {
	w := newCbWorld(t, fakevt.Config{}, "")
	r := runCLI(t, http.NotFoundHandler(), "", nil, "config", "check", "--carbonblack", w.confPth)
	if r.code != 0 || !strings.Contains(r.stdout, "OK") || strings.Contains(r.stdout, "vt-test-key") || strings.Contains(r.stdout, "cb-token") {
		t.Errorf("config check: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	bad := filepath.Join(w.dir, "bad.conf")
	os.WriteFile(bad, []byte("[bridge]\ncarbonblack_server_url=ftp://x\nrescan_window=12X\nlistener_port=99999\n"), 0o600)
	r = runCLI(t, http.NotFoundHandler(), "", nil, "config", "check", "--carbonblack", bad)
	for _, want := range []string{"carbonblack_server_url", "rescan_window", "listener_port", "carbonblack_server_token", "virustotal_api_token"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("config check of a bad file does not name %s:\n%s", want, r.stderr)
		}
	}
	if r.code != 2 {
		t.Errorf("exit %d for a bad file, want 2", r.code)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// child runs the command line in a new process of the test binary.
func child(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	return childEnv(t, nil, args...)
}

// childEnv is child with more environment variables (NAME=value).
func childEnv(t *testing.T, env []string, args ...string) *exec.Cmd {
	t.Helper()
	b, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	ready := filepath.Join(t.TempDir(), "ready")
	cmd.Env = append(append(os.Environ(), env...), "VTC_CLI_CHILD_ARGS="+string(b), "VTC_CLI_CHILD_FAST=1", childReadyEnv+"="+ready)
	var errb logbuf.Buffer
	cmd.Stdout, cmd.Stderr = &errb, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		if t.Failed() {
			t.Logf("child output:\n%s", lastLines(errb.String(), 30))
			for i, a := range args {
				if a == "--config" && i+1 < len(args) {
					b, _ := os.ReadFile(filepath.Join(filepath.Dir(args[i+1]), "connector.log"))
					t.Logf("connector log (WARN and ERROR):\n%s", grepLevels(string(b)))
				}
			}
		}
	})
	return cmd
}

// childReadyEnv names the file a child process creates once it handles
// SIGTERM (until then the signal kills it: Go's default).
const childReadyEnv = "VTC_CLI_CHILD_READY"

// stopGracefully sends c, started by childEnv, SIGTERM once it handles
// the signal and fails t unless it exits cleanly.
func stopGracefully(t *testing.T, c *exec.Cmd) {
	t.Helper()
	var ready string
	for _, kv := range c.Env {
		if v, ok := strings.CutPrefix(kv, childReadyEnv+"="); ok {
			ready = v
		}
	}
	waitFor(t, 30*time.Second, "the child to handle SIGTERM", func() bool {
		_, err := os.Stat(ready)
		return err == nil
	})
	if err := c.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := c.Wait(); err != nil {
		t.Errorf("graceful stop after SIGTERM: %v", err)
	}
}

func TestCarbonBlackSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	// Slow answers, so that the kill lands in the middle of the work.
	w := newCbWorld(t, fakevt.Config{Seed: 21, UnknownPercent: 10, Latency: 40 * time.Millisecond}, "virustotal_quick_scan_threads=2\n")
	bins := w.cb.AddSyntheticBinaries(60, time.Now().Add(-3*time.Hour).UTC(), time.Minute)
	md5s := md5sOf(bins)
	want := w.expected(t, md5s)

	first := child(t, "carbonblack", "--config", w.confPth)
	waitFor(t, 30*time.Second, "the first process to be half way", func() bool { return w.vt.Stats().APIRequests() >= 20 })
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	killedAt := w.vt.Stats().APIRequests()
	if killedAt >= len(md5s) {
		t.Fatalf("all %d binaries were looked up before the kill; the test proves nothing", len(md5s))
	}

	second := child(t, "carbonblack", "--config", w.confPth)
	st, err := store.Open(context.Background(), filepath.Join(w.dir, "cb.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	t.Cleanup(func() {
		if t.Failed() {
			qs, err := st.Stats(context.Background())
			got, _ := w.feed(t)
			t.Logf("queue %+v (%v); feed matches %v; tags match %v", qs.Counts, err, sameReports(got, want), w.taggedAsWanted(md5s, want))
			t.Logf("cb feeds: %d, last error %q", len(w.cb.Feeds()), func() string {
				if fs := w.cb.Feeds(); len(fs) > 0 {
					return fs[0].LastError
				}
				return ""
			}())
		}
	})
	waitFor(t, 60*time.Second, "the restarted connector to finish every binary and the feed", func() bool {
		qs, err := st.Stats(context.Background())
		if err != nil || qs.Open() != 0 {
			return false
		}
		got, _ := w.feed(t)
		return sameReports(got, want) && w.taggedAsWanted(md5s, want)
	})
	stopGracefully(t, second)

	// Nothing lost, nothing twice: one queue item per binary, all finished;
	// at most the lookups in flight at the kill (2 workers) were repeated.
	qs, err := st.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	finished := qs.Count(carbonblack.KindBinary, store.StateDone) + qs.Count(carbonblack.KindBinary, store.StateNotFound)
	if finished != int64(len(md5s)) || qs.Open() != 0 {
		t.Errorf("queue after the restart: %+v; want %d finished items and none open", qs.Counts, len(md5s))
	}
	if n := w.vt.Stats().APIRequests(); n > len(md5s)+2 {
		t.Errorf("%d VirusTotal requests for %d binaries: more than the 2 in flight at the kill were repeated", n, len(md5s))
	}
	if n := len(w.cb.Feeds()); n != 1 {
		t.Errorf("%d feeds registered, want 1", n)
	}
}

func TestCarbonBlackDeepScanUploadsUnknownBinaries(t *testing.T) {
	// The default upload policy (pe, elf, macho) uploads the executables
	// and refuses the others, with the reason in the queue, the log and
	// the metrics; in private mode no request reaches a public upload.
	for _, tc := range []struct {
		name, conf string
		private    bool
	}{
		{"public", "", false},
		{"private", "virustotal_upload_mode=private\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newCbWorld(t, fakevt.Config{Seed: 8, UnknownPercent: 100, AnalysisDelay: 300 * time.Millisecond},
				"submit_full_binaries=1\nvirustotal_deep_scan_threads=2\n"+tc.conf)
			bins := w.cb.AddSyntheticBinaries(6, time.Now().Add(-time.Hour).UTC(), time.Minute)
			var exe, other []string
			for _, b := range bins {
				if b.IsExecutableImage {
					exe = append(exe, b.MD5)
				} else {
					other = append(other, b.MD5)
				}
			}
			if len(exe) == 0 || len(other) == 0 {
				t.Fatalf("want executables and other files among the synthetic binaries, got %d and %d", len(exe), len(other))
			}
			stop := w.start(t)
			defer stop()
			st, err := store.Open(context.Background(), filepath.Join(w.dir, "cb.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			waitFor(t, 30*time.Second, "every executable uploaded, analysed and known, the others refused", func() bool {
				for _, md5 := range exe {
					r, ok, err := st.GetResult(context.Background(), carbonblack.ResultsNS, md5)
					if err != nil || !ok {
						return false
					}
					var v carbonblack.Verdict
					if json.Unmarshal(r.Value, &v) != nil || !v.Found || v.SHA256 == "" || v.Private != tc.private {
						return false
					}
				}
				for _, md5 := range other {
					it, ok, err := st.GetItem(context.Background(), carbonblack.KindDeep, md5)
					if err != nil || !ok || it.State != store.StateFailed {
						return false
					}
				}
				return w.idle(t)
			})
			for _, md5 := range other {
				it, _, _ := st.GetItem(context.Background(), carbonblack.KindDeep, md5)
				if !strings.Contains(it.LastError, "upload refused (file_type)") {
					t.Errorf("binary %s: deep scan ended with %q, want the upload policy's file_type refusal", md5, it.LastError)
				}
			}
			vs := w.vt.Stats()
			upload, public := "POST /files", "POST /private/files"
			if tc.private {
				upload, public = public, upload
			}
			if up := vs.ByEndpoint[upload]; up != len(exe) {
				t.Errorf("%d uploads (%s) for %d unknown executables, want one each (endpoints %v)", up, upload, len(exe), vs.ByEndpoint)
			}
			if tc.private {
				for ep, n := range vs.ByEndpoint {
					if ep == public || ep == "GET /files/upload_url" || ep == "POST /urls" || ep == "GET /analyses/{id}" {
						t.Errorf("private mode sent %d requests to the public endpoint %s", n, ep)
					}
				}
			}
			if dl := w.cb.Stats().Downloads; dl != len(bins) {
				t.Errorf("%d downloads from Carbon Black, want %d", dl, len(bins))
			}
			// The uploaded bytes are the binaries' own: VirusTotal's SHA-256 of
			// each upload is the binary's.
			for _, b := range bins {
				r, _, _ := st.GetResult(context.Background(), carbonblack.ResultsNS, b.MD5)
				var v carbonblack.Verdict
				_ = json.Unmarshal(r.Value, &v)
				if b.IsExecutableImage && b.SHA256 != "" && !strings.EqualFold(v.SHA256, b.SHA256) {
					t.Errorf("binary %s: VirusTotal knows SHA-256 %s, the binary's is %s", b.MD5, v.SHA256, b.SHA256)
				}
			}
			if m := w.metrics(t); !strings.Contains(m, `vtconnector_uploads_refused_total{front="carbonblack",reason="file_type"} `+strconv.Itoa(len(other))) {
				t.Errorf("metrics do not count %d file_type refusals:\n%s", len(other), grepLines(m, "uploads_refused"))
			}
			if page := w.get(t, "/status"); !strings.Contains(page, "Uploads refused by the upload policy") || !strings.Contains(page, "file_type") {
				t.Errorf("the status page does not show the refused uploads")
			}
			logb, _ := os.ReadFile(filepath.Join(w.dir, "connector.log"))
			if n := strings.Count(string(logb), "upload refused (file_type)"); n < len(other) {
				t.Errorf("the log names %d file_type refusals, want %d", n, len(other))
			}
		})
	}
}

func TestCarbonBlackNoUploadWithoutDoubleOptIn(t *testing.T) {
	// Deep threads without submit_full_binaries: nothing leaves.
	w := newCbWorld(t, fakevt.Config{Seed: 8, UnknownPercent: 100}, "virustotal_deep_scan_threads=2\n")
	w.cb.AddSyntheticBinaries(4, time.Now().Add(-time.Hour).UTC(), time.Minute)
	stop := w.start(t)
	defer stop()
	waitFor(t, 30*time.Second, "every binary looked up", func() bool { return w.idle(t) })
	if up := w.vt.Stats().ByEndpoint["POST /files"]; up != 0 {
		t.Errorf("%d uploads although submit_full_binaries is off", up)
	}
	if dl := w.cb.Stats().Downloads; dl != 0 {
		t.Errorf("%d binaries downloaded although uploads are off", dl)
	}
}

func TestCarbonBlackRescanWindow(t *testing.T) {
	// Every synthetic report is older than a day: each found binary gets
	// one rescan, whose result is collected.
	w := newCbWorld(t, fakevt.Config{Seed: 9, UnknownPercent: -1, AnalysisDelay: 200 * time.Millisecond}, "rescan_window=1D\n")
	bins := w.cb.AddSyntheticBinaries(5, time.Now().Add(-time.Hour).UTC(), time.Minute)
	stop := w.start(t)
	defer stop()
	waitFor(t, 30*time.Second, "rescans requested and collected", func() bool { return w.idle(t) })
	vs := w.vt.Stats()
	if n := vs.ByEndpoint["POST /files/{id}/analyse"]; n != len(bins) {
		t.Errorf("%d rescans for %d binaries, want one each (endpoints %v)", n, len(bins), vs.ByEndpoint)
	}
	if n := vs.ByEndpoint["GET /analyses/{id}"]; n < len(bins) {
		t.Errorf("%d analysis polls, want at least one per binary", n)
	}
}

func TestCarbonBlackAdminCommands(t *testing.T) {
	w := newCbWorld(t, fakevt.Config{Seed: 12, UnknownPercent: -1}, "")
	bins := w.cb.AddSyntheticBinaries(8, time.Now().Add(-time.Hour).UTC(), time.Minute)
	want := w.expected(t, md5sOf(bins))
	stop := w.start(t)
	waitFor(t, 30*time.Second, "the feed", func() bool {
		got, _ := w.feed(t)
		return sameReports(got, want) && w.idle(t) && len(w.cb.Feeds()) == 1
	})
	// resync asks Cb for a full sync (the feed server must be up: it is).
	full := w.cb.Stats().FullSyncs
	r := runCLI(t, nil, "", nil, "carbonblack", "resync", "--config", w.confPth)
	if r.code != 0 || !strings.Contains(r.stdout, "full sync of feed 1 requested") || w.cb.Stats().FullSyncs != full+1 {
		t.Errorf("resync: exit %d, stdout %q, full syncs %d→%d\nstderr: %s", r.code, r.stdout, full, w.cb.Stats().FullSyncs, r.stderr)
	}
	if code := stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}

	if got := w.exportFeed(t); !sameReports(got, want) {
		t.Errorf("exported reports %v, want %v", keys(got), keys(want))
	}

	r = runCLI(t, nil, "", nil, "carbonblack", "requeue", "--config", w.confPth)
	if r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("%d binaries queued again", len(bins))) {
		t.Errorf("requeue: exit %d, stdout %q\n%s", r.code, r.stdout, r.stderr)
	}
	// The requeued binaries are looked at again by the next run, which
	// answers them from the cache (their cached reports are fresh): no new
	// VirusTotal request.
	if open := w.openItems(t); open != len(bins) {
		t.Fatalf("%d open items after requeue, want %d", open, len(bins))
	}
	before := w.vt.Stats().APIRequests()
	stop = w.start(t)
	waitFor(t, 30*time.Second, "the requeued binaries processed", func() bool { return w.idle(t) })
	if code := stop(); code != 0 {
		t.Fatalf("exit %d after the requeued run", code)
	}
	if n := w.vt.Stats().APIRequests() - before; n != 0 {
		t.Errorf("the requeued binaries cost %d VirusTotal requests, want 0 (their cached reports are fresh)", n)
	}
	if got := w.exportFeed(t); !sameReports(got, want) {
		t.Errorf("reports after the requeued run %v, want %v", keys(got), keys(want))
	}
}

// exportFeed runs export-feed, checks the feed it prints, and returns its
// reports: id → score.
func (w *cbWorld) exportFeed(t *testing.T) map[string]int {
	t.Helper()
	r := runCLI(t, nil, "", nil, "carbonblack", "export-feed", "--config", w.confPth)
	if r.code != 0 {
		t.Fatalf("export-feed: exit %d\n%s", r.code, r.stderr)
	}
	if errs := carbonblack.ValidateFeedJSON([]byte(r.stdout)); len(errs) > 0 {
		t.Errorf("exported feed invalid: %v", errs)
	}
	var f struct {
		Reports []struct {
			ID    string `json:"id"`
			Score int    `json:"score"`
		} `json:"reports"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &f); err != nil {
		t.Fatalf("export-feed printed no JSON feed: %v\n%s", err, r.stdout)
	}
	got := map[string]int{}
	for _, rep := range f.Reports {
		got[rep.ID] = rep.Score
	}
	return got
}

func grepLevels(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
			out = append(out, l)
		}
	}
	return lastLines(strings.Join(out, "\n"), 40)
}

func TestCarbonBlackServesStatusAndMetrics(t *testing.T) {
	w := newCbWorld(t, fakevt.Config{Seed: 13, UnknownPercent: -1}, "")
	bins := w.cb.AddSyntheticBinaries(6, time.Now().Add(-time.Hour).UTC(), time.Minute)
	want := w.expected(t, md5sOf(bins))
	stop := w.start(t)
	defer stop()
	waitFor(t, 30*time.Second, "the feed", func() bool {
		got, _ := w.feed(t)
		return sameReports(got, want) && w.idle(t)
	})
	get := func(path string) string {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", w.port, path))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
		return string(b)
	}
	metrics := get("/metrics")
	for _, m := range []string{`vtconnector_vt_requests_total{endpoint="GET /files/{id}",front="carbonblack",outcome="ok"} 6`,
		`vtconnector_queue_items{front="carbonblack",kind="cb.binary",state="done"} 6`, "vtconnector_vt_quota_used"} {
		if !strings.Contains(metrics, m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	page := get("/status")
	for _, id := range []string{`id="quota"`, `id="queue"`, `id="verdicts"`, `id="problems"`} {
		if !strings.Contains(page, id) {
			t.Errorf("/status lacks %s", id)
		}
	}
	if strings.Contains(page+metrics, "vt-test-key") || strings.Contains(page+metrics, "cb-token") {
		t.Error("a secret appears on the status page or in the metrics")
	}
}

func TestCarbonBlackKeepsThePreviousConnectorsTags(t *testing.T) {
	// A Cb server that ran the original connector: its feed exists and
	// tags binaries. Our first start must not full-sync an empty feed (Cb
	// would drop those tags and every binary would be analysed again).
	w := newCbWorld(t, fakevt.Config{Seed: 14, UnknownPercent: -1}, "")
	bins := w.cb.AddSyntheticBinaries(6, time.Now().Add(-time.Hour).UTC(), time.Minute)
	// Run once to get the feed registered and the binaries tagged, then
	// forget our database, as a new install next to an old feed would be.
	stop := w.start(t)
	want := w.expected(t, md5sOf(bins))
	waitFor(t, 30*time.Second, "the first feed", func() bool {
		got, _ := w.feed(t)
		return sameReports(got, want) && w.taggedAsWanted(md5sOf(bins), want) && w.idle(t)
	})
	stop()
	for _, f := range []string{"cb.db", "cb.db-wal", "cb.db-shm"} {
		os.Remove(filepath.Join(w.dir, f))
	}
	before := w.cb.Stats()
	full := before.FullSyncs
	stop = w.start(t)
	defer stop()
	// The registrar's first sync after the start is where a full sync
	// would be asked for; the collector's pass is where untagged binaries
	// would be queued.
	waitFor(t, 30*time.Second, "the first feed sync after the start", func() bool { return w.cb.Stats().Syncs > before.Syncs })
	w.waitCollectorPass(t, before.Searches)
	if n := w.cb.Stats().FullSyncs; n != full {
		t.Errorf("%d full syncs at the start of a connector that has published nothing yet", n-full)
	}
	if !w.taggedAsWanted(md5sOf(bins), want) {
		t.Error("the tags of the previous connector's feed were dropped")
	}
}

func TestCarbonBlackUnverifiedTLSIsLoudAndACAFileVerifies(t *testing.T) {
	w := newCbWorldOn(t, httptest.NewTLSServer, fakevt.Config{Seed: 3}, "")
	w.cb.AddSyntheticBinaries(2, time.Now().Add(-time.Hour).UTC(), time.Minute)
	stop := w.start(t)
	waitFor(t, 30*time.Second, "the binaries looked up over HTTPS", func() bool { return w.idle(t) })
	logb, _ := os.ReadFile(filepath.Join(w.dir, "connector.log"))
	if !strings.Contains(string(logb), "TLS certificate is NOT verified") {
		t.Errorf("no warning about the unverified certificate in the log")
	}
	if page := w.get(t, "/status"); !strings.Contains(page, "NOT verified") {
		t.Errorf("the status page does not say the certificate is not verified")
	}
	stop()

	// With the simulator's CA, the certificate is verified and no warning is given.
	ca := filepath.Join(w.dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: w.cbTLS.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	conf, _ := os.ReadFile(w.confPth)
	if err := os.WriteFile(w.confPth, append(conf, []byte("carbonblack_server_ca_file="+ca+"\nlog_file="+filepath.Join(w.dir, "second.log")+"\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	fresh := w.cb.AddSyntheticBinaries(1, time.Now().UTC(), time.Minute)[0]
	stop = w.start(t)
	defer stop()
	st, err := store.Open(context.Background(), filepath.Join(w.dir, "cb.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	waitFor(t, 30*time.Second, "the new binary collected over a verified connection", func() bool {
		_, ok, err := st.GetResult(context.Background(), carbonblack.ResultsNS, fresh.MD5)
		return err == nil && ok
	})
	logb, _ = os.ReadFile(filepath.Join(w.dir, "second.log"))
	if strings.Contains(string(logb), "NOT verified") {
		t.Errorf("a warning about an unverified certificate although carbonblack_server_ca_file is set")
	}
}
