package vt_test

import (
	"encoding/base64"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	fakevt "github.com/vtconnector/vtconnector/internal/fake/vt"
)

var urlStatKeys = []string{"harmless", "malicious", "suspicious", "timeout", "undetected"}

// checkScannerResults checks URL-scanner stats and results (URLs, domains,
// IPs): five stat keys, four categories, consistent counts.
func checkScannerResults(t *testing.T, stats map[string]int, results map[string]engineResult) {
	t.Helper()
	if keys := sortedKeys(stats); !slices.Equal(keys, urlStatKeys) {
		t.Errorf("last_analysis_stats keys %v, want %v", keys, urlStatKeys)
	}
	counted := map[string]int{"harmless": 0, "malicious": 0, "suspicious": 0, "timeout": 0, "undetected": 0}
	for name, r := range results {
		counted[r.Category]++
		if r.EngineName != name || r.Method == "" || r.Result == nil || r.EngineVersion != "" {
			t.Errorf("scanner %q result %+v", name, r)
		}
		if !slices.Contains([]string{"harmless", "undetected", "suspicious", "malicious"}, r.Category) {
			t.Errorf("scanner %q category %q", name, r.Category)
		}
	}
	if diff := cmp.Diff(stats, counted); diff != "" {
		t.Errorf("stats disagree with results (-stats +results):\n%s", diff)
	}
	if len(results) < 60 {
		t.Errorf("only %d scanners", len(results))
	}
}

func TestURLSubmissionLifecycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := fakevt.New(fakevt.Config{UnknownPercent: 100, AnalysisDelay: 2 * time.Second})
		const raw = "http://Example.ORG/path?q=1"
		const canonical = "http://example.org/path?q=1"
		sha := sha256Hex(canonical)

		rec := call(t, s, "POST", "/api/v3/urls", strings.NewReader(url.Values{"url": {raw}}.Encode()),
			http.Header{"X-Apikey": {testKey}, "Content-Type": {"application/x-www-form-urlencoded"}})
		mustStatus(t, rec, 200)
		id := analysisID(t, rec.Body.Bytes())
		if want := fmt.Sprintf("u-%s-%d", sha, time.Now().Unix()); id != want {
			t.Fatalf("analysis id %q, want %q", id, want)
		}
		wantError(t, get(t, s, "/api/v3/urls/"+sha), 404, "NotFoundError")
		a := decode[analysisDoc](t, get(t, s, "/api/v3/analyses/"+id).Body.Bytes())
		if a.Data.Attributes.Status != "queued" || a.Meta.URLInfo == nil || a.Meta.URLInfo.ID != sha || a.Meta.URLInfo.URL != canonical {
			t.Fatalf("queued URL analysis %+v", a)
		}
		time.Sleep(2 * time.Second)
		a = decode[analysisDoc](t, get(t, s, "/api/v3/analyses/"+id).Body.Bytes())
		if a.Data.Attributes.Status != "completed" {
			t.Fatalf("status %q after the delay", a.Data.Attributes.Status)
		}
		checkScannerResults(t, a.Data.Attributes.Stats, a.Data.Attributes.Results)

		byHex := get(t, s, "/api/v3/urls/"+sha)
		mustStatus(t, byHex, 200)
		d := decode[fileDoc](t, byHex.Body.Bytes())
		attrs := d.Data.Attributes
		if d.Data.Type != "url" || d.Data.ID != sha || d.Data.Links.Self != "http://sim.test/api/v3/urls/"+sha ||
			attrs.URL != canonical || attrs.LastFinalURL == "" || attrs.TimesSubmitted != 1 || attrs.LastHTTPResponseCode == 0 ||
			attrs.Categories == nil || attrs.ThreatNames == nil || attrs.Tags == nil || attrs.LastAnalysisDate != time.Now().Unix() {
			t.Errorf("url object %s", truncate(byHex.Body.String()))
		}
		checkScannerResults(t, attrs.LastAnalysisStats, attrs.LastAnalysisResults)
		for _, id := range []string{
			base64.RawURLEncoding.EncodeToString([]byte(canonical)),
			base64.StdEncoding.EncodeToString([]byte(canonical)),
			base64.RawURLEncoding.EncodeToString([]byte(raw)),
		} {
			if got := get(t, s, "/api/v3/urls/"+id).Body.String(); got != byHex.Body.String() {
				t.Errorf("urls/%s differs from urls/<sha256>: %s", id, truncate(got))
			}
		}
		mustStatus(t, get(t, s, "/api/v3/analyses/"+id+"/item"), 200)

		// Multipart, as vt-go sends it, works too; a rescan of a known URL as well.
		var body strings.Builder
		mw := multipart.NewWriter(&body)
		_ = mw.WriteField("url", "other.example.net")
		_ = mw.Close()
		rec = call(t, s, "POST", "/api/v3/urls", strings.NewReader(body.String()), http.Header{"X-Apikey": {testKey}, "Content-Type": {mw.FormDataContentType()}})
		mustStatus(t, rec, 200)
		if id := analysisID(t, rec.Body.Bytes()); !strings.HasPrefix(id, "u-"+sha256Hex("http://other.example.net/")+"-") {
			t.Errorf("multipart submission id %q", id)
		}
		mustStatus(t, call(t, s, "POST", "/api/v3/urls/"+sha+"/analyse", nil, nil), 200)
	})
}

func TestURLErrors(t *testing.T) {
	s := fakevt.New(fakevt.Config{})
	wantError(t, get(t, s, "/api/v3/urls/"+sha256Hex("never seen")), 404, "NotFoundError")
	wantError(t, get(t, s, "/api/v3/urls/thisurlidmakesnosenseatall"), 404, "NotFoundError")
	wantError(t, call(t, s, "POST", "/api/v3/urls", strings.NewReader("nourl=1"),
		http.Header{"X-Apikey": {testKey}, "Content-Type": {"application/x-www-form-urlencoded"}}), 400, "BadRequestError")
	wantError(t, call(t, s, "POST", "/api/v3/urls", strings.NewReader("url=http%3A%2F%2F"),
		http.Header{"X-Apikey": {testKey}, "Content-Type": {"application/x-www-form-urlencoded"}}), 400, "InvalidArgumentError")
	wantError(t, call(t, s, "POST", "/api/v3/urls/"+sha256Hex("never seen")+"/analyse", nil, nil), 404, "NotFoundError")
}

func TestURLLookupByBase64(t *testing.T) {
	s := fakevt.New(fakevt.Config{Seed: 2})
	var u, b64 string
	for i := 0; ; i++ {
		u = fmt.Sprintf("https://site%d.example.com/login", i)
		b64 = base64.RawURLEncoding.EncodeToString([]byte(u))
		if get(t, s, "/api/v3/urls/"+b64).Code == 200 {
			break
		}
	}
	first := get(t, s, "/api/v3/urls/"+b64)
	d := decode[fileDoc](t, first.Body.Bytes())
	if d.Data.Type != "url" || d.Data.ID != sha256Hex(u) || d.Data.Attributes.URL != u {
		t.Errorf("url object type %q id %q url %q", d.Data.Type, d.Data.ID, d.Data.Attributes.URL)
	}
	checkScannerResults(t, d.Data.Attributes.LastAnalysisStats, d.Data.Attributes.LastAnalysisResults)
	if again := get(t, s, "/api/v3/urls/"+b64); again.Body.String() != first.Body.String() {
		t.Error("second lookup differs")
	}
	// Once seen, the URL is also known by its SHA-256.
	if byHex := get(t, s, "/api/v3/urls/"+sha256Hex(u)); byHex.Body.String() != first.Body.String() {
		t.Errorf("lookup by sha256 differs: %s", truncate(byHex.Body.String()))
	}
}

func TestIPAddress(t *testing.T) {
	s := fakevt.New(fakevt.Config{Seed: 5})
	for _, ip := range []string{"203.0.113.77", "2001:db8::1", "2001:DB8:0:0::2"} {
		t.Run(ip, func(t *testing.T) {
			rec := get(t, s, "/api/v3/ip_addresses/"+ip)
			mustStatus(t, rec, 200)
			d := decode[fileDoc](t, rec.Body.Bytes())
			addr := netip.MustParseAddr(ip)
			a := d.Data.Attributes
			if d.Data.Type != "ip_address" || d.Data.ID != addr.String() || d.Data.Links.Self != "http://sim.test/api/v3/ip_addresses/"+addr.String() {
				t.Errorf("envelope %+v", d.Data)
			}
			prefix, err := netip.ParsePrefix(a.Network)
			if err != nil || !prefix.Contains(addr) || prefix != prefix.Masked() {
				t.Errorf("network %q does not contain %s", a.Network, addr)
			}
			if a.ASN <= 0 || a.ASOwner == "" || len(a.Country) != 2 || len(a.Continent) != 2 || a.RIR == "" || a.Whois == "" || a.Reputation == nil || a.TotalVotes == nil || a.Tags == nil {
				t.Errorf("attributes %+v", a)
			}
			checkScannerResults(t, a.LastAnalysisStats, a.LastAnalysisResults)
			if again := get(t, s, "/api/v3/ip_addresses/"+ip); again.Body.String() != rec.Body.String() {
				t.Error("second lookup differs")
			}
		})
	}
}

func TestDomain(t *testing.T) {
	s := fakevt.New(fakevt.Config{Seed: 5})
	d := findID(t, s, "/api/v3/domains/", "host%d.example.org", 200)
	rec := get(t, s, "/api/v3/domains/"+strings.ToUpper(d))
	mustStatus(t, rec, 200)
	doc := decode[fileDoc](t, rec.Body.Bytes())
	a := doc.Data.Attributes
	if doc.Data.Type != "domain" || doc.Data.ID != d || doc.Data.Links.Self != "http://sim.test/api/v3/domains/"+d {
		t.Errorf("envelope %+v", doc.Data)
	}
	if a.Registrar == "" || a.CreationDate <= 0 || a.Categories == nil || a.Whois == "" || a.PopularityRanks == nil || a.Reputation == nil || a.Tags == nil || len(a.LastDNSRecords) < 3 {
		t.Errorf("attributes %s", truncate(rec.Body.String()))
	}
	checkScannerResults(t, a.LastAnalysisStats, a.LastAnalysisResults)

	res := decode[resolutionsDoc](t, get(t, s, "/api/v3/domains/"+d+"/resolutions?limit=2").Body.Bytes())
	var aRecords []string
	for _, r := range a.LastDNSRecords {
		if r.Type == "A" {
			aRecords = append(aRecords, r.Value)
		}
	}
	var latest []string
	for _, r := range res.Data {
		latest = append(latest, r.Attributes.IPAddress)
	}
	if diff := cmp.Diff(latest, aRecords); diff != "" {
		t.Errorf("A records are not the latest resolutions (-resolutions +records):\n%s", diff)
	}

	unknown := findID(t, s, "/api/v3/domains/", "gone%d.example.com", 404)
	if msg := wantError(t, get(t, s, "/api/v3/domains/"+unknown), 404, "NotFoundError"); msg != fmt.Sprintf("Domain %q not found", unknown) {
		t.Errorf("message %q", msg)
	}
	wantError(t, get(t, s, "/api/v3/domains/"+unknown+"/resolutions"), 404, "NotFoundError")
}

type resolutionsDoc struct {
	Data []struct {
		Type       string `json:"type"`
		ID         string `json:"id"`
		Attributes struct {
			Date           int64          `json:"date"`
			HostName       string         `json:"host_name"`
			IPAddress      string         `json:"ip_address"`
			Resolver       string         `json:"resolver"`
			HostNameStats  map[string]int `json:"host_name_last_analysis_stats"`
			IPAddressStats map[string]int `json:"ip_address_last_analysis_stats"`
		} `json:"attributes"`
	} `json:"data"`
	Meta  map[string]any    `json:"meta"`
	Links map[string]string `json:"links"`
}

func TestResolutionsPaging(t *testing.T) {
	s := fakevt.New(fakevt.Config{Seed: 9})
	// A domain and an IP with enough resolutions to need several pages.
	var domain string
	for i := 0; domain == ""; i++ {
		d := fmt.Sprintf("paging%d.example.com", i)
		rec := get(t, s, "/api/v3/domains/"+d+"/resolutions")
		if rec.Code == 200 && decode[resolutionsDoc](t, rec.Body.Bytes()).Meta["count"].(float64) > 25 {
			domain = d
		}
	}
	var ip string
	for i := 0; ip == ""; i++ {
		candidate := fmt.Sprintf("198.51.100.%d", i)
		rec := get(t, s, "/api/v3/ip_addresses/"+candidate+"/resolutions")
		if decode[resolutionsDoc](t, rec.Body.Bytes()).Meta["count"].(float64) > 25 {
			ip = candidate
		}
	}
	for _, path := range []string{"/api/v3/domains/" + domain + "/resolutions", "/api/v3/ip_addresses/" + ip + "/resolutions"} {
		t.Run(path, func(t *testing.T) {
			var ids []string
			var lastDate int64 = 1 << 62
			next := path + "?limit=7"
			pages := 0
			total := -1
			for next != "" {
				rec := get(t, s, next)
				mustStatus(t, rec, 200)
				page := decode[resolutionsDoc](t, rec.Body.Bytes())
				pages++
				if total < 0 {
					total = int(page.Meta["count"].(float64))
				}
				if len(page.Data) > 7 || page.Links["self"] != "http://sim.test"+next {
					t.Fatalf("page %d: %d items, self %q", pages, len(page.Data), page.Links["self"])
				}
				for _, r := range page.Data {
					at := r.Attributes
					if r.Type != "resolution" || r.ID != at.IPAddress+at.HostName || at.Resolver == "" || at.Date > lastDate ||
						len(at.HostNameStats) != 5 || len(at.IPAddressStats) != 5 {
						t.Fatalf("resolution %+v", r)
					}
					if strings.HasPrefix(path, "/api/v3/domains/") && at.HostName != domain || strings.HasPrefix(path, "/api/v3/ip_addresses/") && at.IPAddress != ip {
						t.Fatalf("resolution %+v does not belong to %s", r, path)
					}
					lastDate = at.Date
					ids = append(ids, r.ID)
				}
				next = ""
				if n, ok := page.Links["next"]; ok {
					if page.Meta["cursor"] == nil || len(page.Data) != 7 {
						t.Fatalf("page %d has links.next but meta %v and %d items", pages, page.Meta, len(page.Data))
					}
					next = pathOf(t, n)
				} else if _, ok := page.Meta["cursor"]; ok {
					t.Fatalf("last page has meta.cursor")
				}
			}
			if len(ids) != total || pages != (total+6)/7 {
				t.Errorf("%d ids over %d pages, want %d over %d", len(ids), pages, total, (total+6)/7)
			}
			big := decode[resolutionsDoc](t, get(t, s, path+"?limit=1000").Body.Bytes())
			if len(big.Data) != min(total, 40) {
				t.Errorf("limit=1000 gave %d items, want %d (max 40)", len(big.Data), min(total, 40))
			}
			def := decode[resolutionsDoc](t, get(t, s, path).Body.Bytes())
			if len(def.Data) != 10 {
				t.Errorf("default page has %d items, want 10", len(def.Data))
			}
			var firstIDs []string
			for _, r := range big.Data {
				firstIDs = append(firstIDs, r.ID)
			}
			if diff := cmp.Diff(ids[:len(firstIDs)], firstIDs); diff != "" {
				t.Errorf("paging and one big page disagree (-paged +big):\n%s", diff)
			}
		})
	}
}

func TestYaraRulesetErrors(t *testing.T) {
	s := fakevt.New(fakevt.Config{UnknownPercent: 100})
	wantError(t, get(t, s, "/api/v3/yara_rulesets/00aabbccdd"), 404, "NotFoundError")
	wantError(t, get(t, s, "/api/v3/yara_rulesets/zz"), 400, "InvalidArgumentError")
}
