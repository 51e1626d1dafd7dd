package store

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vtconnector/vtconnector/internal/engine"
)

// The multi-process tests re-run this test binary as a child process
// that only runs TestHelperProcess, in the role named by VTC_STORE_HELPER,
// against the database named by VTC_STORE_DSN.

// TestHelperProcess is the child process's body; it exits the process.
func TestHelperProcess(t *testing.T) {
	role := os.Getenv("VTC_STORE_HELPER")
	if role == "" {
		t.Skip("runs only as a child process of the multi-process tests")
	}
	var err error
	switch role {
	case "claim":
		err = helperClaim()
	case "quota":
		err = helperQuota()
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(2)
	}
	os.Exit(0)
}

func envDuration(name string) time.Duration {
	d, _ := time.ParseDuration(os.Getenv(name))
	return d
}

// helperClaim works through the queue as worker VTC_STORE_WORKER: it
// claims up to 4 items, and for each appends the key to the file
// VTC_STORE_LOG (the side effect outside the store, which a crash may
// repeat), waits VTC_STORE_WORK, then completes the item as done while
// recording the completion in test_side_effects in the same transaction.
// It returns when no item is open.
func helperClaim() error {
	ctx := context.Background()
	s, err := Open(ctx, os.Getenv("VTC_STORE_DSN"))
	if err != nil {
		return err
	}
	defer s.Close()
	worker, lease, work := os.Getenv("VTC_STORE_WORKER"), envDuration("VTC_STORE_LEASE"), envDuration("VTC_STORE_WORK")
	log, err := os.OpenFile(os.Getenv("VTC_STORE_LOG"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer log.Close()
	for {
		its, err := s.Claim(ctx, worker, nil, 4, lease)
		if err != nil {
			return err
		}
		if len(its) == 0 {
			st, err := s.Stats(ctx)
			if err != nil {
				return err
			}
			if st.Open() == 0 {
				return nil
			}
			time.Sleep(20 * time.Millisecond) // others hold the rest
			continue
		}
		for _, it := range its {
			if _, err := log.WriteString(it.Key + "\n"); err != nil {
				return err
			}
			time.Sleep(work)
			err := completeRecording(ctx, s, it, worker, Done(nil))
			if errors.Is(err, ErrLeaseLost) {
				continue // too slow: another worker has it
			}
			if err != nil {
				return err
			}
		}
	}
}

// quotaResult is what a quota helper reports.
type quotaResult struct {
	Grants  []time.Time
	Refused map[string]int // by window
}

// helperQuota prints "ready", waits for a line on stdin, then for
// VTC_STORE_RUN takes quota of key VTC_STORE_KEY with the limits in
// VTC_STORE_LIMITS (per minute, day, month), settling each grant at once,
// and prints a quotaResult.
func helperQuota() error {
	ctx := context.Background()
	s, err := Open(ctx, os.Getenv("VTC_STORE_DSN"))
	if err != nil {
		return err
	}
	defer s.Close()
	var lim engine.Limits
	if _, err := fmt.Sscanf(os.Getenv("VTC_STORE_LIMITS"), "%d,%d,%d", &lim.PerMinute, &lim.PerDay, &lim.PerMonth); err != nil {
		return fmt.Errorf("VTC_STORE_LIMITS: %w", err)
	}
	l := s.Ledger(os.Getenv("VTC_STORE_KEY"))
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return err
	}
	res := quotaResult{Refused: map[string]int{}}
	for stop := time.Now().Add(envDuration("VTC_STORE_RUN")); time.Now().Before(stop); {
		now := time.Now()
		g, err := l.Take(ctx, now, lim, 10*time.Second)
		if err != nil {
			return err
		}
		if !g.OK {
			res.Refused[g.Window]++
			time.Sleep(5 * time.Millisecond)
			continue
		}
		res.Grants = append(res.Grants, now)
		if err := l.Settle(ctx, g.Ticket, time.Now()); err != nil {
			return err
		}
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// helper is a child process of the test.
type helper struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	stderr bytes.Buffer
}

func startHelper(t *testing.T, role, dsn string, env ...string) *helper {
	t.Helper()
	h := &helper{name: role, cmd: exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")}
	h.cmd.Env = append(os.Environ(), append([]string{"VTC_STORE_HELPER=" + role, "VTC_STORE_DSN=" + dsn}, env...)...)
	h.cmd.Stderr = &h.stderr
	var err error
	if h.stdin, err = h.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := h.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	h.stdout = bufio.NewReader(out)
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if h.cmd.ProcessState == nil {
			h.cmd.Process.Kill()
			h.cmd.Wait()
		}
	})
	return h
}

func (h *helper) wait(t *testing.T) {
	t.Helper()
	if err := h.cmd.Wait(); err != nil {
		t.Fatalf("%s helper: %v\n%s", h.name, err, h.stderr.String())
	}
}

func enqueueN(t *testing.T, s *Store, n int) {
	t.Helper()
	items := make([]NewItem, n)
	for i := range items {
		items[i] = NewItem{Kind: "cb.binary", Key: fmt.Sprintf("md5-%04d", i), Priority: i % 2}
	}
	if added, err := s.EnqueueMany(t.Context(), items); added != n || err != nil {
		t.Fatalf("EnqueueMany = %d, %v", added, err)
	}
}

// readLog counts the keys in a helper's log: how often each was processed.
func readLog(t *testing.T, path string) map[string]int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int{}
	for k := range strings.FieldsSeq(string(b)) {
		m[k]++
	}
	return m
}

// checkAllDoneOnce asserts that all n items are done and each was
// completed exactly once and processed at least once; it returns how many
// were processed more than once.
func checkAllDoneOnce(t *testing.T, s *Store, n int, processed map[string]int) (repeats int) {
	t.Helper()
	st, err := s.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Count("", StateDone) != int64(n) || st.Open() != 0 {
		t.Errorf("queue %+v, want %d done", st.Counts, n)
	}
	effects := sideEffectCounts(t, s)
	for i := range n {
		k := fmt.Sprintf("md5-%04d", i)
		if effects[k] != 1 {
			t.Errorf("%s completed %d times, want exactly once", k, effects[k])
		}
		if processed[k] < 1 {
			t.Errorf("%s never processed", k)
		}
		repeats += processed[k] - 1
	}
	if len(effects) != n {
		t.Errorf("%d keys completed, want %d", len(effects), n)
	}
	return repeats
}

// Several OS processes claim from one queue: every item is done exactly
// once, none is lost.
func TestClaimFromManyProcesses(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, dsn string) {
		const items, procs = 240, 3
		s := openStore(t, dsn)
		createSideEffects(t, s)
		enqueueN(t, s, items)
		log := filepath.Join(t.TempDir(), "processed.log")
		var hs []*helper
		for p := range procs {
			hs = append(hs, startHelper(t, "claim", dsn, "VTC_STORE_WORKER=proc-"+strconv.Itoa(p),
				"VTC_STORE_LEASE=1m", "VTC_STORE_WORK=2ms", "VTC_STORE_LOG="+log))
		}
		for _, h := range hs {
			h.wait(t)
		}
		if repeats := checkAllDoneOnce(t, s, items, readLog(t, log)); repeats != 0 {
			t.Errorf("%d items processed twice although no lease expired", repeats)
		}
		workers := countRows(t, s, `SELECT COUNT(DISTINCT worker) FROM test_side_effects`)
		t.Logf("%d items done by %d processes", items, workers)
	})
}

// A worker process is killed (SIGKILL) in the middle of the queue; a new
// one finishes it. Nothing is lost and every item is completed exactly
// once: the killed worker's leased items return when their lease expires,
// and what it was doing when it died is either committed (done) or not
// at all. The side effect outside the store may happen twice for the
// items in flight at the kill: processing is at-least-once.
func TestCrashLosesNothing(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, dsn string) {
		const items = 200
		s := openStore(t, dsn)
		createSideEffects(t, s)
		enqueueN(t, s, items)
		log := filepath.Join(t.TempDir(), "processed.log")
		env := []string{"VTC_STORE_LEASE=1s", "VTC_STORE_WORK=5ms", "VTC_STORE_LOG=" + log}

		first := startHelper(t, "claim", dsn, append(env, "VTC_STORE_WORKER=first")...)
		deadline := time.Now().Add(30 * time.Second)
		for countRows(t, s, `SELECT COUNT(*) FROM test_side_effects`) < 50 {
			if time.Now().After(deadline) {
				t.Fatalf("the first worker made no progress:\n%s", first.stderr.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
		if err := first.cmd.Process.Kill(); err != nil { // SIGKILL
			t.Fatal(err)
		}
		if err := first.cmd.Wait(); err == nil {
			t.Fatal("the first worker finished before it was killed")
		}
		// Let PostgreSQL notice the dead connection and finish what it
		// had received (a COMMIT already sent still commits).
		time.Sleep(200 * time.Millisecond)
		doneAtKill := countRows(t, s, `SELECT COUNT(*) FROM test_side_effects`)
		leasedAtKill := countRows(t, s, `SELECT COUNT(*) FROM work_items WHERE state = 'leased'`)
		if doneAtKill >= items {
			t.Fatalf("killed after all %d items were done", doneAtKill)
		}

		second := startHelper(t, "claim", dsn, append(env, "VTC_STORE_WORKER=second")...)
		second.wait(t)

		repeats := checkAllDoneOnce(t, s, items, readLog(t, log))
		reclaimed := countRows(t, s, `SELECT COUNT(*) FROM work_items WHERE attempts = 1`) // an expired lease counts as an attempt
		if reclaimed != leasedAtKill {
			t.Errorf("%d items came back after the first worker's lease expired, want the %d it held", reclaimed, leasedAtKill)
		}
		t.Logf("killed after %d of %d items done, holding %d leases; %d items processed twice, each completed once",
			doneAtKill, items, leasedAtKill, repeats)
	})
}

// runQuotaHelpers runs procs quota helpers together and returns their
// results.
func runQuotaHelpers(t *testing.T, dsn, key string, procs int, lim engine.Limits, run time.Duration) []quotaResult {
	t.Helper()
	var hs []*helper
	for range procs {
		hs = append(hs, startHelper(t, "quota", dsn, "VTC_STORE_KEY="+key, "VTC_STORE_RUN="+run.String(),
			fmt.Sprintf("VTC_STORE_LIMITS=%d,%d,%d", lim.PerMinute, lim.PerDay, lim.PerMonth)))
	}
	for _, h := range hs { // all started: let them go at once
		if line, err := h.stdout.ReadString('\n'); err != nil || line != "ready\n" {
			h.cmd.Wait()
			t.Fatalf("helper said %q, %v:\n%s", line, err, h.stderr.String())
		}
	}
	for _, h := range hs {
		if _, err := io.WriteString(h.stdin, "go\n"); err != nil {
			t.Fatal(err)
		}
	}
	results := make([]quotaResult, procs)
	for i, h := range hs {
		if err := json.NewDecoder(h.stdout).Decode(&results[i]); err != nil {
			h.cmd.Wait()
			t.Fatalf("helper result: %v:\n%s", err, h.stderr.String())
		}
		h.wait(t)
	}
	return results
}

// Three OS processes share one key's ledger: together they never get more
// than the budget, and they get all of it.
func TestQuotaSharedByProcesses(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, dsn string) {
		s := openStore(t, dsn)
		for _, tt := range []struct {
			name  string
			lim   engine.Limits
			run   time.Duration
			pause bool
			want  int
		}{
			{name: "20 per minute", lim: engine.Limits{PerMinute: 20, PerDay: 500}, run: 3 * time.Second, want: 20},
			{name: "7 per day", lim: engine.Limits{PerDay: 7}, run: time.Second, want: 7},
			{name: "paused", lim: engine.Limits{PerMinute: 20}, run: 500 * time.Millisecond, pause: true, want: 0},
		} {
			t.Run(tt.name, func(t *testing.T) {
				key := "fp-" + strings.ReplaceAll(tt.name, " ", "-")
				if tt.pause {
					if err := s.Ledger(key).Pause(t.Context(), time.Now().Add(time.Hour)); err != nil {
						t.Fatal(err)
					}
				}
				results := runQuotaHelpers(t, dsn, key, 3, tt.lim, tt.run)
				var (
					grants  []time.Time
					refused = map[string]int{}
				)
				for _, r := range results {
					grants = append(grants, r.Grants...)
					for w, n := range r.Refused {
						refused[w] += n
					}
				}
				if len(grants) != tt.want {
					t.Errorf("%d grants in total, want exactly %d (refused: %v)", len(grants), tt.want, refused)
				}
				perProc := make([]int, len(results))
				for i, r := range results {
					perProc[i] = len(r.Grants)
				}
				t.Logf("grants per process %v; refusals by window %v", perProc, refused)
				if tt.pause && (len(refused) != 1 || refused[engine.WindowCooldown] == 0) {
					t.Errorf("refusals while paused: %v, want only cooldown", refused)
				}
				u, err := s.QuotaUsage(t.Context(), key, time.Now())
				if err != nil {
					t.Fatal(err)
				}
				if u.DayUsed != tt.want {
					t.Errorf("day usage %d, want %d", u.DayUsed, tt.want)
				}
			})
		}
	})
}
