package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	fakevt "github.com/vtconnector/vtconnector/internal/fake/vt"
)

// faultyVT is the simulator of the figure: 5% bare 429s (another tool on
// the key) and 15% other faults: 503s, malformed bodies, slow answers.
func faultyVT(perMinute int, faults bool) fakevt.Config {
	cfg := fakevt.Config{Seed: 404, QuotaPerMinute: perMinute}
	if faults {
		cfg.Bare429Rate, cfg.FaultRate, cfg.MalformedRate, cfg.SlowRate, cfg.SlowDelay = 0.05, 0.05, 0.05, 0.05, 2*time.Second
	}
	return cfg
}

func faultHashes(n int) []string {
	out := make([]string, n)
	for i := range out {
		sum := sha256.Sum256([]byte(fmt.Sprintf("fault figure %d", i)))
		out[i] = hex.EncodeToString(sum[:])
	}
	return out
}

// runFaultyLookup looks up 400 hashes with vtconnector lookup against the
// simulator, the budget flags set to the simulator's per-minute quota.
func runFaultyLookup(t *testing.T, sim *fakevt.Server, perMinute int) (runResult, []string) {
	qs := faultHashes(400)
	r := runCLI(t, sim, strings.Join(qs, "\n"), nil, "lookup", "--apikey", "k", "--vt-url", simBase,
		"--rate", fmt.Sprint(perMinute), "--daily", "0", "--monthly", "0", "--format", "json", "--progress", "never")
	return r, qs
}

func TestLookupAnswersEveryQueryDespiteFaults(t *testing.T) {
	for _, perMinute := range []int{1000, 120} {
		t.Run(fmt.Sprintf("quota %d a minute", perMinute), func(t *testing.T) {
			var took [2]time.Duration
			for i, faults := range []bool{false, true} {
				synctest.Test(t, func(t *testing.T) {
					sim := fakevt.New(faultyVT(perMinute, faults))
					start := time.Now()
					r, qs := runFaultyLookup(t, sim, perMinute)
					took[i] = time.Since(start)
					if r.code != 0 {
						t.Fatalf("faults %v: exit %d; stderr:\n%s", faults, r.code, truncateLines(r.stderr, 30))
					}
					got := decodeLines(t, r.stdout)
					if len(got) != len(qs) {
						t.Fatalf("%d results for %d queries", len(got), len(qs))
					}
					ref := fakevt.New(fakevt.Config{Seed: 404}) // same objects, no faults
					for j, res := range got {
						if res.Error != "" {
							t.Errorf("%s: error %q", res.Query, res.Error)
							continue
						}
						code, _ := simObject(t, ref, "files/"+qs[j])
						if (code == 200) != res.Found {
							t.Errorf("%s: found=%v but the simulator answers %d", res.Query, res.Found, code)
						}
					}
					st := sim.Stats()
					if faults && (st.Bare429 == 0 || st.Faults == 0 || st.Malformed == 0 || st.Slow == 0) {
						t.Errorf("not every fault was injected: %+v", st)
					}
					t.Logf("faults %v: %d requests (%d bare 429, %d quota 429, %d 503, %d malformed, %d slow), %s simulated",
						faults, st.Requests, st.Bare429, st.QuotaExceeded, st.Faults, st.Malformed, st.Slow, took[i])
				})
			}
		})
	}
}

func truncateLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = append(lines[:n], fmt.Sprintf("... (%d more lines)", len(lines)-n))
	}
	return strings.Join(lines, "\n")
}

// BenchmarkLookupFaults is the figure of BENCHMARKS.md: wall time of
// `vtconnector lookup` of 400 hashes (concurrency 4, budget 1000 a
// minute, as the simulator's) against the simulator in process, with and
// without 5% bare 429s + 15% other faults (503, malformed, 2 s slow).
// Run with -benchtime 1x.
func BenchmarkLookupFaults(b *testing.B) {
	for _, faults := range []bool{false, true} {
		b.Run(fmt.Sprintf("faults=%v", faults), func(b *testing.B) {
			for b.Loop() {
				sim := fakevt.New(faultyVT(1000, faults))
				qs := faultHashes(400)
				start := time.Now()
				var out, errb strings.Builder
				e := &env{stdin: strings.NewReader(strings.Join(qs, "\n")), stdout: &out, stderr: &errb,
					getenv: func(string) string { return "" }, transport: handlerTransport{sim}}
				code := run(b.Context(), []string{"lookup", "--apikey", "k", "--vt-url", simBase, "--rate", "1000",
					"--daily", "0", "--monthly", "0", "--format", "json", "--progress", "never"}, e)
				elapsed := time.Since(start)
				if code != 0 {
					b.Fatalf("exit %d:\n%s", code, truncateLines(errb.String(), 20))
				}
				if n := strings.Count(out.String(), `"error":""`); n != len(qs) {
					b.Fatalf("%d of %d queries answered", n, len(qs))
				}
				st := sim.Stats()
				b.ReportMetric(elapsed.Seconds(), "wall_s")
				b.ReportMetric(float64(st.Requests), "requests")
				b.ReportMetric(float64(st.Bare429+st.QuotaExceeded), "429s")
			}
		})
	}
}
