package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vtconnector/vtconnector/internal/carbonblack"
	fakecb "github.com/vtconnector/vtconnector/internal/fake/carbonblack"
	fakevt "github.com/vtconnector/vtconnector/internal/fake/vt"
	"github.com/vtconnector/vtconnector/internal/store"
)

// TestCarbonBlackTakesOverTheOriginal starts from a Cb server the original
// connector fed (its feed registered, its detection tagged) and the
// original's database written as each shipped version wrote it, runs the
// connector, and shows: the original's detection served before any
// VirusTotal call, the imported analysed hashes never looked up, the
// pending ones looked up, and the start's full sync made only once the
// import is published (the detection keeps its tag through it).
func TestCarbonBlackTakesOverTheOriginal(t *testing.T) {
	for _, schema := range fakecb.LegacySchemas {
		t.Run(schema.Name(), func(t *testing.T) {
			legacy := filepath.Join(t.TempDir(), "sqlite.db")
			w := newCbWorld(t, fakevt.Config{Seed: 21, UnknownPercent: -1}, "legacy_database="+legacy)
			bins := w.cb.AddSyntheticBinaries(4, time.Now().Add(-48*time.Hour).UTC(), time.Minute)
			detected, benign, pending, failed := bins[0].MD5, bins[1].MD5, bins[2].MD5, bins[3].MD5
			at := time.Now().Add(-24 * time.Hour).Truncate(time.Second).UTC()
			rows := []fakecb.LegacyRow{
				{MD5: detected, State: 100, Score: 17, ShortResult: "[12 / 68] VirusTotal report for " + detected,
					Detailed: "VirusTotal Report:\nKaspersky :\tTrojan.Win32.Agent", Link: "https://www.virustotal.com/file/x/analysis/1/", LastModified: at},
				{MD5: benign, State: 100, Score: 0, ShortResult: "Benign", LastModified: at},
				{MD5: pending, State: 0, LastModified: at},
				{MD5: failed, State: -100, ShortResult: "NOT SUBMITTING FULL BINARIES!", LastModified: at},
			}
			if err := fakecb.WriteLegacyDatabase(t.Context(), legacy, schema, rows); err != nil {
				t.Fatal(err)
			}
			// The original's feed, as it left it: registered at the same URL,
			// its one detection tagging the binary.
			w.cb.SeedFeed(fakecb.Feed{Name: carbonblack.FeedName, DisplayName: "VirusTotal", Enabled: true,
				FeedURL: fmt.Sprintf("http://127.0.0.1:%d/feed.json", w.port),
				Reports: []fakecb.Report{{ID: "Binary_" + detected, Score: 17, Timestamp: at.Unix(), MD5: []string{detected},
					Title: rows[0].ShortResult, Link: rows[0].Link}}})
			gate := make(chan struct{})
			w.vtGate.Store(&gate)
			stop := w.start(t)
			defer stop()

			waitFor(t, 30*time.Second, "the original's detection in the served feed", func() bool {
				got, _ := w.feed(t)
				return got["Binary_"+detected] == 17
			})
			if asked := w.vtAsked(); len(asked) != 0 {
				t.Errorf("VirusTotal asked before the import was served: %v", asked)
			}
			waitFor(t, 30*time.Second, "the start's full sync", func() bool { return w.cb.Stats().FullSyncs > 0 })
			if got := w.cb.Tags(detected)[carbonblack.FeedName]; got != 17 {
				t.Errorf("after the start's full sync the original's detection is tagged %d, want 17", got)
			}
			if f := w.cb.Feeds()[0]; len(w.cb.Feeds()) != 1 || f.LastSyncFull && len(f.LastRemoved) != 0 {
				t.Errorf("feeds %d, full sync removed %v", len(w.cb.Feeds()), f.LastRemoved)
			}

			close(gate)
			waitFor(t, 30*time.Second, "the pending rows looked up", func() bool {
				return w.itemState(t, pending) == store.StateDone && w.itemState(t, failed) == store.StateDone
			})
			for _, p := range w.vtAsked() {
				for _, m := range []string{detected, benign} {
					if strings.Contains(strings.ToUpper(p), m) {
						t.Errorf("imported analysed hash looked up: %s", p)
					}
				}
			}
			if got, _ := w.feed(t); got["Binary_"+detected] != 17 {
				t.Errorf("feed %v lost the original's detection", got)
			}
		})
	}
}

// itemState is the state of the binary's queue item ("" when none).
func (w *cbWorld) itemState(t testing.TB, md5 string) string {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(w.dir, "cb.db"))
	if err != nil {
		return ""
	}
	defer st.Close()
	it, ok, err := st.GetItem(context.Background(), carbonblack.KindBinary, md5)
	if err != nil || !ok {
		return ""
	}
	return it.State
}

// TestCarbonBlackUnopenableDatabaseExits2: a database that cannot be
// opened is a configuration error (exit 2, one line), not a restart loop.
func TestCarbonBlackUnopenableDatabaseExits2(t *testing.T) {
	w := newCbWorld(t, fakevt.Config{Seed: 1}, "")
	conf, err := os.ReadFile(w.confPth)
	if err != nil {
		t.Fatal(err)
	}
	blocker := filepath.Join(w.dir, "not-a-dir")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	conf = []byte(strings.Replace(string(conf), "database_url="+filepath.Join(w.dir, "cb.db"), "database_url="+filepath.Join(blocker, "cb.db"), 1))
	if err := os.WriteFile(w.confPth, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	code := run(t.Context(), []string{"carbonblack", "--config", w.confPth}, e)
	if code != ExitUsage {
		t.Errorf("exit status %d, want %d; stderr:\n%s", code, ExitUsage, errb.String())
	}
	if lines := strings.Split(strings.TrimSpace(errb.String()), "\n"); len(lines) != 1 || !strings.Contains(lines[0], "database_url") {
		t.Errorf("stderr %q: want one line naming database_url", errb.String())
	}
}

func TestCarbonBlackResetCollector(t *testing.T) {
	w := newCbWorld(t, fakevt.Config{Seed: 1}, "")
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	if code := run(t.Context(), []string{"carbonblack", "reset-collector", "--config", w.confPth, "--since", "2025-01-31"}, e); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	st, err := store.Open(t.Context(), filepath.Join(w.dir, "cb.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	v, ok, err := st.GetCursor(t.Context(), "cb.collector")
	if err != nil || !ok || !strings.Contains(v, `"backfill_mark":"2025-01-31T00:00:00Z"`) || strings.Contains(v, `"backfill_done":true`) {
		t.Errorf("collector position %s (%v %v): want the backfill to walk again from 2025-01-31", v, ok, err)
	}
	if code := run(t.Context(), []string{"carbonblack", "reset-collector", "--config", w.confPth, "--since", "yesterday"}, e); code != ExitUsage {
		t.Errorf("bad --since: exit %d, want %d", code, ExitUsage)
	}
}
