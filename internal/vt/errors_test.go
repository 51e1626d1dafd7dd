package vt

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// aHash is a valid SHA-256 used where the content does not matter.
const aHash = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"

func errBody(code, msg string) string {
	return `{"error":{"code":"` + code + `","message":"` + msg + `"}}`
}

// TestErrorMapping sends every documented error answer (docs §1.8) and
// non-JSON bodies, and checks the class, the typed error, Retryable and the
// message. TestErrorMappingOfRealBodies does the same with real answers.
func TestErrorMapping(t *testing.T) {
	future := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	tests := []struct {
		name       string
		status     int
		body       string
		retryAfter string // Retry-After header
		want       error  // the one sentinel it must match
		quota      bool   // a *QuotaError
		retryMin   time.Duration
		retryMax   time.Duration
		retryable  bool
	}{
		{name: "400 BadRequestError is a permanent bad request", status: 400, body: errBody("BadRequestError", "bad"), want: ErrBadRequest},
		{name: "400 InvalidArgumentError is a permanent bad request", status: 400, body: errBody("InvalidArgumentError", "invalid hash"), want: ErrBadRequest},
		{name: "400 NotAvailableYet is retryable", status: 400, body: errBody("NotAvailableYet", "not yet"), want: ErrNotAvailableYet, retryable: true},
		{name: "400 UnselectiveContentQueryError is a bad request", status: 400, body: errBody("UnselectiveContentQueryError", "x"), want: ErrBadRequest},
		{name: "400 UnsupportedContentQueryError is a bad request", status: 400, body: errBody("UnsupportedContentQueryError", "x"), want: ErrBadRequest},
		{name: "401 AuthenticationRequiredError is an auth error", status: 401, body: errBody("AuthenticationRequiredError", "API key required"), want: ErrAuth},
		{name: "401 WrongCredentialsError is an auth error", status: 401, body: errBody("WrongCredentialsError", "Wrong API key"), want: ErrAuth},
		{name: "401 UserNotActiveError is an auth error", status: 401, body: errBody("UserNotActiveError", "inactive"), want: ErrAuth},
		{name: "403 ForbiddenError is forbidden", status: 403, body: errBody("ForbiddenError", "premium only"), want: ErrForbidden},
		{name: "404 NotFoundError is not found", status: 404, body: errBody("NotFoundError", "File not found"), want: ErrNotFound},
		{name: "409 AlreadyExistsError", status: 409, body: errBody("AlreadyExistsError", "exists"), want: ErrAlreadyExists},
		{name: "424 FailedDependencyError is a bad request", status: 424, body: errBody("FailedDependencyError", "dep"), want: ErrBadRequest},
		{name: "429 QuotaExceededError without Retry-After", status: 429, body: errBody("QuotaExceededError", "Quota exceeded"), want: ErrQuota, quota: true, retryable: true},
		{name: "429 QuotaExceededError with Retry-After seconds", status: 429, body: errBody("QuotaExceededError", "Quota exceeded"), retryAfter: "42", want: ErrQuota, quota: true, retryMin: 42 * time.Second, retryMax: 42 * time.Second, retryable: true},
		{name: "429 TooManyRequestsError with Retry-After HTTP date", status: 429, body: errBody("TooManyRequestsError", "Too many requests"), retryAfter: future, want: ErrQuota, quota: true, retryMin: 80 * time.Second, retryMax: 90 * time.Second, retryable: true},
		{name: "429 with unreadable Retry-After waits zero", status: 429, body: errBody("QuotaExceededError", "q"), retryAfter: "soon", want: ErrQuota, quota: true, retryable: true},
		{name: "429 with an empty body is quota by status", status: 429, body: "", retryAfter: "7", want: ErrQuota, quota: true, retryMin: 7 * time.Second, retryMax: 7 * time.Second, retryable: true},
		{name: "503 TransientError is retryable", status: 503, body: errBody("TransientError", "retry might work"), want: ErrTransient, retryable: true},
		{name: "503 with an empty body is transient by status", status: 503, body: "", want: ErrTransient, retryable: true},
		{name: "504 DeadlineExceededError is retryable", status: 504, body: errBody("DeadlineExceededError", "too long"), want: ErrDeadlineExceeded, retryable: true},
		{name: "504 with an empty body is a deadline by status", status: 504, body: "", want: ErrDeadlineExceeded, retryable: true},
		{name: "502 HTML page from a proxy is transient", status: 502, body: "<html><body><h1>502 Bad Gateway</h1></body></html>", want: ErrTransient, retryable: true},
		{name: "500 plain text is transient", status: 500, body: "internal error", want: ErrTransient, retryable: true},
		{name: "404 HTML page is not found by status", status: 404, body: "<html>nope</html>", want: ErrNotFound},
		{name: "401 empty body is an auth error by status", status: 401, body: "", want: ErrAuth},
		{name: "403 empty body is forbidden by status", status: 403, body: "", want: ErrForbidden},
		{name: "409 empty body already exists by status", status: 409, body: "", want: ErrAlreadyExists},
		{name: "413 from a proxy is too large", status: 413, body: "<html>Request Entity Too Large</html>", want: ErrTooLarge},
		{name: "408 from a proxy is transient", status: 408, body: "", want: ErrTransient, retryable: true},
		{name: "unknown 4xx is a bad request", status: 418, body: "", want: ErrBadRequest},
		{name: "the code wins over a rewritten status", status: 500, body: errBody("NotFoundError", "rewritten"), want: ErrNotFound},
		{name: "error member of the wrong shape is classified by status", status: 503, body: `{"error":"down"}`, want: ErrTransient, retryable: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := []byte(tt.body)
			// Code and message, read independently from the body.
			var wantCode, wantMsg string
			if m, ok := tryGeneric(body); ok {
				if e, ok := m["error"].(map[string]any); ok {
					wantCode, _ = e["code"].(string)
					wantMsg, _ = e["message"].(string)
				}
			}
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				if tt.retryAfter != "" {
					w.Header().Set("Retry-After", tt.retryAfter)
				}
				w.WriteHeader(tt.status)
				_, _ = w.Write(body)
			})
			c := newTestClient(t, srv)
			o, err := c.File(t.Context(), aHash)
			if err == nil {
				t.Fatalf("File = %+v, want an error", o)
			}
			wantName := ""
			for _, s := range sentinels {
				if s.err == tt.want {
					wantName = s.name
				}
			}
			if diff := cmp.Diff([]string{wantName}, matchedSentinels(err)); diff != "" {
				t.Errorf("classes matched by %v (-want +got):\n%s", err, diff)
			}
			if got := Retryable(err); got != tt.retryable {
				t.Errorf("Retryable(%v) = %v, want %v", err, got, tt.retryable)
			}

			var qe *QuotaError
			var ae *APIError
			var got APIError
			switch {
			case errors.As(err, &qe):
				got = qe.APIError
				if !tt.quota {
					t.Errorf("got a *QuotaError for a non-quota answer: %v", err)
				}
				if qe.RetryAfter < tt.retryMin || qe.RetryAfter > tt.retryMax {
					t.Errorf("RetryAfter = %s, want in [%s, %s]", qe.RetryAfter, tt.retryMin, tt.retryMax)
				}
				if qe.RetryAfter > 0 && !strings.Contains(err.Error(), "retry after") {
					t.Errorf("quota error %q does not say how long to wait", err)
				}
			case errors.As(err, &ae):
				got = *ae
				if tt.quota {
					t.Errorf("want a *QuotaError, got %T: %v", err, err)
				}
			default:
				t.Fatalf("error %T is neither *APIError nor *QuotaError: %v", err, err)
			}
			want := APIError{Method: "GET", Path: "files/" + aHash, Status: tt.status, Code: wantCode, Message: wantMsg}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("error fields (-want +got):\n%s", diff)
			}

			msg := err.Error()
			code := wantCode
			if code == "" {
				code = http.StatusText(tt.status)
			}
			for _, part := range []string{"vt: ", "GET", "files/" + aHash, strconv.Itoa(tt.status), code, wantMsg} {
				if !strings.Contains(msg, part) {
					t.Errorf("error %q does not contain %q", msg, part)
				}
			}
			if strings.Contains(msg, testKey) {
				t.Errorf("error %q contains the API key", msg)
			}
		})
	}
}

// TestErrorMappingOfRealBodies is a fidelity test: it sends the real
// error answers of ../shared/testdata/vt with their status and checks their
// class; it fails when that directory gains an error body it does not know.
func TestErrorMappingOfRealBodies(t *testing.T) {
	dir := sharedDir(t)
	tests := map[string]struct {
		status int
		want   error
	}{
		"error_authentication_required.json": {401, ErrAuth},
		"error_wrong_credentials.json":       {401, ErrAuth},
		"error_notfound.json":                {404, ErrNotFound},
		"error_quota_exceeded.json":          {429, ErrQuota},
	}
	files, err := filepath.Glob(filepath.Join(dir, "error_*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(tests) {
		t.Errorf("%d error bodies in %s, this test knows %d", len(files), dir, len(tests))
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			tt, ok := tests[name]
			if !ok {
				t.Fatalf("%s: unknown error body: add it to this test", name)
			}
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var doc struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err := json.Unmarshal(body, &doc); err != nil || doc.Error.Code == "" {
				t.Fatalf("%s has no error code (%v)", name, err)
			}
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = w.Write(body)
			})
			_, err = newTestClient(t, srv).File(t.Context(), aHash)
			if !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
			if err != nil && !strings.Contains(err.Error(), doc.Error.Message) {
				t.Errorf("error %q does not carry the message %q", err, doc.Error.Message)
			}
		})
	}
}

func tryGeneric(b []byte) (map[string]any, bool) {
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, false
	}
	return m, true
}

// TestSuccessWithoutUsableDataIsTransient: a 200 that is not the expected
// envelope is VirusTotal (or a proxy) misbehaving, worth a retry.
func TestSuccessWithoutUsableDataIsTransient(t *testing.T) {
	tests := []struct{ name, body string }{
		{"empty body", ""},
		{"HTML page", "<html><body>maintenance</body></html>"},
		{"truncated JSON", `{"data":{"id":"x","type":"file"`},
		{"empty object", "{}"},
		{"null data", `{"data":null}`},
		{"JSON null", "null"},
		{"a JSON list", "[1,2]"},
		{"an error envelope with status 200", errBody("NotFoundError", "odd")},
		{"data that is not an object", `{"data":[]}`},
		{"data that is a string", `{"data":"files"}`},
		{"object without id", `{"data":{"type":"file","attributes":{"md5":"x"}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(tt.body))
			})
			c := newTestClient(t, srv)
			_, err := c.File(t.Context(), aHash)
			if diff := cmp.Diff([]string{"ErrTransient"}, matchedSentinels(err)); diff != "" {
				t.Errorf("File error %v classes (-want +got):\n%s", err, diff)
			}
			if !Retryable(err) {
				t.Errorf("Retryable(%v) = false", err)
			}
			if err != nil && (!strings.Contains(err.Error(), "GET files/"+aHash) || strings.Contains(err.Error(), testKey)) {
				t.Errorf("error %q: want method and path, never the key", err)
			}
		})
	}
}

// TestPOSTErrorNamesMethodAndPath: the message of a failed POST says POST
// and the path it went to.
func TestPOSTErrorNamesMethodAndPath(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(errBody("InvalidArgumentError", "bad url")))
	})
	c := newTestClient(t, srv)
	_, err := c.SubmitURL(t.Context(), "http://example.com/")
	if !errors.Is(err, ErrBadRequest) {
		t.Fatalf("SubmitURL error = %v, want ErrBadRequest", err)
	}
	for _, part := range []string{"POST urls", "InvalidArgumentError", "bad url"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q lacks %q", err, part)
		}
	}
	_, err = c.Reanalyse(t.Context(), aHash)
	if !strings.Contains(err.Error(), "POST files/"+aHash+"/analyse") {
		t.Errorf("error %q lacks the POST path", err)
	}
}

// TestLongMessageIsCutOnACharacter: a long error message is shortened
// without producing invalid UTF-8.
func TestLongMessageIsCutOnACharacter(t *testing.T) {
	long := "x" + strings.Repeat("é", 400) // 801 bytes; byte 500 is inside an é
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(errBody("BadRequestError", long)))
	})
	c := newTestClient(t, srv)
	_, err := c.File(t.Context(), aHash)
	var ae *APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v is not an *APIError", err)
	}
	if !utf8.ValidString(ae.Message) || !utf8.ValidString(err.Error()) {
		t.Errorf("shortened message is not valid UTF-8: %q", ae.Message)
	}
	if len(ae.Message) > 510 || !strings.HasPrefix(long, strings.TrimSuffix(ae.Message, "…")) {
		t.Errorf("message of %d bytes is not a prefix of the original cut near 500 bytes", len(ae.Message))
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name, header string
		want         time.Duration
	}{
		{"absent", "", 0},
		{"zero seconds", "0", 0},
		{"seconds", "120", 2 * time.Minute},
		{"seconds with spaces", "  7 ", 7 * time.Second},
		{"negative seconds are unreadable", "-5", 0},
		{"fraction is unreadable", "1.5", 0},
		{"garbage", "tomorrow", 0},
		{"IMF-fixdate in the future", "Sun, 01 Mar 2026 12:01:30 GMT", 90 * time.Second},
		{"RFC 850 date in the future", "Sunday, 01-Mar-26 12:00:10 GMT", 10 * time.Second},
		{"asctime date in the future", "Sun Mar  1 13:00:00 2026", time.Hour},
		{"date in the past", "Sun, 01 Mar 2026 11:59:00 GMT", 0},
		{"date now", "Sun, 01 Mar 2026 12:00:00 GMT", 0},
		{"seconds that overflow a Duration are unreadable", "99999999999999", 0},
		{"seconds beyond int", "999999999999999999999999", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseRetryAfter(tt.header, now); got != tt.want {
				t.Errorf("parseRetryAfter(%q) = %s, want %s", tt.header, got, tt.want)
			}
		})
	}
}

// TestTransportFailures covers answers that never come: the client's own
// timeout, a refused connection, and the caller cancelling.
func TestTransportFailures(t *testing.T) {
	t.Run("client timeout is a retryable deadline", func(t *testing.T) {
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done() // answers only when the client gives up
		})
		c := newTestClient(t, srv, WithTimeout(50*time.Millisecond))
		start := time.Now()
		_, err := c.File(t.Context(), aHash)
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("timeout of 50ms took %s", d)
		}
		if diff := cmp.Diff([]string{"ErrDeadlineExceeded"}, matchedSentinels(err)); diff != "" {
			t.Errorf("error %v classes (-want +got):\n%s", err, diff)
		}
		if !Retryable(err) {
			t.Errorf("Retryable(%v) = false", err)
		}
		checkTransportMessage(t, err, "GET files/"+aHash)
	})

	t.Run("timeout while reading the body is a deadline", func(t *testing.T) {
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"data":{"type":"file",`))
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		})
		c := newTestClient(t, srv, WithTimeout(50*time.Millisecond))
		_, err := c.File(t.Context(), aHash)
		if diff := cmp.Diff([]string{"ErrDeadlineExceeded"}, matchedSentinels(err)); diff != "" {
			t.Errorf("error %v classes (-want +got):\n%s", err, diff)
		}
	})

	t.Run("connection refused is transient", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		c, err := New(testKey, WithBaseURL("http://"+addr+"/api/v3"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Domain(t.Context(), "example.com")
		if diff := cmp.Diff([]string{"ErrTransient"}, matchedSentinels(err)); diff != "" {
			t.Errorf("error %v classes (-want +got):\n%s", err, diff)
		}
		if !Retryable(err) {
			t.Errorf("Retryable(%v) = false", err)
		}
		checkTransportMessage(t, err, "GET domains/example.com")
	})

	t.Run("caller cancelling is context.Canceled and not retryable", func(t *testing.T) {
		started := make(chan struct{})
		var once sync.Once
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			once.Do(func() { close(started) })
			<-r.Context().Done()
		})
		c := newTestClient(t, srv)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go func() {
			<-started
			cancel()
		}()
		_, err := c.IPAddress(ctx, "8.8.8.8")
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v is not context.Canceled", err)
		}
		if got := matchedSentinels(err); len(got) != 0 {
			t.Errorf("cancellation matched %v", got)
		}
		if Retryable(err) {
			t.Errorf("Retryable(%v) = true", err)
		}
		checkTransportMessage(t, err, "GET ip_addresses/8.8.8.8")
	})

	t.Run("already cancelled context sends nothing useful and is not retryable", func(t *testing.T) {
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			t.Errorf("request %s reached the server with a cancelled context", r.URL)
		})
		c := newTestClient(t, srv)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := c.File(ctx, aHash)
		if !errors.Is(err, context.Canceled) || Retryable(err) {
			t.Errorf("error %v: want context.Canceled, not retryable", err)
		}
	})
}

func checkTransportMessage(t *testing.T, err error, methodPath string) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	if !strings.Contains(err.Error(), "vt: "+methodPath) {
		t.Errorf("error %q does not name %q", err, methodPath)
	}
	if strings.Contains(err.Error(), testKey) {
		t.Errorf("error %q contains the API key", err)
	}
}

// TestInvalidInputIsRefusedLocally: malformed identifiers are bad requests
// that never reach VirusTotal (and cost no quota).
func TestInvalidInputIsRefusedLocally(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("request %s %s sent for invalid input", r.Method, r.URL)
	})
	c := newTestClient(t, srv)
	ctx := t.Context()
	calls := []struct {
		name string
		call func() error
	}{
		{"File with a SHA-512", func() error { _, err := c.File(ctx, strings.Repeat("a", 128)); return err }},
		{"File with a name", func() error { _, err := c.File(ctx, "putty.exe"); return err }},
		{"IPAddress with a domain", func() error { _, err := c.IPAddress(ctx, "example.com"); return err }},
		{"IPAddress with a zone", func() error { _, err := c.IPAddress(ctx, "fe80::1%eth0"); return err }},
		{"Domain with an IP", func() error { _, err := c.Domain(ctx, "1.2.3.4"); return err }},
		{"Domain with a space", func() error { _, err := c.Domain(ctx, "exa mple.com"); return err }},
		{"URLByID empty", func() error { _, err := c.URLByID(ctx, ""); return err }},
		{"YARARuleset empty", func() error { _, err := c.YARARuleset(ctx, ""); return err }},
		{"Analysis empty", func() error { _, err := c.Analysis(ctx, ""); return err }},
		{"Resolutions of files", func() error { _, err := c.Resolutions(ctx, "files", aHash, "", 10); return err }},
		{"Reanalyse a name", func() error { _, err := c.Reanalyse(ctx, "x"); return err }},
		{"SubmitURL blank", func() error { _, err := c.SubmitURL(ctx, "  "); return err }},
		{"Download a name", func() error { _, err := c.Download(ctx, "x", nil); return err }},
	}
	for _, tt := range calls {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if diff := cmp.Diff([]string{"ErrBadRequest"}, matchedSentinels(err)); diff != "" {
				t.Errorf("error %v classes (-want +got):\n%s", err, diff)
			}
			if Retryable(err) {
				t.Errorf("Retryable(%v) = true", err)
			}
		})
	}
}

// TestRequestHeaders: every request carries the key, the tool name and
// (for JSON calls) Accept: application/json.
func TestRequestHeaders(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     []Option
		wantTool string
	}{
		{"default tool name", nil, "vtconnector"},
		{"tool name from WithUserAgent", []Option{WithUserAgent("vtconnector-test/1.2")}, "vtconnector-test/1.2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			type seen struct {
				method, path string
				header       http.Header
			}
			var mu sync.Mutex
			var reqs []seen
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				reqs = append(reqs, seen{r.Method, r.URL.Path, r.Header.Clone()})
				mu.Unlock()
				switch {
				case strings.HasSuffix(r.URL.Path, "/download"):
					_, _ = w.Write([]byte("MZ"))
				case strings.HasSuffix(r.URL.Path, "/upload_url"):
					_, _ = w.Write([]byte(`{"data":"http://` + r.Host + `/upload"}`))
				case strings.HasSuffix(r.URL.Path, "/resolutions"):
					_, _ = w.Write([]byte(`{"data":[]}`))
				case r.Method == http.MethodPost:
					_, _ = w.Write([]byte(`{"data":{"type":"analysis","id":"an-id"}}`))
				default:
					_, _ = w.Write([]byte(`{"data":{"type":"x","id":"an-id","attributes":{}}}`))
				}
			})
			c := newTestClient(t, srv, tc.opts...)
			ctx := t.Context()
			small := filepath.Join(t.TempDir(), "sample.bin")
			if err := os.WriteFile(small, []byte("hello"), 0o600); err != nil {
				t.Fatal(err)
			}
			calls := []func() error{
				func() error { _, err := c.File(ctx, aHash); return err },
				func() error { _, err := c.IPAddress(ctx, "2001:db8::1"); return err },
				func() error { _, err := c.Domain(ctx, "example.com"); return err },
				func() error { _, err := c.URL(ctx, "http://example.com/"); return err },
				func() error { _, err := c.YARARuleset(ctx, "00888403c4"); return err },
				func() error { _, err := c.Analysis(ctx, "an-id"); return err },
				func() error { _, err := c.Resolutions(ctx, "domains", "example.com", "", 10); return err },
				func() error { _, err := c.Reanalyse(ctx, aHash); return err },
				func() error { _, err := c.SubmitURL(ctx, "http://example.com/"); return err },
				func() error { _, err := c.UploadURL(ctx); return err },
				func() error { _, err := c.UploadFile(ctx, small); return err },
				func() error { _, err := c.Download(ctx, aHash, new(strings.Builder)); return err },
			}
			for i, call := range calls {
				if err := call(); err != nil {
					t.Fatalf("call %d: %v", i, err)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if len(reqs) != len(calls) {
				t.Fatalf("%d requests for %d calls", len(reqs), len(calls))
			}
			for _, r := range reqs {
				want := map[string]string{"x-apikey": testKey, "x-tool": tc.wantTool, "User-Agent": tc.wantTool, "Accept": "application/json"}
				got := map[string]string{}
				for k := range want {
					got[k] = r.header.Get(k)
				}
				if strings.HasSuffix(r.path, "/download") {
					delete(want, "Accept") // file bytes, not JSON
					delete(got, "Accept")
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("%s %s headers (-want +got):\n%s", r.method, r.path, diff)
				}
			}
		})
	}
}

// TestNew checks the key and base URL validation.
func TestNew(t *testing.T) {
	if _, err := New(""); err == nil {
		t.Error("New with an empty key succeeded")
	}
	if _, err := New(" \t\n"); err == nil {
		t.Error("New with a blank key succeeded")
	}
	for _, bad := range []string{"ftp://example.com/api/v3", "example.com/api/v3", "http://", "http://[::1", "/api/v3"} {
		if _, err := New(testKey, WithBaseURL(bad)); err == nil {
			t.Errorf("New with base URL %q succeeded", bad)
		} else if strings.Contains(err.Error(), testKey) {
			t.Errorf("error %q contains the key", err)
		}
	}
	c, err := New(testKey)
	if err != nil || c.BaseURL() != DefaultBaseURL {
		t.Errorf("default base = %v, %v; want %s", c, err, DefaultBaseURL)
	}
	c, err = New(testKey, WithBaseURL("http://127.0.0.1:8080/prefix/api/v3/"))
	if err != nil || c.BaseURL() != "http://127.0.0.1:8080/prefix/api/v3" {
		t.Errorf("base = %v, %v; want the URL without its trailing slash", c.BaseURL(), err)
	}
}

// TestBaseURLPrefixAndEscaping: requests keep the base path and escape
// identifiers as one path segment.
func TestBaseURLPrefixAndEscaping(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.URL.EscapedPath())
		mu.Unlock()
		_, _ = w.Write([]byte(`{"data":{"type":"x","id":"i"}}`))
	})
	c, err := New(testKey, WithBaseURL(srv.URL+"/gw/api/v3/"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, call := range []func() error{
		func() error { _, err := c.URLByID(ctx, "a/b?c#d"); return err },
		func() error { _, err := c.YARARuleset(ctx, "x y"); return err },
		func() error { _, err := c.IPAddress(ctx, "2001:DB8::1"); return err },
	} {
		if err := call(); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"/gw/api/v3/urls/a%2Fb%3Fc%23d", "/gw/api/v3/yara_rulesets/x%20y", "/gw/api/v3/ip_addresses/2001:db8::1"}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("request paths (-want +got):\n%s", diff)
	}
}

// TestCodeWinsOverStatus: proxies may rewrite the status, so every
// documented code keeps its class whatever status carries it.
func TestCodeWinsOverStatus(t *testing.T) {
	codes := map[string]error{
		"BadRequestError":              ErrBadRequest,
		"InvalidArgumentError":         ErrBadRequest,
		"NotAvailableYet":              ErrNotAvailableYet,
		"UnselectiveContentQueryError": ErrBadRequest,
		"UnsupportedContentQueryError": ErrBadRequest,
		"AuthenticationRequiredError":  ErrAuth,
		"UserNotActiveError":           ErrAuth,
		"WrongCredentialsError":        ErrAuth,
		"ForbiddenError":               ErrForbidden,
		"NotFoundError":                ErrNotFound,
		"AlreadyExistsError":           ErrAlreadyExists,
		"FailedDependencyError":        ErrBadRequest,
		"QuotaExceededError":           ErrQuota,
		"TooManyRequestsError":         ErrQuota,
		"TransientError":               ErrTransient,
		"DeadlineExceededError":        ErrDeadlineExceeded,
	}
	for code, want := range codes {
		for _, status := range []int{http.StatusInternalServerError, http.StatusTeapot} {
			e := &APIError{Method: "GET", Path: "p", Status: status, Code: code}
			if !errors.Is(e, want) {
				t.Errorf("%d %s matches %v, want %v", status, code, matchedSentinels(e), want)
			}
			if len(matchedSentinels(e)) != 1 {
				t.Errorf("%d %s matches %v, want exactly one class", status, code, matchedSentinels(e))
			}
		}
	}
}
