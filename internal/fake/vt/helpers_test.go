package vt_test

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const testKey = "test-key"

// call sends one request straight to the handler (usable inside synctest
// bubbles). A nil header means "authenticated with testKey".
func call(t *testing.T, h http.Handler, method, path string, body io.Reader, header http.Header) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, "http://sim.test"+path, body)
	if header == nil {
		header = http.Header{"X-Apikey": {testKey}}
	}
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if ct := rec.Header().Get("Content-Type"); rec.Body.Len() > 0 && ct != "application/json" && ct != "application/octet-stream" {
		t.Fatalf("%s %s: Content-Type %q, want application/json", method, path, ct)
	}
	return rec
}

func get(t *testing.T, h http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	return call(t, h, http.MethodGet, path, nil, nil)
}

func mustStatus(t *testing.T, rec *httptest.ResponseRecorder, want int) {
	t.Helper()
	if rec.Code != want {
		t.Fatalf("status %d, want %d; body %s", rec.Code, want, truncate(rec.Body.String()))
	}
}

func truncate(s string) string {
	if len(s) > 400 {
		return s[:400] + "..."
	}
	return s
}

// wantError checks an error answer: status, exact envelope shape and code.
func wantError(t *testing.T, rec *httptest.ResponseRecorder, status int, code string) string {
	t.Helper()
	mustStatus(t, rec, status)
	var body map[string]map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("error body %q is not {\"error\":{...}}: %v", rec.Body.String(), err)
	}
	e, ok := body["error"]
	if !ok || len(body) != 1 || len(e) != 2 || e["message"] == "" {
		t.Fatalf("error body %s: want exactly {\"error\":{\"code\",\"message\"}}", rec.Body.String())
	}
	if e["code"] != code {
		t.Fatalf("error code %q, want %q (body %s)", e["code"], code, rec.Body.String())
	}
	return e["message"]
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", truncate(string(b)), err)
	}
	return v
}

// engineResult mirrors an entry of last_analysis_results.
type engineResult struct {
	Category      string  `json:"category"`
	EngineName    string  `json:"engine_name"`
	EngineVersion string  `json:"engine_version"`
	EngineUpdate  string  `json:"engine_update"`
	Method        string  `json:"method"`
	Result        *string `json:"result"`
}

type fileDoc struct {
	Data struct {
		Type  string `json:"type"`
		ID    string `json:"id"`
		Links struct {
			Self string `json:"self"`
		} `json:"links"`
		Attributes struct {
			MD5                  string                  `json:"md5"`
			SHA1                 string                  `json:"sha1"`
			SHA256               string                  `json:"sha256"`
			Size                 int64                   `json:"size"`
			TypeDescription      string                  `json:"type_description"`
			TypeTag              string                  `json:"type_tag"`
			Magic                string                  `json:"magic"`
			MeaningfulName       string                  `json:"meaningful_name"`
			Names                []string                `json:"names"`
			Tags                 []string                `json:"tags"`
			Reputation           *int                    `json:"reputation"`
			TimesSubmitted       int                     `json:"times_submitted"`
			FirstSubmissionDate  int64                   `json:"first_submission_date"`
			LastSubmissionDate   int64                   `json:"last_submission_date"`
			LastAnalysisDate     int64                   `json:"last_analysis_date"`
			LastModificationDate int64                   `json:"last_modification_date"`
			LastAnalysisStats    map[string]int          `json:"last_analysis_stats"`
			LastAnalysisResults  map[string]engineResult `json:"last_analysis_results"`
			TotalVotes           map[string]int          `json:"total_votes"`
			PopularThreat        *popularThreat          `json:"popular_threat_classification"`
			CrowdsourcedYara     []yaraResult            `json:"crowdsourced_yara_results"`
			LastHTTPResponseCode int                     `json:"last_http_response_code"`
			URL                  string                  `json:"url"`
			LastFinalURL         string                  `json:"last_final_url"`
			Title                string                  `json:"title"`
			Categories           map[string]string       `json:"categories"`
			ThreatNames          []string                `json:"threat_names"`
			ASN                  int                     `json:"asn"`
			ASOwner              string                  `json:"as_owner"`
			Country              string                  `json:"country"`
			Continent            string                  `json:"continent"`
			Network              string                  `json:"network"`
			RIR                  string                  `json:"regional_internet_registry"`
			Whois                string                  `json:"whois"`
			Registrar            string                  `json:"registrar"`
			CreationDate         int64                   `json:"creation_date"`
			LastDNSRecords       []dnsRecord             `json:"last_dns_records"`
			PopularityRanks      map[string]any          `json:"popularity_ranks"`
		} `json:"attributes"`
	} `json:"data"`
}

type popularThreat struct {
	SuggestedThreatLabel  string `json:"suggested_threat_label"`
	PopularThreatCategory []struct {
		Count int    `json:"count"`
		Value string `json:"value"`
	} `json:"popular_threat_category"`
	PopularThreatName []struct {
		Count int    `json:"count"`
		Value string `json:"value"`
	} `json:"popular_threat_name"`
}

type yaraResult struct {
	RulesetID   string `json:"ruleset_id"`
	RulesetName string `json:"ruleset_name"`
	RuleName    string `json:"rule_name"`
	Description string `json:"description"`
	Author      string `json:"author"`
	Source      string `json:"source"`
}

type dnsRecord struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

type analysisDoc struct {
	Meta struct {
		FileInfo *struct {
			SHA256 string `json:"sha256"`
			SHA1   string `json:"sha1"`
			MD5    string `json:"md5"`
			Size   int64  `json:"size"`
		} `json:"file_info"`
		URLInfo *struct {
			ID  string `json:"id"`
			URL string `json:"url"`
		} `json:"url_info"`
	} `json:"meta"`
	Data struct {
		Type  string `json:"type"`
		ID    string `json:"id"`
		Links struct {
			Self string `json:"self"`
		} `json:"links"`
		Attributes struct {
			Status  string                  `json:"status"`
			Stats   map[string]int          `json:"stats"`
			Results map[string]engineResult `json:"results"`
			Date    int64                   `json:"date"`
		} `json:"attributes"`
	} `json:"data"`
}

// hashes are the three digests of some content.
type hashes struct{ md5, sha1, sha256 string }

func hashOf(b []byte) hashes {
	m, s1, s2 := md5.Sum(b), sha1.Sum(b), sha256.Sum256(b)
	return hashes{hex.EncodeToString(m[:]), hex.EncodeToString(s1[:]), hex.EncodeToString(s2[:])}
}

// multipartFile builds an in-memory multipart body with a "file" field.
func multipartFile(t *testing.T, name string, content []byte, extra map[string]string) (io.Reader, string) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for k, v := range extra {
		if err := w.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	f, err := w.CreateFormFile("file", name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(content); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return &b, w.FormDataContentType()
}

func upload(t *testing.T, h http.Handler, path, name string, content []byte) string {
	t.Helper()
	body, ct := multipartFile(t, name, content, nil)
	rec := call(t, h, http.MethodPost, path, body, http.Header{"X-Apikey": {testKey}, "Content-Type": {ct}})
	mustStatus(t, rec, http.StatusOK)
	return analysisID(t, rec.Body.Bytes())
}

// analysisID checks an analysis descriptor and returns its id.
func analysisID(t *testing.T, body []byte) string {
	t.Helper()
	d := decode[struct {
		Data struct {
			Type  string            `json:"type"`
			ID    string            `json:"id"`
			Links map[string]string `json:"links"`
		} `json:"data"`
	}](t, body)
	if d.Data.Type != "analysis" || d.Data.ID == "" || d.Data.Links["self"] != "http://sim.test/api/v3/analyses/"+d.Data.ID {
		t.Fatalf("analysis descriptor %s", body)
	}
	return d.Data.ID
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// pathOf strips scheme and host from an absolute simulator URL.
func pathOf(t *testing.T, abs string) string {
	t.Helper()
	u, err := url.Parse(abs)
	if err != nil || u.Scheme == "" || u.Host == "" {
		t.Fatalf("%q is not an absolute URL", abs)
	}
	return u.RequestURI()
}

// findID returns the first candidate id (format applied to 0, 1, ...) whose
// GET under prefix answers want.
func findID(t *testing.T, h http.Handler, prefix, format string, want int) string {
	t.Helper()
	for i := range 2000 {
		id := fmt.Sprintf(format, i)
		if get(t, h, prefix+id).Code == want {
			return id
		}
	}
	t.Fatalf("no id %s under %s answers %d", format, prefix, want)
	return ""
}
