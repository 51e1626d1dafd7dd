package carbonblack

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/vtconnector/vtconnector/internal/redirect"
	"github.com/vtconnector/vtconnector/internal/tlsca"
	"github.com/vtconnector/vtconnector/internal/vt"
)

// Errors of the Carbon Black API that callers branch on.
var (
	// ErrCbAuth: the server refused the API token (401/403). Retrying
	// with the same configuration cannot help.
	ErrCbAuth = errors.New("carbon black refused the API token")
	// ErrCbNotFound: the binary or feed does not exist (404).
	ErrCbNotFound = errors.New("not found on the carbon black server")
	// ErrCbUnavailable: the server or the network failed; retry later.
	ErrCbUnavailable = errors.New("carbon black server unavailable")
	// ErrCbTooLarge: a binary is larger than the configured limit.
	ErrCbTooLarge = errors.New("binary larger than max_binary_size")
)

// CbError is an error answer from the Carbon Black server.
type CbError struct {
	Method, Path string
	Status       int
	Body         string // the first bytes of the answer, for the log
}

func (e *CbError) Error() string {
	s := fmt.Sprintf("carbonblack: %s %s: %d %s", e.Method, e.Path, e.Status, http.StatusText(e.Status))
	if e.Body != "" {
		s += ": " + e.Body
	}
	return s
}

// Is maps the status to the sentinels.
func (e *CbError) Is(target error) bool {
	switch target {
	case ErrCbAuth:
		return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
	case ErrCbNotFound:
		return e.Status == http.StatusNotFound
	case ErrCbUnavailable:
		return e.Status >= 500 || e.Status == http.StatusTooManyRequests || e.Status == http.StatusRequestTimeout
	}
	return false
}

// Client talks to the Carbon Black EDR (Cb Response) REST API.
type Client struct {
	base  *url.URL
	token string
	hc    *http.Client
	agent string
}

// NewClient returns a client for the server at baseURL using token.
// sslVerify false accepts any server certificate, as the original did by
// default (carbonblack_server_sslverify=0).
func NewClient(baseURL, token string, sslVerify bool, timeout time.Duration) (*Client, error) {
	return NewClientCA(baseURL, token, sslVerify, "", timeout)
}

// NewClientCA is NewClient verifying the server's certificate against the
// PEM bundle caFile (carbonblack_server_ca_file) when it is set, whatever
// sslVerify says: giving a CA is asking for verification.
func NewClientCA(baseURL, token string, sslVerify bool, caFile string, timeout time.Duration) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("carbonblack: server URL %q: want http(s)://host[:port]", baseURL)
	}
	if token == "" {
		return nil, errors.New("carbonblack: empty API token")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	switch {
	case caFile != "":
		tc, err := tlsca.Config(caFile)
		if err != nil {
			return nil, fmt.Errorf("carbonblack: %w", err)
		}
		tr.TLSClientConfig = tc
	case !sslVerify:
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the operator's choice (carbonblack_server_sslverify)
	}
	if timeout <= 0 {
		timeout = 120 * time.Second
	}
	return &Client{base: u, token: token, hc: redirect.Guard(&http.Client{Transport: tr, Timeout: timeout}, "X-Auth-Token"), agent: "vtconnector"}, nil
}

// WithHTTPClient replaces the HTTP client (tests route it to the simulator).
func (c *Client) WithHTTPClient(hc *http.Client) *Client {
	c.hc = redirect.Guard(hc, "X-Auth-Token")
	return c
}

func (c *Client) do(ctx context.Context, method, path string, q url.Values, body any) (*http.Response, error) {
	u := *c.base
	u.Path = strings.TrimRight(u.Path, "/") + path
	u.RawQuery = q.Encode()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("carbonblack: %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, fmt.Errorf("carbonblack: %s %s: %w", method, path, err)
	}
	req.Header.Set("X-Auth-Token", c.token)
	req.Header.Set("User-Agent", c.agent)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("carbonblack: %s %s: %w", method, path, ctx.Err())
		}
		return nil, fmt.Errorf("carbonblack: %s %s: %w: %w", method, path, ErrCbUnavailable, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return nil, &CbError{Method: method, Path: path, Status: resp.StatusCode, Body: strings.TrimSpace(cbFlatten(string(b)))}
	}
	return resp, nil
}

func (c *Client) doJSON(ctx context.Context, method, path string, q url.Values, body, out any) error {
	resp, err := c.do(ctx, method, path, q, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(out); err != nil {
		return fmt.Errorf("carbonblack: %s %s: %w: answer is not the expected JSON: %w", method, path, ErrCbUnavailable, err)
	}
	return nil
}

// ServerInfo is the part of GET /api/info the connector reads.
type ServerInfo struct {
	Version string `json:"version"`
}

// Info returns the server's version.
func (c *Client) Info(ctx context.Context) (ServerInfo, error) {
	var si ServerInfo
	err := c.doJSON(ctx, http.MethodGet, "/api/info", nil, nil, &si)
	return si, err
}

// Binary is one result of a binary search.
type Binary struct {
	MD5                  string    `json:"md5"`
	ServerAddedTimestamp time.Time `json:"-"`
	RawServerAdded       string    `json:"server_added_timestamp"`
	OrigModLen           int64     `json:"orig_mod_len"`
	OriginalFilename     string    `json:"original_filename"`
	IsExecutableImage    bool      `json:"is_executable_image"`
	OSType               string    `json:"os_type"`
	DigsigResult         string    `json:"digsig_result"`
}

// SearchPage is one page of GET /api/v1/binary.
type SearchPage struct {
	Results      []Binary `json:"results"`
	TotalResults int      `json:"total_results"`
	Start        int      `json:"start"`
}

// SearchBinaries runs a binary search sorted ascending by
// server_added_timestamp. Results without a usable md5 or timestamp are
// dropped and counted in the returned skipped number.
func (c *Client) SearchBinaries(ctx context.Context, query string, start, rows int) (*SearchPage, int, error) {
	q := url.Values{
		"q":         {query},
		"start":     {strconv.Itoa(start)},
		"rows":      {strconv.Itoa(rows)},
		"sort":      {"server_added_timestamp asc"},
		"facet":     {"false"},
		"cb.urlver": {"1"},
	}
	var p SearchPage
	if err := c.doJSON(ctx, http.MethodGet, "/api/v1/binary", q, nil, &p); err != nil {
		return nil, 0, err
	}
	kept := p.Results[:0]
	skipped := 0
	for _, b := range p.Results {
		t, err := ParseCbTime(b.RawServerAdded)
		if err != nil || !isMD5(b.MD5) {
			skipped++
			continue
		}
		b.ServerAddedTimestamp = t
		b.MD5 = strings.ToUpper(b.MD5)
		kept = append(kept, b)
	}
	p.Results = kept
	return &p, skipped, nil
}

// ParseCbTime reads Carbon Black's timestamps ("2017-02-01T03:52:34.137Z",
// with or without fraction or zone; no zone means UTC).
func ParseCbTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("carbonblack: unreadable timestamp %q", s)
}

// FormatCbTime formats a time for a server_added_timestamp range query
// (UTC, second precision, no zone: the form the original sent).
func FormatCbTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05") }

func isMD5(s string) bool { return len(s) == 32 && vt.IsHash(s) }

// DownloadBinary fetches a binary (GET /api/v1/binary/<MD5>, a zip whose
// member "filedata" holds the bytes) and writes its content to a new file
// in dir, streaming; it returns the file's path and size. Binaries larger
// than maxSize are refused with ErrCbTooLarge.
func (c *Client) DownloadBinary(ctx context.Context, md5, dir string, maxSize int64) (string, int64, error) {
	if !isMD5(md5) {
		return "", 0, fmt.Errorf("carbonblack: download %q: not an MD5", md5)
	}
	path := "/api/v1/binary/" + strings.ToUpper(md5)
	resp, err := c.do(ctx, http.MethodGet, path, nil, nil)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	zf, err := os.CreateTemp(dir, "cb-*.zip")
	if err != nil {
		return "", 0, fmt.Errorf("carbonblack: download %s: %w", md5, err)
	}
	defer os.Remove(zf.Name())
	defer zf.Close()
	// The zip holds the binary and a little metadata; allow for both.
	limit := maxSize + 1<<20
	n, err := io.Copy(zf, io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return "", 0, fmt.Errorf("carbonblack: download %s: %w: %w", md5, ErrCbUnavailable, err)
	}
	if n > limit {
		return "", 0, fmt.Errorf("carbonblack: download %s: %w", md5, ErrCbTooLarge)
	}
	zr, err := zip.NewReader(zf, n)
	if err != nil {
		return "", 0, fmt.Errorf("carbonblack: download %s: %w: answer is not a zip: %w", md5, ErrCbUnavailable, err)
	}
	for _, f := range zr.File {
		if f.Name != "filedata" {
			continue
		}
		if f.UncompressedSize64 > uint64(maxSize) {
			return "", 0, fmt.Errorf("carbonblack: download %s: %d bytes: %w", md5, f.UncompressedSize64, ErrCbTooLarge)
		}
		return extract(f, dir, md5, maxSize)
	}
	return "", 0, fmt.Errorf("carbonblack: download %s: %w: zip has no filedata member", md5, ErrCbUnavailable)
}

func extract(f *zip.File, dir, md5 string, maxSize int64) (string, int64, error) {
	rc, err := f.Open()
	if err != nil {
		return "", 0, fmt.Errorf("carbonblack: download %s: %w: %w", md5, ErrCbUnavailable, err)
	}
	defer rc.Close()
	out, err := os.CreateTemp(dir, "cb-"+strings.ToUpper(md5)+"-*")
	if err != nil {
		return "", 0, fmt.Errorf("carbonblack: download %s: %w", md5, err)
	}
	n, err := io.Copy(out, io.LimitReader(rc, maxSize+1))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil && n > maxSize {
		err = fmt.Errorf("%d+ bytes: %w", n, ErrCbTooLarge)
	}
	if err != nil {
		os.Remove(out.Name())
		return "", 0, fmt.Errorf("carbonblack: download %s: %w", md5, err)
	}
	return out.Name(), n, nil
}

// FeedRecord is a feed as the server's /api/v1/feed API knows it.
type FeedRecord struct {
	ID                 int    `json:"id,omitempty"`
	Name               string `json:"name,omitempty"`
	DisplayName        string `json:"display_name,omitempty"`
	FeedURL            string `json:"feed_url"`
	Enabled            bool   `json:"enabled"`
	UseProxy           bool   `json:"use_proxy"`
	ValidateServerCert bool   `json:"validate_server_cert"`
	Username           string `json:"username,omitempty"`
	Password           string `json:"password,omitempty"`

	// All is the record as the server sent it, every field (display name,
	// ratings, icons, settings made in the console...); UpdateFeed writes
	// it back whole, with the fields above laid over it.
	All map[string]json.RawMessage `json:"-"`
}

// UnmarshalJSON reads the typed fields and keeps the whole record in All.
func (f *FeedRecord) UnmarshalJSON(b []byte) error {
	type plain FeedRecord
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	*f = FeedRecord(p)
	f.All = all
	return nil
}

// whole is the record to PUT: All with the typed fields laid over it
// (username and password only when set: a server may not return them).
func (f FeedRecord) whole() map[string]any {
	out := make(map[string]any, len(f.All)+6)
	for k, v := range f.All {
		out[k] = v
	}
	out["id"], out["feed_url"], out["enabled"] = f.ID, f.FeedURL, f.Enabled
	out["use_proxy"], out["validate_server_cert"] = f.UseProxy, f.ValidateServerCert
	if f.Name != "" {
		out["name"] = f.Name
	}
	if f.Username != "" {
		out["username"] = f.Username
	}
	if f.Password != "" {
		out["password"] = f.Password
	}
	return out
}

// ListFeeds returns every feed of the server.
func (c *Client) ListFeeds(ctx context.Context) ([]FeedRecord, error) {
	var fs []FeedRecord
	err := c.doJSON(ctx, http.MethodGet, "/api/v1/feed", nil, nil, &fs)
	return fs, err
}

// CreateFeed registers a feed; the server fetches its URL while handling
// the request.
func (c *Client) CreateFeed(ctx context.Context, f FeedRecord) (FeedRecord, error) {
	var out FeedRecord
	err := c.doJSON(ctx, http.MethodPost, "/api/v1/feed", nil, f, &out)
	return out, err
}

// UpdateFeed writes a feed's record back whole (f.All with the typed
// fields laid over it), as cbapi's Feed.save does: fields the caller did
// not change keep the values the server sent, and a server that refuses
// partial updates accepts it.
func (c *Client) UpdateFeed(ctx context.Context, f FeedRecord) error {
	return c.doJSON(ctx, http.MethodPut, "/api/v1/feed/"+strconv.Itoa(f.ID), nil, f.whole(), nil)
}

// SyncFeed asks the server to fetch the feed now; full also removes the
// reports that disappeared.
func (c *Client) SyncFeed(ctx context.Context, id int, full bool) error {
	return c.doJSON(ctx, http.MethodPost, "/api/v1/feed/"+strconv.Itoa(id)+"/synchronize", nil,
		map[string]bool{"full_sync": full}, nil)
}

func cbFlatten(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}
