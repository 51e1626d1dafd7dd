package carbonblack

import (
	"archive/zip"
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// download fetches the zip of md5sum and returns its members.
func download(t *testing.T, s *Server, md5sum string) map[string][]byte {
	t.Helper()
	resp := call(t, s, http.MethodGet, "/api/v1/binary/"+md5sum, nil)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("download %s: status %d; body %s", md5sum, resp.StatusCode, raw)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/zip" {
		t.Errorf("Content-Type %q, want application/zip", ct)
	}
	zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatalf("download %s: not a zip: %v", md5sum, err)
	}
	out := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[f.Name] = data
	}
	return out
}

func md5Hex(b []byte) string {
	sum := md5.Sum(b)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

func TestDownloadIsAZipOfFiledataAndMetadata(t *testing.T) {
	s := newServer(t, Config{Seed: 42})
	content := []byte("MZ\x90\x00 exact bytes of a small PE")
	s.AddBinary(Binary{Content: content, OriginalFilename: "tiny.exe"})
	synth := s.AddSyntheticBinaries(3, t0, time.Second)

	t.Run("given content", func(t *testing.T) {
		members := download(t, s, strings.ToLower(md5Hex(content)))
		if !bytes.Equal(members["filedata"], content) {
			t.Errorf("filedata = %q, want %q", members["filedata"], content)
		}
		var meta map[string]any
		if err := json.Unmarshal(members["metadata"], &meta); err != nil {
			t.Fatalf("metadata is not JSON: %v", err)
		}
		if meta["md5"] != md5Hex(content) || meta["orig_mod_len"] != float64(len(content)) {
			t.Errorf("metadata md5 %v orig_mod_len %v", meta["md5"], meta["orig_mod_len"])
		}
		if len(members) != 2 {
			t.Errorf("members %v, want filedata and metadata", len(members))
		}
	})
	for _, b := range synth {
		t.Run("synthetic "+b.MD5, func(t *testing.T) {
			data := download(t, s, b.MD5)["filedata"]
			if got := md5Hex(data); got != b.MD5 {
				t.Errorf("md5 of filedata = %s, want %s", got, b.MD5)
			}
			if int64(len(data)) != b.Size {
				t.Errorf("%d bytes, want %d", len(data), b.Size)
			}
		})
	}
	st := s.Stats()
	if st.Downloads != 4 {
		t.Errorf("Stats.Downloads = %d, want 4", st.Downloads)
	}
}

func TestSyntheticBinariesAreDeterministic(t *testing.T) {
	a := newServer(t, Config{Seed: 7}).AddSyntheticBinaries(5, t0, time.Second)
	b := newServer(t, Config{Seed: 7}).AddSyntheticBinaries(5, t0, time.Second)
	c := newServer(t, Config{Seed: 8}).AddSyntheticBinaries(5, t0, time.Second)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("same seed, different binaries (-a +b):\n%s", diff)
	}
	if a[0].MD5 == c[0].MD5 {
		t.Errorf("seeds 7 and 8 gave the same first binary %s", a[0].MD5)
	}
	seen := map[string]bool{}
	for _, x := range a {
		if seen[x.MD5] || len(x.MD5) != 32 || len(x.SHA256) != 64 {
			t.Errorf("bad or duplicate binary %+v", x)
		}
		seen[x.MD5] = true
	}
}

func TestDownloadOfUnavailableBinariesIs404(t *testing.T) {
	s := newServer(t, Config{})
	s.AddBinary(Binary{MD5: mdA, Size: 100, NotCopied: true})
	for _, md5sum := range []string{mdA, mdB, "not-an-md5"} {
		var body apiError
		callJSON(t, s, http.MethodGet, "/api/v1/binary/"+md5sum, nil, http.StatusNotFound, &body)
		callJSON(t, s, http.MethodGet, "/api/v1/binary/"+mdB+"/summary", nil, http.StatusNotFound, nil)
		if body.Reason != "not_found" {
			t.Errorf("%s: reason %q", md5sum, body.Reason)
		}
	}
	var doc map[string]any
	callJSON(t, s, http.MethodGet, "/api/v1/binary/"+mdA+"/summary", nil, http.StatusOK, &doc)
	if doc["copied_mod_len"] != float64(0) || doc["orig_mod_len"] != float64(100) {
		t.Errorf("copied_mod_len %v orig_mod_len %v", doc["copied_mod_len"], doc["orig_mod_len"])
	}
}

func TestRealBinariesNotCopiedCannotBeDownloaded(t *testing.T) {
	forEachBinarySet(t, testLoadedBinariesNotCopiedCannotBeDownloaded)
}

func testLoadedBinariesNotCopiedCannotBeDownloaded(t *testing.T, set binarySet) {
	s := newServer(t, Config{})
	if _, err := s.LoadTestdata(set.dir); err != nil {
		t.Fatal(err)
	}
	// copied_mod_len is 0 in the loaded document
	callJSON(t, s, http.MethodGet, "/api/v1/binary/"+set.notCopied, nil, http.StatusNotFound, nil)
	data := download(t, s, set.copied)["filedata"]
	if len(data) != set.copiedLen || !bytes.HasPrefix(data, []byte("MZ")) {
		t.Errorf("filedata: %d bytes starting %q, want %d starting MZ", len(data), data[:min(len(data), 2)], set.copiedLen)
	}
}

func TestLargeFilesAreTruncatedToWhatTheServerCopied(t *testing.T) {
	s := newServer(t, Config{})
	// zeros, which deflate fast; the md5 is of the whole file
	s.AddBinary(Binary{MD5: mdC, Content: make([]byte, maxCopiedLen+10)})
	var doc map[string]any
	callJSON(t, s, http.MethodGet, "/api/v1/binary/"+mdC+"/summary", nil, http.StatusOK, &doc)
	if doc["copied_mod_len"] != float64(maxCopiedLen) {
		t.Errorf("copied_mod_len = %v, want %d", doc["copied_mod_len"], maxCopiedLen)
	}
	if n := len(download(t, s, mdC)["filedata"]); int64(n) != maxCopiedLen {
		t.Errorf("filedata %d bytes, want %d", n, maxCopiedLen)
	}
}

func TestAddingABinaryAgainKeepsItsFirstServerAddedTimestamp(t *testing.T) {
	s := newServer(t, Config{})
	first := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	s.AddBinary(Binary{MD5: mdA, Size: 10, ServerAdded: first, Hostnames: []string{"H1"}})
	s.AddBinary(Binary{MD5: strings.ToLower(mdA), Size: 10, ServerAdded: first.AddDate(0, 1, 0), Hostnames: []string{"H1", "H2"}})
	res := search(t, s, "", nil)
	if res.TotalResults != 1 {
		t.Fatalf("%d binaries, want 1", res.TotalResults)
	}
	doc := res.Results[0]
	if doc["server_added_timestamp"] != "2024-01-01T00:00:00Z" || doc["host_count"] != float64(2) {
		t.Errorf("server_added_timestamp %v host_count %v", doc["server_added_timestamp"], doc["host_count"])
	}
}

func TestServerAddedDefaultsToNowAtMillisecondPrecision(t *testing.T) {
	now := time.Date(2024, 5, 6, 7, 8, 9, 123_456_789, time.UTC)
	s := newServer(t, Config{Now: func() time.Time { return now }})
	s.AddBinary(Binary{Content: []byte("x")})
	res := search(t, s, "", nil)
	if got := res.Results[0]["server_added_timestamp"]; got != "2024-05-06T07:08:09.123Z" {
		t.Errorf("server_added_timestamp = %v", got)
	}
}
