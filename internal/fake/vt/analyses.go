package vt

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// analysis is an upload, rescan or URL submission. Its status is computed
// from its creation time, so nothing runs in the background.
type analysis struct {
	id      string
	created time.Time
	file    *fileRecord  // file analyses of uploads and synthetic files
	fixture *fixtureFile // rescans of loaded reports
	url     *urlRecord   // URL analyses
}

const (
	statusQueued     = "queued"
	statusInProgress = "in-progress"
	statusCompleted  = "completed"
)

func (s *Server) status(a *analysis, now time.Time) string {
	elapsed := now.Sub(a.created)
	switch {
	case elapsed >= s.analysisDelay:
		return statusCompleted
	case elapsed < s.analysisDelay/2:
		return statusQueued
	default:
		return statusInProgress
	}
}

// newFileAnalysis starts analysing a resolved file; an analysis of the same
// file created in the same second is the same analysis, as the id says.
// s.mu must be held.
func (s *Server) newFileAnalysis(hit fileHit, now time.Time) *analysis {
	return newFileAnalysisIn(s.analyses, hit, now)
}

// newFileAnalysisIn is newFileAnalysis recording into analyses (the
// public ones or a key's private ones).
func newFileAnalysisIn(analyses map[string]*analysis, hit fileHit, now time.Time) *analysis {
	md5 := ""
	if hit.fixture != nil {
		md5 = hit.fixture.md5
	} else {
		md5 = hit.rec.md5
	}
	id := base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "%s:%d", md5, now.Unix()))
	if a := analyses[id]; a != nil {
		return a
	}
	a := &analysis{id: id, created: now, file: hit.rec, fixture: hit.fixture}
	analyses[id] = a
	if hit.rec != nil {
		hit.rec.analyses = append(hit.rec.analyses, a)
	}
	return a
}

// newURLAnalysis starts analysing a URL. s.mu must be held.
func (s *Server) newURLAnalysis(u *urlRecord, now time.Time) *analysis {
	return newURLAnalysisIn(s.analyses, u, now)
}

// newURLAnalysisIn is newURLAnalysis recording into analyses.
func newURLAnalysisIn(analyses map[string]*analysis, u *urlRecord, now time.Time) *analysis {
	id := fmt.Sprintf("u-%s-%d", u.id, now.Unix())
	if a := analyses[id]; a != nil {
		return a
	}
	a := &analysis{id: id, created: now, url: u}
	analyses[id] = a
	u.analyses = append(u.analyses, a)
	return a
}

// analysisDescriptor is the answer to an upload or submission.
func analysisDescriptor(a *analysis, rq *request) obj {
	return analysisRef("analysis", "analyses/", a, rq)
}

// analysisRef is the descriptor of an analysis of type typ served under
// collection (e.g. "analyses/").
func analysisRef(typ, collection string, a *analysis, rq *request) obj {
	return dataEnvelope(obj{
		"type":  typ,
		"id":    a.id,
		"links": obj{"self": rq.apiURL(collection + a.id)},
	})
}

// analysisObject renders GET /analyses/{id}. s.mu must be held.
func (s *Server) analysisObject(a *analysis, now time.Time, rq *request) obj {
	st := s.status(a, now)
	attrs := obj{"status": st, "date": a.created.Unix()}
	keys := fileStatKeys
	if a.url != nil {
		keys = urlStatKeys
	}
	zero := map[string]int{}
	for _, k := range keys {
		zero[k] = 0
	}
	attrs["stats"], attrs["results"] = zero, obj{}
	if st == statusCompleted {
		done := a.created.Add(s.analysisDelay).Unix()
		switch {
		case a.fixture != nil:
			attrs["stats"], attrs["results"] = a.fixture.stats, a.fixture.results
		case a.file != nil:
			v := s.verdictAt(a.file, done)
			attrs["stats"], attrs["results"] = v.stats, v.results
		default:
			v := s.urlVerdict("url", a.url.id)
			attrs["stats"], attrs["results"] = v.stats, v.results
		}
	}
	return obj{
		"meta": analysisMeta(a),
		"data": obj{
			"type":       "analysis",
			"id":         a.id,
			"links":      obj{"self": rq.apiURL("analyses/" + a.id)},
			"attributes": attrs,
		},
	}
}

// analysisMeta is the meta member of an analysis: what was analysed.
func analysisMeta(a *analysis) obj {
	switch {
	case a.fixture != nil:
		return obj{"file_info": obj{"sha256": a.fixture.sha256, "sha1": a.fixture.sha1, "md5": a.fixture.md5, "size": a.fixture.size}}
	case a.file != nil:
		return obj{"file_info": obj{"sha256": a.file.sha256, "sha1": a.file.sha1, "md5": a.file.md5, "size": a.file.size}}
	default:
		return obj{"url_info": obj{"id": a.url.id, "url": a.url.url}}
	}
}

func analysisNotFound(w http.ResponseWriter, id string) {
	writeError(w, http.StatusNotFound, "NotFoundError", fmt.Sprintf("Analysis %q not found", id))
}

func (s *Server) handleGetAnalysis(w http.ResponseWriter, r *http.Request, rq *request) {
	id := rq.params[0]
	now := time.Now()
	s.mu.Lock()
	body := s.fixtures["analyses/"+id]
	a := s.analyses[id]
	var o obj
	if body == nil && a != nil {
		o = s.analysisObject(a, now, rq)
	}
	s.mu.Unlock()
	switch {
	case body != nil:
		writeBody(w, http.StatusOK, body)
	case a != nil:
		writeJSON(w, http.StatusOK, o)
	default:
		analysisNotFound(w, id)
	}
}

// handleAnalysisItem answers GET /analyses/{id}/item: the analysed object
// once the analysis is completed.
func (s *Server) handleAnalysisItem(w http.ResponseWriter, r *http.Request, rq *request) {
	id := rq.params[0]
	now := time.Now()
	s.mu.Lock()
	a := s.analyses[id]
	fixture := s.fixtures["analyses/"+id] != nil
	var st string
	if a != nil {
		st = s.status(a, now)
	}
	s.mu.Unlock()
	switch {
	case a != nil && st != statusCompleted:
		writeError(w, http.StatusBadRequest, "NotAvailableYet",
			fmt.Sprintf("Analysis %q is %s; its item is available once it is completed", id, st))
	case a != nil && a.url != nil:
		s.serveURL(w, a.url.id, rq)
	case a != nil && a.fixture != nil:
		s.serveFile(w, a.fixture.sha256, rq)
	case a != nil:
		s.serveFile(w, a.file.sha256, rq)
	case fixture:
		s.serveFixtureAnalysisItem(w, id, rq)
	default:
		analysisNotFound(w, id)
	}
}

// serveFixtureAnalysisItem resolves the item of a loaded analysis from its
// id: base64("<md5>:<ts>") for files, "u-<sha256>-<ts>" for URLs.
func (s *Server) serveFixtureAnalysisItem(w http.ResponseWriter, id string, rq *request) {
	if rest, ok := strings.CutPrefix(id, "u-"); ok {
		if sha, _, ok := strings.Cut(rest, "-"); ok && len(sha) == 64 && isHex(sha) {
			s.serveURL(w, strings.ToLower(sha), rq)
			return
		}
	}
	if raw, err := base64.StdEncoding.DecodeString(id); err == nil {
		if hash, _, ok := strings.Cut(string(raw), ":"); ok {
			if h, ok := normalizeFileID(hash); ok {
				s.serveFile(w, h, rq)
				return
			}
		}
	}
	analysisNotFound(w, id)
}

// rawStats decodes a loaded report's last_analysis_stats.
func rawStats(raw json.RawMessage) map[string]int {
	var m map[string]int
	if err := json.Unmarshal(raw, &m); err != nil {
		return map[string]int{}
	}
	return m
}
