package carbonblack

import (
	"bytes"
	"compress/gzip"
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
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

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
		t.Skipf("fidelity test: the real Carbon Black sample %s is not in %s (it lives outside the repository)", name, sharedCbDir)
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
// golden files use it instead of the drawn icons, whose compressed bytes
// depend on the Go version's flate.
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
			body := c.Current().Body
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

func TestDefaultFeedInfo(t *testing.T) {
	fi := DefaultFeedInfo()
	if errs := ValidateFeed(Feed{FeedInfo: fi}); errs != nil {
		t.Fatalf("DefaultFeedInfo is invalid: %v", errors.Join(errs...))
	}
	if fi.Name != "virustotalconnector" || fi.DisplayName != "VirusTotal" || fi.Category != "Connectors" ||
		fi.ProviderURL != "https://www.virustotal.com/" {
		t.Errorf("DefaultFeedInfo = %+v", fi)
	}
	for _, tc := range []struct {
		field string
		b64   string
		w, h  int
	}{{"icon", fi.Icon, 370, 97}, {"icon_small", fi.IconSmall, 100, 100}} {
		data, err := base64.StdEncoding.DecodeString(tc.b64)
		if err != nil {
			t.Fatalf("%s: %v", tc.field, err)
		}
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: not a PNG: %v", tc.field, err)
		}
		if b := img.Bounds(); b.Dx() != tc.w || b.Dy() != tc.h {
			t.Errorf("%s is %dx%d, want %dx%d", tc.field, b.Dx(), b.Dy(), tc.w, tc.h)
		}
		if len(data) > 4096 {
			t.Errorf("%s is %d bytes; a feed icon should stay small", tc.field, len(data))
		}
	}
	if DefaultFeedInfo().Icon != fi.Icon {
		t.Error("icons are not stable between calls")
	}
}

func TestValidateRealFeeds(t *testing.T) {
	t.Run("cbfeeds template with every IOC type is valid", func(t *testing.T) {
		doc := readSharedCb(t, "feed_cbfeeds_template_all_ioc_types.json")
		if errs := ValidateFeedJSON(doc); errs != nil {
			t.Errorf("ValidateFeedJSON: %v", errors.Join(errs...))
		}
		// The typed form validates too.
		var f Feed
		if err := json.Unmarshal(doc, &f); err != nil {
			t.Fatal(err)
		}
		if errs := ValidateFeed(f); errs != nil {
			t.Errorf("ValidateFeed: %v", errors.Join(errs...))
		}
		if len(f.Reports) != 9 {
			t.Errorf("template has %d reports, want 9", len(f.Reports))
		}
	})
	t.Run("ThreatConnect 2014 feed with an icon path is rejected", func(t *testing.T) {
		doc := readSharedCb(t, "feed_threatconnect_2014_invalid_icon.json")
		errs := ValidateFeedJSON(doc)
		if len(errs) == 0 {
			t.Fatal("ValidateFeedJSON accepted the feed")
		}
		var fe *FeedError
		if !errors.As(errs[0], &fe) || fe.Report != -1 || fe.Field != "feedinfo.icon" {
			t.Fatalf("first problem = %v, want the feedinfo.icon one", errs[0])
		}
		if msg := errs[0].Error(); !strings.Contains(msg, "not base64 image data") {
			t.Errorf("icon error %q does not say the icon is not base64 image data", msg)
		}
		if len(errs) != maxFeedErrors+1 {
			t.Errorf("got %d problems, want the cap %d plus the notice", len(errs), maxFeedErrors)
		}
		// Its integer ids and extra fields are reported too.
		var sawID, sawUnknown bool
		for _, err := range errs {
			if errors.As(err, &fe) && fe.Report >= 0 {
				sawID = sawID || fe.Field == "id"
				sawUnknown = sawUnknown || fe.Problem == "unknown field"
			}
		}
		if !sawID || !sawUnknown {
			t.Errorf("integer ids reported: %v, unknown fields reported: %v", sawID, sawUnknown)
		}
	})
}

// validTestFeed is a small valid feed that the rejection tests break.
func validTestFeed(t testing.TB) Feed {
	return Feed{
		FeedInfo: goldenFeedInfo(t),
		Reports: []Report{
			{ID: "Binary_0123456789ABCDEF0123456789ABCDEF", Timestamp: 1709294400, Link: "https://www.virustotal.com/gui/file/x",
				Title: "VirusTotal: 12/68 engines detect 0123456789abcdef0123456789abcdef", Score: 17,
				IOCs: IOCs{MD5: []string{"0123456789abcdef0123456789abcdef"}}},
			{ID: "query-1", Timestamp: 1709294400, Link: "", Title: "Notepad", Score: 50, Tags: []string{"abc", "event_query"},
				IOCs: IOCs{Query: &QueryIOC{IndexType: "events", SearchQuery: []string{"cb.urlver=1&q=process_name%3Anotepad.exe"}}}},
			{ID: "net.1", Timestamp: 0, Link: "x", Title: "Net", Score: 0,
				IOCs: IOCs{IPv4: []string{"192.0.2.1"}, IPv6: []string{"2001:db8::1"}, DNS: []string{"example.com."},
					SHA256: []string{"94dcf0531121e13a73114e8806f096d31e21dab4a8b1bfef95b5e0171a9a0556"},
					JA3:    []string{"07f362079e7f3d5a8855549fcc9a441e"}, JA3S: []string{"0FA6B3B35DF905B209742CF80C06F7DA"}}},
		},
	}
}

func TestValidateFeedRejects(t *testing.T) {
	if errs := ValidateFeed(validTestFeed(t)); errs != nil {
		t.Fatalf("the base feed is invalid: %v", errors.Join(errs...))
	}
	notImage := base64.StdEncoding.EncodeToString([]byte("just some text, not an image"))
	for _, tc := range []struct {
		name   string
		mutate func(f *Feed)
		report int    // -1: feedinfo
		field  string // FeedError.Field
	}{
		{"empty name", func(f *Feed) { f.FeedInfo.Name = "" }, -1, "feedinfo.name"},
		{"name with a space", func(f *Feed) { f.FeedInfo.Name = "virus total" }, -1, "feedinfo.name"},
		{"name with punctuation", func(f *Feed) { f.FeedInfo.Name = "vt_connector" }, -1, "feedinfo.name"},
		{"empty display name", func(f *Feed) { f.FeedInfo.DisplayName = "" }, -1, "feedinfo.display_name"},
		{"empty summary", func(f *Feed) { f.FeedInfo.Summary = "" }, -1, "feedinfo.summary"},
		{"empty tech data", func(f *Feed) { f.FeedInfo.TechData = "" }, -1, "feedinfo.tech_data"},
		{"empty provider url", func(f *Feed) { f.FeedInfo.ProviderURL = "" }, -1, "feedinfo.provider_url"},
		{"icon is a path", func(f *Feed) { f.FeedInfo.Icon = "content/virustotal.png" }, -1, "feedinfo.icon"},
		{"icon is not an image", func(f *Feed) { f.FeedInfo.Icon = notImage }, -1, "feedinfo.icon"},
		{"icon with line breaks", func(f *Feed) { f.FeedInfo.IconSmall = f.FeedInfo.Icon[:8] + "\n" + f.FeedInfo.Icon[8:] }, -1, "feedinfo.icon_small"},
		{"empty title", func(f *Feed) { f.Reports[0].Title = "" }, 0, "title"},
		{"blank title", func(f *Feed) { f.Reports[0].Title = "  \t " }, 0, "title"},
		{"multi-line title", func(f *Feed) { f.Reports[0].Title = "line one\nline two" }, 0, "title"},
		{"title with a carriage return", func(f *Feed) { f.Reports[0].Title = "a\rb" }, 0, "title"},
		{"title with a line separator", func(f *Feed) { f.Reports[0].Title = "a\u2028b" }, 0, "title"},
		{"title with a control character", func(f *Feed) { f.Reports[0].Title = "a\x1bb" }, 0, "title"},
		{"empty id", func(f *Feed) { f.Reports[1].ID = "" }, 1, "id"},
		{"id with a space", func(f *Feed) { f.Reports[1].ID = "Binary 1" }, 1, "id"},
		{"id with a slash", func(f *Feed) { f.Reports[1].ID = "Binary/1" }, 1, "id"},
		{"id not ASCII", func(f *Feed) { f.Reports[1].ID = "Binäry" }, 1, "id"},
		{"duplicate id", func(f *Feed) { f.Reports[2].ID = f.Reports[0].ID }, 2, "id"},
		{"score above 100", func(f *Feed) { f.Reports[0].Score = 101 }, 0, "score"},
		{"negative score", func(f *Feed) { f.Reports[0].Score = -1 }, 0, "score"},
		{"negative timestamp", func(f *Feed) { f.Reports[0].Timestamp = -5 }, 0, "timestamp"},
		{"short md5", func(f *Feed) { f.Reports[0].IOCs.MD5 = []string{"0123456789abcdef0123456789abcde"} }, 0, "iocs.md5[0]"},
		{"md5 not hex", func(f *Feed) { f.Reports[0].IOCs.MD5 = []string{"0123456789abcdef0123456789abcdeg"} }, 0, "iocs.md5[0]"},
		{"md5 with a prefix", func(f *Feed) { f.Reports[0].IOCs.MD5 = []string{"md5:0123456789abcdef0123456789abcdef"} }, 0, "iocs.md5[0]"},
		{"bad sha256", func(f *Feed) { f.Reports[2].IOCs.SHA256 = []string{"abc"} }, 2, "iocs.sha256[0]"},
		{"bad ja3", func(f *Feed) { f.Reports[2].IOCs.JA3 = []string{"x"} }, 2, "iocs.ja3[0]"},
		{"ipv6 in ipv4", func(f *Feed) { f.Reports[2].IOCs.IPv4 = []string{"2001:db8::1"} }, 2, "iocs.ipv4[0]"},
		{"bad ipv4", func(f *Feed) { f.Reports[2].IOCs.IPv4 = []string{"300.1.1.1"} }, 2, "iocs.ipv4[0]"},
		{"ipv4 in ipv6", func(f *Feed) { f.Reports[2].IOCs.IPv6 = []string{"192.0.2.1"} }, 2, "iocs.ipv6[0]"},
		{"single-label domain", func(f *Feed) { f.Reports[2].IOCs.DNS = []string{"localhost"} }, 2, "iocs.dns[0]"},
		{"domain with underscore", func(f *Feed) { f.Reports[2].IOCs.DNS = []string{"a_b.example.com"} }, 2, "iocs.dns[0]"},
		{"domain too long", func(f *Feed) { f.Reports[2].IOCs.DNS = []string{strings.Repeat("a.", 127) + "com"} }, 2, "iocs.dns[0]"},
		{"no iocs", func(f *Feed) { f.Reports[0].IOCs = IOCs{} }, 0, "iocs"},
		{"query with another ioc", func(f *Feed) { f.Reports[1].IOCs.MD5 = []string{"0123456789abcdef0123456789abcdef"} }, 1, "iocs.query"},
		{"query index type", func(f *Feed) { f.Reports[1].IOCs.Query.IndexType = "binaries" }, 1, "iocs.query.index_type"},
		{"query without q=", func(f *Feed) { f.Reports[1].IOCs.Query.SearchQuery = []string{"cb.urlver=1"} }, 1, "iocs.query.search_query[0]"},
		{"query not percent-encoded", func(f *Feed) {
			f.Reports[1].IOCs.Query.SearchQuery = []string{"cb.urlver=1&q=process_name:notepad.exe"}
		}, 1, "iocs.query.search_query[0]"},
		{"query without entries", func(f *Feed) { f.Reports[1].IOCs.Query.SearchQuery = nil }, 1, "iocs.query.search_query"},
		{"tag too long", func(f *Feed) { f.Reports[1].Tags = []string{strings.Repeat("a", 33)} }, 1, "tags[0]"},
		{"tag with punctuation", func(f *Feed) { f.Reports[1].Tags = []string{"ok", "not-ok"} }, 1, "tags[1]"},
		{"empty tag", func(f *Feed) { f.Reports[1].Tags = []string{""} }, 1, "tags[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := validTestFeed(t)
			tc.mutate(&f)
			errs := ValidateFeed(f)
			if len(errs) != 1 {
				t.Fatalf("got %d problems, want 1: %v", len(errs), errors.Join(errs...))
			}
			var fe *FeedError
			if !errors.As(errs[0], &fe) {
				t.Fatalf("problem %v is a %T, want *FeedError", errs[0], errs[0])
			}
			if fe.Report != tc.report || fe.Field != tc.field {
				t.Errorf("problem at report %d field %q, want report %d field %q: %v", fe.Report, fe.Field, tc.report, tc.field, fe)
			}
			if tc.report >= 0 && fe.ReportID != f.Reports[tc.report].ID {
				t.Errorf("problem names report id %q, want %q", fe.ReportID, f.Reports[tc.report].ID)
			}
		})
	}
}

func TestValidateFeedJSONShape(t *testing.T) {
	base := func() map[string]any {
		var m map[string]any
		b, _ := json.Marshal(validTestFeed(t))
		_ = json.Unmarshal(b, &m)
		return m
	}
	report := func(m map[string]any, i int) map[string]any { return m["reports"].([]any)[i].(map[string]any) }
	for _, tc := range []struct {
		name   string
		doc    func() []byte
		report int
		field  string
	}{
		{"not JSON", func() []byte { return []byte("{") }, -1, ""},
		{"not an object", func() []byte { return []byte("[]") }, -1, ""},
		{"trailing data", func() []byte { b, _ := json.Marshal(base()); return append(b, "{}"...) }, -1, ""},
		{"unknown top-level field", func() []byte { m := base(); m["extra"] = 1; return mustMarshalJSON(m) }, -1, "extra"},
		{"missing feedinfo", func() []byte { m := base(); delete(m, "feedinfo"); return mustMarshalJSON(m) }, -1, "feedinfo"},
		{"missing reports", func() []byte { m := base(); delete(m, "reports"); return mustMarshalJSON(m) }, -1, "reports"},
		{"reports not a list", func() []byte { m := base(); m["reports"] = map[string]any{}; return mustMarshalJSON(m) }, -1, "reports"},
		{"feedinfo missing name", func() []byte { m := base(); delete(m["feedinfo"].(map[string]any), "name"); return mustMarshalJSON(m) }, -1, "feedinfo.name"},
		{"feedinfo unknown field", func() []byte { m := base(); m["feedinfo"].(map[string]any)["owner"] = "x"; return mustMarshalJSON(m) }, -1, "feedinfo.owner"},
		{"feedinfo version is a string", func() []byte { m := base(); m["feedinfo"].(map[string]any)["version"] = "2"; return mustMarshalJSON(m) }, -1, "feedinfo.version"},
		{"feedinfo summary is a number", func() []byte { m := base(); m["feedinfo"].(map[string]any)["summary"] = 1; return mustMarshalJSON(m) }, -1, "feedinfo.summary"},
		{"feedinfo empty category", func() []byte { m := base(); m["feedinfo"].(map[string]any)["category"] = ""; return mustMarshalJSON(m) }, -1, "feedinfo.category"},
		{"feedinfo empty icon", func() []byte { m := base(); m["feedinfo"].(map[string]any)["icon"] = ""; return mustMarshalJSON(m) }, -1, "feedinfo.icon"},
		{"report not an object", func() []byte { m := base(); m["reports"].([]any)[0] = "x"; return mustMarshalJSON(m) }, 0, ""},
		{"report missing title", func() []byte { m := base(); delete(report(m, 0), "title"); return mustMarshalJSON(m) }, 0, "title"},
		{"report unknown field", func() []byte { m := base(); report(m, 0)["dateAdded"] = "2014"; return mustMarshalJSON(m) }, 0, "dateAdded"},
		{"integer id", func() []byte { m := base(); report(m, 0)["id"] = 170227; return mustMarshalJSON(m) }, 0, "id"},
		{"score as a string", func() []byte { m := base(); report(m, 0)["score"] = "17"; return mustMarshalJSON(m) }, 0, "score"},
		{"fractional timestamp", func() []byte { m := base(); report(m, 0)["timestamp"] = 1.5; return mustMarshalJSON(m) }, 0, "timestamp"},
		{"iocs not an object", func() []byte { m := base(); report(m, 0)["iocs"] = []any{}; return mustMarshalJSON(m) }, 0, "iocs"},
		{"empty md5 list", func() []byte {
			m := base()
			report(m, 0)["iocs"] = map[string]any{"md5": []any{}}
			return mustMarshalJSON(m)
		}, 0, "iocs.md5"},
		{"md5 not a list", func() []byte {
			m := base()
			report(m, 0)["iocs"] = map[string]any{"md5": "0123456789abcdef0123456789abcdef"}
			return mustMarshalJSON(m)
		}, 0, "iocs.md5"},
		{"md5 entry not a string", func() []byte {
			m := base()
			report(m, 0)["iocs"] = map[string]any{"md5": []any{1}}
			return mustMarshalJSON(m)
		}, 0, "iocs.md5[0]"},
		{"unknown ioc type", func() []byte {
			m := base()
			report(m, 0)["iocs"] = map[string]any{"sha1": []any{"x"}}
			return mustMarshalJSON(m)
		}, 0, "iocs.sha1"},
		{"query unknown field", func() []byte {
			m := base()
			report(m, 1)["iocs"].(map[string]any)["query"].(map[string]any)["limit"] = 1
			return mustMarshalJSON(m)
		}, 1, "iocs.query.limit"},
		{"query missing index type", func() []byte {
			m := base()
			delete(report(m, 1)["iocs"].(map[string]any)["query"].(map[string]any), "index_type")
			return mustMarshalJSON(m)
		}, 1, "iocs.query.index_type"},
		{"tags not a list", func() []byte { m := base(); report(m, 1)["tags"] = "a,b"; return mustMarshalJSON(m) }, 1, "tags"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := ValidateFeedJSON(tc.doc())
			if len(errs) != 1 {
				t.Fatalf("got %d problems, want 1: %v", len(errs), errors.Join(errs...))
			}
			var fe *FeedError
			if !errors.As(errs[0], &fe) || fe.Report != tc.report || fe.Field != tc.field {
				t.Errorf("problem %#v, want report %d field %q", errs[0], tc.report, tc.field)
			}
		})
	}
	if errs := ValidateFeedJSON(mustMarshalJSON(base())); errs != nil {
		t.Errorf("base document: %v", errors.Join(errs...))
	}
}

func mustMarshalJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func TestValidateFeedStopsAtTheCap(t *testing.T) {
	f := validTestFeed(t)
	f.Reports = make([]Report, 500) // every one lacks id, title and iocs
	errs := ValidateFeed(f)
	if len(errs) != maxFeedErrors+1 {
		t.Fatalf("got %d problems, want %d", len(errs), maxFeedErrors+1)
	}
	if !strings.Contains(errs[maxFeedErrors].Error(), "too many problems") {
		t.Errorf("last problem = %v", errs[maxFeedErrors])
	}
}

func TestBuildReports(t *testing.T) {
	v := func(md5 string, pos, total int, upd time.Time) Verdict {
		return Verdict{MD5: md5, Found: true, Positives: pos, Total: total, UpdatedAt: upd}
	}
	md5a, md5b := "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
	ids := func(rs []Report) []string {
		out := []string{}
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		vs   []Verdict
		opts FeedOptions
		want []string
	}{
		{"no verdicts", nil, FeedOptions{}, []string{}},
		{"MinPositives 0 means 1", []Verdict{v(md5a, 1, 70, feedTestTime), v(md5b, 0, 70, feedTestTime)}, FeedOptions{}, []string{"Binary_" + md5a}},
		{"threshold is inclusive", []Verdict{v(md5a, 3, 70, feedTestTime), v(md5b, 2, 70, feedTestTime)}, FeedOptions{MinPositives: 3}, []string{"Binary_" + md5a}},
		{"not found is omitted", []Verdict{{MD5: md5a, Positives: 5, Total: 70}}, FeedOptions{}, []string{}},
		{"score 0 is omitted", []Verdict{v(md5a, 5, 0, feedTestTime)}, FeedOptions{}, []string{}},
		{"invalid md5 is skipped", []Verdict{v("not-an-md5", 5, 70, feedTestTime), v(md5a[:31], 5, 70, feedTestTime)}, FeedOptions{}, []string{}},
		{"sorted by id", []Verdict{v(md5b, 5, 70, feedTestTime), v(md5a, 5, 70, feedTestTime)}, FeedOptions{}, []string{"Binary_" + md5a, "Binary_" + md5b}},
		{"lower-case md5 gets an upper-case id", []Verdict{v(strings.ToLower(md5a), 5, 70, feedTestTime)}, FeedOptions{}, []string{"Binary_" + md5a}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := BuildReports(tc.vs, tc.opts)
			if diff := cmp.Diff(tc.want, ids(got)); diff != "" {
				t.Errorf("report ids (-want +got):\n%s", diff)
			}
			if errs := ValidateFeed(Feed{FeedInfo: goldenFeedInfo(t), Reports: got}); errs != nil {
				t.Errorf("built reports are invalid: %v", errors.Join(errs...))
			}
		})
	}

	t.Run("duplicate md5 keeps the newest verdict", func(t *testing.T) {
		got := BuildReports([]Verdict{v(md5a, 5, 70, feedTestTime), v(strings.ToLower(md5a), 9, 70, feedTestTime.Add(time.Hour)), v(md5a, 7, 70, feedTestTime)}, FeedOptions{})
		if len(got) != 1 || got[0].Score != 100*9/70 || got[0].Timestamp != feedTestTime.Add(time.Hour).Unix() {
			t.Errorf("got %+v", got)
		}
	})
	t.Run("fields", func(t *testing.T) {
		vs := []Verdict{{
			MD5: "0123456789ABCDEF0123456789ABCDEF", SHA256: strings.Repeat("AB", 32), Found: true,
			Positives: 1, Total: 200, UpdatedAt: feedTestTime, ScanDate: feedTestTime.Add(-time.Hour), Link: "https://vt.example/x",
		}}
		want := Report{
			ID: "Binary_0123456789ABCDEF0123456789ABCDEF", Timestamp: feedTestTime.Unix(), Link: "https://vt.example/x",
			Title:       "VirusTotal: 1/200 engines detect 0123456789abcdef0123456789abcdef",
			Description: "Detected by 1 of 200 engines.",
			Score:       1, // trunc(0.5) raised to 1
			IOCs:        IOCs{MD5: []string{"0123456789abcdef0123456789abcdef"}, SHA256: []string{strings.Repeat("ab", 32)}},
		}
		if diff := cmp.Diff([]Report{want}, BuildReports(vs, FeedOptions{IncludeSHA256: true})); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("fallbacks for link, timestamp and a bad sha256", func(t *testing.T) {
		vs := []Verdict{
			{MD5: md5a, SHA256: "xyz", Found: true, Positives: 5, Total: 70, ScanDate: feedTestTime},
			{MD5: md5b, SHA256: strings.Repeat("c", 64), Found: true, Positives: 5, Total: 70},
		}
		got := BuildReports(vs, FeedOptions{IncludeSHA256: true})
		if got[0].Link != "https://www.virustotal.com/gui/file/"+strings.ToLower(md5a) || got[0].Timestamp != feedTestTime.Unix() || got[0].IOCs.SHA256 != nil {
			t.Errorf("report a = %+v", got[0])
		}
		if got[1].Link != "https://www.virustotal.com/gui/file/"+strings.Repeat("c", 64) || got[1].Timestamp != 0 {
			t.Errorf("report b = %+v", got[1])
		}
	})
}

// TestMD5Case pins the decision on hash case: the id keeps the original
// connector's upper-case form, the IOCs are lower case, and the validator
// accepts both cases.
func TestMD5Case(t *testing.T) {
	r := BuildReports([]Verdict{{MD5: "ABCDEF0123456789ABCDEF0123456789", Found: true, Positives: 1, Total: 1}}, FeedOptions{})[0]
	if r.ID != "Binary_ABCDEF0123456789ABCDEF0123456789" || r.IOCs.MD5[0] != "abcdef0123456789abcdef0123456789" {
		t.Errorf("id %q, md5 %q", r.ID, r.IOCs.MD5[0])
	}
	if p := checkIOC("md5", "ABCDEF0123456789ABCDEF0123456789"); p != "" {
		t.Errorf("upper-case md5 refused: %s", p)
	}
}

func TestReportTextIsSafe(t *testing.T) {
	hostile := "x\n<script>alert('x')</script>\r\x00\x1b[31m\u202e\u2028\u200b&amp;"
	var dets []Detection
	for i := range 5 {
		dets = append(dets, Detection{Engine: fmt.Sprintf("Engine%d%s", i, hostile), Result: hostile})
	}
	vs := []Verdict{{MD5: strings.Repeat("A", 32), Found: true, Positives: 5, Total: 10, Label: hostile + strings.Repeat("L", 300), Detections: dets}}
	r := BuildReports(vs, FeedOptions{})[0]
	for field, s := range map[string]string{"title": r.Title, "description": r.Description} {
		if strings.IndexFunc(s, isLineBreakOrControl) >= 0 || strings.ContainsAny(s, "\u202e\u200b") {
			t.Errorf("%s keeps control or format characters: %q", field, s)
		}
		if !utf8.ValidString(s) {
			t.Errorf("%s is not valid UTF-8: %q", field, s)
		}
	}
	if n := utf8.RuneCountInString(r.Title); n > maxTitleRunes {
		t.Errorf("title has %d runes", n)
	}
	if !strings.HasPrefix(r.Title, "VirusTotal: 5/10 engines detect "+strings.Repeat("a", 32)+" (x <script>") || !strings.HasSuffix(r.Title, "…)") {
		t.Errorf("title = %q", r.Title)
	}
	if !strings.HasPrefix(r.Description, "Detected by: Engine0x <script>alert('x')</script> [31m &amp; (x <script>") {
		t.Errorf("description = %q", r.Description)
	}
	// In the JSON, HTML-significant characters are escaped.
	c := newFixedFeedCache()
	if err := c.Render(goldenFeedInfo(t), []Report{r}); err != nil {
		t.Fatal(err)
	}
	if body := c.Current().Body; bytes.Contains(body, []byte("<script>")) || !bytes.Contains(body, []byte(`\u003cscript\u003e`)) {
		t.Errorf("the JSON does not escape HTML: %s", body)
	}
}

func TestReportDescriptionIsCapped(t *testing.T) {
	var dets []Detection
	for i := range 70 {
		dets = append(dets, Detection{Engine: fmt.Sprintf("Engine-%02d-%s", i, strings.Repeat("e", 20)), Result: strings.Repeat("r", 30)})
	}
	d := reportDescription(Verdict{Positives: 70, Total: 70, Detections: dets})
	if n := utf8.RuneCountInString(d); n > maxDescriptionRunes {
		t.Errorf("description has %d runes, more than %d", n, maxDescriptionRunes)
	}
	if !strings.HasPrefix(d, "Detected by: Engine-00-") || !strings.Contains(d, ", and ") || !strings.HasSuffix(d, " more") {
		t.Errorf("description = %q", d)
	}
	// Every engine is either listed or counted.
	var listed, more int
	listed = strings.Count(d, "Engine-")
	if _, err := fmt.Sscanf(d[strings.LastIndex(d, ", and ")+len(", and "):], "%d more", &more); err != nil {
		t.Fatal(err)
	}
	if listed+more != 70 {
		t.Errorf("%d listed + %d more != 70", listed, more)
	}
}

func TestCleanText(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"plain", 80, "plain"},
		{"  two\n\nlines \r\n ", 80, "two lines"},
		{"tab\there", 80, "tab here"},
		{"nul\x00bell\x07del\x7f", 80, "nulbelldel"},
		{"bidi\u202eoverride\u200bzero", 80, "bidioverridezero"},
		{"line\u2028sep", 80, "line sep"},
		{"bad\xffutf8", 80, "badutf8"},
		{"keep \ufffd replacement", 80, "keep \ufffd replacement"},
		{"<b>&amp;</b>", 80, "<b>&amp;</b>"},
		{"0123456789abc", 10, "012345678…"},
		{"01234567 9abc", 10, "01234567…"},
		{"0123456789", 10, "0123456789"},
		{"ééééééééééé", 10, "ééééééééé…"},
	} {
		if got := cleanText(tc.in, tc.max); got != tc.want {
			t.Errorf("cleanText(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

func TestFeedCacheRender(t *testing.T) {
	c := newFixedFeedCache()
	if c.Current() != nil {
		t.Fatal("Current before the first render is not nil")
	}
	info := goldenFeedInfo(t)
	if err := c.Render(info, nil); err != nil {
		t.Fatal(err)
	}
	empty := c.Current()
	if !bytes.Contains(empty.Body, []byte(`"reports":[]}`)) || empty.Reports != 0 {
		t.Errorf("empty feed = %s", empty.Body)
	}
	if errs := ValidateFeedJSON(empty.Body); errs != nil {
		t.Errorf("empty feed is invalid: %v", errors.Join(errs...))
	}

	reports := BuildReports(goldenVerdicts(), FeedOptions{})
	if err := c.Render(info, reports); err != nil {
		t.Fatal(err)
	}
	s := c.Current()
	sum := sha256.Sum256(s.Body)
	if want := `"` + hex.EncodeToString(sum[:16]) + `"`; s.ETag != want {
		t.Errorf("ETag = %s, want %s", s.ETag, want)
	}
	if s.GzipETag() != strings.TrimSuffix(s.ETag, `"`)+`-gzip"` {
		t.Errorf("GzipETag = %s", s.GzipETag())
	}
	zr, err := gzip.NewReader(bytes.NewReader(s.Gzip))
	if err != nil {
		t.Fatal(err)
	}
	unzipped, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(unzipped, s.Body) {
		t.Errorf("gzip does not round-trip (err %v)", err)
	}
	if s.Reports != len(reports) || !s.RenderedAt.Equal(fixedRenderClock()) {
		t.Errorf("Reports %d RenderedAt %v", s.Reports, s.RenderedAt)
	}

	t.Run("unchanged content keeps the snapshot", func(t *testing.T) {
		c.now = func() time.Time { return fixedRenderClock().Add(time.Hour) }
		if err := c.Render(info, BuildReports(goldenVerdicts(), FeedOptions{})); err != nil {
			t.Fatal(err)
		}
		if c.Current() != s {
			t.Error("an identical render replaced the snapshot")
		}
	})
	t.Run("invalid feed is refused and the old one kept", func(t *testing.T) {
		bad := append([]Report(nil), reports...)
		bad[0].Title = "two\nlines"
		err := c.Render(info, bad)
		var fe *FeedError
		if !errors.As(err, &fe) || fe.Field != "title" {
			t.Errorf("Render error = %v, want a title FeedError", err)
		}
		if c.Current() != s {
			t.Error("a refused render replaced the snapshot")
		}
	})
	t.Run("a change gets a new snapshot", func(t *testing.T) {
		if err := c.Render(info, reports[:1]); err != nil {
			t.Fatal(err)
		}
		n := c.Current()
		if n == s || n.ETag == s.ETag || n.Reports != 1 || !n.RenderedAt.Equal(fixedRenderClock().Add(time.Hour)) {
			t.Errorf("new snapshot %+v", n)
		}
	})
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

// BenchmarkRender100k measures one render of a 100,000-report feed:
// validation, JSON encoding, SHA-256 and gzip.
func BenchmarkRender100k(b *testing.B) {
	reports := BuildReports(syntheticVerdicts(100_000), FeedOptions{IncludeSHA256: true})
	info := DefaultFeedInfo()
	var last *FeedSnapshot
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c := NewFeedCache() // a fresh cache, so that no render is skipped as unchanged
		if err := c.Render(info, reports); err != nil {
			b.Fatal(err)
		}
		last = c.Current()
	}
	b.ReportMetric(float64(len(last.Body))/1e6, "body-MB")
	b.ReportMetric(float64(len(last.Gzip))/1e6, "gzip-MB")
}

// BenchmarkBuildReports100k measures turning 100,000 verdicts into reports.
func BenchmarkBuildReports100k(b *testing.B) {
	vs := syntheticVerdicts(100_000)
	b.ReportAllocs()
	for b.Loop() {
		if got := BuildReports(vs, FeedOptions{IncludeSHA256: true}); len(got) != len(vs) {
			b.Fatal(len(got))
		}
	}
}

// feedDiscardWriter is a ResponseWriter that throws the body away.
type feedDiscardWriter struct {
	h    http.Header
	code int
	n    int
}

func (w *feedDiscardWriter) Header() http.Header         { return w.h }
func (w *feedDiscardWriter) WriteHeader(code int)        { w.code = code }
func (w *feedDiscardWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

// BenchmarkServeFeed measures the /feed.json handler (middleware
// included) on a 100,000-report feed, in parallel: a conditional GET
// answered 304, and full 200s, which write the pre-rendered body in one
// call to a writer that discards it.
func BenchmarkServeFeed(b *testing.B) {
	c := NewFeedCache()
	if err := c.Render(DefaultFeedInfo(), BuildReports(syntheticVerdicts(100_000), FeedOptions{IncludeSHA256: true})); err != nil {
		b.Fatal(err)
	}
	snap := c.Current()
	h := NewServer(ServerConfig{}, c, nil, nil).Handler()
	for _, tc := range []struct {
		name string
		hdr  map[string]string
		code int
		size int
	}{
		{"304", map[string]string{"Accept-Encoding": "gzip", "If-None-Match": snap.GzipETag()}, http.StatusNotModified, 0},
		{"gzip-200", map[string]string{"Accept-Encoding": "gzip"}, http.StatusOK, len(snap.Gzip)},
		{"identity-200", nil, http.StatusOK, len(snap.Body)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				r := httptest.NewRequest(http.MethodGet, "/feed.json", nil)
				for k, v := range tc.hdr {
					r.Header.Set(k, v)
				}
				for pb.Next() {
					w := &feedDiscardWriter{h: http.Header{}}
					h.ServeHTTP(w, r)
					if w.code != tc.code || w.n != tc.size {
						b.Fatalf("status %d, %d bytes", w.code, w.n)
					}
				}
			})
		})
	}
}

// BenchmarkServeFeedHTTP measures /feed.json over a real loopback
// connection (httptest.Server, keep-alive) on a 100,000-report feed.
func BenchmarkServeFeedHTTP(b *testing.B) {
	c := NewFeedCache()
	if err := c.Render(DefaultFeedInfo(), BuildReports(syntheticVerdicts(100_000), FeedOptions{IncludeSHA256: true})); err != nil {
		b.Fatal(err)
	}
	snap := c.Current()
	srv := httptest.NewServer(NewServer(ServerConfig{}, c, nil, nil).Handler())
	defer srv.Close()
	client := srv.Client()
	for _, tc := range []struct {
		name string
		hdr  map[string]string
		code int
		size int
	}{
		{"304", map[string]string{"Accept-Encoding": "gzip", "If-None-Match": snap.GzipETag()}, http.StatusNotModified, 0},
		{"gzip-200", map[string]string{"Accept-Encoding": "gzip"}, http.StatusOK, len(snap.Gzip)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(tc.size))
			for b.Loop() {
				req, _ := http.NewRequest(http.MethodGet, srv.URL+"/feed.json", nil)
				for k, v := range tc.hdr {
					req.Header.Set(k, v)
				}
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				n, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.code || int(n) != tc.size {
					b.Fatalf("status %d, %d bytes", resp.StatusCode, n)
				}
			}
		})
	}
}
