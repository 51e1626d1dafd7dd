package cli

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vtconnector/vtconnector/internal/carbonblack"
	fakecb "github.com/vtconnector/vtconnector/internal/fake/carbonblack"
	fakevt "github.com/vtconnector/vtconnector/internal/fake/vt"
	"github.com/vtconnector/vtconnector/internal/store"
)

// TestCarbonBlackNegativeFilterSelectsWhatTheOriginalDid: a purely
// negative binary_filter_query (the original appended it as it is) keeps
// every binary but the ones it names.
func TestCarbonBlackNegativeFilterSelectsWhatTheOriginalDid(t *testing.T) {
	w := newCbWorld(t, fakevt.Config{Seed: 11}, "binary_filter_query=-digsig_result:\"Signed\"\n")
	added := time.Now().Add(-time.Hour).UTC()
	want := map[string]bool{}
	for i, sig := range []string{"Signed", "Unsigned", "Signed", "Expired", "Unsigned"} {
		b := fakecb.Binary{Content: []byte("binary number " + sig + string(rune('a'+i))), ServerAdded: added.Add(time.Duration(i) * time.Minute),
			IsExecutableImage: true, DigsigResult: sig, OriginalFilename: "b.exe"}
		w.cb.AddBinary(b)
		if sig != "Signed" {
			want[strings.ToUpper(md5Hex(b.Content))] = true
		}
	}
	stop := w.start(t)
	defer stop()
	st, err := store.Open(context.Background(), filepath.Join(w.dir, "cb.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	waitFor(t, 30*time.Second, "the unsigned binaries looked up", func() bool {
		for md5 := range want {
			if _, ok, _ := st.GetResult(context.Background(), carbonblack.ResultsNS, md5); !ok {
				return false
			}
		}
		return w.idle(t)
	})
	qs, err := st.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n := qs.Count(carbonblack.KindBinary, store.StateDone) + qs.Count(carbonblack.KindBinary, store.StateNotFound); n != int64(len(want)) {
		t.Errorf("%d binaries collected, want the %d not signed (a negative filter must not match nothing, nor everything)", n, len(want))
	}
}

// TestCarbonBlackSaysWhenTheQuotaKeysAreAbsent: without the quota keys
// the connector says so in its log and on its status page.
func TestCarbonBlackSaysWhenTheQuotaKeysAreAbsent(t *testing.T) {
	w := newCbWorld(t, fakevt.Config{Seed: 12}, "")
	w.cb.AddSyntheticBinaries(1, time.Now().Add(-time.Hour).UTC(), time.Minute)
	conf, _ := os.ReadFile(w.confPth)
	stripped := regexp.MustCompile(`(?m)^virustotal_requests_per_(minute|day|month)=.*\n`).ReplaceAll(conf, nil)
	if err := os.WriteFile(w.confPth, stripped, 0o600); err != nil {
		t.Fatal(err)
	}
	stop := w.start(t)
	defer stop()
	waitFor(t, 30*time.Second, "the connector to run", func() bool { return w.idle(t) })
	page := w.get(t, "/status")
	if !strings.Contains(page, "quota_keys_unset") && !strings.Contains(page, "does not set virustotal_requests_per_minute") {
		t.Errorf("the status page does not say the quota keys are absent")
	}
	logb, _ := os.ReadFile(filepath.Join(w.dir, "connector.log"))
	if !strings.Contains(string(logb), "does not set virustotal_requests_per_minute, virustotal_requests_per_day, virustotal_requests_per_month") {
		t.Errorf("the log does not name the absent quota keys")
	}
}

// TestCarbonBlackLeavesADisabledFeedDisabled: a feed an administrator
// disabled stays disabled through a running connector, is never synced,
// and the status page says why nothing reaches Cb.
func TestCarbonBlackLeavesADisabledFeedDisabled(t *testing.T) {
	w := newCbWorld(t, fakevt.Config{Seed: 13, UnknownPercent: -1}, "")
	id := w.cb.SeedFeed(fakecb.Feed{Name: carbonblack.FeedName, DisplayName: "VirusTotal (disabled by the admin)", Enabled: false,
		FeedURL: "http://127.0.0.1:1/feed.json"})
	w.cb.AddSyntheticBinaries(4, time.Now().Add(-time.Hour).UTC(), time.Minute)
	stop := w.start(t)
	defer stop()
	waitFor(t, 30*time.Second, "the binaries looked up and the disabled feed noticed", func() bool {
		return w.idle(t) && strings.Contains(w.get(t, "/status"), "feed_disabled")
	})
	// Several registrar rounds (SyncEvery is 100 ms in tests) have passed
	// by the time the status page shows the problem and the queue is empty.
	for _, f := range w.cb.Feeds() {
		if f.ID != id {
			t.Errorf("a second feed %q was created", f.Name)
			continue
		}
		if f.Enabled || f.Syncs != 0 || f.DisplayName != "VirusTotal (disabled by the admin)" {
			t.Errorf("feed after the connector ran: enabled %v, %d syncs, display name %q; want it as the admin left it", f.Enabled, f.Syncs, f.DisplayName)
		}
	}
}

func md5Hex(b []byte) string {
	sum := md5.Sum(b)
	return hex.EncodeToString(sum[:])
}
