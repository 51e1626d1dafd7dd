// Package vt is vtconnector's own client for the VirusTotal API v3.
//
// It owns the HTTP conversation with VirusTotal and nothing else: no
// pacing, no retries, no caching (those belong to internal/engine). Every
// call takes a context, the base URL is configurable (tests point it at
// internal/fake/vt), every answer is classified into a typed error that
// errors.Is matches against the sentinels in errors.go, and decoding is
// tolerant: every field is optional, nulls are allowed and unknown fields
// are ignored. Uploads stream from disk.
//
// It imports no other vtconnector package but internal/redirect (which
// keeps the key off other hosts) and internal/redact.
package vt

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/vtconnector/vtconnector/internal/redirect"
)

// DefaultBaseURL is the public API's base.
const DefaultBaseURL = "https://www.virustotal.com/api/v3"

// GUIBaseURL is where the VirusTotal web pages of objects live.
const GUIBaseURL = "https://www.virustotal.com/gui"

// maxBody caps how much of a JSON answer is read: the largest real file
// reports are a few hundred kilobytes.
const maxBody = 32 << 20

// Client talks to the VirusTotal API v3. It is safe for concurrent use.
type Client struct {
	base    *url.URL
	key     string
	hc      *http.Client
	agent   string
	tool    string
	timeout time.Duration
}

// Option configures a Client.
type Option func(*Client) error

// WithBaseURL sets the API base, e.g. "http://127.0.0.1:8080/api/v3".
func WithBaseURL(u string) Option {
	return func(c *Client) error {
		p, err := url.Parse(strings.TrimRight(u, "/"))
		if err != nil {
			return fmt.Errorf("base URL %q: %w", u, err)
		}
		if p.Scheme != "http" && p.Scheme != "https" || p.Host == "" {
			return fmt.Errorf("base URL %q: want http(s)://host[:port]/path", u)
		}
		c.base = p
		return nil
	}
}

// WithHTTPClient replaces the HTTP client (its Timeout is kept as is).
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) error { c.hc = redirect.Guard(hc, "x-apikey"); return nil }
}

// WithTimeout bounds each JSON request (default 60 s). Uploads are bounded
// by the caller's context only.
func WithTimeout(d time.Duration) Option {
	return func(c *Client) error { c.timeout = d; return nil }
}

// WithUserAgent sets the User-Agent and the x-tool header VirusTotal
// asks integrations to send.
func WithUserAgent(agent string) Option {
	return func(c *Client) error { c.agent = agent; c.tool = agent; return nil }
}

// New returns a client for apiKey. An empty key is refused: every API
// call needs one.
func New(apiKey string, opts ...Option) (*Client, error) {
	if strings.TrimSpace(apiKey) == "" {
		return nil, errors.New("vt: new client: empty API key")
	}
	base, _ := url.Parse(DefaultBaseURL)
	c := &Client{
		base:    base,
		key:     strings.TrimSpace(apiKey),
		hc:      redirect.Guard(nil, "x-apikey"),
		agent:   "vtconnector",
		tool:    "vtconnector",
		timeout: 60 * time.Second,
	}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, fmt.Errorf("vt: new client: %w", err)
		}
	}
	return c, nil
}

// BaseURL returns the API base the client talks to.
func (c *Client) BaseURL() string { return c.base.String() }

// endpoint builds base + "/" + path. Path segments must already be escaped.
func (c *Client) endpoint(path string, q url.Values) string {
	u := *c.base
	u.Path = strings.TrimRight(u.Path, "/") + "/" + path
	u.RawPath = ""
	if strings.Contains(path, "%") {
		u.RawPath = strings.TrimRight(c.base.EscapedPath(), "/") + "/" + path
		if p, err := url.PathUnescape(u.RawPath); err == nil {
			u.Path = p
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// do sends one request and returns the body of a 2xx answer, or a typed
// error. path is the part after the base, used in error messages.
func (c *Client) do(ctx context.Context, method, path, target string, body io.Reader, contentType string, contentLength int64, timeout bool) ([]byte, error) {
	if timeout && c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, fmt.Errorf("vt: %s %s: %w", method, path, err)
	}
	if contentLength >= 0 && body != nil {
		req.ContentLength = contentLength
	}
	req.Header.Set("x-apikey", c.key)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.agent)
	req.Header.Set("x-tool", c.tool)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, transportError(ctx, method, path, err)
	}
	defer resp.Body.Close()
	data, err := readBody(resp)
	if err != nil {
		return nil, transportError(ctx, method, path, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return data, nil
	}
	return nil, answerError(method, path, resp, data)
}

// readBody reads at most maxBody bytes of an answer, in one allocation
// when the server said how long it is.
func readBody(resp *http.Response) ([]byte, error) {
	if n := resp.ContentLength; n > 0 && n <= maxBody {
		buf := make([]byte, n+1) // one more: a body longer than announced is read on
		k, err := io.ReadFull(resp.Body, buf)
		switch {
		case errors.Is(err, io.ErrUnexpectedEOF) && int64(k) == n:
			return buf[:k], nil
		case err != nil:
			return nil, err
		}
		rest, err := io.ReadAll(io.LimitReader(resp.Body, maxBody-int64(k)))
		return append(buf, rest...), err
	}
	return io.ReadAll(io.LimitReader(resp.Body, maxBody))
}

// transportError classifies a failure to get an answer at all.
func transportError(ctx context.Context, method, path string, err error) error {
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return fmt.Errorf("vt: %s %s: %w", method, path, err)
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("vt: %s %s: %w: %w", method, path, ErrDeadlineExceeded, err)
	}
	return fmt.Errorf("vt: %s %s: %w: %w", method, path, ErrTransient, err)
}

// answerError turns a non-2xx answer into an *APIError or *QuotaError.
// Bodies that are not the JSON error envelope (HTML from a proxy, empty
// 429s) are classified by status alone.
func answerError(method, path string, resp *http.Response, body []byte) error {
	var env struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	e := APIError{Method: method, Path: path, Status: resp.StatusCode}
	if json.Unmarshal(body, &env) == nil {
		e.Code, e.Message = env.Error.Code, env.Error.Message
	}
	if len(e.Message) > 500 {
		e.Message = strings.ToValidUTF8(e.Message[:500], "") + "…"
	}
	if errors.Is(&e, ErrQuota) {
		return &QuotaError{APIError: e, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	}
	return &e
}

// getJSON GETs path and returns the "data" member of the envelope.
func (c *Client) getData(ctx context.Context, path string, q url.Values) (json.RawMessage, *envelope, error) {
	body, err := c.do(ctx, http.MethodGet, path, c.endpoint(path, q), nil, "", -1, true)
	if err != nil {
		return nil, nil, err
	}
	return decodeEnvelope(http.MethodGet, path, body)
}

type envelope struct {
	Data  json.RawMessage `json:"data"`
	Meta  json.RawMessage `json:"meta"`
	Links struct {
		Self string `json:"self"`
		Next string `json:"next"`
	} `json:"links"`
}

func decodeEnvelope(method, path string, body []byte) (json.RawMessage, *envelope, error) {
	var env envelope
	if err := tolerant(json.Unmarshal(body, &env)); err != nil {
		return nil, nil, fmt.Errorf("vt: %s %s: %w: answer is not JSON: %w", method, path, ErrTransient, err)
	}
	if d := bytes.TrimSpace(env.Data); len(d) == 0 || bytes.Equal(d, []byte("null")) {
		return nil, nil, fmt.Errorf("vt: %s %s: %w: answer has no data", method, path, ErrTransient)
	}
	return env.Data, &env, nil
}

func (c *Client) getObject(ctx context.Context, path string) (*Object, error) {
	data, _, err := c.getData(ctx, path, nil)
	if err != nil {
		return nil, err
	}
	o, err := DecodeObject(data)
	if err != nil {
		return nil, fmt.Errorf("vt: GET %s: %w: %w", path, ErrTransient, err)
	}
	return o, nil
}

// File returns the report of a file by MD5, SHA-1 or SHA-256.
func (c *Client) File(ctx context.Context, hash string) (*Object, error) {
	path, err := filePath(hash)
	if err != nil {
		return nil, err
	}
	return c.getObject(ctx, path)
}

// IPAddress returns the report of an IPv4 or IPv6 address.
func (c *Client) IPAddress(ctx context.Context, ip string) (*Object, error) {
	path, err := ipPath(ip)
	if err != nil {
		return nil, err
	}
	return c.getObject(ctx, path)
}

// Domain returns the report of a domain or host name.
func (c *Client) Domain(ctx context.Context, domain string) (*Object, error) {
	path, err := domainPath(domain)
	if err != nil {
		return nil, err
	}
	return c.getObject(ctx, path)
}

// URL returns the report of a URL, addressed by its identifier (see URLID).
func (c *Client) URL(ctx context.Context, rawURL string) (*Object, error) {
	return c.URLByID(ctx, URLID(rawURL))
}

// URLByID returns the report of a URL given its identifier: the unpadded
// base64url of the URL or the SHA-256 VirusTotal returns.
func (c *Client) URLByID(ctx context.Context, id string) (*Object, error) {
	path, err := urlPath(id)
	if err != nil {
		return nil, err
	}
	return c.getObject(ctx, path)
}

// filePath, ipPath, domainPath and urlPath check a lookup's identifier
// and return the API path of its report.
func filePath(hash string) (string, error) {
	if !IsHash(hash) {
		return "", fmt.Errorf("vt: file %q: %w: not an MD5, SHA-1 or SHA-256", hash, ErrBadRequest)
	}
	return "files/" + strings.ToLower(hash), nil
}

func ipPath(ip string) (string, error) {
	a, err := netipParse(ip)
	if err != nil {
		return "", fmt.Errorf("vt: ip address %q: %w: %w", ip, ErrBadRequest, err)
	}
	return "ip_addresses/" + url.PathEscape(a), nil
}

func domainPath(domain string) (string, error) {
	d, err := NormalizeDomain(domain)
	if err != nil {
		return "", fmt.Errorf("vt: domain %q: %w: %w", domain, ErrBadRequest, err)
	}
	return "domains/" + url.PathEscape(d), nil
}

func urlPath(id string) (string, error) {
	if id == "" {
		return "", fmt.Errorf("vt: url: %w: empty identifier", ErrBadRequest)
	}
	return "urls/" + url.PathEscape(id), nil
}

// URLServingIP returns the IP address that last served a URL (GET
// /urls/{id}/last_serving_ip_address), "" when VirusTotal has none.
func (c *Client) URLServingIP(ctx context.Context, id string) (string, error) {
	if id == "" {
		return "", fmt.Errorf("vt: url serving ip: %w: empty identifier", ErrBadRequest)
	}
	path := "urls/" + url.PathEscape(id) + "/last_serving_ip_address"
	body, err := c.do(ctx, http.MethodGet, path, c.endpoint(path, nil), nil, "", -1, true)
	if err != nil {
		return "", err
	}
	var env struct {
		Data *struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := tolerant(json.Unmarshal(body, &env)); err != nil {
		return "", fmt.Errorf("vt: GET %s: %w: answer is not JSON: %w", path, ErrTransient, err)
	}
	if env.Data == nil {
		return "", nil
	}
	ip, err := NormalizeIP(env.Data.ID)
	if err != nil {
		return "", nil // not an address: nothing usable on record
	}
	return ip, nil
}

// YARARuleset returns a crowdsourced YARA ruleset (name, rules, source).
func (c *Client) YARARuleset(ctx context.Context, id string) (*Object, error) {
	if id == "" {
		return nil, fmt.Errorf("vt: yara ruleset: %w: empty identifier", ErrBadRequest)
	}
	return c.getObject(ctx, "yara_rulesets/"+url.PathEscape(id))
}

// Page is one page of a collection.
type Page struct {
	Objects []*Object
	// Cursor fetches the next page; empty on the last one.
	Cursor string
	Count  int // meta.count when given
}

// Resolutions returns one page of the resolutions of a domain or an IP
// address. collection is "domains" or "ip_addresses"; limit ≤ 40.
func (c *Client) Resolutions(ctx context.Context, collection, id, cursor string, limit int) (*Page, error) {
	switch collection {
	case "domains", "ip_addresses":
	default:
		return nil, fmt.Errorf("vt: resolutions: %w: collection %q", ErrBadRequest, collection)
	}
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", fmt.Sprint(min(limit, 40)))
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	path := collection + "/" + url.PathEscape(id) + "/resolutions"
	data, env, err := c.getData(ctx, path, q)
	if err != nil {
		return nil, err
	}
	var items []json.RawMessage
	if err := json.Unmarshal(data, &items); err != nil {
		return nil, fmt.Errorf("vt: GET %s: %w: data is not a list", path, ErrTransient)
	}
	p := &Page{}
	for i, it := range items {
		o, err := DecodeObject(it)
		if err != nil {
			return nil, fmt.Errorf("vt: GET %s: %w: item %d: %w", path, ErrTransient, i, err)
		}
		p.Objects = append(p.Objects, o)
	}
	var meta struct {
		Count  int    `json:"count"`
		Cursor string `json:"cursor"`
	}
	_ = tolerant(json.Unmarshal(orNull(env.Meta), &meta))
	p.Count = meta.Count
	// The API puts the cursor in meta and in links.next; no next link
	// means this was the last page.
	if env.Links.Next != "" {
		p.Cursor = meta.Cursor
		if u, err := url.Parse(env.Links.Next); err == nil && u.Query().Get("cursor") != "" {
			p.Cursor = u.Query().Get("cursor")
		}
	}
	return p, nil
}

func orNull(b json.RawMessage) []byte {
	if len(b) == 0 {
		return []byte("null")
	}
	return b
}

// Analysis is the state of a file or URL analysis.
type Analysis struct {
	ID      string
	Status  string // queued, in-progress, completed
	Stats   Stats
	Date    int64
	SHA256  string // meta.file_info.sha256 for file analyses
	MD5     string
	URLID   string // meta.url_info.id for URL analyses
	URL     string
	Results map[string]EngineResult
}

// Completed reports whether the analysis is finished.
func (a *Analysis) Completed() bool { return a.Status == "completed" }

// Analysis returns the state of an analysis.
func (c *Client) Analysis(ctx context.Context, id string) (*Analysis, error) {
	return c.analysis(ctx, "analysis", "analyses", id)
}

// analysis GETs <collection>/{id}, an analysis object whose meta names the
// analysed file or URL. op names the operation in errors.
func (c *Client) analysis(ctx context.Context, op, collection, id string) (*Analysis, error) {
	if id == "" {
		return nil, fmt.Errorf("vt: %s: %w: empty identifier", op, ErrBadRequest)
	}
	path := collection + "/" + url.PathEscape(id)
	data, env, err := c.getData(ctx, path, nil)
	if err != nil {
		return nil, err
	}
	o, err := DecodeObject(data)
	if err != nil {
		return nil, fmt.Errorf("vt: GET %s: %w: %w", path, ErrTransient, err)
	}
	a := &Analysis{ID: o.ID, Status: o.Attributes.Status, Date: o.Attributes.Date, Results: o.Attributes.Results}
	if o.Attributes.Stats != nil {
		a.Stats = *o.Attributes.Stats
	}
	var meta struct {
		FileInfo struct {
			SHA256 string `json:"sha256"`
			MD5    string `json:"md5"`
		} `json:"file_info"`
		URLInfo struct {
			ID  string `json:"id"`
			URL string `json:"url"`
		} `json:"url_info"`
	}
	_ = tolerant(json.Unmarshal(orNull(env.Meta), &meta))
	a.SHA256, a.MD5 = meta.FileInfo.SHA256, meta.FileInfo.MD5
	a.URLID, a.URL = meta.URLInfo.ID, meta.URLInfo.URL
	return a, nil
}

// postForAnalysis sends a POST whose answer is an analysis descriptor and
// returns the analysis id.
func (c *Client) postForAnalysis(ctx context.Context, path, target string, body io.Reader, contentType string, n int64, timeout bool) (string, error) {
	raw, err := c.do(ctx, http.MethodPost, path, target, body, contentType, n, timeout)
	if err != nil {
		return "", err
	}
	data, _, err := decodeEnvelope(http.MethodPost, path, raw)
	if err != nil {
		return "", err
	}
	o, err := DecodeObject(data)
	if err != nil {
		return "", fmt.Errorf("vt: POST %s: %w: %w", path, ErrTransient, err)
	}
	return o.ID, nil
}

// Reanalyse asks VirusTotal to scan a known file again and returns the
// analysis id (POST /files/{id}/analyse).
func (c *Client) Reanalyse(ctx context.Context, hash string) (string, error) {
	if !IsHash(hash) {
		return "", fmt.Errorf("vt: analyse %q: %w: not a hash", hash, ErrBadRequest)
	}
	path := "files/" + strings.ToLower(hash) + "/analyse"
	return c.postForAnalysis(ctx, path, c.endpoint(path, nil), nil, "", -1, true)
}

// SubmitURL asks VirusTotal to scan a URL and returns the analysis id.
func (c *Client) SubmitURL(ctx context.Context, rawURL string) (string, error) {
	return c.submitURL(ctx, "submit url", "urls", rawURL)
}

// submitURL POSTs the form url=rawURL to collection and returns the
// analysis id. op names the operation in errors.
func (c *Client) submitURL(ctx context.Context, op, collection, rawURL string) (string, error) {
	if strings.TrimSpace(rawURL) == "" {
		return "", fmt.Errorf("vt: %s: %w: empty URL", op, ErrBadRequest)
	}
	form := url.Values{"url": {rawURL}}.Encode()
	return c.postForAnalysis(ctx, collection, c.endpoint(collection, nil), strings.NewReader(form),
		"application/x-www-form-urlencoded", int64(len(form)), true)
}

// Download writes the content of a file to w (premium keys only). It
// follows VirusTotal's redirect to the storage URL.
func (c *Client) Download(ctx context.Context, hash string, w io.Writer) (int64, error) {
	if !IsHash(hash) {
		return 0, fmt.Errorf("vt: download %q: %w: not a hash", hash, ErrBadRequest)
	}
	path := "files/" + strings.ToLower(hash) + "/download"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.endpoint(path, nil), nil)
	if err != nil {
		return 0, fmt.Errorf("vt: GET %s: %w", path, err)
	}
	req.Header.Set("x-apikey", c.key)
	req.Header.Set("User-Agent", c.agent)
	req.Header.Set("x-tool", c.tool)
	// The client's redirect guard keeps the key from the storage host
	// VirusTotal redirects to.
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, transportError(ctx, http.MethodGet, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return 0, answerError(http.MethodGet, path, resp, data)
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, transportError(ctx, http.MethodGet, path, err)
	}
	return n, nil
}

// URLID is VirusTotal's identifier for a URL: the unpadded base64url of
// the URL as given (VirusTotal canonicalises it server-side).
func URLID(rawURL string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(rawURL))
}
