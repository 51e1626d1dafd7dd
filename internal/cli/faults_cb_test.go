//go:build faults

package cli

import (
	"github.com/vtconnector/vtconnector/internal/store/storetest"

	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vtconnector/vtconnector/internal/carbonblack"
	"github.com/vtconnector/vtconnector/internal/fake/netproxy"
	fakevt "github.com/vtconnector/vtconnector/internal/fake/vt"
	"github.com/vtconnector/vtconnector/internal/store"
)

// setConf sets key in the world's connector.conf, replacing its line
// when there is one.
func (w *cbWorld) setConf(t testing.TB, key, value string) {
	t.Helper()
	b, err := os.ReadFile(w.confPth)
	if err != nil {
		t.Fatal(err)
	}
	lines, found := strings.Split(strings.TrimRight(string(b), "\n"), "\n"), false
	for i, l := range lines {
		if strings.HasPrefix(l, key+"=") {
			lines[i], found = key+"="+value, true
		}
	}
	if !found {
		lines = append(lines, key+"="+value)
	}
	if err := os.WriteFile(w.confPth, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// openBooks opens the daemon's database for the book keeping.
func openBooks(t testing.TB, dsn string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

type feedReport struct {
	ID    string `json:"id"`
	Score int    `json:"score"`
}

// feedReports fetches the served feed's reports, duplicates included.
func (w *cbWorld) feedReports() ([]feedReport, error) {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/feed.json", w.port))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("feed: HTTP %d", resp.StatusCode)
	}
	var f struct {
		Reports []feedReport `json:"reports"`
	}
	if err := json.Unmarshal(body, &f); err != nil {
		return nil, fmt.Errorf("feed: %w", err)
	}
	return f.Reports, nil
}

// cbBooks accounts for every binary of md5s: one finished queue item; a
// stored verdict for each done one, agreeing with oracle (report id →
// score, as cbWorld.expected gives; nil when uploads change what
// VirusTotal knows); the feed holding exactly the detecting verdicts,
// once each; Carbon Black holding one feed and the matching tags.
func (w *cbWorld) cbBooks(st *store.Store, md5s []string, oracle map[string]int) books {
	ctx := context.Background()
	b := books{Items: len(md5s)}
	want := map[string]int{}
	for _, m := range md5s {
		it, ok, err := st.GetItem(ctx, carbonblack.KindBinary, m)
		if err != nil {
			b.Pending = append(b.Pending, "store: "+err.Error())
			return b
		}
		switch {
		case !ok:
			b.lost("binary %s never queued", m)
		case it.State == store.StateDone || it.State == store.StateNotFound:
			// A deep scan may give a binary looked up as not found a verdict.
			r, ok, err := st.GetResult(ctx, carbonblack.ResultsNS, m)
			var v carbonblack.Verdict
			if err != nil || ok && json.Unmarshal(r.Value, &v) != nil || !ok && it.State == store.StateDone {
				b.lost("binary %s done without a stored verdict (%v)", m, err)
				continue
			}
			id := "Binary_" + strings.ToUpper(m)
			if v.Found && v.Positives >= 1 {
				want[id] = v.Score()
			}
			if oracle != nil && want[id] != oracle[id] {
				b.wrong("binary %s: stored score %d, VirusTotal's %d", m, want[id], oracle[id])
			}
		case it.State == store.StateFailed:
			if strings.TrimSpace(it.LastError) == "" {
				b.wrong("binary %s failed without a reason", m)
			}
		default:
			b.lost("binary %s still %s (last error %q)", m, it.State, it.LastError)
		}
	}
	qs, err := st.Stats(ctx)
	if err != nil {
		b.Pending = append(b.Pending, "store: "+err.Error())
		return b
	}
	if n := int(qs.Count(carbonblack.KindBinary, "")); n > len(md5s) {
		b.dup("%d binary items for %d binaries", n, len(md5s))
	}
	for _, s := range []string{store.StateQueued, store.StatePending, store.StateRetry, store.StateLeased} {
		if n := qs.Count(carbonblack.KindDeep, s); n > 0 {
			b.lost("%d deep scans still %s", n, s)
		}
	}
	reports, err := w.feedReports()
	if err != nil {
		b.Pending = append(b.Pending, err.Error())
		return b
	}
	seen := map[string]bool{}
	for _, r := range reports {
		if seen[r.ID] {
			b.dup("report %s twice in the feed", r.ID)
			continue
		}
		seen[r.ID] = true
		score, ok := want[r.ID]
		switch {
		case !ok:
			b.wrong("report %s in the feed without a detecting verdict", r.ID)
		case score != r.Score:
			b.wrong("report %s: score %d in the feed, %d stored", r.ID, r.Score, score)
		}
	}
	for id := range want {
		if !seen[id] {
			b.lost("verdict %s not in the feed", id)
		}
	}
	switch feeds := w.cb.Feeds(); {
	case len(feeds) > 1:
		b.dup("%d feeds on the Carbon Black server", len(feeds))
	case len(feeds) == 0:
		b.Pending = append(b.Pending, "no feed on the Carbon Black server yet")
	}
	if !w.taggedAsWanted(md5s, want) {
		b.Pending = append(b.Pending, "Carbon Black's tags do not match the feed yet")
	}
	return b
}

// cbSettle waits up to d for the books of a Carbon Black scenario to
// balance.
func (w *cbWorld) cbSettle(st *store.Store, md5s []string, oracle map[string]int, d time.Duration) (books, time.Duration) {
	return settle(d, func() books { return w.cbBooks(st, md5s, oracle) })
}

// progressed waits until at least n binary items are finished, so that a
// fault lands on a daemon in the middle of its work.
func progressed(t *testing.T, st *store.Store, n int) {
	t.Helper()
	waitFor(t, 60*time.Second, fmt.Sprintf("%d finished items", n), func() bool {
		qs, err := st.Stats(context.Background())
		return err == nil && qs.Count(carbonblack.KindBinary, store.StateDone)+qs.Count(carbonblack.KindBinary, store.StateNotFound) >= int64(n)
	})
}

// faultCbSIGKILL kills the Carbon Black daemon at random moments while
// new binaries keep arriving, restarting it each time.
func faultCbSIGKILL(t *testing.T, m faultMode, f *figure) {
	began := time.Now()
	kills, perRound := pick(m, 20, 3), pick(m, 15, 10)
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 7))
	f.Faults = fmt.Sprintf("%d SIGKILLs at random moments (0.1–1.5 s apart), restarts, binaries arriving (seed %d)", kills, seed)
	w := newCbWorld(t, fakevt.Config{Seed: 31, UnknownPercent: 10, Latency: 15 * time.Millisecond}, "virustotal_quick_scan_threads=2\n")
	md5s := md5sOf(w.cb.AddSyntheticBinaries(40, time.Now().Add(-3*time.Hour).UTC(), time.Minute))
	st := openBooks(t, filepath.Join(w.dir, "cb.db"))
	busy := 0
	for range kills {
		c := child(t, "carbonblack", "--config", w.confPth)
		md5s = append(md5s, md5sOf(w.cb.AddSyntheticBinaries(perRound, time.Now().UTC(), time.Millisecond))...)
		// The random moment of the kill: this injects the fault, it asserts nothing.
		time.Sleep(100*time.Millisecond + time.Duration(rng.Int64N(int64(1400*time.Millisecond))))
		if qs, err := st.Stats(context.Background()); err == nil && qs.Open() > 0 {
			busy++
		}
		if err := c.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = c.Wait()
	}
	t.Logf("%d of %d kills landed with work open in the queue", busy, kills)
	last := child(t, "carbonblack", "--config", w.confPth)
	b, took := w.cbSettle(st, md5s, w.expected(t, md5s), pick(m, 3*time.Minute, time.Minute))
	stopGracefully(t, last)
	f.close(t, b, took, began)
}

// faultCbVTErrors answers one VirusTotal request in five with a 503, a
// few too late for the client's timeout, and throws 429 storms (every
// request refused) at the daemon.
func faultCbVTErrors(t *testing.T, m faultMode, f *figure) {
	began := time.Now()
	n, storms, stormLen := pick(m, 300, 60), pick(m, 5, 2), pick(m, 10*time.Second, time.Second)
	f.Faults = fmt.Sprintf("20%% 503s, 5%% answers after the 2 s client timeout, %d 429 storms of %s", storms, stormLen)
	cfg := fakevt.Config{Seed: 32, UnknownPercent: 10, FaultRate: 0.2, SlowRate: 0.05, SlowDelay: 3 * time.Second}
	w := newCbWorld(t, cfg, "virustotal_timeout=2\n")
	front := newVTFront(t, w.vt)
	w.setConf(t, "virustotal_url", front.url())
	md5s := md5sOf(w.cb.AddSyntheticBinaries(n, time.Now().Add(-3*time.Hour).UTC(), time.Second))
	stop := stopOnce(t, w.start(t))
	st := openBooks(t, filepath.Join(w.dir, "cb.db"))
	// The first storm right at the start: a cut from the few requests seen
	// so far must not pin the rate (it is extrapolated to a minute). The
	// wait allows for the queue's 30 s retry of items whose lookups kept
	// failing (503s and timeouts, retried by the engine first).
	front.storms(storms, stormLen, pick(m, 5*time.Second, 500*time.Millisecond))
	b, took := w.cbSettle(st, md5s, w.expected(t, md5s), pick(m, 5*time.Minute, 150*time.Second))
	vs := w.vt.Stats()
	t.Logf("VirusTotal: %d requests, %d 503s, %d slow; %d refused by storms", vs.Requests, vs.Faults, vs.Slow, front.storms429.Load())
	if code := stop(); code != 0 {
		t.Errorf("exit status %d", code)
	}
	f.close(t, b, took, began)
}

// faultCbDown takes the Carbon Black server down (every connection
// closed without an answer) while binaries are queued and new ones
// arrive on it.
func faultCbDown(t *testing.T, m faultMode, f *figure) {
	began := time.Now()
	outage := pick(m, 3*time.Minute, 5*time.Second)
	f.Faults = fmt.Sprintf("Carbon Black down for %s (connections closed unanswered), binaries arriving meanwhile", outage)
	var down atomic.Bool
	serve := func(h http.Handler) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			if down.Load() {
				if hj, ok := rw.(http.Hijacker); ok {
					if c, _, err := hj.Hijack(); err == nil {
						c.Close()
						return
					}
				}
				rw.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			h.ServeHTTP(rw, r)
		}))
	}
	w := newCbWorldOn(t, serve, fakevt.Config{Seed: 33, UnknownPercent: 10, Latency: 10 * time.Millisecond}, "")
	md5s := md5sOf(w.cb.AddSyntheticBinaries(60, time.Now().Add(-3*time.Hour).UTC(), time.Minute))
	st := openBooks(t, filepath.Join(w.dir, "cb.db"))
	stop := stopOnce(t, w.start(t))
	progressed(t, st, 5)
	down.Store(true)
	md5s = append(md5s, md5sOf(w.cb.AddSyntheticBinaries(30, time.Now().UTC(), time.Millisecond))...)
	time.Sleep(outage) // the outage itself
	down.Store(false)
	b, took := w.cbSettle(st, md5s, w.expected(t, md5s), pick(m, 3*time.Minute, time.Minute))
	if code := stop(); code != 0 {
		t.Errorf("exit status %d", code)
	}
	f.close(t, b, took, began)
}

// postgresSchema is a PostgreSQL schema of the scenario's own.
func postgresSchema(t *testing.T, f *figure) string {
	t.Helper()
	if os.Getenv(storetest.EnvDSN) == "" {
		f.NotRun = storetest.EnvDSN + " not set"
		t.Skip(f.NotRun)
	}
	return storetest.PostgresDSN(t, "vtc_faults", "")
}

// throughProxy returns dsn (a URL) with its host replaced by a proxy to
// it, and the proxy.
func throughProxy(t *testing.T, rawURL string) (string, *netproxy.Proxy) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	p, err := netproxy.New(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	u.Host = p.Addr()
	return u.String(), p
}

// netFaults is a plan of network faults: cuts at random moments, then a
// restart (a cut and refused connections), then a stall.
type netFaults struct {
	cuts             int
	gap              time.Duration // the longest time between two cuts
	refuse, stallFor time.Duration
}

func (nf netFaults) String() string {
	return fmt.Sprintf("%d connection cuts, a restart (cut + %s refused), a %s stall", nf.cuts, nf.refuse, nf.stallFor)
}

// inject runs the plan against p, calling between after each fault.
func (nf netFaults) inject(t *testing.T, p *netproxy.Proxy, rng *rand.Rand, between func()) {
	for range nf.cuts {
		time.Sleep(time.Duration(rng.Int64N(int64(nf.gap)))) // a random moment
		p.Cut()
		between()
	}
	p.Refuse(true)
	p.Cut()
	time.Sleep(nf.refuse) // the server is away
	p.Refuse(false)
	between()
	p.Stall()
	time.Sleep(nf.stallFor) // nothing passes
	p.Resume()
	between()
	t.Logf("proxy: %+v", p.Stats())
}

// faultCbPostgres runs the Carbon Black daemon on PostgreSQL through a
// proxy that cuts, refuses and stalls its connections.
func faultCbPostgres(t *testing.T, m faultMode, f *figure) {
	began := time.Now()
	nf := pick(m, netFaults{cuts: 10, gap: 4 * time.Second, refuse: 30 * time.Second, stallFor: 30 * time.Second},
		netFaults{cuts: 2, gap: time.Second, refuse: 3 * time.Second, stallFor: 3 * time.Second})
	f.Faults = "PostgreSQL: " + nf.String()
	dsn := postgresSchema(t, f)
	proxied, p := throughProxy(t, dsn)
	w := newCbWorld(t, fakevt.Config{Seed: 34, UnknownPercent: 10, Latency: 10 * time.Millisecond}, "virustotal_quick_scan_threads=2\n")
	w.setConf(t, "database_url", proxied)
	md5s := md5sOf(w.cb.AddSyntheticBinaries(60, time.Now().Add(-3*time.Hour).UTC(), time.Minute))
	st := openBooks(t, dsn)
	stop := stopOnce(t, w.start(t))
	progressed(t, st, 3)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	nf.inject(t, p, rng, func() {
		md5s = append(md5s, md5sOf(w.cb.AddSyntheticBinaries(10, time.Now().UTC(), time.Millisecond))...)
	})
	b, took := w.cbSettle(st, md5s, w.expected(t, md5s), pick(m, 3*time.Minute, time.Minute))
	if code := stop(); code != 0 {
		t.Errorf("exit status %d", code)
	}
	f.close(t, b, took, began)
}

// faultCbDiskFull puts the daemon's SQLite database on a small tmpfs and
// fills it while binaries arrive, then frees the space.
func faultCbDiskFull(t *testing.T, m faultMode, f *figure) {
	began := time.Now()
	full := pick(m, time.Minute, 3*time.Second)
	f.Faults = fmt.Sprintf("database filesystem full for %s (tmpfs), binaries arriving meanwhile", full)
	w := newCbWorld(t, fakevt.Config{Seed: 35, UnknownPercent: 10, Latency: 10 * time.Millisecond}, "")
	mnt := filepath.Join(w.dir, "db")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", mnt).CombinedOutput(); err != nil {
		f.NotRun = "needs a tmpfs mount (root): " + strings.TrimSpace(string(out))
		t.Skip(f.NotRun)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	dbPath := filepath.Join(mnt, "cb.db")
	w.setConf(t, "database_url", dbPath)
	md5s := md5sOf(w.cb.AddSyntheticBinaries(60, time.Now().Add(-3*time.Hour).UTC(), time.Minute))
	stop := stopOnce(t, w.start(t))
	st := openBooks(t, dbPath)
	progressed(t, st, 10)
	filler := filepath.Join(mnt, "filler")
	if err := fillDisk(filler); err != nil {
		t.Fatal(err)
	}
	md5s = append(md5s, md5sOf(w.cb.AddSyntheticBinaries(40, time.Now().UTC(), time.Millisecond))...)
	time.Sleep(full) // the disk stays full
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	b, took := w.cbSettle(st, md5s, w.expected(t, md5s), pick(m, 3*time.Minute, time.Minute))
	logb, _ := os.ReadFile(filepath.Join(w.dir, "connector.log"))
	t.Logf("%d log lines mention a full disk", strings.Count(strings.ToLower(string(logb)), "full"))
	if code := stop(); code != 0 {
		t.Errorf("exit status %d", code)
	}
	f.close(t, b, took, began)
}

// fillDisk writes zeros to path until the filesystem is full.
func fillDisk(path string) error {
	fh, err := os.Create(path)
	if err != nil {
		return err
	}
	defer fh.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := fh.Write(buf); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			return err
		}
	}
	// The last partial block: fill what is left byte by byte.
	one := []byte{0}
	for {
		if _, err := fh.Write(one); err != nil {
			return nil
		}
	}
}

// faultCbUploadStall holds every upload of a deep scan (the upload
// connection stays open, no answer) for longer than its deadline in the
// long form, for seconds in the short one.
func faultCbUploadStall(t *testing.T, m faultMode, f *figure) {
	began := time.Now()
	stall := pick(m, 90*time.Second, 3*time.Second)
	f.Faults = fmt.Sprintf("every upload stalled for %s (deadline: 1 min)", stall)
	w := newCbWorld(t, fakevt.Config{Seed: 36, UnknownPercent: 100, AnalysisDelay: 300 * time.Millisecond},
		"submit_full_binaries=1\nvirustotal_deep_scan_threads=2\n")
	front := newVTFront(t, w.vt)
	w.setConf(t, "virustotal_url", front.url())
	release := front.stallUploads()
	md5s := md5sOf(w.cb.AddSyntheticBinaries(pick(m, 12, 6), time.Now().Add(-time.Hour).UTC(), time.Minute))
	stop := stopOnce(t, w.start(t))
	waitFor(t, 60*time.Second, "an upload held", func() bool { return front.stalled.Load() > 0 })
	time.Sleep(stall) // the stall itself
	release()
	st := openBooks(t, filepath.Join(w.dir, "cb.db"))
	b, took := w.cbSettle(st, md5s, nil, pick(m, 3*time.Minute, time.Minute))
	t.Logf("%d uploads held, %d uploads received", front.stalled.Load(), w.vt.Stats().ByEndpoint["POST /files"])
	if code := stop(); code != 0 {
		t.Errorf("exit status %d", code)
	}
	f.close(t, b, took, began)
}

// stopOnce makes a world's stop function safe to call again (the second
// call returns the first one's status) and calls it at the end of the
// test if the scenario did not.
func stopOnce(t *testing.T, stop func() int) func() int {
	var (
		once sync.Once
		code int
	)
	f := func() int {
		once.Do(func() { code = stop() })
		return code
	}
	t.Cleanup(func() { f() })
	return f
}
