package vt

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
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

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// received is what an upload handler saw.
type received struct {
	method, path     string
	contentLength    int64
	transferEncoding []string
	bodyBytes        int64 // bytes actually on the wire
	mediaType        string
	fields           []string // form names of the parts, in order
	fileName         string
	fileSHA256       string
	fileSize         int64
	apiKey           string
	err              string
}

// readUpload reads a multipart upload as a server would, hashing the file
// part while streaming it (nothing is held in memory).
func readUpload(r *http.Request) received {
	rec := received{
		method: r.Method, path: r.URL.Path, contentLength: r.ContentLength,
		transferEncoding: r.TransferEncoding, apiKey: r.Header.Get("x-apikey"),
	}
	cr := &countingReader{r: r.Body}
	r.Body = io.NopCloser(cr)
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	rec.mediaType = mt
	if err != nil || params["boundary"] == "" {
		rec.err = fmt.Sprintf("content type %q: %v", r.Header.Get("Content-Type"), err)
		return rec
	}
	mr, err := r.MultipartReader()
	if err != nil {
		rec.err = err.Error()
		return rec
	}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			rec.err = err.Error()
			return rec
		}
		rec.fields = append(rec.fields, p.FormName())
		if p.FormName() == "file" {
			rec.fileName = p.FileName()
			h := sha256.New()
			n, err := io.Copy(h, p)
			if err != nil {
				rec.err = err.Error()
				return rec
			}
			rec.fileSize, rec.fileSHA256 = n, hex.EncodeToString(h.Sum(nil))
		}
	}
	if n, _ := io.Copy(io.Discard, r.Body); n != 0 {
		rec.err = fmt.Sprintf("%d bytes after the closing boundary", n)
	}
	rec.bodyBytes = cr.n
	return rec
}

// writeFile writes size random bytes to dir/name and returns the path and
// the SHA-256 of the content.
func writeRandomFile(t *testing.T, name string, size int) (string, string) {
	t.Helper()
	b := make([]byte, size)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return p, hex.EncodeToString(sum[:])
}

// sparseFile creates a file of size bytes without writing them.
func sparseFile(t *testing.T, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "big.bin")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// fileSHA256 hashes a file from disk.
func fileSHA256(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

const analysisAnswer = `{"data":{"type":"analysis","id":"%s","links":{"self":"https://www.virustotal.com/api/v3/analyses/%s"}}}`

func TestUploadFileDirect(t *testing.T) {
	tests := []struct {
		name     string
		fileName string // name on disk
		wantName string // filename the server sees
		size     int
	}{
		{name: "5 MB file streams to POST /files", fileName: "sample.exe", wantName: "sample.exe", size: 5 << 20},
		{name: "empty file", fileName: "empty.bin", wantName: "empty.bin", size: 0},
		{name: "quote in the name is replaced", fileName: `a"b.doc`, wantName: "a_b.doc", size: 1000},
		{name: "non-ASCII name kept", fileName: "échantillon.pdf", wantName: "échantillon.pdf", size: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, sum := writeRandomFile(t, tt.fileName, tt.size)
			var mu sync.Mutex
			var recs []received
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				rec := readUpload(r)
				mu.Lock()
				recs = append(recs, rec)
				mu.Unlock()
				fmt.Fprintf(w, analysisAnswer, "ZjJlNTAwMGNlMTZlNWU5MmM4NGYwYWY2NTRlYjVkNGM6MTcwMDAwMDAwMA==", "x")
			})
			c := newTestClient(t, srv)
			id, err := c.UploadFile(t.Context(), path)
			if err != nil {
				t.Fatalf("UploadFile: %v", err)
			}
			if id != "ZjJlNTAwMGNlMTZlNWU5MmM4NGYwYWY2NTRlYjVkNGM6MTcwMDAwMDAwMA==" {
				t.Errorf("analysis id = %q", id)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(recs) != 1 {
				t.Fatalf("%d requests, want 1", len(recs))
			}
			got := recs[0]
			if got.contentLength <= int64(tt.size) {
				t.Errorf("Content-Length %d, want more than the file's %d bytes", got.contentLength, tt.size)
			}
			want := received{
				method: "POST", path: "/api/v3/files", contentLength: got.contentLength, bodyBytes: got.contentLength,
				mediaType: "multipart/form-data", fields: []string{"file"}, fileName: tt.wantName,
				fileSHA256: sum, fileSize: int64(tt.size), apiKey: testKey,
			}
			if diff := cmp.Diff(want, got, cmp.AllowUnexported(received{})); diff != "" {
				t.Errorf("upload as received (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUploadFileLargeUsesUploadURL(t *testing.T) {
	tests := []struct {
		name      string
		size      int64
		wantLarge bool
	}{
		{name: "largest direct upload", size: MaxDirectUpload - multipartSlack, wantLarge: false},
		{name: "one byte more goes through upload_url", size: MaxDirectUpload - multipartSlack + 1, wantLarge: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := sparseFile(t, tt.size)
			sum := fileSHA256(t, path)
			var mu sync.Mutex
			var recs []received
			var getURL atomic.Int32
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				switch {
				case r.Method == http.MethodGet && r.URL.Path == "/api/v3/files/upload_url":
					getURL.Add(1)
					// The API answers with an absolute URL on another path.
					fmt.Fprintf(w, `{"data":"http://%s/_ah/upload/AMmfu6b_single_use?x=1"}`, r.Host)
				case r.Method == http.MethodPost && (r.URL.Path == "/_ah/upload/AMmfu6b_single_use" || r.URL.Path == "/api/v3/files"):
					rec := readUpload(r)
					if r.URL.Path != "/api/v3/files" && r.URL.Query().Get("x") != "1" {
						rec.err = "query of the upload URL lost: " + r.URL.RawQuery
					}
					mu.Lock()
					recs = append(recs, rec)
					mu.Unlock()
					fmt.Fprintf(w, analysisAnswer, "big-analysis", "big-analysis")
				default:
					t.Errorf("unexpected %s %s", r.Method, r.URL)
					http.NotFound(w, r)
				}
			})
			c := newTestClient(t, srv)
			id, err := c.UploadFile(t.Context(), path)
			if err != nil {
				t.Fatalf("UploadFile: %v", err)
			}
			if id != "big-analysis" {
				t.Errorf("analysis id = %q", id)
			}
			wantPath, wantGets := "/api/v3/files", int32(0)
			if tt.wantLarge {
				wantPath, wantGets = "/_ah/upload/AMmfu6b_single_use", 1
			}
			if getURL.Load() != wantGets {
				t.Errorf("%d GET files/upload_url, want %d", getURL.Load(), wantGets)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(recs) != 1 {
				t.Fatalf("%d uploads, want 1", len(recs))
			}
			got := recs[0]
			want := received{
				method: "POST", path: wantPath, contentLength: got.contentLength, bodyBytes: got.contentLength,
				mediaType: "multipart/form-data", fields: []string{"file"}, fileName: "big.bin",
				fileSHA256: sum, fileSize: tt.size, apiKey: testKey,
			}
			if diff := cmp.Diff(want, got, cmp.AllowUnexported(received{})); diff != "" {
				t.Errorf("upload as received (-want +got):\n%s", diff)
			}
			if !tt.wantLarge && got.contentLength > MaxDirectUpload {
				t.Errorf("direct upload payload %d bytes exceeds the %d limit", got.contentLength, MaxDirectUpload)
			}
		})
	}
}

// TestUploadFileRefusedLocally: files VirusTotal cannot take, or that
// cannot be read, fail before any request.
func TestUploadFileRefusedLocally(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		path    string
		wantIs  error
		wantMsg string
	}{
		{name: "larger than 650 MB", path: sparseFile(t, MaxUpload+1), wantIs: ErrTooLarge, wantMsg: "650000001 bytes"},
		{name: "missing file", path: filepath.Join(dir, "absent.bin"), wantIs: fs.ErrNotExist, wantMsg: "absent.bin"},
		{name: "directory", path: dir, wantMsg: "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n atomic.Int32
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				n.Add(1)
				http.Error(w, "no", http.StatusTeapot)
			})
			c := newTestClient(t, srv)
			id, err := c.UploadFile(t.Context(), tt.path)
			if err == nil {
				t.Fatalf("UploadFile = %q, want an error", id)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v is not %v", err, tt.wantIs)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) || !strings.HasPrefix(err.Error(), "vt: upload") {
				t.Errorf("error %q: want a vt: upload message containing %q", err, tt.wantMsg)
			}
			if Retryable(err) {
				t.Errorf("Retryable(%v) = true", err)
			}
			if n.Load() != 0 {
				t.Errorf("%d requests sent", n.Load())
			}
		})
	}
}

// TestUploadFileServerFailures: failures of the upload conversation keep
// their class.
func TestUploadFileServerFailures(t *testing.T) {
	tests := []struct {
		name    string
		size    int64
		handler http.HandlerFunc
		want    error
	}{
		{
			name: "upload_url answer is not a URL",
			size: MaxDirectUpload,
			handler: func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write([]byte(`{"data":{"url":"nope"}}`))
			},
			want: ErrTransient,
		},
		{
			name: "upload_url quota",
			size: MaxDirectUpload,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusTooManyRequests)
				_, _ = w.Write([]byte(errBody("QuotaExceededError", "q")))
			},
			want: ErrQuota,
		},
		{
			name: "proxy refuses the payload",
			size: 100,
			handler: func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				w.WriteHeader(http.StatusRequestEntityTooLarge)
			},
			want: ErrTooLarge,
		},
		{
			name: "answer without analysis id",
			size: 100,
			handler: func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				_, _ = w.Write([]byte(`{"data":{"type":"analysis"}}`))
			},
			want: ErrTransient,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := sparseFile(t, tt.size)
			srv := newServer(t, tt.handler)
			c := newTestClient(t, srv)
			_, err := c.UploadFile(t.Context(), path)
			if !errors.Is(err, tt.want) {
				t.Errorf("UploadFile error = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestUploadIgnoresClientTimeout: uploads are bounded by the caller's
// context only, not by WithTimeout.
func TestUploadIgnoresClientTimeout(t *testing.T) {
	path, _ := writeRandomFile(t, "slow.bin", 1000)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-time.After(300 * time.Millisecond):
		case <-r.Context().Done():
			return
		}
		fmt.Fprintf(w, analysisAnswer, "slow", "slow")
	})
	c := newTestClient(t, srv, WithTimeout(20*time.Millisecond))
	if id, err := c.UploadFile(t.Context(), path); err != nil || id != "slow" {
		t.Errorf("UploadFile = %q, %v; want the id despite the short JSON timeout", id, err)
	}
}

func TestReanalyse(t *testing.T) {
	const md5 = "546BB6EF89BEBFB053999777F6930D7E"
	var got []string
	var mu sync.Mutex
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, fmt.Sprintf("%s %s body=%d", r.Method, r.URL.Path, len(b)))
		mu.Unlock()
		fmt.Fprintf(w, analysisAnswer, "NTQ2YmI2ZWY4OWJlYmZiMDUzOTk5Nzc3ZjY5MzBkN2U6MTcwMDAwMDAwMA==", "x")
	})
	c := newTestClient(t, srv)
	id, err := c.Reanalyse(t.Context(), md5)
	if err != nil {
		t.Fatal(err)
	}
	if id != "NTQ2YmI2ZWY4OWJlYmZiMDUzOTk5Nzc3ZjY5MzBkN2U6MTcwMDAwMDAwMA==" {
		t.Errorf("id = %q", id)
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]string{"POST /api/v3/files/546bb6ef89bebfb053999777f6930d7e/analyse body=0"}, got); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func TestSubmitURL(t *testing.T) {
	tests := []string{
		"http://soclosebutyetqq.com/69.exe",
		"https://example.com/a b?x=1&y=é#frag",
		"https://example.com/?url=http%3A%2F%2Fother&x=+",
	}
	for _, u := range tests {
		t.Run(u, func(t *testing.T) {
			type seen struct {
				Method, Path, ContentType string
				Form                      url.Values
				ContentLength             int64
			}
			var mu sync.Mutex
			var got []seen
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				err := r.ParseForm()
				mu.Lock()
				got = append(got, seen{r.Method, r.URL.Path, r.Header.Get("Content-Type"), r.PostForm, r.ContentLength})
				mu.Unlock()
				if err != nil {
					t.Errorf("ParseForm: %v", err)
				}
				fmt.Fprintf(w, analysisAnswer, "u-7d83e9f6-1700000000", "x")
			})
			c := newTestClient(t, srv)
			id, err := c.SubmitURL(t.Context(), u)
			if err != nil || id != "u-7d83e9f6-1700000000" {
				t.Fatalf("SubmitURL = %q, %v", id, err)
			}
			form := "url=" + url.QueryEscape(u)
			want := []seen{{"POST", "/api/v3/urls", "application/x-www-form-urlencoded", url.Values{"url": {u}}, int64(len(form))}}
			mu.Lock()
			defer mu.Unlock()
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAnalysis(t *testing.T) {
	tests := []struct {
		name string
		body string
		want Analysis
	}{
		{
			name: "completed file analysis with meta.file_info",
			body: `{"data":{"type":"analysis","id":"f-1","attributes":{"status":"completed","date":1700000000,
				"stats":{"malicious":3,"suspicious":1,"undetected":60,"harmless":0,"timeout":2,"confirmed-timeout":1,"failure":4,"type-unsupported":5},
				"results":{"EngineA":{"category":"malicious","engine_name":"EngineA","result":"Trojan.X"}}}},
				"meta":{"file_info":{"sha256":"` + aHash + `","md5":"546bb6ef89bebfb053999777f6930d7e","sha1":"x","size":10}}}`,
			want: Analysis{
				ID: "f-1", Status: "completed", Date: 1700000000,
				Stats:   Stats{Malicious: 3, Suspicious: 1, Undetected: 60, Timeout: 2, ConfirmedTimeout: 1, Failure: 4, TypeUnsupported: 5},
				SHA256:  aHash,
				MD5:     "546bb6ef89bebfb053999777f6930d7e",
				Results: map[string]EngineResult{"EngineA": {Category: "malicious", EngineName: "EngineA", Result: "Trojan.X"}},
			},
		},
		{
			name: "queued URL analysis with meta.url_info",
			body: `{"data":{"type":"analysis","id":"u-7d83-1","attributes":{"status":"queued","stats":{},"results":{}}},
				"meta":{"url_info":{"id":"7d83e9f686ff0122ded311f27aababf6922800a45a23a4dacc860b56ccada4cb","url":"http://soclosebutyetqq.com/69.exe"}}}`,
			want: Analysis{
				ID: "u-7d83-1", Status: "queued",
				URLID:   "7d83e9f686ff0122ded311f27aababf6922800a45a23a4dacc860b56ccada4cb",
				URL:     "http://soclosebutyetqq.com/69.exe",
				Results: map[string]EngineResult{},
			},
		},
		{
			name: "in-progress analysis with odd meta and no stats",
			body: `{"data":{"type":"analysis","id":"a-2","attributes":{"status":"in-progress"}},"meta":{"file_info":"strange"}}`,
			want: Analysis{ID: "a-2", Status: "in-progress"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var path string
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				path = r.URL.Path
				_, _ = w.Write([]byte(tt.body))
			})
			c := newTestClient(t, srv)
			got, err := c.Analysis(t.Context(), tt.want.ID)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(&tt.want, got); diff != "" {
				t.Errorf("analysis (-want +got):\n%s", diff)
			}
			if got.Completed() != (tt.want.Status == "completed") {
				t.Errorf("Completed() = %v for status %q", got.Completed(), got.Status)
			}
			if path != "/api/v3/analyses/"+tt.want.ID {
				t.Errorf("path = %q", path)
			}
		})
	}
}

func TestDownload(t *testing.T) {
	content := bytes.Repeat([]byte("MZ\x90\x00sample"), 10000)
	storage := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if k := r.Header.Get("x-apikey"); k != "" {
			t.Errorf("storage host received the API key %q", k)
		}
		if r.URL.Path != "/blob/abc" || r.URL.Query().Get("sig") != "s1" {
			http.Error(w, "bad signed URL", http.StatusForbidden)
			return
		}
		_, _ = w.Write(content)
	})
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    []byte
		wantErr error
	}{
		{
			name: "follows the redirect to storage",
			handler: func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/api/v3/files/"+aHash+"/download" || r.Header.Get("x-apikey") != testKey {
					http.Error(w, "wrong request", http.StatusBadRequest)
					return
				}
				http.Redirect(w, r, storage.URL+"/blob/abc?sig=s1", http.StatusFound)
			},
			want: content,
		},
		{
			name: "direct answer",
			handler: func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write(content[:100])
			},
			want: content[:100],
		},
		{
			name: "403 for a key without the privilege",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusForbidden)
				_, _ = w.Write([]byte(errBody("ForbiddenError", "You are not allowed to perform the requested operation")))
			},
			wantErr: ErrForbidden,
		},
		{
			name: "404 unknown file",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusNotFound)
				_, _ = w.Write([]byte(errBody("NotFoundError", "File not found")))
			},
			wantErr: ErrNotFound,
		},
		{
			name: "storage refuses the redirect target",
			handler: func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, storage.URL+"/blob/abc?sig=expired", http.StatusFound)
			},
			wantErr: ErrForbidden,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, tt.handler)
			c := newTestClient(t, srv)
			var buf bytes.Buffer
			n, err := c.Download(t.Context(), strings.ToUpper(aHash), &buf)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("Download error = %v, want %v", err, tt.wantErr)
				}
				if err != nil && strings.Contains(err.Error(), testKey) {
					t.Errorf("error %q contains the key", err)
				}
				if buf.Len() != 0 {
					t.Errorf("%d bytes written on error", buf.Len())
				}
				return
			}
			if err != nil {
				t.Fatalf("Download: %v", err)
			}
			if n != int64(len(tt.want)) || !bytes.Equal(buf.Bytes(), tt.want) {
				t.Errorf("Download wrote %d bytes (n=%d), want the %d bytes served", buf.Len(), n, len(tt.want))
			}
		})
	}
}

func TestResolutionsPaging(t *testing.T) {
	// Three pages: the first two point at the next one through links.next
	// (and meta.cursor), the last has no next link.
	pages := map[string]string{
		"": `{"data":[{"type":"resolution","id":"1.1.1.1example.com","attributes":{"host_name":"example.com","ip_address":"1.1.1.1","date":3}},
			{"type":"resolution","id":"2.2.2.2example.com","attributes":{"host_name":"example.com","ip_address":"2.2.2.2","date":2}}],
			"meta":{"count":5,"cursor":"Q1"},"links":{"self":"x","next":"https://www.virustotal.com/api/v3/domains/example.com/resolutions?cursor=Q1&limit=2"}}`,
		"Q1": `{"data":[{"type":"resolution","id":"3.3.3.3example.com","attributes":{"host_name":"example.com","ip_address":"3.3.3.3","date":1}},
			{"type":"resolution","id":"4.4.4.4example.com","attributes":{"host_name":"example.com","ip_address":"4.4.4.4","date":1}}],
			"meta":{"count":5,"cursor":"stale"},"links":{"next":"https://www.virustotal.com/api/v3/domains/example.com/resolutions?limit=2&cursor=Q2%3D%3D"}}`,
		"Q2==": `{"data":[{"type":"resolution","id":"5.5.5.5example.com","attributes":{"host_name":"example.com","ip_address":"5.5.5.5","date":0}}],
			"meta":{"count":5,"cursor":"leftover"},"links":{"self":"y"}}`,
	}
	var mu sync.Mutex
	var queries []string
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		queries = append(queries, r.URL.Path+"?"+r.URL.Query().Encode())
		mu.Unlock()
		body, ok := pages[r.URL.Query().Get("cursor")]
		if !ok || r.URL.Path != "/api/v3/domains/example.com/resolutions" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(errBody("InvalidArgumentError", "bad cursor")))
			return
		}
		_, _ = w.Write([]byte(body))
	})
	c := newTestClient(t, srv)
	var ips, cursors []string
	cursor := ""
	for i := 0; i < 10; i++ {
		p, err := c.Resolutions(t.Context(), "domains", "example.com", cursor, 2)
		if err != nil {
			t.Fatalf("page %d: %v", i, err)
		}
		if p.Count != 5 {
			t.Errorf("page %d: count %d, want 5", i, p.Count)
		}
		for _, o := range p.Objects {
			ips = append(ips, o.Attributes.IPAddress)
		}
		cursors = append(cursors, p.Cursor)
		if p.Cursor == "" {
			break
		}
		cursor = p.Cursor
	}
	if diff := cmp.Diff([]string{"1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4", "5.5.5.5"}, ips); diff != "" {
		t.Errorf("resolutions over all pages (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"Q1", "Q2==", ""}, cursors); diff != "" {
		t.Errorf("cursors (-want +got):\n%s", diff)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{
		"/api/v3/domains/example.com/resolutions?limit=2",
		"/api/v3/domains/example.com/resolutions?cursor=Q1&limit=2",
		"/api/v3/domains/example.com/resolutions?cursor=Q2%3D%3D&limit=2",
	}
	if diff := cmp.Diff(want, queries); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func TestResolutionsPageShapes(t *testing.T) {
	tests := []struct {
		name       string
		coll, id   string
		limit      int
		body       string
		wantQuery  string
		wantCursor string
		wantN      int
		wantErr    error
	}{
		{name: "limit capped at 40", coll: "ip_addresses", id: "8.8.8.8", limit: 500, body: `{"data":[]}`, wantQuery: "limit=40"},
		{name: "no limit sends none", coll: "ip_addresses", id: "8.8.8.8", body: `{"data":[]}`, wantQuery: ""},
		{name: "next link without cursor falls back to meta.cursor", coll: "domains", id: "example.com", limit: 1,
			body:      `{"data":[{"type":"resolution","id":"r","attributes":{}}],"meta":{"cursor":"M1"},"links":{"next":"https://x/next-page"}}`,
			wantQuery: "limit=1", wantCursor: "M1", wantN: 1},
		{name: "meta.cursor without next link is the last page", coll: "domains", id: "example.com", limit: 1,
			body:      `{"data":[{"type":"resolution","id":"r","attributes":{}}],"meta":{"cursor":"M1"}}`,
			wantQuery: "limit=1", wantN: 1},
		{name: "data that is not a list is transient", coll: "domains", id: "example.com",
			body: `{"data":{"type":"resolution","id":"r"}}`, wantErr: ErrTransient},
		{name: "an item that is not an object is transient", coll: "domains", id: "example.com",
			body: `{"data":[1]}`, wantErr: ErrTransient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var query, path string
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				query, path = r.URL.RawQuery, r.URL.Path
				_, _ = w.Write([]byte(tt.body))
			})
			c := newTestClient(t, srv)
			p, err := c.Resolutions(t.Context(), tt.coll, tt.id, "", tt.limit)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if query != tt.wantQuery || path != "/api/v3/"+tt.coll+"/"+tt.id+"/resolutions" {
				t.Errorf("request %s?%s, want query %q", path, query, tt.wantQuery)
			}
			if p.Cursor != tt.wantCursor || len(p.Objects) != tt.wantN {
				t.Errorf("page cursor %q with %d objects, want %q and %d", p.Cursor, len(p.Objects), tt.wantCursor, tt.wantN)
			}
		})
	}
}
