package carbonblack

import (
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	fakecb "github.com/vtconnector/vtconnector/internal/fake/carbonblack"
	"github.com/vtconnector/vtconnector/internal/store"
)

// Hashes of the original's rows, one per state it wrote.
const (
	mdDetected = "0123456789ABCDEF0123456789ABCDEF"
	mdBenign   = "11111111111111111111111111111111"
	mdPending  = "22222222222222222222222222222222"
	mdFailed   = "33333333333333333333333333333333"
	mdInFlight = "44444444444444444444444444444444"
)

func legacyRows(at time.Time) []fakecb.LegacyRow {
	return []fakecb.LegacyRow{
		{MD5: mdDetected, State: 100, Score: 17, ShortResult: "[12 / 68] VirusTotal report for " + mdDetected,
			Detailed: "VirusTotal Report:\nKaspersky :\tTrojan.Win32.Agent\nESET-NOD32 :\tWin32/Agent.X",
			Link:     "https://www.virustotal.com/file/abc/analysis/1508330000/", LastModified: at},
		{MD5: mdBenign, State: 100, Score: 0, ShortResult: "Benign", LastModified: at},
		{MD5: mdPending, State: 0, LastModified: at},
		{MD5: mdFailed, State: -100, ShortResult: "NOT SUBMITTING FULL BINARIES!", RetryCount: 1, LastModified: at},
		{MD5: mdInFlight, State: 50, LastModified: at},
		{MD5: "not-an-md5", State: 100, Score: 50, LastModified: at},
	}
}

func openTestStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "vtc.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestImportLegacyEverySchema imports a database written as each shipped
// version of the original wrote it, checks the feed, the queue and the
// report, and imports it again to show that nothing changes.
func TestImportLegacyEverySchema(t *testing.T) {
	// Versions before 7 wrote local time: a zone far from UTC shows it is
	// read as such.
	defer func(l *time.Location) { time.Local = l }(time.Local)
	time.Local = time.FixedZone("TEST", 5*3600+1800)
	at := time.Date(2019, 3, 4, 5, 6, 7, 123456000, time.UTC)
	for _, s := range fakecb.LegacySchemas {
		t.Run(s.Name(), func(t *testing.T) {
			ctx := t.Context()
			path := filepath.Join(t.TempDir(), "sqlite.db")
			rows := legacyRows(at)
			if !s.Title {
				rows[0].Title = ""
			}
			if err := fakecb.WriteLegacyDatabase(ctx, path, s, rows); err != nil {
				t.Fatal(err)
			}
			st := openTestStore(t)
			rep, err := ImportLegacy(ctx, st, path, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			want := LegacyReport{Source: path, At: rep.At, SchemaVersion: s.Version, TitleColumn: s.Title, Read: 6,
				Published: 1, Analysed: 1, Queued: 3, Skipped: map[string]int{SkipNotMD5: 1}}
			if diff := cmp.Diff(want, rep); diff != "" {
				t.Errorf("report (-want +got):\n%s", diff)
			}

			// The feed: the original's detection, with its score, title, link and timestamp.
			vs, err := StoreVerdicts{st}.ListVerdicts(ctx, "", false, 100)
			if err != nil {
				t.Fatal(err)
			}
			reports := BuildReports(vs, FeedOptions{})
			if len(reports) != 1 {
				t.Fatalf("reports = %+v, want the one detection", reports)
			}
			r := reports[0]
			wantLink := ""
			if s.Version >= 6 {
				wantLink = "https://www.virustotal.com/file/abc/analysis/1508330000/"
			}
			if wantLink == "" {
				wantLink = "https://www.virustotal.com/gui/file/" + strings.ToLower(mdDetected)
			}
			got := []any{r.ID, r.Score, r.Timestamp, r.Title, r.Link}
			wantR := []any{"Binary_" + mdDetected, 17, at.Unix(), "[12 / 68] VirusTotal report for " + mdDetected, wantLink}
			if diff := cmp.Diff(wantR, got); diff != "" {
				t.Errorf("report (-want +got):\n%s", diff)
			}
			if !strings.Contains(r.Description, "Kaspersky (Trojan.Win32.Agent)") {
				t.Errorf("description %q lacks the original's detections", r.Description)
			}
			if errs := ValidateFeed(Feed{FeedInfo: DefaultFeedInfo(), Reports: reports}); len(errs) > 0 {
				t.Errorf("imported feed invalid: %v", errs)
			}

			// The queue: analysed rows done at their last_modified, the others queued.
			for md5, state := range map[string]string{mdDetected: store.StateDone, mdBenign: store.StateDone,
				mdPending: store.StateQueued, mdFailed: store.StateQueued, mdInFlight: store.StateQueued} {
				it, ok, err := st.GetItem(ctx, KindBinary, md5)
				if err != nil || !ok {
					t.Fatalf("item %s: %v %v", md5, ok, err)
				}
				if it.State != state {
					t.Errorf("item %s state %s, want %s", md5, it.State, state)
				}
				if state == store.StateDone && !it.UpdatedAt.Equal(at) {
					t.Errorf("item %s finished at %v, want the original's last_modified %v", md5, it.UpdatedAt, at)
				}
			}
			if last, ok, err := LastLegacyImport(ctx, st); err != nil || !ok || last.Read != 6 {
				t.Errorf("recorded import = %+v %v %v", last, ok, err)
			}

			// Again: nothing new.
			rep2, err := ImportLegacy(ctx, st, path, nil)
			if err != nil {
				t.Fatal(err)
			}
			want2 := LegacyReport{Source: path, At: rep2.At, SchemaVersion: s.Version, TitleColumn: s.Title, Read: 6,
				Skipped: map[string]int{SkipNotMD5: 1, SkipImported: 2, SkipKnown: 3}}
			if diff := cmp.Diff(want2, rep2); diff != "" {
				t.Errorf("second import (-want +got):\n%s", diff)
			}
		})
	}
}

// TestImportLegacyKeepsOurVerdicts: a verdict vtconnector made itself is
// never replaced by the original's.
func TestImportLegacyKeepsOurVerdicts(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "sqlite.db")
	at := time.Date(2018, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := fakecb.WriteLegacyDatabase(ctx, path, fakecb.LegacySchema{Version: 7}, legacyRows(at)); err != nil {
		t.Fatal(err)
	}
	st := openTestStore(t)
	ours, _ := json.Marshal(Verdict{MD5: mdDetected, Found: true, Positives: 3, Total: 70})
	if _, err := st.PutResult(ctx, ResultsNS, mdDetected, ours); err != nil {
		t.Fatal(err)
	}
	rep, err := ImportLegacy(ctx, st, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Skipped[SkipOurs] != 1 || rep.Published != 0 {
		t.Errorf("report %+v: want our verdict kept (1 %q, 0 published)", rep, SkipOurs)
	}
	r, _, _ := st.GetResult(ctx, ResultsNS, mdDetected)
	if string(r.Value) != string(ours) {
		t.Errorf("verdict replaced: %s", r.Value)
	}
}

func TestImportLegacyRefusesOtherFiles(t *testing.T) {
	ctx := t.Context()
	st := openTestStore(t)
	if _, err := ImportLegacy(ctx, st, filepath.Join(t.TempDir(), "absent.db"), nil); !errors.Is(err, ErrNoLegacyDatabase) {
		t.Errorf("absent file: %v, want ErrNoLegacyDatabase", err)
	}
	other := filepath.Join(t.TempDir(), "other.db")
	ost, err := store.Open(ctx, other) // vtconnector's own database has no binary_data
	if err != nil {
		t.Fatal(err)
	}
	ost.Close()
	if _, err := ImportLegacy(ctx, st, other, nil); err == nil || !strings.Contains(err.Error(), "not the original connector's database") {
		t.Errorf("foreign database: %v", err)
	}
	if _, ok, _ := LastLegacyImport(ctx, st); ok {
		t.Error("a failed import was recorded")
	}
}
