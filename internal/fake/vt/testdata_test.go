package vt_test

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	fakevt "github.com/vtconnector/vtconnector/internal/fake/vt"
)

// sharedTestdata is /work/shared/testdata/vt seen from this package.
var sharedTestdata = filepath.Join("..", "..", "..", "..", "shared", "testdata", "vt")

func requireSharedTestdata(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(filepath.Join(sharedTestdata, "SOURCES.md")); err != nil {
		t.Skipf("fidelity test: ../shared/testdata/vt absent (%v); the real VirusTotal recordings live outside the repository", err)
	}
	return sharedTestdata
}

// recordingSets are the directories LoadTestdata is tested with: the
// project's own synthetic recordings (testdata/recordings, hand-written in
// the documented API shapes) and, as a fidelity test, the real ones. Each
// names a recorded malicious file and a recorded analysis.
var recordingSets = []struct {
	name, dir, file, analysis string
}{
	{"synthetic", filepath.Join("testdata", "recordings"), "file_malicious_synthetic.json", "OTJkMTNlNzg0OWEyYWRhMTk5ZWY5ZWVkZTJhZGMzNGU6MTcwMDAwMDAwMA=="},
	{"real (fidelity)", "", "file_malicious_4bc00f7d.json", "NjY0MjRlOTFjMDIyYTkyNWM0NjU2NWQzYWNlMzFmZmI6MTQ3NTA0ODI3Nw=="},
}

// forEachRecordingSet runs f for each recording set; the real one skips
// without ../shared.
func forEachRecordingSet(t *testing.T, f func(t *testing.T, dir, file, analysis string)) {
	for _, rs := range recordingSets {
		t.Run(rs.name, func(t *testing.T) {
			dir := rs.dir
			if dir == "" {
				dir = requireSharedTestdata(t)
			}
			f(t, dir, rs.file, rs.analysis)
		})
	}
}

// expectedFixturePaths computes, independently of the simulator, where each
// recorded response must be served.
func expectedFixturePaths(t *testing.T, dir string) map[string][]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".json") || strings.HasPrefix(name, "error_") {
			continue
		}
		stem := strings.TrimSuffix(name, ".json")
		body, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Data struct {
				ID         string            `json:"id"`
				Attributes map[string]any    `json:"attributes"`
				Links      map[string]string `json:"links"`
			} `json:"data"`
		}
		_ = json.Unmarshal(body, &doc) // collections have an array here
		attr := func(k string) string { s, _ := doc.Data.Attributes[k].(string); return s }
		var paths []string
		switch {
		case strings.HasPrefix(stem, "file_"):
			paths = []string{"files/" + attr("sha256"), "files/" + attr("md5"), "files/" + attr("sha1"), "files/" + strings.ToUpper(attr("sha256"))}
		case strings.HasPrefix(stem, "ip_resolutions_"):
			paths = []string{"ip_addresses/" + strings.TrimPrefix(stem, "ip_resolutions_") + "/resolutions"}
		case strings.HasPrefix(stem, "ip_"):
			paths = []string{"ip_addresses/" + strings.TrimPrefix(stem, "ip_")}
		case strings.HasPrefix(stem, "domain_resolutions_"):
			paths = []string{"domains/" + strings.TrimPrefix(stem, "domain_resolutions_") + "/resolutions"}
		case strings.HasPrefix(stem, "domain_"):
			paths = []string{"domains/" + strings.TrimPrefix(stem, "domain_")}
		case strings.HasPrefix(stem, "url_"):
			paths = []string{"urls/" + doc.Data.ID, "urls/" + base64.RawURLEncoding.EncodeToString([]byte(attr("url")))}
		case strings.HasPrefix(stem, "yara_ruleset_"):
			paths = []string{"yara_rulesets/" + doc.Data.ID}
		case strings.HasPrefix(stem, "analysis_"):
			paths = []string{"analyses/" + doc.Data.ID}
		default:
			t.Fatalf("test does not know where %s goes", name)
		}
		out[name] = paths
	}
	return out
}

func TestLoadTestdataServesEveryFixtureVerbatim(t *testing.T) {
	forEachRecordingSet(t, func(t *testing.T, dir, _, _ string) { checkServesEveryFixtureVerbatim(t, dir) })
}

func checkServesEveryFixtureVerbatim(t *testing.T, dir string) {
	want := expectedFixturePaths(t, dir)
	// UnknownPercent 100: anything not served from a fixture would be 404.
	s := fakevt.New(fakevt.Config{UnknownPercent: 100})
	n, err := s.LoadTestdata(dir)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(want) {
		t.Errorf("LoadTestdata loaded %d files, want %d", n, len(want))
	}
	for name, paths := range want {
		body, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range paths {
			rec := get(t, s, "/api/v3/"+p)
			if rec.Code != 200 {
				t.Errorf("%s at %s: status %d: %s", name, p, rec.Code, truncate(rec.Body.String()))
				continue
			}
			if diff := cmp.Diff(string(body), rec.Body.String()); diff != "" {
				t.Errorf("%s at %s is not served byte-for-byte (-file +served):\n%s", name, p, truncate(diff))
			}
		}
	}
}

func TestLoadTestdataTakesPrecedenceAndIntegrates(t *testing.T) {
	forEachRecordingSet(t, checkTakesPrecedenceAndIntegrates)
}

func checkTakesPrecedenceAndIntegrates(t *testing.T, dir, file, analysis string) {
	synctest.Test(t, func(t *testing.T) {
		s := fakevt.New(fakevt.Config{UnknownPercent: -1, AnalysisDelay: time.Second})
		if _, err := s.LoadTestdata(dir); err != nil {
			t.Fatal(err)
		}
		fixture, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		var doc fileDoc
		if err := json.Unmarshal(fixture, &doc); err != nil {
			t.Fatal(err)
		}
		sha := doc.Data.Attributes.SHA256

		// A rescan of a recorded file analyses it with its recorded verdict.
		rec := call(t, s, "POST", "/api/v3/files/"+sha+"/analyse", nil, nil)
		mustStatus(t, rec, 200)
		id := analysisID(t, rec.Body.Bytes())
		time.Sleep(time.Second)
		a := decode[analysisDoc](t, get(t, s, "/api/v3/analyses/"+id).Body.Bytes())
		if a.Data.Attributes.Status != "completed" || a.Meta.FileInfo == nil || a.Meta.FileInfo.MD5 != doc.Data.Attributes.MD5 {
			t.Fatalf("analysis of a recorded file: %+v", a)
		}
		if diff := cmp.Diff(doc.Data.Attributes.LastAnalysisStats, a.Data.Attributes.Stats); diff != "" {
			t.Errorf("analysis stats differ from the recording (-recorded +analysis):\n%s", diff)
		}
		if item := get(t, s, "/api/v3/analyses/"+id+"/item"); item.Body.String() != string(fixture) {
			t.Error("analyses/{id}/item of a recorded file is not the recording")
		}
		// The recording wins even over an upload of "the same" file.
		if got := get(t, s, "/api/v3/files/"+sha).Body.String(); got != string(fixture) {
			t.Error("recorded file not served verbatim after a rescan")
		}
		// The recorded analysis' item is the file its id names.
		mustStatus(t, get(t, s, "/api/v3/analyses/"+analysis+"/item"), 200)
	})
}

func TestLoadTestdataErrors(t *testing.T) {
	s := fakevt.New(fakevt.Config{})
	if _, err := s.LoadTestdata(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing directory: no error")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "file_broken.json"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "domain_ok.example.json"), []byte(`{"data":{"id":"ok.example","type":"domain"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if n, err := s.LoadTestdata(dir); err == nil || !strings.Contains(err.Error(), "file_broken.json") || n != 0 {
		t.Errorf("broken file: n=%d err=%v, want an error naming it", n, err)
	}
	if rec := get(t, s, "/api/v3/domains/ok.example"); strings.Contains(rec.Body.String(), `"id":"ok.example","type"`) {
		t.Error("a failed load served some of its files")
	}
	if err := os.WriteFile(filepath.Join(dir, "file_broken.json"), []byte(`{"data":{"attributes":{}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoadTestdata(dir); err == nil {
		t.Error("file report without hashes: no error")
	}
	if err := os.Remove(filepath.Join(dir, "file_broken.json")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("ignored"), 0o600); err != nil {
		t.Fatal(err)
	}
	if n, err := s.LoadTestdata(dir); err != nil || n != 1 {
		t.Errorf("n=%d err=%v, want 1 file loaded", n, err)
	}
	if got := get(t, s, "/api/v3/domains/ok.example").Body.String(); got != `{"data":{"id":"ok.example","type":"domain"}}` {
		t.Errorf("domain served as %s", got)
	}
}
