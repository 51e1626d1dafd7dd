package vt_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	vtgo "github.com/VirusTotal/vt-go"

	fakevt "github.com/vtconnector/vtconnector/internal/fake/vt"
)

// vtgoHost serialises tests that point vt-go at a server: vt.SetHost is a
// process-global.
var vtgoHost sync.Mutex

// vtgoClient points vt-go at h and returns a client with its own transport.
func vtgoClient(t *testing.T, h http.Handler, key string) *vtgo.Client {
	t.Helper()
	vtgoHost.Lock()
	ts := httptest.NewServer(h)
	tr := &http.Transport{}
	vtgo.SetHost(ts.URL)
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		ts.Close()
		vtgo.SetHost("https://www.virustotal.com")
		vtgoHost.Unlock()
	})
	return vtgo.NewClient(key, vtgo.WithHTTPClient(&http.Client{Transport: tr, Timeout: 30 * time.Second}))
}

func TestVTGoCompatibility(t *testing.T) {
	s := fakevt.New(fakevt.Config{Seed: 11, AnalysisDelay: 150 * time.Millisecond, PremiumKeys: []string{testKey}})
	// Pick ids before vt-go runs, straight through the handler.
	fileID := findID(t, s, "/api/v3/files/", sha256Hex("vtgo")[:60]+"%04d", 200)
	missingFile := findID(t, s, "/api/v3/files/", sha256Hex("vtgo-missing")[:60]+"%04d", 404)
	var domain string
	for i := 0; domain == ""; i++ {
		d := fmt.Sprintf("vtgo%d.example.net", i)
		rec := get(t, s, "/api/v3/domains/"+d+"/resolutions")
		if rec.Code == 200 && decode[resolutionsDoc](t, rec.Body.Bytes()).Meta["count"].(float64) > 12 {
			domain = d
		}
	}
	wantResolutions := int(decode[resolutionsDoc](t, get(t, s, "/api/v3/domains/"+domain+"/resolutions").Body.Bytes()).Meta["count"].(float64))

	cli := vtgoClient(t, s, testKey)

	t.Run("GetObject file", func(t *testing.T) {
		obj, err := cli.GetObject(vtgo.URL("files/%s", fileID))
		if err != nil {
			t.Fatal(err)
		}
		mal, err1 := obj.GetInt64("last_analysis_stats.malicious")
		_, err2 := obj.GetInt64("last_analysis_stats.type-unsupported")
		date, err3 := obj.GetTime("last_analysis_date")
		if obj.Type() != "file" || obj.ID() != fileID || err1 != nil || err2 != nil || err3 != nil || mal < 0 || date.IsZero() {
			t.Errorf("file object %s/%s: %v %v %v", obj.Type(), obj.ID(), err1, err2, err3)
		}
	})
	t.Run("GetObject url, ip_address, domain", func(t *testing.T) {
		u := "http://vtgo.example.com/"
		for {
			// Find a URL the simulator knows.
			if _, err := cli.GetObject(vtgo.URL("urls/%s", base64.RawURLEncoding.EncodeToString([]byte(u)))); err == nil {
				break
			}
			u += "x"
		}
		for path, typ := range map[string]string{
			"urls/" + base64.RawURLEncoding.EncodeToString([]byte(u)): "url",
			"ip_addresses/198.51.100.7":                               "ip_address",
			"domains/" + domain:                                       "domain",
		} {
			obj, err := cli.GetObject(vtgo.URL("%s", path))
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if obj.Type() != typ {
				t.Errorf("%s: type %q, want %q", path, obj.Type(), typ)
			}
			if _, err := obj.GetInt64("last_analysis_stats.harmless"); err != nil {
				t.Errorf("%s: %v", path, err)
			}
		}
	})
	t.Run("Iterator follows links.next", func(t *testing.T) {
		it, err := cli.Iterator(vtgo.URL("domains/%s/resolutions", domain), vtgo.IteratorBatchSize(5))
		if err != nil {
			t.Fatal(err)
		}
		defer it.Close()
		seen := map[string]bool{}
		for it.Next() {
			obj := it.Get()
			host, err := obj.GetString("host_name")
			if obj.Type() != "resolution" || err != nil || host != domain || seen[obj.ID()] {
				t.Fatalf("resolution %s %s host %q err %v", obj.Type(), obj.ID(), host, err)
			}
			seen[obj.ID()] = true
		}
		if err := it.Error(); err != nil {
			t.Fatal(err)
		}
		if len(seen) != wantResolutions {
			t.Errorf("iterated %d resolutions, want %d", len(seen), wantResolutions)
		}
	})
	t.Run("FileScanner then poll the analysis", func(t *testing.T) {
		content := []byte("vt-go compatibility sample\n")
		h := hashOf(content)
		analysis, err := cli.NewFileScanner().Scan(bytes.NewReader(content), "sample.txt", nil)
		if err != nil {
			t.Fatal(err)
		}
		if analysis.Type() != "analysis" {
			t.Fatalf("Scan returned a %q", analysis.Type())
		}
		var status string
		for range 100 {
			obj, err := cli.GetObject(vtgo.URL("analyses/%s", analysis.ID()))
			if err != nil {
				t.Fatal(err)
			}
			if status, _ = obj.GetString("status"); status == "completed" {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if status != "completed" {
			t.Fatalf("analysis still %q", status)
		}
		file, err := cli.GetObject(vtgo.URL("files/%s", h.md5))
		if err != nil {
			t.Fatal(err)
		}
		size, _ := file.GetInt64("size")
		if file.ID() != h.sha256 || size != int64(len(content)) {
			t.Errorf("uploaded file %s size %d", file.ID(), size)
		}
		var out bytes.Buffer
		if n, err := cli.DownloadFile(h.sha256, &out); err != nil || n != int64(len(content)) || !bytes.Equal(out.Bytes(), content) {
			t.Errorf("DownloadFile: %d bytes, %v", n, err)
		}
	})
	t.Run("URLScanner", func(t *testing.T) {
		analysis, err := cli.NewURLScanner().Scan("https://vtgo.example.org/landing")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(analysis.ID(), "u-"+sha256Hex("https://vtgo.example.org/landing")+"-") {
			t.Errorf("URL analysis id %q", analysis.ID())
		}
	})
	t.Run("404 is a vt.Error by value", func(t *testing.T) {
		_, err := cli.GetObject(vtgo.URL("files/%s", missingFile))
		var vtErr vtgo.Error
		if !errors.As(err, &vtErr) || vtErr.Code != "NotFoundError" {
			t.Errorf("err %v (%T), want vt.Error NotFoundError", err, err)
		}
	})
}

func TestVTGoSeesQuotaErrors(t *testing.T) {
	s := fakevt.New(fakevt.Config{QuotaPerMinute: 1})
	cli := vtgoClient(t, s, testKey)
	if _, err := cli.GetObject(vtgo.URL("ip_addresses/192.0.2.1")); err != nil {
		t.Fatal(err)
	}
	_, err := cli.GetObject(vtgo.URL("ip_addresses/192.0.2.1"))
	var vtErr vtgo.Error
	if !errors.As(err, &vtErr) || vtErr.Code != "QuotaExceededError" || vtErr.Message != "Quota exceeded" {
		t.Errorf("err %v (%T), want vt.Error QuotaExceededError", err, err)
	}
	_, err = vtgo.NewClient("").GetObject(vtgo.URL("ip_addresses/192.0.2.1"))
	if !errors.As(err, &vtErr) || vtErr.Code != "AuthenticationRequiredError" {
		t.Errorf("no key: err %v, want AuthenticationRequiredError", err)
	}
}
