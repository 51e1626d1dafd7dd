package vt_test

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"maps"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	fakevt "github.com/vtconnector/vtconnector/internal/fake/vt"
)

var fileStatKeys = []string{"confirmed-timeout", "failure", "harmless", "malicious", "suspicious", "timeout", "type-unsupported", "undetected"}

// checkFileReport checks the invariants every file report must satisfy.
func checkFileReport(t *testing.T, body []byte) fileDoc {
	t.Helper()
	d := decode[fileDoc](t, body)
	a := d.Data.Attributes
	if d.Data.Type != "file" || d.Data.ID != a.SHA256 || d.Data.Links.Self != "http://sim.test/api/v3/files/"+a.SHA256 {
		t.Fatalf("envelope type %q id %q self %q", d.Data.Type, d.Data.ID, d.Data.Links.Self)
	}
	for name, h := range map[string]struct {
		v string
		n int
	}{"md5": {a.MD5, 32}, "sha1": {a.SHA1, 40}, "sha256": {a.SHA256, 64}} {
		if !regexp.MustCompile(fmt.Sprintf("^[0-9a-f]{%d}$", h.n)).MatchString(h.v) {
			t.Errorf("%s %q is not %d lower-case hex digits", name, h.v, h.n)
		}
	}
	if a.Size <= 0 || a.TypeDescription == "" || a.TypeTag == "" || a.Magic == "" || a.Reputation == nil || a.TotalVotes == nil || a.Tags == nil {
		t.Errorf("missing identity attributes: %s", truncate(string(body)))
	}
	if keys := sortedKeys(a.LastAnalysisStats); !slices.Equal(keys, fileStatKeys) {
		t.Errorf("last_analysis_stats keys %v, want %v", keys, fileStatKeys)
	}
	n := len(a.LastAnalysisResults)
	if n < 60 || n > 75 {
		t.Errorf("%d engines, want 60-75", n)
	}
	counted := map[string]int{}
	for _, k := range fileStatKeys {
		counted[k] = 0
	}
	for name, r := range a.LastAnalysisResults {
		counted[r.Category]++
		if r.EngineName != name || r.EngineVersion == "" || r.Method != "blacklist" || !regexp.MustCompile(`^\d{8}$`).MatchString(r.EngineUpdate) {
			t.Errorf("engine %q result %+v", name, r)
		}
		detects := r.Category == "malicious" || r.Category == "suspicious"
		if detects != (r.Result != nil) {
			t.Errorf("engine %q category %q result %v: result must be null exactly when clean", name, r.Category, r.Result)
		}
	}
	if diff := cmp.Diff(a.LastAnalysisStats, counted); diff != "" {
		t.Errorf("stats disagree with results (-stats +results):\n%s", diff)
	}
	if !(a.FirstSubmissionDate <= a.LastSubmissionDate && a.LastSubmissionDate <= a.LastModificationDate && a.LastAnalysisDate <= a.LastModificationDate && a.FirstSubmissionDate > 0) {
		t.Errorf("dates out of order: first %d last_sub %d analysis %d mod %d", a.FirstSubmissionDate, a.LastSubmissionDate, a.LastAnalysisDate, a.LastModificationDate)
	}
	if mal := a.LastAnalysisStats["malicious"]; mal >= 5 && (a.PopularThreat == nil || a.PopularThreat.SuggestedThreatLabel == "" || len(a.PopularThreat.PopularThreatCategory) == 0) {
		t.Errorf("%d detections but no popular_threat_classification", mal)
	}
	return d
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

func TestSyntheticFileIsDeterministic(t *testing.T) {
	cfg := fakevt.Config{UnknownPercent: -1, Seed: 42}
	s := fakevt.New(cfg)
	sha := sha256Hex("deterministic")
	first := get(t, s, "/api/v3/files/"+sha)
	mustStatus(t, first, 200)
	checkFileReport(t, first.Body.Bytes())
	again := get(t, s, "/api/v3/files/"+strings.ToUpper(sha))
	if diff := cmp.Diff(first.Body.String(), again.Body.String()); diff != "" {
		t.Errorf("second lookup differs (-first +second):\n%s", diff)
	}
	other := get(t, fakevt.New(cfg), "/api/v3/files/"+sha)
	if other.Body.String() != first.Body.String() {
		t.Error("a new server with the same seed answers differently")
	}
	cfg.Seed = 43
	if get(t, fakevt.New(cfg), "/api/v3/files/"+sha).Body.String() == first.Body.String() {
		t.Error("a different seed answers the same bytes")
	}
}

func TestSyntheticFileIsTheSameObjectByEveryHash(t *testing.T) {
	s := fakevt.New(fakevt.Config{UnknownPercent: -1})
	md5id := strings.Repeat("ab", 16)
	byMD5 := get(t, s, "/api/v3/files/"+md5id)
	mustStatus(t, byMD5, 200)
	d := checkFileReport(t, byMD5.Body.Bytes())
	if d.Data.Attributes.MD5 != md5id {
		t.Fatalf("md5 %q, want the queried %q", d.Data.Attributes.MD5, md5id)
	}
	for _, h := range []string{d.Data.Attributes.SHA256, d.Data.Attributes.SHA1} {
		rec := get(t, s, "/api/v3/files/"+h)
		if diff := cmp.Diff(byMD5.Body.String(), rec.Body.String()); diff != "" {
			t.Errorf("lookup by %s differs from lookup by md5 (-md5 +other):\n%s", h, diff)
		}
	}
	sha1id := strings.Repeat("cd", 20)
	if got := decode[fileDoc](t, get(t, s, "/api/v3/files/"+sha1id).Body.Bytes()).Data.Attributes.SHA1; got != sha1id {
		t.Errorf("sha1 %q, want the queried %q", got, sha1id)
	}
}

func TestSyntheticFilesLookRealistic(t *testing.T) {
	s := fakevt.New(fakevt.Config{UnknownPercent: -1, Seed: 1})
	const n = 300
	clean, malicious, withYara := 0, 0, 0
	kinds := map[string]bool{}
	for i := range n {
		rec := get(t, s, "/api/v3/files/"+sha256Hex(fmt.Sprint("sample-", i)))
		mustStatus(t, rec, 200)
		a := checkFileReport(t, rec.Body.Bytes()).Data.Attributes
		kinds[a.TypeTag] = true
		mal := a.LastAnalysisStats["malicious"]
		switch {
		case mal == 0:
			clean++
		case mal >= 5:
			malicious++
			if mal > 60 {
				t.Errorf("%d detections, want at most 60", mal)
			}
		}
		for _, y := range a.CrowdsourcedYara {
			withYara++
			rs := get(t, s, "/api/v3/yara_rulesets/"+y.RulesetID)
			mustStatus(t, rs, 200)
			doc := decode[struct {
				Data struct {
					Type       string `json:"type"`
					ID         string `json:"id"`
					Attributes struct {
						Name      string   `json:"name"`
						Rules     string   `json:"rules"`
						Source    string   `json:"source"`
						Author    string   `json:"author"`
						License   string   `json:"license"`
						RuleNames []string `json:"rule_names"`
					} `json:"attributes"`
				} `json:"data"`
			}](t, rs.Body.Bytes())
			ra := doc.Data.Attributes
			if doc.Data.Type != "yara_ruleset" || doc.Data.ID != y.RulesetID || ra.Name != y.RulesetName || ra.Author != y.Author ||
				ra.Source != y.Source || ra.License == "" || !slices.Contains(ra.RuleNames, y.RuleName) ||
				!strings.Contains(ra.Rules, "rule "+y.RuleName+" {") || !strings.Contains(ra.Rules, "condition:") {
				t.Errorf("ruleset %s does not match the file's yara result %+v: %+v", y.RulesetID, y, ra)
			}
		}
	}
	if clean < n*55/100 || clean > n*82/100 {
		t.Errorf("%d of %d files clean, want most", clean, n)
	}
	if malicious < n*10/100 || malicious > n*35/100 {
		t.Errorf("%d of %d files with >=5 detections, want some", malicious, n)
	}
	if withYara == 0 {
		t.Error("no file has crowdsourced_yara_results")
	}
	if len(kinds) < 6 {
		t.Errorf("only file types %v", kinds)
	}
}

func TestUnknownFiles(t *testing.T) {
	s := fakevt.New(fakevt.Config{})
	unknown := 0
	var someUnknown string
	for i := range 1000 {
		id := sha256Hex(fmt.Sprint("maybe-", i))
		rec := get(t, s, "/api/v3/files/"+id)
		switch rec.Code {
		case 404:
			unknown++
			someUnknown = id
			want := fmt.Sprintf(`{"error":{"code":"NotFoundError","message":"File \"%s\" not found"}}`, id)
			if diff := cmp.Diff(want, rec.Body.String()); diff != "" {
				t.Fatalf("404 body (-want +got):\n%s", diff)
			}
		case 200:
		default:
			t.Fatalf("status %d", rec.Code)
		}
	}
	if unknown < 60 || unknown > 140 {
		t.Errorf("%d of 1000 ids unknown, want about 10%%", unknown)
	}
	wantError(t, get(t, s, "/api/v3/files/"+someUnknown), 404, "NotFoundError")

	all := fakevt.New(fakevt.Config{UnknownPercent: 100})
	none := fakevt.New(fakevt.Config{UnknownPercent: -1})
	for i := range 50 {
		id := sha256Hex(fmt.Sprint("edge-", i))
		wantError(t, get(t, all, "/api/v3/files/"+id), 404, "NotFoundError")
		mustStatus(t, get(t, none, "/api/v3/files/"+id), 200)
	}
}

func TestInvalidIdentifiers(t *testing.T) {
	s := fakevt.New(fakevt.Config{UnknownPercent: -1})
	for _, path := range []string{
		"/api/v3/files/xyz",
		"/api/v3/files/" + strings.Repeat("a", 63),
		"/api/v3/files/" + strings.Repeat("g", 64),
		"/api/v3/files/" + strings.Repeat("a", 128),
		"/api/v3/files/" + strings.Repeat("z", 32) + "/analyse",
		"/api/v3/ip_addresses/300.1.1.1",
		"/api/v3/ip_addresses/1.2.3",
		"/api/v3/ip_addresses/01.2.3.4",
		"/api/v3/ip_addresses/fe80::1%25eth0",
		"/api/v3/ip_addresses/example.com",
		"/api/v3/ip_addresses/nope/resolutions",
		"/api/v3/domains/-bad.com",
		"/api/v3/domains/nodot",
		"/api/v3/domains/a..b.com",
		"/api/v3/domains/1.2.3.4",
		"/api/v3/domains/exa%20mple.com",
		"/api/v3/domains/" + strings.Repeat("a", 64) + ".com",
		"/api/v3/domains/bad!.com/resolutions",
		"/api/v3/urls/!!!!",
		"/api/v3/urls/a",
		"/api/v3/yara_rulesets/not-hex",
		"/api/v3/domains/example.com/resolutions?limit=0",
		"/api/v3/domains/example.com/resolutions?limit=ten",
		"/api/v3/domains/example.com/resolutions?cursor=bogus",
	} {
		t.Run(path, func(t *testing.T) {
			method := http.MethodGet
			if strings.HasSuffix(path, "/analyse") {
				method = http.MethodPost
			}
			wantError(t, call(t, s, method, path, nil, nil), 400, "InvalidArgumentError")
		})
	}
}

func TestUploadLifecycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := fakevt.New(fakevt.Config{UnknownPercent: 100, AnalysisDelay: 2 * time.Second})
		content := []byte("MZ\x90\x00 this is not really a PE file but the sniffer does not mind")
		h := hashOf(content)
		wantError(t, get(t, s, "/api/v3/files/"+h.sha256), 404, "NotFoundError")

		uploadedAt := time.Now()
		id := upload(t, s, "/api/v3/files", `C:\Users\me\Desktop\sample.exe`, content)
		raw, err := base64.StdEncoding.DecodeString(id)
		if want := fmt.Sprintf("%s:%d", h.md5, uploadedAt.Unix()); err != nil || string(raw) != want {
			t.Fatalf("analysis id %q decodes to %q, want %q", id, raw, want)
		}

		poll := func(want string) analysisDoc {
			t.Helper()
			rec := get(t, s, "/api/v3/analyses/"+id)
			mustStatus(t, rec, 200)
			d := decode[analysisDoc](t, rec.Body.Bytes())
			if d.Data.Type != "analysis" || d.Data.ID != id || d.Data.Attributes.Status != want || d.Data.Attributes.Date != uploadedAt.Unix() {
				t.Fatalf("analysis %s, want status %s", rec.Body, want)
			}
			if fi := d.Meta.FileInfo; fi == nil || fi.SHA256 != h.sha256 || fi.MD5 != h.md5 || fi.SHA1 != h.sha1 || fi.Size != int64(len(content)) {
				t.Fatalf("meta.file_info %+v, want %+v size %d", fi, h, len(content))
			}
			if keys := sortedKeys(d.Data.Attributes.Stats); !slices.Equal(keys, fileStatKeys) {
				t.Fatalf("stats keys %v", keys)
			}
			return d
		}
		poll("queued")
		wantError(t, get(t, s, "/api/v3/analyses/"+id+"/item"), 400, "NotAvailableYet")
		wantError(t, get(t, s, "/api/v3/files/"+h.sha256), 404, "NotFoundError")
		time.Sleep(time.Second)
		poll("in-progress")
		time.Sleep(time.Second)
		done := poll("completed")
		if len(done.Data.Attributes.Results) < 60 {
			t.Fatalf("completed analysis has %d results", len(done.Data.Attributes.Results))
		}

		var bodies []string
		for _, id := range []string{h.sha256, h.md5, h.sha1} {
			rec := get(t, s, "/api/v3/files/"+id)
			mustStatus(t, rec, 200)
			bodies = append(bodies, rec.Body.String())
		}
		if bodies[0] != bodies[1] || bodies[0] != bodies[2] {
			t.Error("the uploaded file differs by hash")
		}
		a := checkFileReport(t, []byte(bodies[0])).Data.Attributes
		if a.MD5 != h.md5 || a.SHA1 != h.sha1 || a.Size != int64(len(content)) || a.TypeTag != "peexe" ||
			a.MeaningfulName != "sample.exe" || a.TimesSubmitted != 1 || a.FirstSubmissionDate != uploadedAt.Unix() ||
			a.LastAnalysisDate != uploadedAt.Add(2*time.Second).Unix() {
			t.Errorf("uploaded file attributes %+v", a)
		}
		if diff := cmp.Diff(done.Data.Attributes.Stats, a.LastAnalysisStats); diff != "" {
			t.Errorf("file stats differ from its analysis (-analysis +file):\n%s", diff)
		}
		item := get(t, s, "/api/v3/analyses/"+id+"/item")
		if item.Body.String() != bodies[0] {
			t.Errorf("analyses/{id}/item is not the file report: %s", truncate(item.Body.String()))
		}
	})
}

func TestUploadOfEICARIsDetected(t *testing.T) {
	s := fakevt.New(fakevt.Config{AnalysisDelay: -1})
	content := []byte(`X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*` + "\r\n")
	upload(t, s, "/api/v3/files", "eicar.com", content)
	a := checkFileReport(t, get(t, s, "/api/v3/files/"+hashOf(content).sha256).Body.Bytes()).Data.Attributes
	if a.LastAnalysisStats["malicious"] < 50 || a.PopularThreat == nil || !strings.Contains(a.PopularThreat.SuggestedThreatLabel, "eicar") {
		t.Errorf("EICAR: %d detections, threat %+v", a.LastAnalysisStats["malicious"], a.PopularThreat)
	}
}

func TestUploadRejectsBadRequests(t *testing.T) {
	s := fakevt.New(fakevt.Config{})
	wantError(t, call(t, s, "POST", "/api/v3/files", strings.NewReader(`{"file":"x"}`),
		http.Header{"X-Apikey": {testKey}, "Content-Type": {"application/json"}}), 400, "BadRequestError")
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	_ = w.WriteField("password", "infected")
	_ = w.Close()
	wantError(t, call(t, s, "POST", "/api/v3/files", &b,
		http.Header{"X-Apikey": {testKey}, "Content-Type": {w.FormDataContentType()}}), 400, "BadRequestError")

	req := httptest.NewRequest("POST", "http://sim.test/api/v3/files", strings.NewReader("x"))
	req.Header.Set("X-Apikey", testKey)
	req.Header.Set("Content-Type", "multipart/form-data; boundary=x")
	req.ContentLength = 32<<20 + 1
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	wantError(t, rec, 413, "RequestEntityTooLargeError")

	body, ct := multipartFile(t, "a.zip", []byte("PK\x03\x04 archive"), map[string]string{"password": "infected"})
	mustStatus(t, call(t, s, "POST", "/api/v3/files", body, http.Header{"X-Apikey": {testKey}, "Content-Type": {ct}}), 200)
}

// streamUpload POSTs size pseudo-random bytes as a multipart "file" without
// ever holding them in memory, and returns the answer and the content's
// hashes.
func streamUpload(t *testing.T, client *http.Client, target string, size int64, seed uint64) (int, []byte, hashes) {
	t.Helper()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	m5, s1, s256 := md5.New(), sha1.New(), sha256.New()
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		part, err := mw.CreateFormFile("file", "big.bin")
		if err == nil {
			src := io.LimitReader(rand.NewChaCha8([32]byte{byte(seed)}), size)
			_, err = io.Copy(io.MultiWriter(part, m5, s1, s256), src)
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, target, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("X-Apikey", testKey)
	resp, err := client.Do(req)
	if err != nil {
		pr.CloseWithError(err)
		<-writerDone
		t.Fatalf("POST %s: %v", target, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	pr.Close()
	<-writerDone
	sum := func(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }
	return resp.StatusCode, body, hashes{sum(m5), sum(s1), sum(s256)}
}

func TestStreamedUploads(t *testing.T) {
	s := fakevt.New(fakevt.Config{AnalysisDelay: -1, PremiumKeys: []string{testKey}})
	ts := httptest.NewServer(s)
	defer ts.Close()
	client := ts.Client()

	t.Run("multi-megabyte upload to /files is hashed while streaming", func(t *testing.T) {
		status, body, h := streamUpload(t, client, ts.URL+"/api/v3/files", 8<<20+123, 1)
		if status != 200 {
			t.Fatalf("status %d: %s", status, body)
		}
		raw, _ := base64.StdEncoding.DecodeString(decode[analysisDoc](t, body).Data.ID)
		if !strings.HasPrefix(string(raw), h.md5+":") {
			t.Errorf("analysis id decodes to %q, want md5 %s", raw, h.md5)
		}
		a := getFile(t, client, ts.URL, h.sha1)
		if a.SHA256 != h.sha256 || a.MD5 != h.md5 || a.Size != 8<<20+123 {
			t.Errorf("uploaded file %s/%s/%d, want %+v", a.SHA256, a.MD5, a.Size, h)
		}
	})
	t.Run("more than 32MB to /files is 413", func(t *testing.T) {
		status, body, _ := streamUpload(t, client, ts.URL+"/api/v3/files", 33<<20, 2)
		if status != 413 || !strings.Contains(string(body), `"code":"RequestEntityTooLargeError"`) {
			t.Fatalf("status %d body %s, want 413 RequestEntityTooLargeError", status, body)
		}
	})
	t.Run("upload_url takes large files once", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", ts.URL+"/api/v3/files/upload_url", nil)
		req.Header.Set("X-Apikey", testKey)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		d := decode[struct {
			Data string `json:"data"`
		}](t, readAll(t, resp))
		if !strings.HasPrefix(d.Data, ts.URL+"/") {
			t.Fatalf("upload URL %q is not an absolute URL on the simulator %s", d.Data, ts.URL)
		}
		status, body, h := streamUpload(t, client, d.Data, 40<<20, 3)
		if status != 200 {
			t.Fatalf("status %d: %s", status, body)
		}
		a := getFile(t, client, ts.URL, h.md5)
		if a.SHA256 != h.sha256 || a.Size != 40<<20 {
			t.Errorf("uploaded file %s/%d, want %s/%d", a.SHA256, a.Size, h.sha256, 40<<20)
		}
		status, body, _ = streamUpload(t, client, d.Data, 10, 4)
		if status != 404 || !strings.Contains(string(body), `"code":"NotFoundError"`) {
			t.Errorf("second use: status %d body %s, want 404 NotFoundError", status, body)
		}
		// Files above 32MB are hashed but their bytes are not kept.
		req, _ = http.NewRequestWithContext(t.Context(), "GET", ts.URL+"/api/v3/files/"+h.sha256+"/download", nil)
		req.Header.Set("X-Apikey", testKey)
		resp, err = client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if b := readAll(t, resp); resp.StatusCode != 404 || !strings.Contains(string(b), `"code":"NotFoundError"`) {
			t.Errorf("download of a 40MB upload: status %d with %d bytes, want 404 NotFoundError", resp.StatusCode, len(b))
		}
	})
}

func readAll(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func getFile(t *testing.T, client *http.Client, base, id string) struct {
	MD5, SHA256 string
	Size        int64
} {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", base+"/api/v3/files/"+id, nil)
	req.Header.Set("X-Apikey", testKey)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	if resp.StatusCode != 200 {
		t.Fatalf("GET files/%s: %d %s", id, resp.StatusCode, body)
	}
	a := decode[fileDoc](t, body).Data.Attributes
	return struct {
		MD5, SHA256 string
		Size        int64
	}{a.MD5, a.SHA256, a.Size}
}

func TestUploadURLCountsTowardsQuota(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := fakevt.New(fakevt.Config{QuotaPerMinute: 2, AnalysisDelay: -1})
		rec := get(t, s, "/api/v3/files/upload_url")
		mustStatus(t, rec, 200)
		target := pathOf(t, decode[struct {
			Data string `json:"data"`
		}](t, rec.Body.Bytes()).Data)
		body, ct := multipartFile(t, "x.txt", []byte("hello"), nil)
		// The upload URL is the credential: no x-apikey needed.
		mustStatus(t, call(t, s, "POST", target, body, http.Header{"Content-Type": {ct}}), 200)
		wantError(t, get(t, s, ipPath), 429, "QuotaExceededError")
		if st := s.Stats(); st.ByKey[testKey] != 3 || st.ByEndpoint["POST /_ah/upload/{token}"] != 1 {
			t.Errorf("stats %+v", st)
		}
	})
}

func TestRescan(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := fakevt.New(fakevt.Config{UnknownPercent: -1, AnalysisDelay: time.Second})
		sha := sha256Hex("rescan me")
		before := checkFileReport(t, get(t, s, "/api/v3/files/"+sha).Body.Bytes()).Data.Attributes
		rec := call(t, s, "POST", "/api/v3/files/"+sha+"/analyse", nil, nil)
		mustStatus(t, rec, 200)
		id := analysisID(t, rec.Body.Bytes())
		raw, _ := base64.StdEncoding.DecodeString(id)
		if want := fmt.Sprintf("%s:%d", before.MD5, time.Now().Unix()); string(raw) != want {
			t.Errorf("rescan id decodes to %q, want %q", raw, want)
		}
		time.Sleep(time.Second)
		after := checkFileReport(t, get(t, s, "/api/v3/files/"+sha).Body.Bytes()).Data.Attributes
		if after.LastAnalysisDate != time.Now().Unix() || after.LastAnalysisDate == before.LastAnalysisDate {
			t.Errorf("last_analysis_date %d after rescan completed at %d (before %d)", after.LastAnalysisDate, time.Now().Unix(), before.LastAnalysisDate)
		}
		if diff := cmp.Diff(before.LastAnalysisStats, after.LastAnalysisStats); diff != "" {
			t.Errorf("a rescan changed the verdict (-before +after):\n%s", diff)
		}
		if byMD5, bySHA := get(t, s, "/api/v3/files/"+before.MD5), get(t, s, "/api/v3/files/"+sha); byMD5.Body.String() != bySHA.Body.String() {
			t.Error("after a rescan the file differs by hash")
		}

		none := fakevt.New(fakevt.Config{UnknownPercent: 100})
		wantError(t, call(t, none, "POST", "/api/v3/files/"+sha+"/analyse", nil, nil), 404, "NotFoundError")
		wantError(t, get(t, none, "/api/v3/analyses/"+id), 404, "NotFoundError")
		wantError(t, get(t, none, "/api/v3/analyses/"+id+"/item"), 404, "NotFoundError")
	})
}

func TestDownload(t *testing.T) {
	s := fakevt.New(fakevt.Config{AnalysisDelay: -1, UnknownPercent: 100, PremiumKeys: []string{"premium"}})
	content := []byte("%PDF-1.7 tiny")
	upload(t, s, "/api/v3/files", "doc.pdf", content)
	h := hashOf(content)
	premium := http.Header{"X-Apikey": {"premium"}}

	wantError(t, get(t, s, "/api/v3/files/"+h.sha256+"/download"), 403, "ForbiddenError")
	rec := call(t, s, "GET", "/api/v3/files/"+h.md5+"/download", nil, premium)
	mustStatus(t, rec, http.StatusFound)
	loc := rec.Header().Get("Location")
	got := call(t, s, "GET", pathOf(t, loc), nil, http.Header{})
	mustStatus(t, got, 200)
	if !bytes.Equal(got.Body.Bytes(), content) {
		t.Errorf("downloaded %q, want %q", got.Body.Bytes(), content)
	}
	rec = call(t, s, "GET", "/api/v3/files/"+h.sha1+"/download_url", nil, premium)
	mustStatus(t, rec, 200)
	if u := decode[struct {
		Data string `json:"data"`
	}](t, rec.Body.Bytes()).Data; u != loc {
		t.Errorf("download_url %q, want %q", u, loc)
	}
	wantError(t, call(t, s, "GET", "/api/v3/files/"+sha256Hex("other")+"/download", nil, premium), 404, "NotFoundError")
	wantError(t, call(t, s, "GET", "/_ah/download/nope", nil, http.Header{}), 404, "NotFoundError")
}
