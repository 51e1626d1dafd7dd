package vt

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// urlRecord is a URL the simulator has seen (looked up by its base64 form
// or submitted).
type urlRecord struct {
	id          string // sha256 of the canonical URL
	url         string
	submissions []time.Time
	analyses    []*analysis
}

// canonicalURL applies the small part of VirusTotal's (undocumented)
// canonicalisation the simulator needs: trim, default scheme http, lower-case
// scheme and host, and a "/" path for bare hosts.
func canonicalURL(raw string) (string, bool) {
	raw = strings.TrimSpace(raw)
	if raw == "" || !utf8.ValidString(raw) || strings.ContainsAny(raw, " \t\r\n") {
		return "", false
	}
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Scheme == "" {
		return "", false
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = strings.ToLower(u.Host)
	if u.Path == "" && u.RawPath == "" {
		u.Path = "/"
	}
	return u.String(), true
}

func urlSHA(canonical string) string {
	sum := sha256.Sum256([]byte(canonical))
	return hex.EncodeToString(sum[:])
}

// decodeURLID decodes the base64 form of a URL id: unpadded base64url as
// documented, with standard and padded alphabets accepted for tolerance.
func decodeURLID(id string) (string, bool) {
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.StdEncoding} {
		if b, err := enc.DecodeString(id); err == nil {
			return string(b), true
		}
	}
	return "", false
}

// resolveURLID turns a URL id into the sha256 id and, when known, the URL.
// It writes the error and reports false when the id is unusable.
func (s *Server) resolveURLID(w http.ResponseWriter, id string) (sha, rawURL string, ok bool) {
	sha, canonical, ok := parseURLID(w, id)
	if !ok {
		return "", "", false
	}
	if canonical == "" {
		s.mu.Lock()
		if u := s.urls[sha]; u != nil {
			rawURL = u.url
		} else {
			rawURL = s.fixtureURLs[sha]
		}
		s.mu.Unlock()
		return sha, rawURL, true
	}
	s.mu.Lock()
	s.rememberURL(sha, canonical)
	s.mu.Unlock()
	return sha, canonical, true
}

// parseURLID reads a URL id: a SHA-256 (canonical is then empty) or the
// base64 of a URL. It writes the error and reports false when the id is
// unusable. It changes no state.
func parseURLID(w http.ResponseWriter, id string) (sha, canonical string, ok bool) {
	if len(id) == 64 && isHex(id) {
		return strings.ToLower(id), "", true
	}
	decoded, ok := decodeURLID(id)
	if !ok {
		writeError(w, http.StatusBadRequest, "InvalidArgumentError",
			fmt.Sprintf("Invalid URL identifier %q: expected a SHA-256 or the URL in unpadded base64url", id))
		return "", "", false
	}
	canonical, ok = canonicalURL(decoded)
	if !ok {
		// The real service answers ids that decode to garbage with 404.
		urlNotFound(w, id)
		return "", "", false
	}
	return urlSHA(canonical), canonical, true
}

// rememberURL records a URL seen by base64 id or submission. s.mu must be
// held.
func (s *Server) rememberURL(sha, canonical string) *urlRecord {
	u := s.urls[sha]
	if u == nil {
		u = &urlRecord{id: sha, url: canonical}
		s.urls[sha] = u
	}
	return u
}

func urlNotFound(w http.ResponseWriter, id string) {
	writeError(w, http.StatusNotFound, "NotFoundError", fmt.Sprintf("URL %q not found", id))
}

func (s *Server) handleGetURL(w http.ResponseWriter, r *http.Request, rq *request) {
	raw := rq.params[0]
	s.mu.Lock()
	body := s.fixtures["urls/"+raw]
	s.mu.Unlock()
	if body != nil {
		writeBody(w, http.StatusOK, body)
		return
	}
	sha, _, ok := s.resolveURLID(w, raw)
	if !ok {
		return
	}
	s.serveURL(w, sha, rq)
}

// serveURL answers with the URL report for a sha256 id.
func (s *Server) serveURL(w http.ResponseWriter, sha string, rq *request) {
	now := time.Now()
	s.mu.Lock()
	body := s.fixtures["urls/"+sha]
	var o obj
	if body == nil {
		o = s.urlObject(sha, now, rq)
	}
	s.mu.Unlock()
	switch {
	case body != nil:
		writeBody(w, http.StatusOK, body)
	case o != nil:
		writeJSON(w, http.StatusOK, dataEnvelope(o))
	default:
		urlNotFound(w, sha)
	}
}

// urlObject renders a URL report, or nil when the URL is unknown: its text
// was never seen, or it is in the unknown share and no submission of it has
// completed. s.mu must be held.
func (s *Server) urlObject(sha string, now time.Time, rq *request) obj {
	u := s.urls[sha]
	if u == nil {
		return nil
	}
	var done time.Time
	for i := len(u.analyses) - 1; i >= 0; i-- {
		if a := u.analyses[i]; s.status(a, now) == statusCompleted {
			done = a.created.Add(s.analysisDelay)
			break
		}
	}
	known := !s.unknown("url", sha)
	if !known && done.IsZero() {
		return nil
	}
	r := s.rng("url", sha)
	lastAnalysis := pastDate(r, anchor)
	lastSub := lastAnalysis - r.Int64N(86400)
	firstSub := lastSub - r.Int64N(2*365*86400)
	times := between(r, 1, 500)
	if !known {
		times, firstSub = 0, 0
	}
	if n := len(u.submissions); n > 0 {
		if firstSub == 0 || u.submissions[0].Unix() < firstSub {
			firstSub = u.submissions[0].Unix()
		}
		lastSub = u.submissions[n-1].Unix()
		times += n
	}
	if !done.IsZero() {
		lastAnalysis = done.Unix()
	}
	v := s.urlVerdict("url", sha)
	mal := v.stats["malicious"]
	parsed, _ := url.Parse(u.url)
	host := ""
	if parsed != nil {
		host = parsed.Hostname()
	}
	code := pick(r, []int{200, 200, 200, 200, 200, 200, 301, 403, 404})
	finalURL := u.url
	if code == 301 {
		finalURL = strings.Replace(u.url, "http://", "https://", 1)
		code = 200
	}
	title := pick(r, []string{"Welcome to " + host, capitalize(host) + " - Home", host, "Index of /"})
	categories := obj{}
	threatNames := []string{}
	tags := []string{}
	reputation := r.IntN(10)
	if mal > 0 {
		title = pick(r, []string{"Sign in to your account", "Microsoft Office 365", "Verify your identity", "Index of /"})
		for _, e := range categoryEngines[:between(r, 1, 4)] {
			categories[e] = pick(r, badCategories)
		}
		threatNames = append(threatNames, pick(r, []string{"Mal/HTMLGen-A", "C2/Generic-A", "Phish/Generic-B", "Troj/JSRedir-A"}))
		tags = append(tags, pick(r, []string{"multiple-redirects", "external-resources", "iframes"}))
		reputation = -mal * 3
	} else {
		for _, e := range categoryEngines[:between(r, 1, 4)] {
			categories[e] = pick(r, cleanCategories)
		}
	}
	attrs := obj{
		"url":                               u.url,
		"last_final_url":                    finalURL,
		"title":                             title,
		"last_http_response_code":           code,
		"last_http_response_content_length": between(r, 200, 200000),
		"last_http_response_content_sha256": s.hexID(64, "url-content", sha),
		"has_content":                       false,
		"categories":                        categories,
		"last_analysis_stats":               v.stats,
		"last_analysis_results":             v.results,
		"last_analysis_date":                lastAnalysis,
		"last_submission_date":              lastSub,
		"first_submission_date":             firstSub,
		"last_modification_date":            lastAnalysis + r.Int64N(600),
		"times_submitted":                   times,
		"reputation":                        reputation,
		"tags":                              tags,
		"threat_names":                      threatNames,
		"total_votes":                       obj{"harmless": r.IntN(3), "malicious": min(mal, r.IntN(3))},
		"last_http_response_headers":        obj{"content-type": "text/html; charset=UTF-8", "server": pick(r, []string{"nginx", "Apache", "cloudflare", "Microsoft-IIS/10.0"})},
		"redirection_chain":                 []string{u.url},
	}
	return obj{
		"type":       "url",
		"id":         sha,
		"links":      obj{"self": rq.apiURL("urls/" + sha)},
		"attributes": attrs,
	}
}

func (s *Server) handleSubmitURL(w http.ResponseWriter, r *http.Request, rq *request) {
	canonical, ok := submittedURL(w, r)
	if !ok {
		return
	}
	now := time.Now()
	s.mu.Lock()
	u := s.rememberURL(urlSHA(canonical), canonical)
	u.submissions = append(u.submissions, now)
	a := s.newURLAnalysis(u, now)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, analysisDescriptor(a, rq))
}

// submittedURL reads the "url" field of a URL submission (urlencoded or
// multipart form) and canonicalises it. It writes the error and reports
// false when there is no usable URL.
func submittedURL(w http.ResponseWriter, r *http.Request) (string, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	var raw string
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "multipart/form-data":
		if err := r.ParseMultipartForm(maxFormBody); err != nil {
			writeError(w, http.StatusBadRequest, "BadRequestError", "Malformed multipart body: "+err.Error())
			return "", false
		}
		raw = r.FormValue("url")
	case "application/x-www-form-urlencoded":
		if err := r.ParseForm(); err != nil {
			writeError(w, http.StatusBadRequest, "BadRequestError", "Malformed form body: "+err.Error())
			return "", false
		}
		raw = r.PostFormValue("url")
	default:
		writeError(w, http.StatusBadRequest, "BadRequestError",
			"Expecting an application/x-www-form-urlencoded or multipart/form-data body with a \"url\" field")
		return "", false
	}
	if raw == "" {
		writeError(w, http.StatusBadRequest, "BadRequestError", "Missing form field \"url\"")
		return "", false
	}
	canonical, ok := canonicalURL(raw)
	if !ok {
		writeError(w, http.StatusBadRequest, "InvalidArgumentError", fmt.Sprintf("Unable to canonicalize url %q", raw))
		return "", false
	}
	return canonical, true
}

// handleRescanURL answers POST /urls/{id}/analyse for a known URL.
func (s *Server) handleRescanURL(w http.ResponseWriter, r *http.Request, rq *request) {
	sha, rawURL, ok := s.resolveURLID(w, rq.params[0])
	if !ok {
		return
	}
	now := time.Now()
	s.mu.Lock()
	known := s.fixtures["urls/"+sha] != nil && rawURL != ""
	if !known && s.urls[sha] != nil {
		known = s.urlObject(sha, now, rq) != nil
	}
	var a *analysis
	if known {
		a = s.newURLAnalysis(s.rememberURL(sha, rawURL), now)
	}
	s.mu.Unlock()
	if !known {
		urlNotFound(w, rq.params[0])
		return
	}
	writeJSON(w, http.StatusOK, analysisDescriptor(a, rq))
}
