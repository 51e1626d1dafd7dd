package carbonblack

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// The fixture binaries, named by their MD5's repeated hex digit.
var (
	mdA = strings.Repeat("A", 32)
	mdB = strings.Repeat("B", 32)
	mdC = strings.Repeat("C", 32)
	mdD = strings.Repeat("D", 32)
	mdE = strings.Repeat("E", 32)
)

func fixtureServer(t *testing.T) *Server {
	t.Helper()
	s := newServer(t, Config{})
	s.AddBinary(Binary{
		MD5: mdA, Size: 1000, ServerAdded: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
		OriginalFilename: "chrome.exe", ObservedFilenames: []string{`c:\program files\google\chrome.exe`},
		ProductName: "Google Chrome", CompanyName: "Google Inc.", IsExecutableImage: true,
		DigsigResult: "Signed", DigsigPublisher: "Google Inc", DigsigSignTime: t0, Hostnames: []string{"WIN-A"},
	})
	s.AddBinary(Binary{
		MD5: mdB, Size: 50000, ServerAdded: time.Date(2024, 1, 2, 12, 0, 0, 5e8, time.UTC),
		OriginalFilename: "NOTEPAD.EXE", ObservedFilenames: []string{`c:\windows\system32\notepad.exe`},
		CompanyName: "Microsoft Corporation", IsExecutableImage: true, Is64Bit: true,
		DigsigResult: "Signed", DigsigPublisher: "Microsoft Corporation", Hostnames: []string{"WIN-A", "WIN-B"},
	})
	s.AddBinary(Binary{
		MD5: mdC, Size: 20 << 20, ServerAdded: time.Date(2023, 12, 31, 23, 59, 59, 0, time.UTC),
		OriginalFilename: "helper.dll", Hostnames: []string{"WIN-A"},
	})
	s.AddBinary(Binary{
		MD5: mdD, Size: 10485760, ServerAdded: time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC),
		OriginalFilename: "ls", ObservedFilenames: []string{"/usr/bin/ls"}, OSType: "Linux",
		IsExecutableImage: true, Hostnames: []string{"web01"},
	})
	s.AddBinary(Binary{
		MD5: mdE, Size: 300, ServerAdded: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
		OriginalFilename: "odd.sys", DigsigResult: "Bad Signature", Groups: []string{"Servers"}, Hostnames: []string{"SRV1"},
	})
	return s
}

// connectorQuery is what the connector sends, with the example
// binary_filter_query of connector.conf.example.
const connectorQuery = `-alliance_score_virustotalconnector:* server_added_timestamp:[2024-01-01T00:00:00 TO *] ` +
	`orig_mod_len:[1 TO 10485760] is_executable_image:true ` +
	`-(digsig_publisher:"Microsoft Corporation" and digsig_result:"Signed")`

func TestQuerySelectsTheBinariesOfEachSupportedForm(t *testing.T) {
	s := fixtureServer(t)
	all := []string{mdA, mdB, mdC, mdD, mdE}
	for _, tc := range []struct {
		name, q string
		want    []string
	}{
		{"empty query matches all", "", all},
		{"star matches all", "*", all},
		{"star star matches all", "*:*", all},
		{"md5 field, any case", "md5:" + strings.ToLower(mdA), []string{mdA}},
		{"bare md5", strings.ToLower(mdB), []string{mdB}},
		{"field value", "original_filename:chrome.exe", []string{mdA}},
		{"field value case-insensitive", "original_filename:notepad.exe", []string{mdB}},
		{"observed filename by file name", "observed_filename:notepad.exe", []string{mdB}},
		{"observed filename by full path", `observed_filename:c:\windows\system32\notepad.exe`, []string{mdB}},
		{"quoted path", `observed_filename:"c:\\program files\\google\\chrome.exe"`, []string{mdA}},
		{"wildcard", "observed_filename:*chrome*", []string{mdA}},
		{"question mark wildcard", "original_filename:l?", []string{mdD}},
		{"quoted phrase", `digsig_publisher:"Google Inc"`, []string{mdA}},
		{"word of a descriptive field", "company_name:microsoft", []string{mdB}},
		{"exact string field", "digsig_result:signed", []string{mdA, mdB}},
		{"quoted value with a space", `digsig_result:"Bad Signature"`, []string{mdE}},
		{"negated term", "-digsig_result:Signed", []string{mdC, mdD, mdE}},
		{"exists", "digsig_publisher:*", []string{mdA, mdB}},
		{"negated exists", "-digsig_publisher:*", []string{mdC, mdD, mdE}},
		{"untagged binaries", "-alliance_score_virustotalconnector:*", all},
		{"tagged binaries", "alliance_score_virustotalconnector:*", nil},
		{"boolean", "is_64bit:true", []string{mdB}},
		{"numeric value", "host_count:2", []string{mdB}},
		{"numeric range inclusive", "orig_mod_len:[1 TO 10485760]", []string{mdA, mdB, mdD, mdE}},
		{"numeric range exclusive", "orig_mod_len:{1000 TO 10485760}", []string{mdB}},
		{"numeric range open low", "orig_mod_len:[* TO 1000]", []string{mdA, mdE}},
		{"numeric range open high", "orig_mod_len:[10485761 TO *]", []string{mdC}},
		{"date range open high", "server_added_timestamp:[2024-01-01T00:00:00 TO *]", []string{mdA, mdB, mdD, mdE}},
		{"date range open low inclusive", "server_added_timestamp:[* TO 2024-01-01T00:00:00]", []string{mdA, mdC, mdE}},
		{"date range open low exclusive", "server_added_timestamp:{* TO 2024-01-01T00:00:00}", []string{mdC}},
		{"date range with milliseconds and Z", "server_added_timestamp:[2024-01-02T12:00:00.5Z TO 2024-01-02T12:00:00.500Z]", []string{mdB}},
		{"date range of days", "server_added_timestamp:[2024-01-01 TO 2024-01-02]", []string{mdA, mdB, mdE}},
		{"date value is a day", "server_added_timestamp:2024-01-02", []string{mdB}},
		{"hostname", "hostname:win-b", []string{mdB}},
		{"group phrase", `group:"Default Group"`, []string{mdA, mdB, mdC, mdD}},
		{"AND", "digsig_result:Signed AND is_64bit:true", []string{mdB}},
		{"lower-case and", "digsig_result:Signed and is_64bit:true", []string{mdB}},
		{"implicit AND", "digsig_result:Signed is_64bit:false", []string{mdA}},
		{"OR", "os_type:Linux OR hostname:WIN-B", []string{mdB, mdD}},
		{"double bar OR", "os_type:Linux || hostname:WIN-B", []string{mdB, mdD}},
		{"AND binds tighter than OR", "os_type:Linux OR is_64bit:true AND hostname:SRV1", []string{mdD}},
		{"NOT", "NOT os_type:Windows", []string{mdD}},
		{"bang", "!os_type:Windows", []string{mdD}},
		{"plus is ignored", "+os_type:Linux", []string{mdD}},
		{"parentheses", "(os_type:Linux OR is_64bit:true) -hostname:WIN-B", []string{mdD}},
		{"field group", "original_filename:(ls OR odd.sys)", []string{mdD, mdE}},
		{"bare word in default fields", "chrome", []string{mdA}},
		{"bare file name in default fields", "chrome.exe", []string{mdA}},
		{"the connector's query", connectorQuery, []string{mdA, mdD}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := searchAll(t, s, tc.q, "md5 asc")
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("q=%s (-want +got):\n%s", tc.q, diff)
			}
		})
	}
}

func TestQueryAnswerListsItsTerms(t *testing.T) {
	s := fixtureServer(t)
	res := search(t, s, `os_type:Linux -digsig_result:"Bad Signature"`, nil)
	want := []string{"os_type:Linux", `digsig_result:"Bad Signature"`}
	if diff := cmp.Diff(want, res.Terms); diff != "" {
		t.Errorf("terms (-want +got):\n%s", diff)
	}
}

func TestUnsupportedQueriesAreAnswered400(t *testing.T) {
	s := fixtureServer(t)
	for _, q := range []string{
		"nosuchfield:1",
		"(os_type:Linux",
		"os_type:Linux)",
		"os_type:",
		"os_type:Linux AND",
		"-",
		"orig_mod_len:abc",
		"orig_mod_len:1*",
		"orig_mod_len:[1 TO abc]",
		"orig_mod_len:[1 TO 2",
		"orig_mod_len:[1 2]",
		"is_64bit:maybe",
		"is_64bit:[false TO true]",
		"server_added_timestamp:[yesterday TO *]",
		"server_added_timestamp:NOW",
		`digsig_publisher:"Google`,
		"product_name:chrome^2",
		"product_name:chrom~",
		"[1 TO 2]",
	} {
		t.Run(q, func(t *testing.T) {
			resp := call(t, s, http.MethodGet, "/api/v1/binary?q="+url.QueryEscape(q), nil)
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 400; body %s", resp.StatusCode, raw)
			}
			var body apiError
			if err := json.Unmarshal(raw, &body); err != nil {
				t.Fatalf("body %s: %v", raw, err)
			}
			if body.Reason != "query_malformed_syntax" || body.Message == "" {
				t.Errorf("body = %+v, want reason query_malformed_syntax and a message", body)
			}
		})
	}
}

func TestGlobMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true},
		{"a*c", "abbbc", true},
		{"a*c", "abbbd", false},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{`a\*c`, "a*c", true},
		{`a\*c`, "abc", false},
		{"**x", "yyx", true},
	} {
		if got := globMatch(tc.pattern, tc.s); got != tc.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}

func TestQueriesOverTheRealBinaryDocuments(t *testing.T) {
	forEachBinarySet(t, testQueriesOverLoadedBinaryDocuments)
}

func testQueriesOverLoadedBinaryDocuments(t *testing.T, set binarySet) {
	s := newServer(t, Config{})
	if _, err := s.LoadTestdata(set.dir); err != nil {
		t.Fatal(err)
	}
	for _, tc := range set.queries {
		if diff := cmp.Diff(tc.want, searchAll(t, s, tc.q, "md5 asc"), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("q=%s (-want +got):\n%s", tc.q, diff)
		}
	}
}

func TestExtraFieldsAreSearchable(t *testing.T) {
	s := newServer(t, Config{})
	s.AddBinary(Binary{MD5: mdA, Size: 1, Fields: map[string]any{
		"watchlist_5":       "2017-02-01T04:10:02.628Z",
		"legal_trademark":   "Contoso(R)",
		"observed_filename": []string{`c:\a\one.exe`, `c:\b\two.exe`},
	}})
	for _, q := range []string{"watchlist_5:[2017-02-01 TO *]", "legal_trademark:contoso*", "observed_filename:two.exe"} {
		if got := searchAll(t, s, q, "md5 asc"); !slices.Equal(got, []string{mdA}) {
			t.Errorf("q=%s selects %v", q, got)
		}
	}
}
