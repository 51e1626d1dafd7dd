package carbonblack

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

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
