package carbonblack

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// updateGolden rewrites the golden files in testdata: go test -update.
// It is the package's one -update flag; other test files should use it.
var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata")

// sharedCbDir is where the shared Carbon Black sample data lives; tests read
// it in place and skip when it is absent.
const sharedCbDir = "../../../shared/testdata/cb"

func readSharedCb(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(sharedCbDir, name))
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("fidelity test: ../shared/testdata/cb/%s absent; the real Carbon Black samples live outside the repository", name)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// golden compares got with testdata/name, or rewrites it with -update.
func compareGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *updateGolden {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got); run go test -update if the change is intended:\n%s", name, diff)
	}
}

var (
	feedTestTime = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	// fixedRenderClock is the render time of the golden files.
	fixedRenderClock = func() time.Time { return time.Date(2024, 3, 2, 8, 30, 0, 0, time.UTC) }
)

func newFixedFeedCache() *FeedCache {
	c := NewFeedCache()
	c.now = fixedRenderClock
	return c
}

// tinyTestPNG is a deterministic 1×1 PNG (stored, not compressed): the
// golden files use it instead of the feed's icons, so that they stay small
// and do not change when an icon does.
func tinyTestPNG(t testing.TB) string {
	t.Helper()
	img := image.NewPaletted(image.Rect(0, 0, 1, 1), color.Palette{color.NRGBA{0x39, 0x4e, 0xff, 0xff}})
	var b bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.NoCompression}).Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b.Bytes())
}

func goldenFeedInfo(t testing.TB) FeedInfo {
	fi := DefaultFeedInfo()
	fi.Icon, fi.IconSmall = tinyTestPNG(t), tinyTestPNG(t)
	return fi
}

// goldenVerdicts cover every case of BuildReports.
func goldenVerdicts() []Verdict {
	return []Verdict{
		{ // malicious, with a label and a SHA-256
			MD5: "0123456789ABCDEF0123456789ABCDEF", SHA256: "a5f1b1a0c3a5b8c0c2e6f1f0e3e6a9f0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6",
			Found: true, Positives: 12, Suspicious: 1, Total: 68, Label: "trojan.emotet/generic",
			Detections: []Detection{
				{"Avast", "Win32:Emotet-A [Trj]"}, {"BitDefender", "Trojan.GenericKD.1"},
				{"ESET-NOD32", "Win32/Emotet.A"}, {"Kaspersky", "HEUR:Trojan.Win32.Generic"},
				{"Microsoft", "Trojan:Win32/Emotet!rfn"},
			},
			ScanDate: feedTestTime.Add(-time.Hour), UpdatedAt: feedTestTime,
			Link: "https://www.virustotal.com/gui/file/a5f1b1a0c3a5b8c0c2e6f1f0e3e6a9f0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6",
		},
		{ // malicious, no label, no SHA-256, no link
			MD5: "FEDCBA9876543210FEDCBA9876543210", Found: true, Positives: 3, Total: 70,
			Detections: []Detection{{"Cylance", "Unsafe"}, {"Elastic", ""}, {"SentinelOne", "Static AI - Malicious PE"}},
			UpdatedAt:  feedTestTime.Add(time.Minute),
		},
		{ // hostile engine names, results and label
			MD5: "AAAABBBBCCCCDDDDEEEEFFFF00001111", SHA256: "B94D27B9934D3E08A52E52D7DA7DABFAC484EFE37A5380EE9088F7ACE2EFCDE9",
			Found: true, Positives: 2, Total: 60,
			Label: "evil\n<script>alert(1)</script>\x00\u202etxt.exe",
			Detections: []Detection{
				{"Bad\r\nEngine", "<img src=x onerror=alert(1)>"},
				{"Tab\tEngine\u200b", "line1\nline2\x07"},
			},
			UpdatedAt: feedTestTime.Add(2 * time.Minute),
			Link:      "https://www.virustotal.com/gui/file/b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9",
		},
		{ // clean: omitted
			MD5: "11111111111111111111111111111111", Found: true, Positives: 0, Total: 70, UpdatedAt: feedTestTime,
		},
		{ // unknown to VirusTotal: omitted
			MD5: "22222222222222222222222222222222", Found: false, UpdatedAt: feedTestTime,
		},
		{ // one detection, below MinPositives 2: omitted
			MD5: "33333333333333333333333333333333", Found: true, Positives: 1, Total: 70,
			Detections: []Detection{{"Jiangmin", "Trojan.Generic"}}, UpdatedAt: feedTestTime,
		},
	}
}

func TestFeedGolden(t *testing.T) {
	for _, tc := range []struct {
		golden string
		opts   FeedOptions
	}{
		{"feed.golden.json", FeedOptions{MinPositives: 2, IncludeSHA256: true}},
		{"feed-md5only.golden.json", FeedOptions{MinPositives: 2}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			reports := BuildReports(goldenVerdicts(), tc.opts)
			c := newFixedFeedCache()
			if err := c.Render(goldenFeedInfo(t), reports); err != nil {
				t.Fatal(err)
			}
			body := c.Current().Body()
			compareGolden(t, tc.golden, body)

			// The golden is a valid feed, and it reads back as what was built.
			want, err := os.ReadFile(filepath.Join("testdata", tc.golden))
			if err != nil {
				t.Fatal(err)
			}
			if errs := ValidateFeedJSON(want); errs != nil {
				t.Errorf("golden feed is invalid: %v", errors.Join(errs...))
			}
			var got Feed
			if err := json.Unmarshal(want, &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(Feed{FeedInfo: goldenFeedInfo(t), Reports: reports}, got); diff != "" {
				t.Errorf("golden feed does not read back (-want +got):\n%s", diff)
			}
			if errs := ValidateFeed(got); errs != nil {
				t.Errorf("ValidateFeed(golden): %v", errors.Join(errs...))
			}
		})
	}
}

// syntheticVerdicts returns n detected verdicts with realistic text.
func syntheticVerdicts(n int) []Verdict {
	engines := []string{"Avast", "AVG", "BitDefender", "CrowdStrike", "Cylance", "ESET-NOD32", "Elastic", "FireEye",
		"Fortinet", "GData", "Kaspersky", "Microsoft", "SentinelOne", "Sophos", "Symantec", "TrendMicro"}
	vs := make([]Verdict, n)
	for i := range vs {
		sum := sha256.Sum256([]byte(fmt.Sprint(i)))
		pos := 1 + i%len(engines)
		dets := make([]Detection, pos)
		for j := range dets {
			dets[j] = Detection{Engine: engines[j], Result: "Trojan.Win32.Generic." + engines[j][:3]}
		}
		hexSum := hex.EncodeToString(sum[:])
		vs[i] = Verdict{
			MD5: strings.ToUpper(hexSum[:32]), SHA256: hexSum, Found: true,
			Positives: pos, Total: 70, Label: "trojan.generic/agent", Detections: dets,
			UpdatedAt: feedTestTime.Add(time.Duration(i) * time.Second),
			Link:      "https://www.virustotal.com/gui/file/" + hexSum,
		}
	}
	return vs
}
