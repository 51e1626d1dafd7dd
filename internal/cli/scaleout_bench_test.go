package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	fakecb "github.com/vtconnector/vtconnector/internal/fake/carbonblack"
	fakevt "github.com/vtconnector/vtconnector/internal/fake/vt"
	"github.com/vtconnector/vtconnector/internal/store"
)

// scaleWorld is several vtconnector processes (the test binary run as
// children, see TestMain) sharing one PostgreSQL schema, in front of one
// Carbon Black simulator and one VirusTotal simulator that records when
// each API request arrived.
type scaleWorld struct {
	dir, dsn     string
	cbURL, vtURL string
	vt           *fakevt.Server
	mu           sync.Mutex
	arrivals     []time.Time
	children     []*exec.Cmd
	childOutput  []*bytes.Buffer
	quotaPerMin  int
}

func newScaleWorld(b *testing.B, binaries int, vtCfg fakevt.Config) *scaleWorld {
	b.Helper()
	w := &scaleWorld{dir: b.TempDir(), dsn: pgSchemaDSN(b, ""), quotaPerMin: vtCfg.QuotaPerMinute}
	cb := fakecb.New(fakecb.Config{Token: "cb-token"})
	cb.AddSyntheticBinaries(binaries, time.Now().Add(-time.Hour).UTC(), time.Millisecond)
	cbts := httptest.NewServer(cb)
	b.Cleanup(cbts.Close)
	w.vt = fakevt.New(vtCfg)
	vtts := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.URL.Path, "/users/") { // quota queries are free
			w.mu.Lock()
			w.arrivals = append(w.arrivals, time.Now())
			w.mu.Unlock()
		}
		w.vt.ServeHTTP(rw, r)
	}))
	b.Cleanup(vtts.Close)
	w.cbURL, w.vtURL = cbts.URL, vtts.URL+"/api/v3"
	b.Cleanup(w.stop)
	return w
}

// startCb starts a Carbon Black connector process on the shared database.
func (w *scaleWorld) startCb(b *testing.B, i int) {
	b.Helper()
	dir := filepath.Join(w.dir, fmt.Sprintf("cb%d", i))
	if err := os.MkdirAll(dir, 0o750); err != nil {
		b.Fatal(err)
	}
	conf := fmt.Sprintf(`[bridge]
carbonblack_server_url=%s
carbonblack_server_token=cb-token
virustotal_api_token=vt-scale-key
virustotal_url=%s
listener_port=%d
listener_address=127.0.0.1
feed_host=127.0.0.1
database_url=%s
log_file=%s
virustotal_requests_per_minute=%d
virustotal_requests_per_day=0
virustotal_requests_per_month=0
sleep_between_batches=1
virustotal_quick_scan_threads=4
`, w.cbURL, w.vtURL, freePort(b), w.dsn, filepath.Join(dir, "connector.log"), w.quotaPerMin)
	pth := filepath.Join(dir, "connector.conf")
	if err := os.WriteFile(pth, []byte(conf), 0o600); err != nil {
		b.Fatal(err)
	}
	w.start(b, "", "carbonblack", "--config", pth)
}

// startLookup starts `vtconnector lookup --db` on the shared database with
// n hashes of its own on stdin.
func (w *scaleWorld) startLookup(b *testing.B, i, n int) {
	b.Helper()
	var in strings.Builder
	for k := range n {
		fmt.Fprintf(&in, "%064x\n", uint64(i)<<32|uint64(k))
	}
	w.start(b, in.String(), "lookup", "--apikey", "vt-scale-key", "--vt-url", w.vtURL, "--db", w.dsn,
		"--rate", fmt.Sprint(w.quotaPerMin), "--daily", "0", "--monthly", "0", "--max-wait", "0", "--concurrency", "4", "--log-level", "error")
}

func (w *scaleWorld) start(b *testing.B, stdin string, args ...string) {
	b.Helper()
	argv, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "VTC_CLI_CHILD_ARGS="+string(argv))
	cmd.Stdin = strings.NewReader(stdin)
	out := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = nil, out // results are not needed, only the errors
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	w.children = append(w.children, cmd)
	w.childOutput = append(w.childOutput, out)
}

// stop ends every child with SIGTERM (they hand their work back) and
// waits for them.
func (w *scaleWorld) stop() {
	for _, c := range w.children {
		_ = c.Process.Signal(syscall.SIGTERM)
	}
	for _, c := range w.children {
		done := make(chan struct{})
		go func() { _ = c.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = c.Process.Kill()
			<-done
		}
	}
	w.children = nil
}

func (w *scaleWorld) arrivalTimes() []time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.arrivals)
}

// maxPerWindow is the most requests that arrived in any window d long.
func maxPerWindow(ts []time.Time, d time.Duration) int {
	best, lo := 0, 0
	for hi := range ts {
		for ts[hi].Sub(ts[lo]) >= d {
			lo++
		}
		best = max(best, hi-lo+1)
	}
	return best
}

// BenchmarkScaleOut: Carbon Black connector processes sharing one
// PostgreSQL queue. instances=N: N processes work 3,000 binaries, each with
// 4 quick-scan threads, VirusTotal answering after 50 ms, no quota; the
// rate is the binaries finished per second from the first VirusTotal
// request to the last verdict. quota: two connectors and two `lookup --db`
// runs share one key's per-minute budget for 75 s; the simulator enforces
// the same budget (a request over it would get a 429).
func BenchmarkScaleOut(b *testing.B) {
	if os.Getenv("VTC_TEST_POSTGRES_DSN") == "" {
		b.Skip("VTC_TEST_POSTGRES_DSN not set")
	}
	const binaries = 3000
	for _, n := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("instances=%d", n), func(b *testing.B) {
			for b.Loop() {
				w := newScaleWorld(b, binaries, fakevt.Config{Seed: 5, UnknownPercent: -1, Latency: 50 * time.Millisecond})
				st, err := store.Open(b.Context(), w.dsn)
				if err != nil {
					b.Fatal(err)
				}
				for i := range n {
					w.startCb(b, i)
				}
				// Progress: finished items, sampled every 50 ms.
				type sample struct {
					at   time.Time
					done int64
				}
				var samples []sample
				deadline := time.Now().Add(5 * time.Minute)
				for {
					qs, err := st.Stats(b.Context())
					if err != nil {
						b.Fatal(err)
					}
					d := qs.Count("cb.binary", store.StateDone) + qs.Count("cb.binary", store.StateNotFound) + qs.Count("cb.binary", store.StateFailed)
					samples = append(samples, sample{time.Now(), d})
					if d >= binaries {
						break
					}
					if time.Now().After(deadline) {
						w.failWithLogs(b, fmt.Sprintf("%d of %d binaries finished after 5 minutes", d, binaries))
					}
					time.Sleep(50 * time.Millisecond)
				}
				end := samples[len(samples)-1].at
				w.stop()
				st.Close()
				arr := w.arrivalTimes()
				if len(arr) == 0 {
					b.Fatal("no VirusTotal request")
				}
				// The steady rate: from 10 % to 90 % of the binaries
				// (instances that poll an empty queue join within their
				// idle interval, 5 s).
				at := func(frac float64) time.Time {
					for _, s := range samples {
						if float64(s.done) >= frac*binaries {
							return s.at
						}
					}
					return end
				}
				b.ReportMetric(float64(binaries)/end.Sub(arr[0]).Seconds(), "binaries/s")
				b.ReportMetric(0.8*binaries/at(0.9).Sub(at(0.1)).Seconds(), "steady_binaries/s")
				b.ReportMetric(float64(len(arr))/float64(binaries), "requests/binary")
				b.ReportMetric(float64(w.vt.Stats().QuotaExceeded), "429s")
			}
		})
	}
	b.Run("quota", func(b *testing.B) {
		const budget, run = 120, 75 * time.Second
		for b.Loop() {
			w := newScaleWorld(b, binaries, fakevt.Config{Seed: 5, UnknownPercent: -1, Latency: 50 * time.Millisecond, QuotaPerMinute: budget})
			w.quotaPerMin = budget
			for i := range 2 {
				w.startCb(b, i)
				w.startLookup(b, i+1, 1000)
			}
			deadline := time.Now().Add(run + 30*time.Second)
			for {
				arr := w.arrivalTimes()
				if len(arr) > 0 && time.Since(arr[0]) >= run {
					break
				}
				if time.Now().After(deadline) {
					w.failWithLogs(b, "no VirusTotal request within 30 s")
				}
				time.Sleep(100 * time.Millisecond)
			}
			w.stop()
			arr := w.arrivalTimes()
			b.ReportMetric(budget, "budget_per_min")
			b.ReportMetric(float64(maxPerWindow(arr, time.Minute)), "max_per_min")
			b.ReportMetric(float64(len(arr)), "requests")
			b.ReportMetric(float64(w.vt.Stats().QuotaExceeded), "429s")
			b.ReportMetric(float64(arr[len(arr)-1].Sub(arr[0]).Seconds()), "span_s")
		}
	})
}

func (w *scaleWorld) failWithLogs(b *testing.B, msg string) {
	b.Helper()
	w.stop()
	for i, out := range w.childOutput {
		b.Logf("child %d:\n%s", i, lastLines(out.String(), 20))
	}
	b.Fatal(msg)
}
