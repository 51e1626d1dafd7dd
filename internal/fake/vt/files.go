package vt

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"time"
)

// fileRecord is a file the simulator knows: synthesised from an id, or
// uploaded.
type fileRecord struct {
	md5, sha1, sha256 string
	size              int64
	kind              fileKind
	names             []string
	tags              []string
	uploaded          bool

	// Synthetic history (uploads: derived from submissions).
	firstSub, lastSub, lastAnalysis int64
	timesSubmitted, uniqueSources   int
	reputation, votesHarmless       int
	votesMalicious                  int

	// Uploads.
	eicar       bool
	content     []byte // kept when small enough
	hasContent  bool
	submissions []time.Time

	analyses []*analysis // uploads and rescans, oldest first
}

// fixtureFile is what the simulator needs to know about a loaded file
// report to rescan it.
type fixtureFile struct {
	md5, sha1, sha256 string
	size              int64
	stats             map[string]int
	results           json.RawMessage
	path              string // fixtures key
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') {
			return false
		}
	}
	return s != ""
}

// normalizeFileID validates an MD5, SHA-1 or SHA-256 and lower-cases it.
func normalizeFileID(id string) (string, bool) {
	switch len(id) {
	case 32, 40, 64:
		if isHex(id) {
			return strings.ToLower(id), true
		}
	}
	return "", false
}

// synthFile generates the file a never-seen id stands for. The queried hash
// is the object's own; the other two are derived from it.
func (s *Server) synthFile(origin string) *fileRecord {
	r := s.rng("file", origin)
	rec := &fileRecord{
		md5:    s.hexID(32, "md5", origin),
		sha1:   s.hexID(40, "sha1", origin),
		sha256: s.hexID(64, "sha256", origin),
	}
	switch len(origin) {
	case 32:
		rec.md5 = origin
	case 40:
		rec.sha1 = origin
	default:
		rec.sha256 = origin
	}
	rec.kind = pick(r, fileKinds)
	rec.size = rec.kind.minSize + r.Int64N(rec.kind.maxSize-rec.kind.minSize)
	for range between(r, 1, 4) {
		name := pick(r, nameWords)
		if r.IntN(2) == 0 {
			name += fmt.Sprintf("_%d", r.IntN(10000))
		}
		if rec.kind.ext != "" {
			name += "." + rec.kind.ext
		}
		rec.names = append(rec.names, name)
	}
	rec.tags = append([]string{}, rec.kind.tags...)
	rec.lastAnalysis = pastDate(r, anchor)
	rec.lastSub = rec.lastAnalysis - r.Int64N(3*86400)
	rec.firstSub = rec.lastSub - r.Int64N(3*365*86400)
	rec.timesSubmitted = between(r, 1, 400)
	rec.uniqueSources = between(r, 1, max(1, rec.timesSubmitted/3))
	rec.votesHarmless = r.IntN(3)
	rec.votesMalicious = r.IntN(3)
	if r.Float64() < 0.7 {
		rec.votesHarmless, rec.votesMalicious = 0, 0
	}
	return rec
}

// verdictAt scans the record as of date.
func (s *Server) verdictAt(rec *fileRecord, date int64) verdict {
	forced := -1
	if rec.eicar {
		forced = 55 + int(s.digest("eicar", rec.sha256)[0]%10)
	}
	return s.fileVerdict(rec.sha256, rec.kind, date, forced)
}

// lastCompleted is the completion time of the record's latest completed
// analysis. s.mu must be held.
func (s *Server) lastCompleted(rec *fileRecord, now time.Time) (time.Time, bool) {
	for i := len(rec.analyses) - 1; i >= 0; i-- {
		if a := rec.analyses[i]; s.status(a, now) == statusCompleted {
			return a.created.Add(s.analysisDelay), true
		}
	}
	return time.Time{}, false
}

// fileObject renders a file record. s.mu must be held.
func (s *Server) fileObject(rec *fileRecord, now time.Time, rq *request) obj {
	firstSub, lastSub, lastAnalysis := rec.firstSub, rec.lastSub, rec.lastAnalysis
	times, sources := rec.timesSubmitted, rec.uniqueSources
	reputation, votesH, votesM := rec.reputation, rec.votesHarmless, rec.votesMalicious
	if rec.uploaded {
		firstSub, lastSub = rec.submissions[0].Unix(), rec.submissions[len(rec.submissions)-1].Unix()
		times, sources = len(rec.submissions), 1
		if !s.unknown("file", rec.sha256) { // the service had seen it before
			prior := s.synthFile(rec.sha256)
			firstSub = min(firstSub, prior.firstSub)
			times += prior.timesSubmitted
			sources += prior.uniqueSources
			votesH, votesM = prior.votesHarmless, prior.votesMalicious
		}
	}
	if t, ok := s.lastCompleted(rec, now); ok {
		lastAnalysis = t.Unix()
	}
	v := s.verdictAt(rec, lastAnalysis)
	if v.stats["malicious"] >= 5 {
		reputation = -min(v.stats["malicious"]/2+votesM, 100)
	} else if !rec.uploaded {
		reputation = int(s.digest("reputation", rec.sha256)[0] % 5)
	}
	tags := append([]string{}, rec.tags...)
	attrs := fileIdentity(rec)
	maps.Copy(attrs, obj{
		"reputation":             reputation,
		"times_submitted":        times,
		"unique_sources":         sources,
		"first_submission_date":  firstSub,
		"last_submission_date":   lastSub,
		"last_analysis_date":     lastAnalysis,
		"last_modification_date": max(lastAnalysis, lastSub),
		"last_analysis_stats":    v.stats,
		"last_analysis_results":  v.results,
		"total_votes":            obj{"harmless": votesH, "malicious": votesM},
	})
	if th := v.threat; th != nil && v.stats["malicious"] >= 5 {
		attrs["popular_threat_classification"] = s.threatClassification(rec.sha256, th, v.stats["malicious"])
		if yara := s.yaraMatches(rec.sha256, th, lastAnalysis); len(yara) > 0 {
			attrs["crowdsourced_yara_results"] = yara
		}
		if th.family.category == "miner" || th.family.category == "ransomware" {
			tags = append(tags, "detect-debug-environment")
		}
		tags = append(tags, "long-sleeps")
	}
	attrs["tags"] = nonNil(tags)
	return obj{
		"type":       "file",
		"id":         rec.sha256,
		"links":      obj{"self": rq.apiURL("files/" + rec.sha256)},
		"attributes": attrs,
	}
}

// fileIdentity is the attributes saying what a file is (hashes, size,
// type, names), common to public and private reports.
func fileIdentity(rec *fileRecord) obj {
	attrs := obj{
		"md5":              rec.md5,
		"sha1":             rec.sha1,
		"sha256":           rec.sha256,
		"size":             rec.size,
		"type_description": rec.kind.description,
		"type_tag":         rec.kind.tag,
		"magic":            rec.kind.magic,
		"names":            nonNil(rec.names),
	}
	if rec.kind.ext != "" {
		attrs["type_extension"] = rec.kind.ext
	}
	if len(rec.names) > 0 {
		attrs["meaningful_name"] = rec.names[0]
	}
	return attrs
}

func (s *Server) threatClassification(key string, th *threat, detections int) obj {
	r := s.rng("threat", key)
	type kv struct {
		Count int    `json:"count"`
		Value string `json:"value"`
	}
	cats := []kv{{detections/2 + r.IntN(detections/2+1), th.family.category}}
	if th.family.category != "trojan" {
		cats = append(cats, kv{Count: 1 + r.IntN(max(1, cats[0].Count/2)), Value: "trojan"})
	}
	names := []kv{{max(1, detections/3+r.IntN(detections/3+1)), th.family.name}}
	second := strings.ToLower(th.platform)
	if second == "win32" {
		second = "msil"
		if th.platform == "Win32" {
			second = "generickd"
		}
	}
	names = append(names, kv{Count: 1 + r.IntN(names[0].Count), Value: second})
	label := th.family.category + "." + th.family.name + "/" + second
	if th.family.name == "eicar" {
		label = "virus.eicar/test"
	}
	return obj{
		"suggested_threat_label":  label,
		"popular_threat_category": cats,
		"popular_threat_name":     names,
	}
}

// yaraMatches returns crowdsourced_yara_results for some malicious files;
// every ruleset_id resolves at yara_rulesets/{id}.
func (s *Server) yaraMatches(key string, th *threat, date int64) []obj {
	r := s.rng("yara-match", key)
	ids := s.yaraByFamily[th.family.name]
	if len(ids) == 0 || r.Float64() >= 0.45 {
		return nil
	}
	n := between(r, 1, len(ids))
	out := make([]obj, 0, n)
	for _, id := range ids[:n] {
		rs := s.synthYaraRuleset(id)
		i := r.IntN(len(rs.ruleNames))
		out = append(out, obj{
			"ruleset_id":   rs.id,
			"ruleset_name": rs.name,
			"rule_name":    rs.ruleNames[i],
			"description":  rs.descriptions[i],
			"author":       rs.author,
			"source":       rs.source,
			"match_date":   date,
		})
	}
	return out
}

func nonNil(xs []string) []string {
	if xs == nil {
		return []string{}
	}
	return xs
}

// fileHit is a resolved file id.
type fileHit struct {
	fixture *fixtureFile
	rec     *fileRecord
}

// findFile resolves a normalised hash as GET /files/{id} would: fixtures,
// then completed uploads, then remembered synthetic objects, then a new
// synthetic object unless the id is unknown. s.mu must be held.
func (s *Server) findFile(id string, now time.Time) (fileHit, bool) {
	if f := s.fixtureFiles[id]; f != nil {
		return fileHit{fixture: f}, true
	}
	if u := s.uploads[id]; u != nil {
		if _, ok := s.lastCompleted(u, now); ok {
			return fileHit{rec: u}, true
		}
	}
	if rec := s.synthFiles[id]; rec != nil {
		return fileHit{rec: rec}, true
	}
	if origin, ok := s.synthAlias[id]; ok {
		return fileHit{rec: s.synthFile(origin)}, true
	}
	if s.unknown("file", id) {
		return fileHit{}, false
	}
	// Remember only the two derived hashes; the object itself is
	// regenerated from its origin on every lookup.
	rec := s.synthFile(id)
	for _, h := range []string{rec.md5, rec.sha1, rec.sha256} {
		if _, taken := s.synthAlias[h]; !taken && h != id {
			s.synthAlias[h] = id
		}
	}
	return fileHit{rec: rec}, true
}

// keepSynth makes a synthetic record stateful (it now has analyses), so
// later lookups by any of its hashes return this very record. s.mu must be
// held.
func (s *Server) keepSynth(rec *fileRecord) {
	if rec.uploaded {
		return
	}
	for _, h := range []string{rec.md5, rec.sha1, rec.sha256} {
		if s.synthFiles[h] == nil {
			s.synthFiles[h] = rec
		}
	}
}

// findFileForAction is findFile that also accepts uploads still being
// analysed (a rescan or download of a just-uploaded file is fine).
func (s *Server) findFileForAction(id string, now time.Time) (fileHit, bool) {
	if u := s.uploads[id]; u != nil && s.fixtureFiles[id] == nil {
		return fileHit{rec: u}, true
	}
	return s.findFile(id, now)
}

func fileNotFound(w http.ResponseWriter, id string) {
	writeError(w, http.StatusNotFound, "NotFoundError", fmt.Sprintf("File %q not found", id))
}

func invalidFileID(w http.ResponseWriter, id string) {
	writeError(w, http.StatusBadRequest, "InvalidArgumentError",
		fmt.Sprintf("Invalid file identifier %q: expected an MD5, SHA-1 or SHA-256", id))
}

func (s *Server) handleGetFile(w http.ResponseWriter, r *http.Request, rq *request) {
	id, ok := normalizeFileID(rq.params[0])
	if !ok {
		invalidFileID(w, rq.params[0])
		return
	}
	s.serveFile(w, id, rq)
}

// serveFile answers with the file report for a normalised hash.
func (s *Server) serveFile(w http.ResponseWriter, id string, rq *request) {
	now := time.Now()
	s.mu.Lock()
	hit, ok := s.findFile(id, now)
	var body []byte
	var o obj
	switch {
	case !ok:
	case hit.fixture != nil:
		body = s.fixtures[hit.fixture.path]
	default:
		o = s.fileObject(hit.rec, now, rq)
	}
	s.mu.Unlock()
	switch {
	case !ok:
		fileNotFound(w, id)
	case body != nil:
		writeBody(w, http.StatusOK, body)
	default:
		writeJSON(w, http.StatusOK, dataEnvelope(o))
	}
}

func (s *Server) handleRescanFile(w http.ResponseWriter, r *http.Request, rq *request) {
	id, ok := normalizeFileID(rq.params[0])
	if !ok {
		invalidFileID(w, rq.params[0])
		return
	}
	now := time.Now()
	s.mu.Lock()
	hit, ok := s.findFileForAction(id, now)
	var a *analysis
	if ok {
		if hit.rec != nil {
			s.keepSynth(hit.rec) // findFile returned the kept record if there was one
		}
		a = s.newFileAnalysis(hit, now)
	}
	s.mu.Unlock()
	if !ok {
		fileNotFound(w, id)
		return
	}
	writeJSON(w, http.StatusOK, analysisDescriptor(a, rq))
}

// downloadable resolves a file whose bytes the simulator holds; it writes
// the error and reports false otherwise.
func (s *Server) downloadable(w http.ResponseWriter, rq *request) (token string, ok bool) {
	if !s.premium[rq.key] {
		writeError(w, http.StatusForbidden, "ForbiddenError", "You are not allowed to perform the requested operation")
		return "", false
	}
	id, valid := normalizeFileID(rq.params[0])
	if !valid {
		invalidFileID(w, rq.params[0])
		return "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.uploads[id]
	if rec == nil || !rec.hasContent {
		if _, known := s.findFileForAction(id, time.Now()); known {
			writeError(w, http.StatusNotFound, "NotFoundError",
				fmt.Sprintf("File %q content is not available in the simulator (only uploaded files up to 32MB are kept)", id))
			return "", false
		}
		fileNotFound(w, id)
		return "", false
	}
	token = s.hexID(40, "download", rec.sha256)
	s.downloads[token] = rec
	return token, true
}

func (s *Server) handleDownload(w http.ResponseWriter, r *http.Request, rq *request) {
	token, ok := s.downloadable(w, rq)
	if !ok {
		return
	}
	loc := rq.base + downloadPrefix + token
	w.Header().Set("Location", loc)
	writeJSON(w, http.StatusFound, dataEnvelope(loc))
}

func (s *Server) handleDownloadURL(w http.ResponseWriter, r *http.Request, rq *request) {
	token, ok := s.downloadable(w, rq)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, dataEnvelope(rq.base+downloadPrefix+token))
}

// serveDownload serves the bytes behind a download link. The link itself is
// the credential, like the real signed URLs.
func (s *Server) serveDownload(w http.ResponseWriter, r *http.Request, m match, rq *request) {
	if m.allow != nil {
		notRouted(w, r, m)
		return
	}
	s.mu.Lock()
	rec := s.downloads[rq.params[0]]
	var content []byte
	if rec != nil {
		content = rec.content
	}
	s.mu.Unlock()
	if rec == nil {
		writeError(w, http.StatusNotFound, "NotFoundError", "Download link not found")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", fmt.Sprint(len(content)))
	h.Set("Content-Disposition", `attachment; filename="`+rec.sha256+`"`)
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(content)
	}
}
