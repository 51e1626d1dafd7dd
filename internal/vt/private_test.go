package vt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// privateFileSHA is the id of testdata/private_file.json.
const privateFileSHA = "9f2a6d0c0b1e4c5d8e7f6a5b4c3d2e1f00112233445566778899aabbccddeeff"

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// serveOne answers every request with body and records the escaped paths.
func serveOne(t *testing.T, body []byte) (*Client, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var paths []string
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.Method+" "+r.URL.EscapedPath())
		mu.Unlock()
		_, _ = w.Write(body)
	})
	return newTestClient(t, srv), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), paths...)
	}
}

func TestPrivateFile(t *testing.T) {
	c, paths := serveOne(t, readTestdata(t, "private_file.json"))
	o, err := c.PrivateFile(t.Context(), strings.ToUpper(privateFileSHA))
	if err != nil {
		t.Fatalf("PrivateFile: %v", err)
	}
	if diff := cmp.Diff([]string{"GET /api/v3/private/files/" + privateFileSHA}, paths()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	if !o.Private || o.Type != "private_file" || o.ID != privateFileSHA {
		t.Errorf("object Private=%v type %q id %q", o.Private, o.Type, o.ID)
	}
	a := o.Attributes
	wantVerdicts := map[string]SandboxVerdict{
		"Zenbox": {Category: "malicious", Confidence: 92, MalwareClassification: []string{"MALWARE", "TROJAN", "STEALER"},
			MalwareNames: []string{"AgentTesla"}, SandboxName: "Zenbox"},
		"CAPE Sandbox": {Category: "malicious", MalwareClassification: []string{"RAT"},
			MalwareNames: []string{"AgentTesla", "HiddenVNC"}, SandboxName: "CAPE Sandbox"},
		"VirusTotal Jujubox": {Category: "suspicious", Confidence: 40, MalwareClassification: []string{"EVADER"}, SandboxName: "VirusTotal Jujubox"},
		"Yomi Hunter":        {Category: "harmless", Confidence: 10, MalwareClassification: []string{"CLEAN"}, SandboxName: "Yomi Hunter"},
		"Dr.Web vxCube":      {Category: "undetected", MalwareClassification: []string{"UNKNOWN_VERDICT"}, SandboxName: "Dr.Web vxCube"},
		// A confidence of the wrong type is dropped, the rest kept.
		"Odd Sandbox": {Category: "type-unsupported", SandboxName: "Odd Sandbox"},
	}
	if diff := cmp.Diff(wantVerdicts, a.SandboxVerdicts); diff != "" {
		t.Errorf("sandbox verdicts (-want +got):\n%s", diff)
	}
	wantSeverity := &ThreatSeverity{
		Level:            SeverityHigh,
		LevelDescription: "Severity HIGH because it was considered trojan and it has dropped files with detections.",
		Data: ThreatSeverityData{PopularThreatCategory: "trojan", NumGAVDetections: 3, TypeTag: "peexe",
			CanBeDetonated: true, HasDroppedFilesWithDetections: true},
		Version:          5,
		LastAnalysisDate: 1735689000,
	}
	if diff := cmp.Diff(wantSeverity, a.ThreatSeverity); diff != "" {
		t.Errorf("threat severity (-want +got):\n%s", diff)
	}
	// The only verdict of a private report: one count per sandbox, the
	// unknown category left out.
	if diff := cmp.Diff(&Stats{Malicious: 2, Suspicious: 1, Harmless: 1, Undetected: 1}, a.LastAnalysisStats); diff != "" {
		t.Errorf("last_analysis_stats filled from the sandboxes (-want +got):\n%s", diff)
	}
	if len(a.LastAnalysisResults) != 0 {
		t.Errorf("a private report has no engine results, got %v", a.LastAnalysisResults)
	}
	if len(a.CrowdsourcedYARA) != 1 || a.CrowdsourcedYARA[0].RulesetID != "00f1e2d3c4" {
		t.Errorf("crowdsourced YARA %+v", a.CrowdsourcedYARA)
	}
	if a.PopularThreat == nil || a.PopularThreat.SuggestedThreatLabel != "trojan.agenttesla/msil" {
		t.Errorf("popular threat %+v", a.PopularThreat)
	}
	if a.SHA256 != privateFileSHA || a.Size != 184320 || a.TypeTag != "peexe" || a.LastAnalysisDate != 1735689000 {
		t.Errorf("file attributes %+v", a)
	}
	if strings.Contains(string(o.Raw), `"last_analysis_stats"`) {
		t.Errorf("Raw was changed: it must stay as received")
	}
}

// TestPrivateFileRefusesOtherHashes: the endpoint takes a SHA-256 only, so
// anything else fails before a request.
func TestPrivateFileRefusesOtherHashes(t *testing.T) {
	for _, id := range []string{"", "546bb6ef89bebfb053999777f6930d7e", "7bae8076a5771865123be7112468b79e9d78a640",
		strings.Repeat("g", 64), privateFileSHA + "0", "../files/" + privateFileSHA[9:]} {
		t.Run(id, func(t *testing.T) {
			c, paths := serveOne(t, readTestdata(t, "private_file.json"))
			_, err := c.PrivateFile(t.Context(), id)
			if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), "SHA-256") {
				t.Errorf("PrivateFile(%q) error = %v, want ErrBadRequest naming SHA-256", id, err)
			}
			if n := len(paths()); n != 0 {
				t.Errorf("%d requests sent", n)
			}
		})
	}
}

func TestPrivateURL(t *testing.T) {
	tests := []struct {
		name      string
		fixture   string
		id        string
		wantPath  string
		wantStats Stats
	}{
		{
			name: "report with its own stats keeps them", fixture: "private_url.json",
			id:        "0e682ecaa41a32ae3715fce74bac96d6d763bad6d149677e3a75fcf20c764113",
			wantPath:  "/api/v3/private/urls/0e682ecaa41a32ae3715fce74bac96d6d763bad6d149677e3a75fcf20c764113",
			wantStats: Stats{Harmless: 1},
		},
		{
			name: "report with sandbox verdicts only gets their stats", fixture: "private_url_sandboxed.json",
			id:        URLID("http://login-verify.example.net/office365/?a=1&b=2"),
			wantPath:  "/api/v3/private/urls/" + URLID("http://login-verify.example.net/office365/?a=1&b=2"),
			wantStats: Stats{Malicious: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, paths := serveOne(t, readTestdata(t, tt.fixture))
			o, err := c.PrivateURL(t.Context(), tt.id)
			if err != nil {
				t.Fatalf("PrivateURL: %v", err)
			}
			if diff := cmp.Diff([]string{"GET " + tt.wantPath}, paths()); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
			if !o.Private || o.Type != "private_url" {
				t.Errorf("Private=%v type %q", o.Private, o.Type)
			}
			if diff := cmp.Diff(&tt.wantStats, o.Attributes.LastAnalysisStats); diff != "" {
				t.Errorf("stats (-want +got):\n%s", diff)
			}
		})
	}
	c, paths := serveOne(t, readTestdata(t, "private_url.json"))
	if _, err := c.PrivateURL(t.Context(), ""); !errors.Is(err, ErrBadRequest) || len(paths()) != 0 {
		t.Errorf("PrivateURL(\"\") = %v after %d requests, want ErrBadRequest and none", err, len(paths()))
	}
}

// TestPrivateGetterFlagsWhateverTheType: the getters mark their answer
// private even when the server names the type as a public one.
func TestPrivateGetterFlagsWhateverTheType(t *testing.T) {
	body := `{"data":{"type":"file","id":"` + privateFileSHA + `","attributes":{"sandbox_verdicts":{"Zenbox":{"category":"suspicious"}}}}}`
	c, _ := serveOne(t, []byte(body))
	o, err := c.PrivateFile(t.Context(), privateFileSHA)
	if err != nil {
		t.Fatal(err)
	}
	if !o.Private || o.Attributes.LastAnalysisStats == nil || *o.Attributes.LastAnalysisStats != (Stats{Suspicious: 1}) {
		t.Errorf("Private=%v stats %+v", o.Private, o.Attributes.LastAnalysisStats)
	}
}

func TestDecodeObjectPrivateFlag(t *testing.T) {
	tests := []struct {
		name        string
		raw         string
		wantPrivate bool
		wantStats   *Stats
	}{
		{name: "private_file", raw: `{"type":"private_file","id":"x","attributes":{"sandbox_verdicts":{"A":{"category":"malicious"},"B":{"category":"harmless"}}}}`,
			wantPrivate: true, wantStats: &Stats{Malicious: 1, Harmless: 1}},
		{name: "private_url without attributes", raw: `{"type":"private_url","id":"x"}`, wantPrivate: true, wantStats: &Stats{}},
		{name: "private_analysis", raw: `{"type":"private_analysis","id":"x","attributes":{"status":"queued"}}`, wantPrivate: true, wantStats: &Stats{}},
		{name: "public file with sandbox verdicts stays public and without stats",
			raw: `{"type":"file","id":"x","attributes":{"sandbox_verdicts":{"A":{"category":"malicious"}}}}`},
		{name: "type merely containing private", raw: `{"type":"file_private","id":"x"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := DecodeObject([]byte(tt.raw))
			if err != nil {
				t.Fatal(err)
			}
			if o.Private != tt.wantPrivate {
				t.Errorf("Private = %v, want %v", o.Private, tt.wantPrivate)
			}
			if diff := cmp.Diff(tt.wantStats, o.Attributes.LastAnalysisStats); diff != "" {
				t.Errorf("stats (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPrivateStats(t *testing.T) {
	tests := []struct {
		name string
		a    *Attributes
		want Stats
	}{
		{name: "nil attributes", a: nil},
		{name: "no sandbox verdicts", a: &Attributes{}},
		{name: "one count per sandbox by category", a: &Attributes{SandboxVerdicts: map[string]SandboxVerdict{
			"Zenbox": {Category: "malicious"}, "CAPE Sandbox": {Category: "malicious"}, "Jujubox": {Category: "suspicious"},
			"Yomi": {Category: "harmless"}, "vxCube": {Category: "undetected"}, "C2AE": {Category: "Malicious"},
		}}, want: Stats{Malicious: 3, Suspicious: 1, Harmless: 1, Undetected: 1}},
		{name: "unknown and empty categories are not counted", a: &Attributes{SandboxVerdicts: map[string]SandboxVerdict{
			"A": {Category: "timeout"}, "B": {}, "C": {Category: "undetected"},
		}}, want: Stats{Undetected: 1}},
		{name: "antivirus stats are not mixed in", a: &Attributes{LastAnalysisStats: &Stats{Malicious: 40},
			SandboxVerdicts: map[string]SandboxVerdict{"A": {Category: "harmless"}}}, want: Stats{Harmless: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, PrivateStats(tt.a)); diff != "" {
				t.Errorf("PrivateStats (-want +got):\n%s", diff)
			}
		})
	}
}

// TestThreatSeverityTolerant: threat_severity decodes whatever shape its
// fields come in, without failing the object.
func TestThreatSeverityTolerant(t *testing.T) {
	tests := []struct {
		name string
		json string
		want *ThreatSeverity
	}{
		{name: "date as a string", json: `{"threat_severity_level":"SEVERITY_LOW","last_analysis_date":"1700000000"}`,
			want: &ThreatSeverity{Level: SeverityLow, LastAnalysisDate: 1700000000}},
		{name: "date as a number", json: `{"threat_severity_level":"SEVERITY_NONE","last_analysis_date":1700000001,"version":2}`,
			want: &ThreatSeverity{Level: SeverityNone, LastAnalysisDate: 1700000001, Version: 2}},
		{name: "unreadable date and version are dropped", json: `{"threat_severity_level":"SEVERITY_MEDIUM","last_analysis_date":"soon","version":"5","level_description":"d"}`,
			want: &ThreatSeverity{Level: SeverityMedium, LevelDescription: "d"}},
		{name: "data of the wrong type is dropped", json: `{"threat_severity_level":"SEVERITY_UNKNOWN","threat_severity_data":[1,2]}`,
			want: &ThreatSeverity{Level: SeverityUnknown}},
		{name: "null", json: `null`},
		{name: "not an object", json: `"high"`, want: &ThreatSeverity{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := `{"type":"private_file","id":"x","attributes":{"md5":"m","threat_severity":` + tt.json + `}}`
			o, err := DecodeObject([]byte(raw))
			if err != nil {
				t.Fatalf("DecodeObject: %v", err)
			}
			if diff := cmp.Diff(tt.want, o.Attributes.ThreatSeverity); diff != "" {
				t.Errorf("threat severity (-want +got):\n%s", diff)
			}
			if o.Attributes.MD5 != "m" {
				t.Errorf("the rest of the attributes was lost: %+v", o.Attributes)
			}
		})
	}
}

func TestPrivateUploadFileDirect(t *testing.T) {
	path, sum := writeRandomFile(t, "sample.exe", 3<<20)
	var mu sync.Mutex
	var recs []received
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		rec := readUpload(r)
		mu.Lock()
		recs = append(recs, rec)
		mu.Unlock()
		fmt.Fprintf(w, `{"data":{"type":"private_analysis","id":"cHJpdmF0ZToxNzAwMDAwMDAw","links":{"self":"x"}}}`)
	})
	c := newTestClient(t, srv)
	id, err := c.PrivateUploadFile(t.Context(), path)
	if err != nil || id != "cHJpdmF0ZToxNzAwMDAwMDAw" {
		t.Fatalf("PrivateUploadFile = %q, %v", id, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(recs) != 1 {
		t.Fatalf("%d requests, want 1", len(recs))
	}
	got := recs[0]
	want := received{
		method: "POST", path: "/api/v3/private/files", contentLength: got.contentLength, bodyBytes: got.contentLength,
		mediaType: "multipart/form-data", fields: []string{"file"}, fileName: "sample.exe",
		fileSHA256: sum, fileSize: 3 << 20, apiKey: testKey,
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(received{})); diff != "" {
		t.Errorf("upload as received (-want +got):\n%s", diff)
	}
}

// TestPrivateUploadFileLarge: above the direct limit the file goes to the
// URL from /private/files/upload_url, and nothing touches the public
// upload endpoints.
func TestPrivateUploadFileLarge(t *testing.T) {
	path := sparseFile(t, MaxDirectUpload-multipartSlack+1)
	sum := fileSHA256(t, path)
	var mu sync.Mutex
	var seen []string
	var rec received
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path)
		mu.Unlock()
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/api/v3/private/files/upload_url":
			fmt.Fprintf(w, `{"data":"http://%s/_ah/upload/private_single_use?k=v"}`, r.Host)
		case r.Method == http.MethodPost && r.URL.Path == "/_ah/upload/private_single_use" && r.URL.Query().Get("k") == "v":
			got := readUpload(r)
			mu.Lock()
			rec = got
			mu.Unlock()
			fmt.Fprint(w, `{"data":{"type":"private_analysis","id":"big-private"}}`)
		default:
			http.Error(w, "unexpected", http.StatusTeapot)
		}
	})
	c := newTestClient(t, srv)
	id, err := c.PrivateUploadFile(t.Context(), path)
	if err != nil || id != "big-private" {
		t.Fatalf("PrivateUploadFile = %q, %v", id, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]string{"GET /api/v3/private/files/upload_url", "POST /_ah/upload/private_single_use"}, seen); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	if rec.err != "" || rec.fileSHA256 != sum || rec.fileSize != MaxDirectUpload-multipartSlack+1 || rec.apiKey != testKey {
		t.Errorf("upload as received: %+v", rec)
	}
}

// TestPrivateUploadFileRefusedLocally: the size rules of UploadFile, with
// errors that name the private upload.
func TestPrivateUploadFileRefusedLocally(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		path    string
		wantIs  error
		wantMsg string
	}{
		{name: "larger than 650 MB", path: sparseFile(t, MaxUpload+1), wantIs: ErrTooLarge, wantMsg: "650000001 bytes"},
		{name: "missing file", path: filepath.Join(dir, "absent.bin"), wantMsg: "absent.bin"},
		{name: "directory", path: dir, wantMsg: "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n atomic.Int32
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { n.Add(1) })
			c := newTestClient(t, srv)
			_, err := c.PrivateUploadFile(t.Context(), tt.path)
			if err == nil || !strings.HasPrefix(err.Error(), "vt: private upload") || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %v: want a vt: private upload message containing %q", err, tt.wantMsg)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v is not %v", err, tt.wantIs)
			}
			if n.Load() != 0 {
				t.Errorf("%d requests sent", n.Load())
			}
		})
	}
}

func TestPrivateSubmitURL(t *testing.T) {
	const u = "https://intranet.example.com/a b?x=1&y=é"
	var mu sync.Mutex
	var got []string
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		err := r.ParseForm()
		mu.Lock()
		got = append(got, fmt.Sprintf("%s %s %s %v url=%s", r.Method, r.URL.Path, r.Header.Get("Content-Type"), err, r.PostForm.Get("url")))
		mu.Unlock()
		fmt.Fprint(w, `{"data":{"type":"private_analysis","id":"u-0e682eca-1700000000"}}`)
	})
	c := newTestClient(t, srv)
	id, err := c.PrivateSubmitURL(t.Context(), u)
	if err != nil || id != "u-0e682eca-1700000000" {
		t.Fatalf("PrivateSubmitURL = %q, %v", id, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]string{"POST /api/v3/private/urls application/x-www-form-urlencoded <nil> url=" + u}, got); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	if _, err := c.PrivateSubmitURL(t.Context(), "  "); !errors.Is(err, ErrBadRequest) || !strings.HasPrefix(err.Error(), "vt: private submit url") {
		t.Errorf("empty URL: %v", err)
	}
}

func TestPrivateAnalysis(t *testing.T) {
	tests := []struct {
		name string
		id   string
		body string
		want Analysis
	}{
		{
			name: "completed file analysis (the documented example)",
			id:   "ZTU4MjhjNTY0ZjcxZmVhM2ExMmRkZThiZDVkMjcwNjM6MTYyMDEyNzAxNA==",
			body: `{"meta":{"file_info":{"size":5,"sha256":"11a77c3d96c06974b53d7f40a577e6813739eb5c811b2a86f59038ea90add772",
				"sha1":"7bae8076a5771865123be7112468b79e9d78a640","md5":"e5828c564f71fea3a12dde8bd5d27063"}},
				"data":{"attributes":{"date":1620127014,"status":"completed"},"type":"private_analysis",
				"id":"ZTU4MjhjNTY0ZjcxZmVhM2ExMmRkZThiZDVkMjcwNjM6MTYyMDEyNzAxNA==",
				"links":{"self":"https://virustotal.com/api/v3/private/analyses/ZTU4MjhjNTY0ZjcxZmVhM2ExMmRkZThiZDVkMjcwNjM6MTYyMDEyNzAxNA=="}}}`,
			want: Analysis{ID: "ZTU4MjhjNTY0ZjcxZmVhM2ExMmRkZThiZDVkMjcwNjM6MTYyMDEyNzAxNA==", Status: "completed", Date: 1620127014,
				SHA256: "11a77c3d96c06974b53d7f40a577e6813739eb5c811b2a86f59038ea90add772", MD5: "e5828c564f71fea3a12dde8bd5d27063"},
		},
		{
			name: "queued URL analysis with pending stages",
			id:   "u-0e682eca-1700000000",
			body: `{"meta":{"url_info":{"id":"0e682ecaa41a32ae3715fce74bac96d6d763bad6d149677e3a75fcf20c764113","url":"https://www.example.com/"}},
				"data":{"type":"private_analysis","id":"u-0e682eca-1700000000","attributes":{"status":"queued","date":1700000000,
				"pending_stages":{"Zenbox":"Sandbox analysis from Zenbox (queued)"}}}}`,
			want: Analysis{ID: "u-0e682eca-1700000000", Status: "queued", Date: 1700000000,
				URLID: "0e682ecaa41a32ae3715fce74bac96d6d763bad6d149677e3a75fcf20c764113", URL: "https://www.example.com/"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, paths := serveOne(t, []byte(tt.body))
			got, err := c.PrivateAnalysis(t.Context(), tt.id)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(&tt.want, got); diff != "" {
				t.Errorf("analysis (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"GET /api/v3/private/analyses/" + url.PathEscape(tt.id)}, paths()); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
		})
	}
	c, _ := serveOne(t, nil)
	if _, err := c.PrivateAnalysis(t.Context(), ""); !errors.Is(err, ErrBadRequest) || !strings.HasPrefix(err.Error(), "vt: private analysis") {
		t.Errorf("empty id: %v", err)
	}
}

// TestPrivateErrors: every private call maps VirusTotal's answers like the
// public ones; a key without the Private Scanning license gets 403.
func TestPrivateErrors(t *testing.T) {
	small, _ := writeRandomFile(t, "s.bin", 100)
	calls := []struct {
		name string
		path string // the API path the error must name
		call func(ctx context.Context, c *Client) error
	}{
		{"PrivateUploadFile", "private/files", func(ctx context.Context, c *Client) error { _, err := c.PrivateUploadFile(ctx, small); return err }},
		{"PrivateSubmitURL", "private/urls", func(ctx context.Context, c *Client) error {
			_, err := c.PrivateSubmitURL(ctx, "http://example.com/")
			return err
		}},
		{"PrivateAnalysis", "private/analyses/abc", func(ctx context.Context, c *Client) error { _, err := c.PrivateAnalysis(ctx, "abc"); return err }},
		{"PrivateFile", "private/files/" + privateFileSHA, func(ctx context.Context, c *Client) error { _, err := c.PrivateFile(ctx, privateFileSHA); return err }},
		{"PrivateURL", "private/urls/abc", func(ctx context.Context, c *Client) error { _, err := c.PrivateURL(ctx, "abc"); return err }},
	}
	answers := []struct {
		name       string
		status     int
		body       string
		retryAfter string
		want       error
	}{
		{name: "key without the license", status: 403, body: errBody("ForbiddenError", "You are not allowed to perform the requested operation"), want: ErrForbidden},
		{name: "403 without an envelope", status: 403, body: "<html>denied</html>", want: ErrForbidden},
		{name: "wrong key", status: 401, body: errBody("WrongCredentialsError", "Wrong API key"), want: ErrAuth},
		{name: "unknown", status: 404, body: errBody("NotFoundError", "not found"), want: ErrNotFound},
		{name: "quota", status: 429, body: errBody("QuotaExceededError", "quota"), retryAfter: "30", want: ErrQuota},
		{name: "transient", status: 503, body: errBody("TransientError", "retry"), want: ErrTransient},
		{name: "not ready", status: 400, body: errBody("NotAvailableYet", "later"), want: ErrNotAvailableYet},
	}
	for _, call := range calls {
		for _, ans := range answers {
			t.Run(call.name+"/"+ans.name, func(t *testing.T) {
				srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
					_, _ = io.Copy(io.Discard, r.Body)
					if ans.retryAfter != "" {
						w.Header().Set("Retry-After", ans.retryAfter)
					}
					w.WriteHeader(ans.status)
					_, _ = w.Write([]byte(ans.body))
				})
				c := newTestClient(t, srv)
				err := call.call(t.Context(), c)
				if !errors.Is(err, ans.want) {
					t.Fatalf("error = %v, want %v", err, ans.want)
				}
				if got := matchedSentinels(err); len(got) != 1 {
					t.Errorf("error matches %v, want exactly one class", got)
				}
				if !strings.Contains(err.Error(), call.path) || strings.Contains(err.Error(), testKey) {
					t.Errorf("error %q: want the path %q and never the key", err, call.path)
				}
				if qe, ok := errors.AsType[*QuotaError](err); ans.want == ErrQuota && (!ok || qe.RetryAfter != 30*time.Second) {
					t.Errorf("quota error %v: want a *QuotaError with RetryAfter 30s", err)
				}
			})
		}
	}
}
