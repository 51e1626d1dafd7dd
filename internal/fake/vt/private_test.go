package vt_test

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	fakevt "github.com/vtconnector/vtconnector/internal/fake/vt"
	"github.com/vtconnector/vtconnector/internal/vt"
)

// privateAnalysisDoc is GET /private/analyses/{id}.
type privateAnalysisDoc struct {
	Meta struct {
		FileInfo *struct {
			SHA256, SHA1, MD5 string
			Size              int64
		} `json:"file_info"`
		URLInfo *struct {
			ID  string `json:"id"`
			URL string `json:"url"`
		} `json:"url_info"`
	} `json:"meta"`
	Data struct {
		Type       string            `json:"type"`
		ID         string            `json:"id"`
		Links      map[string]string `json:"links"`
		Attributes map[string]any    `json:"attributes"`
	} `json:"data"`
}

type sandboxVerdict struct {
	Category              string   `json:"category"`
	Confidence            *int     `json:"confidence"`
	MalwareClassification []string `json:"malware_classification"`
	MalwareNames          []string `json:"malware_names"`
	SandboxName           string   `json:"sandbox_name"`
}

// privateFileDoc is GET /private/files/{id}; Attributes keeps every key to
// check what is absent.
type privateFileDoc struct {
	Data struct {
		Type       string                     `json:"type"`
		ID         string                     `json:"id"`
		Links      map[string]string          `json:"links"`
		Attributes map[string]json.RawMessage `json:"attributes"`
	} `json:"data"`
}

// privateUpload uploads content to /private/files with key and returns the
// analysis id from a checked private_analysis descriptor.
func privateUpload(t *testing.T, h http.Handler, key, name string, content []byte) string {
	t.Helper()
	body, ct := multipartFile(t, name, content, nil)
	rec := call(t, h, http.MethodPost, "/api/v3/private/files", body, http.Header{"X-Apikey": {key}, "Content-Type": {ct}})
	mustStatus(t, rec, http.StatusOK)
	return privateAnalysisID(t, rec.Body.Bytes())
}

func privateAnalysisID(t *testing.T, body []byte) string {
	t.Helper()
	d := decode[privateAnalysisDoc](t, body)
	if d.Data.Type != "private_analysis" || d.Data.ID == "" || d.Data.Links["self"] != "http://sim.test/api/v3/private/analyses/"+d.Data.ID {
		t.Fatalf("private analysis descriptor %s", body)
	}
	return d.Data.ID
}

func getAs(t *testing.T, h http.Handler, key, path string) *httptest.ResponseRecorder {
	t.Helper()
	return call(t, h, http.MethodGet, path, nil, http.Header{"X-Apikey": {key}})
}

// checkPrivateFile checks the invariants of a private file report and
// returns its sandbox verdicts and threat severity.
func checkPrivateFile(t *testing.T, body []byte, h hashes) (map[string]sandboxVerdict, map[string]any) {
	t.Helper()
	d := decode[privateFileDoc](t, body)
	if d.Data.Type != "private_file" || d.Data.ID != h.sha256 || d.Data.Links["self"] != "http://sim.test/api/v3/private/files/"+h.sha256 {
		t.Fatalf("private file envelope type %q id %q links %v", d.Data.Type, d.Data.ID, d.Data.Links)
	}
	a := d.Data.Attributes
	for _, absent := range []string{"last_analysis_stats", "last_analysis_results", "times_submitted", "reputation", "total_votes"} {
		if _, ok := a[absent]; ok {
			t.Errorf("private report has %s", absent)
		}
	}
	for k, want := range map[string]string{"md5": h.md5, "sha1": h.sha1, "sha256": h.sha256} {
		if got := decode[string](t, a[k]); got != want {
			t.Errorf("%s %q, want %q", k, got, want)
		}
	}
	verdicts := map[string]sandboxVerdict{}
	if raw, ok := a["sandbox_verdicts"]; ok {
		verdicts = decode[map[string]sandboxVerdict](t, raw)
	}
	for name, v := range verdicts {
		if v.SandboxName != name || !slices.Contains([]string{"malicious", "suspicious", "harmless", "undetected"}, v.Category) ||
			len(v.MalwareClassification) == 0 || (v.Confidence != nil && (*v.Confidence < 0 || *v.Confidence > 100)) {
			t.Errorf("sandbox verdict %q: %+v", name, v)
		}
		if (v.Category == "malicious") != (len(v.MalwareNames) > 0) {
			t.Errorf("sandbox verdict %q: malware names %v with category %s", name, v.MalwareNames, v.Category)
		}
	}
	sev := decode[map[string]any](t, a["threat_severity"])
	level, _ := sev["threat_severity_level"].(string)
	if !slices.Contains([]string{"SEVERITY_HIGH", "SEVERITY_MEDIUM", "SEVERITY_LOW", "SEVERITY_NONE", "SEVERITY_UNKNOWN"}, level) ||
		!strings.HasPrefix(sev["level_description"].(string), "Severity "+strings.TrimPrefix(level, "SEVERITY_")+" because ") {
		t.Errorf("threat_severity %v", sev)
	}
	if date, ok := sev["last_analysis_date"].(string); !ok || date != string(a["last_analysis_date"]) {
		t.Errorf("threat_severity.last_analysis_date %v, want the string of last_analysis_date %s", sev["last_analysis_date"], a["last_analysis_date"])
	}
	return verdicts, sev
}

func TestPrivateUploadLifecycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := fakevt.New(fakevt.Config{UnknownPercent: 100, AnalysisDelay: 2 * time.Second})
		content := []byte("MZ\x90\x00 a private sample")
		h := hashOf(content)
		uploadedAt := time.Now()
		id := privateUpload(t, s, testKey, "secret.exe", content)

		poll := func(want string) privateAnalysisDoc {
			t.Helper()
			rec := get(t, s, "/api/v3/private/analyses/"+id)
			mustStatus(t, rec, 200)
			d := decode[privateAnalysisDoc](t, rec.Body.Bytes())
			a := d.Data.Attributes
			if d.Data.Type != "private_analysis" || d.Data.ID != id || a["status"] != want || a["date"] != float64(uploadedAt.Unix()) {
				t.Fatalf("private analysis %s, want status %s", rec.Body, want)
			}
			if fi := d.Meta.FileInfo; fi == nil || fi.SHA256 != h.sha256 || fi.MD5 != h.md5 || fi.SHA1 != h.sha1 || fi.Size != int64(len(content)) {
				t.Fatalf("meta.file_info %+v, want %+v", fi, h)
			}
			if _, ok := a["stats"]; ok {
				t.Errorf("a private analysis has no antivirus stats: %s", rec.Body)
			}
			if _, pending := a["pending_stages"]; pending != (want != "completed") {
				t.Errorf("pending_stages present=%v with status %s", pending, want)
			}
			return d
		}
		poll("queued")
		wantError(t, get(t, s, "/api/v3/private/analyses/"+id+"/item"), 400, "NotAvailableYet")
		wantError(t, get(t, s, "/api/v3/private/files/"+h.sha256), 404, "NotFoundError")
		time.Sleep(time.Second)
		poll("in-progress")
		time.Sleep(time.Second)
		poll("completed")

		rec := get(t, s, "/api/v3/private/files/"+strings.ToUpper(h.sha256))
		mustStatus(t, rec, 200)
		verdicts, _ := checkPrivateFile(t, rec.Body.Bytes(), h)
		if len(verdicts) == 0 {
			t.Errorf("a PE file was detonated in no sandbox: %s", rec.Body)
		}
		a := decode[privateFileDoc](t, rec.Body.Bytes()).Data.Attributes
		if string(a["last_analysis_date"]) != jsonInt(uploadedAt.Add(2*time.Second).Unix()) || string(a["meaningful_name"]) != `"secret.exe"` {
			t.Errorf("date %s name %s", a["last_analysis_date"], a["meaningful_name"])
		}
		if item := get(t, s, "/api/v3/private/analyses/"+id+"/item"); item.Body.String() != rec.Body.String() {
			t.Errorf("private analyses/{id}/item is not the private report: %s", truncate(item.Body.String()))
		}
	})
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }

// TestPrivateScansStayPrivate: nothing scanned privately shows through the
// public endpoints or to another key.
func TestPrivateScansStayPrivate(t *testing.T) {
	s := fakevt.New(fakevt.Config{UnknownPercent: 100, AnalysisDelay: -1})
	content := []byte("%PDF-1.7 confidential board minutes")
	h := hashOf(content)
	wantError(t, get(t, s, "/api/v3/files/"+h.sha256), 404, "NotFoundError")
	id := privateUpload(t, s, testKey, "minutes.pdf", content)
	const secretURL = "http://intranet.example.com/hr/salaries"
	urlRec := call(t, s, http.MethodPost, "/api/v3/private/urls", strings.NewReader("url="+secretURL),
		http.Header{"X-Apikey": {testKey}, "Content-Type": {"application/x-www-form-urlencoded"}})
	mustStatus(t, urlRec, 200)
	urlAnalysis := privateAnalysisID(t, urlRec.Body.Bytes())
	urlSHA := sha256Hex(secretURL)

	// The owner sees both reports.
	mustStatus(t, get(t, s, "/api/v3/private/files/"+h.sha256), 200)
	mustStatus(t, get(t, s, "/api/v3/private/urls/"+urlSHA), 200)

	for _, path := range []string{
		"/api/v3/files/" + h.sha256, "/api/v3/files/" + h.md5, "/api/v3/files/" + h.sha1,
		"/api/v3/analyses/" + id, "/api/v3/analyses/" + id + "/item",
		"/api/v3/analyses/" + urlAnalysis, "/api/v3/urls/" + urlSHA,
	} {
		wantError(t, get(t, s, path), 404, "NotFoundError")
	}
	for _, path := range []string{
		"/api/v3/private/files/" + h.sha256, "/api/v3/private/analyses/" + id,
		"/api/v3/private/urls/" + urlSHA, "/api/v3/private/analyses/" + urlAnalysis,
	} {
		wantError(t, getAs(t, s, "another-key", path), 404, "NotFoundError")
	}
	// Files are downloadable only when uploaded publicly.
	p := fakevt.New(fakevt.Config{UnknownPercent: 100, AnalysisDelay: -1, PremiumKeys: []string{testKey}})
	privateUpload(t, p, testKey, "minutes.pdf", content)
	wantError(t, get(t, p, "/api/v3/files/"+h.sha256+"/download"), 404, "NotFoundError")
}

func TestPrivateKeys(t *testing.T) {
	content := []byte("MZ licensed")
	sha := hashOf(content).sha256
	endpoints := []struct {
		method, path string
	}{
		{"GET", "/api/v3/private/files/upload_url"},
		{"POST", "/api/v3/private/files"},
		{"GET", "/api/v3/private/files/" + sha},
		{"GET", "/api/v3/private/analyses/abc"},
		{"GET", "/api/v3/private/analyses/abc/item"},
		{"POST", "/api/v3/private/urls"},
		{"GET", "/api/v3/private/urls/" + sha},
	}
	s := fakevt.New(fakevt.Config{PrivateKeys: []string{"licensed"}, AnalysisDelay: -1})
	for _, e := range endpoints {
		wantError(t, call(t, s, e.method, e.path, strings.NewReader("url=http://x.example/"),
			http.Header{"X-Apikey": {"plain"}, "Content-Type": {"application/x-www-form-urlencoded"}}), 403, "ForbiddenError")
	}
	if st := s.Stats(); st.ByStatus[403] != len(endpoints) || st.ByEndpoint["POST /private/files"] != 1 || st.ByEndpoint["GET /private/analyses/{id}/item"] != 1 {
		t.Errorf("stats %+v", st)
	}
	// The licensed key goes through; the other key keeps the public API.
	privateUpload(t, s, "licensed", "a.exe", content)
	mustStatus(t, getAs(t, s, "licensed", "/api/v3/private/files/"+sha), 200)
	mustStatus(t, getAs(t, s, "plain", "/api/v3/files/"+hashOf([]byte("public")).sha256+"x"), 400)
	mustStatus(t, getAs(t, s, "plain", "/api/v3/ip_addresses/8.8.8.8"), 200)

	// Without PrivateKeys every key may scan privately.
	open := fakevt.New(fakevt.Config{AnalysisDelay: -1})
	privateUpload(t, open, "plain", "a.exe", content)
	mustStatus(t, getAs(t, open, "plain", "/api/v3/private/files/"+sha), 200)
}

func TestPrivateRequestErrors(t *testing.T) {
	s := fakevt.New(fakevt.Config{AnalysisDelay: -1})
	h := hashOf([]byte("x"))
	for _, id := range []string{h.md5, h.sha1, strings.Repeat("z", 64)} {
		wantError(t, get(t, s, "/api/v3/private/files/"+id), 400, "InvalidArgumentError")
	}
	wantError(t, get(t, s, "/api/v3/private/files/"+h.sha256), 404, "NotFoundError")
	wantError(t, get(t, s, "/api/v3/private/analyses/nope"), 404, "NotFoundError")
	wantError(t, get(t, s, "/api/v3/private/urls/!!"), 400, "InvalidArgumentError")
	wantError(t, call(t, s, "POST", "/api/v3/private/urls", strings.NewReader("u=1"),
		http.Header{"X-Apikey": {testKey}, "Content-Type": {"application/x-www-form-urlencoded"}}), 400, "BadRequestError")
	wantError(t, call(t, s, "POST", "/api/v3/private/files", strings.NewReader("x"),
		http.Header{"X-Apikey": {testKey}, "Content-Type": {"text/plain"}}), 400, "BadRequestError")
	wantError(t, call(t, s, "PUT", "/api/v3/private/files", nil, nil), 405, "MethodNotAllowedError")
}

// TestPrivateReportsAreSynthesisedFromContent: the same content and seed
// give the same report; the verdicts agree with the severity; EICAR is
// malicious and unknown data cannot be detonated.
func TestPrivateReportsAreSynthesisedFromContent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(7, 7))
		var contents [][]byte
		for range 40 {
			b := make([]byte, 200)
			for i := range b {
				b[i] = byte(r.IntN(256))
			}
			contents = append(contents, append([]byte("MZ"), b...))
		}
		report := func(s *fakevt.Server, content []byte) []byte {
			privateUpload(t, s, testKey, "f.exe", content)
			rec := get(t, s, "/api/v3/private/files/"+hashOf(content).sha256)
			mustStatus(t, rec, 200)
			return rec.Body.Bytes()
		}
		s1 := fakevt.New(fakevt.Config{Seed: 1, AnalysisDelay: -1})
		s2 := fakevt.New(fakevt.Config{Seed: 1, AnalysisDelay: -1})
		s3 := fakevt.New(fakevt.Config{Seed: 2, AnalysisDelay: -1})
		levels := map[string]int{}
		differs := false
		for _, c := range contents {
			b1 := report(s1, c)
			if b2 := report(s2, c); string(b1) != string(b2) {
				t.Fatalf("same seed, different reports:\n%s\n%s", b1, b2)
			}
			differs = differs || string(report(s3, c)) != string(b1)
			verdicts, sev := checkPrivateFile(t, b1, hashOf(c))
			level := sev["threat_severity_level"].(string)
			levels[level]++
			worst := ""
			for _, v := range verdicts {
				if worst == "" || rank(v.Category) > rank(worst) {
					worst = v.Category
				}
			}
			want := map[string][]string{
				"malicious": {"SEVERITY_HIGH", "SEVERITY_MEDIUM", "SEVERITY_LOW"}, "suspicious": {"SEVERITY_LOW"},
				"harmless": {"SEVERITY_NONE"}, "undetected": {"SEVERITY_NONE"},
			}[worst]
			if !slices.Contains(want, level) {
				t.Errorf("worst sandbox verdict %q with severity %s", worst, level)
			}
		}
		if !differs {
			t.Error("another seed gives the very same reports")
		}
		if levels["SEVERITY_NONE"] == 0 || levels["SEVERITY_NONE"] == len(contents) {
			t.Errorf("severities %v: want clean and non-clean files among %d", levels, len(contents))
		}

		eicar := []byte(`X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*`)
		verdicts, sev := checkPrivateFile(t, report(s1, eicar), hashOf(eicar))
		if v := verdicts[firstKey(verdicts)]; v.Category != "malicious" || sev["threat_severity_level"] == "SEVERITY_NONE" {
			t.Errorf("EICAR: verdicts %+v severity %v", verdicts, sev)
		}
		data := []byte{0, 1, 2, 3, 0xff, 0xfe}
		verdicts, sev = checkPrivateFile(t, report(s1, data), hashOf(data))
		if len(verdicts) != 0 || sev["threat_severity_level"] != "SEVERITY_UNKNOWN" {
			t.Errorf("unknown data: verdicts %+v severity %v", verdicts, sev)
		}
	})
}

func rank(category string) int {
	return slices.Index([]string{"undetected", "harmless", "suspicious", "malicious"}, category)
}

// firstKey returns the smallest key of m.
func firstKey[V any](m map[string]V) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if len(keys) == 0 {
		return ""
	}
	return keys[0]
}

// TestPrivateScanningWithOurClient: internal/vt's private calls against
// the simulator, a large file through the private upload URL, and not one
// request to a public endpoint.
func TestPrivateScanningWithOurClient(t *testing.T) {
	s := fakevt.New(fakevt.Config{AnalysisDelay: -1, UnknownPercent: -1, PrivateKeys: []string{"licensed"}})
	ts := httptest.NewServer(s)
	defer ts.Close()
	c, err := vt.New("licensed", vt.WithBaseURL(ts.URL+"/api/v3"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	big := filepath.Join(t.TempDir(), "big.exe")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("MZ\x90\x00"); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(f.Truncate(33<<20), f.Close()); err != nil {
		t.Fatal(err)
	}
	id, err := c.PrivateUploadFile(ctx, big)
	if err != nil {
		t.Fatalf("PrivateUploadFile: %v", err)
	}
	a, err := c.PrivateAnalysis(ctx, id)
	if err != nil || !a.Completed() || len(a.SHA256) != 64 {
		t.Fatalf("PrivateAnalysis = %+v, %v", a, err)
	}
	o, err := c.PrivateFile(ctx, a.SHA256)
	if err != nil {
		t.Fatalf("PrivateFile: %v", err)
	}
	if !o.Private || o.Attributes.Size != 33<<20 || o.Attributes.TypeTag != "peexe" || o.Attributes.ThreatSeverity == nil ||
		len(o.Attributes.SandboxVerdicts) == 0 || len(o.Attributes.LastAnalysisResults) != 0 {
		t.Errorf("private file %+v", o.Attributes)
	}
	if got, want := *o.Attributes.LastAnalysisStats, vt.PrivateStats(&o.Attributes); got != want || got.Total() != len(o.Attributes.SandboxVerdicts) {
		t.Errorf("stats %+v, want one per sandbox %+v", got, want)
	}

	uid, err := c.PrivateSubmitURL(ctx, "http://Intranet.Example.com/payroll")
	if err != nil {
		t.Fatalf("PrivateSubmitURL: %v", err)
	}
	ua, err := c.PrivateAnalysis(ctx, uid)
	if err != nil || ua.URL != "http://intranet.example.com/payroll" || ua.URLID == "" {
		t.Fatalf("PrivateAnalysis(url) = %+v, %v", ua, err)
	}
	for _, urlID := range []string{ua.URLID, vt.URLID("http://intranet.example.com/payroll")} {
		u, err := c.PrivateURL(ctx, urlID)
		if err != nil || !u.Private || u.Type != "private_url" || u.Attributes.URL != ua.URL || u.Attributes.LastAnalysisStats.Total() != 1 {
			t.Errorf("PrivateURL(%s) = %+v, %v", urlID, u, err)
		}
	}

	var used []string
	for ep := range s.Stats().ByEndpoint {
		used = append(used, ep)
	}
	slices.Sort(used)
	want := []string{"GET /private/analyses/{id}", "GET /private/files/upload_url", "GET /private/files/{id}",
		"GET /private/urls/{id}", "POST /_ah/upload/{token}", "POST /private/urls"}
	if diff := cmp.Diff(want, used); diff != "" {
		t.Errorf("endpoints used (-want +got):\n%s", diff)
	}

	other, err := vt.New("unlicensed", vt.WithBaseURL(ts.URL+"/api/v3"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.PrivateFile(ctx, a.SHA256); !errors.Is(err, vt.ErrForbidden) {
		t.Errorf("unlicensed key: %v, want vt.ErrForbidden", err)
	}
}
