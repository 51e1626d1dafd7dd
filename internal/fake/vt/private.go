package vt

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Private Scanning (docs.virustotal.com/reference/private-files-api): the
// upload, submission and analysis life cycle of the public endpoints under
// /private/, for keys with the license (Config.PrivateKeys). What a key
// scans privately lives in that key's privateStore only: the public
// endpoints and other keys never see it. Private file reports have no
// antivirus results; they carry sandbox verdicts and a threat severity,
// derived from the content and the seed like every synthetic object.

// privateStore is what one API key has scanned privately.
type privateStore struct {
	files    map[string]*fileRecord // by each hash (the API takes SHA-256 only)
	urls     map[string]*urlRecord  // by sha256
	analyses map[string]*analysis   // by analysis id
}

// privateFor returns key's store. s.mu must be held.
func (s *Server) privateFor(key string) *privateStore {
	st := s.private[key]
	if st == nil {
		st = &privateStore{files: map[string]*fileRecord{}, urls: map[string]*urlRecord{}, analyses: map[string]*analysis{}}
		s.private[key] = st
	}
	return st
}

type handler = func(w http.ResponseWriter, r *http.Request, rq *request)

// privateOnly guards a /private/ endpoint: keys without the Private
// Scanning license get 403 ForbiddenError.
func (s *Server) privateOnly(h handler) handler {
	return func(w http.ResponseWriter, r *http.Request, rq *request) {
		if len(s.privateKeys) > 0 && !s.privateKeys[rq.key] {
			writeError(w, http.StatusForbidden, "ForbiddenError", "You are not allowed to perform the requested operation")
			return
		}
		h(w, r, rq)
	}
}

func privateAnalysisDescriptor(a *analysis, rq *request) obj {
	return analysisRef("private_analysis", "private/analyses/", a, rq)
}

func (s *Server) handlePrivateUploadURL(w http.ResponseWriter, r *http.Request, rq *request) {
	s.grantUploadSlot(w, rq, true)
}

func (s *Server) handlePrivateUpload(w http.ResponseWriter, r *http.Request, rq *request) {
	if got, ok := s.receive(w, r, maxDirectBody, maxDirectBody); ok {
		s.startPrivateUpload(w, got, rq)
	}
}

// startPrivateUpload stores a received private upload in the key's store
// and answers with its new private analysis. Its bytes are not kept:
// private files cannot be downloaded.
func (s *Server) startPrivateUpload(w http.ResponseWriter, got *received, rq *request) {
	got.kept, got.content = false, nil
	now := time.Now()
	s.mu.Lock()
	st := s.privateFor(rq.key)
	rec := s.storeUpload(st.files, got, now)
	a := newFileAnalysisIn(st.analyses, fileHit{rec: rec}, now)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, privateAnalysisDescriptor(a, rq))
}

func (s *Server) handlePrivateSubmitURL(w http.ResponseWriter, r *http.Request, rq *request) {
	canonical, ok := submittedURL(w, r)
	if !ok {
		return
	}
	now := time.Now()
	sha := urlSHA(canonical)
	s.mu.Lock()
	st := s.privateFor(rq.key)
	u := st.urls[sha]
	if u == nil {
		u = &urlRecord{id: sha, url: canonical}
		st.urls[sha] = u
	}
	u.submissions = append(u.submissions, now)
	a := newURLAnalysisIn(st.analyses, u, now)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, privateAnalysisDescriptor(a, rq))
}

func (s *Server) handleGetPrivateAnalysis(w http.ResponseWriter, r *http.Request, rq *request) {
	id := rq.params[0]
	now := time.Now()
	s.mu.Lock()
	a := s.privateFor(rq.key).analyses[id]
	var o obj
	if a != nil {
		o = s.privateAnalysisObject(a, now, rq)
	}
	s.mu.Unlock()
	if a == nil {
		analysisNotFound(w, id)
		return
	}
	writeJSON(w, http.StatusOK, o)
}

// privateAnalysisObject renders GET /private/analyses/{id}: status and
// date, the stages still running, no antivirus stats. s.mu must be held.
func (s *Server) privateAnalysisObject(a *analysis, now time.Time, rq *request) obj {
	st := s.status(a, now)
	attrs := obj{"status": st, "date": a.created.Unix()}
	if st != statusCompleted {
		state := "queued"
		if st == statusInProgress {
			state = "in progress"
		}
		stages := obj{}
		if a.file != nil {
			for _, sb := range sandboxesFor(a.file.kind) {
				stages[sb] = "Sandbox analysis from " + sb + " (" + state + ")"
			}
			stages["tools"] = "File's tools"
		} else {
			stages["url"] = "URL analysis (" + state + ")"
		}
		attrs["pending_stages"] = stages
	}
	return obj{
		"meta": analysisMeta(a),
		"data": obj{
			"type":       "private_analysis",
			"id":         a.id,
			"links":      obj{"self": rq.apiURL("private/analyses/" + a.id)},
			"attributes": attrs,
		},
	}
}

// handlePrivateAnalysisItem answers GET /private/analyses/{id}/item: the
// private report once the analysis is completed.
func (s *Server) handlePrivateAnalysisItem(w http.ResponseWriter, r *http.Request, rq *request) {
	id := rq.params[0]
	now := time.Now()
	s.mu.Lock()
	a := s.privateFor(rq.key).analyses[id]
	var st string
	var o obj
	if a != nil {
		st = s.status(a, now)
		if st == statusCompleted {
			o = s.privateReport(a, now, rq)
		}
	}
	s.mu.Unlock()
	switch {
	case a == nil:
		analysisNotFound(w, id)
	case o == nil:
		writeError(w, http.StatusBadRequest, "NotAvailableYet",
			fmt.Sprintf("Analysis %q is %s; its item is available once it is completed", id, st))
	default:
		writeJSON(w, http.StatusOK, dataEnvelope(o))
	}
}

// privateReport renders the report an analysis produced, nil while no
// analysis of its item has completed. s.mu must be held.
func (s *Server) privateReport(a *analysis, now time.Time, rq *request) obj {
	if a.url != nil {
		return s.privateURLObject(a.url, now, rq)
	}
	return s.privateFileObject(a.file, now, rq)
}

func (s *Server) handleGetPrivateFile(w http.ResponseWriter, r *http.Request, rq *request) {
	id := rq.params[0]
	if len(id) != 64 || !isHex(id) {
		writeError(w, http.StatusBadRequest, "InvalidArgumentError",
			fmt.Sprintf("Invalid file identifier %q: private files are addressed by SHA-256 only", id))
		return
	}
	sha := strings.ToLower(id)
	now := time.Now()
	s.mu.Lock()
	var o obj
	if rec := s.privateFor(rq.key).files[sha]; rec != nil {
		o = s.privateFileObject(rec, now, rq)
	}
	s.mu.Unlock()
	if o == nil {
		fileNotFound(w, id)
		return
	}
	writeJSON(w, http.StatusOK, dataEnvelope(o))
}

func (s *Server) handleGetPrivateURL(w http.ResponseWriter, r *http.Request, rq *request) {
	sha, _, ok := parseURLID(w, rq.params[0])
	if !ok {
		return
	}
	now := time.Now()
	s.mu.Lock()
	var o obj
	if u := s.privateFor(rq.key).urls[sha]; u != nil {
		o = s.privateURLObject(u, now, rq)
	}
	s.mu.Unlock()
	if o == nil {
		urlNotFound(w, rq.params[0])
		return
	}
	writeJSON(w, http.StatusOK, dataEnvelope(o))
}

// privateFileObject renders a private file report, or nil before its
// first analysis completes. s.mu must be held.
func (s *Server) privateFileObject(rec *fileRecord, now time.Time, rq *request) obj {
	done, ok := s.lastCompleted(rec, now)
	if !ok {
		return nil
	}
	date := done.Unix()
	// The antivirus simulation only decides what the file is; its engine
	// results are not part of a private report.
	v := s.verdictAt(rec, date)
	sandboxes, worst := s.sandboxVerdicts(rec, v)
	attrs := fileIdentity(rec)
	attrs["last_analysis_date"] = date
	attrs["first_submission_date"] = rec.submissions[0].Unix()
	attrs["last_submission_date"] = rec.submissions[len(rec.submissions)-1].Unix()
	attrs["tags"] = nonNil(append([]string{}, rec.tags...))
	if len(sandboxes) > 0 {
		attrs["sandbox_verdicts"] = sandboxes
	}
	attrs["threat_severity"] = threatSeverity(rec, v, worst, date)
	switch worst {
	case "malicious":
		attrs["threat_verdict"] = "VERDICT_MALICIOUS"
	case "suspicious":
		attrs["threat_verdict"] = "VERDICT_SUSPICIOUS"
	default:
		attrs["threat_verdict"] = "VERDICT_UNDETECTED"
	}
	if worst == "malicious" {
		attrs["popular_threat_classification"] = s.threatClassification(rec.sha256, v.threat, v.stats["malicious"])
		if yara := s.yaraMatches(rec.sha256, v.threat, date); len(yara) > 0 {
			attrs["crowdsourced_yara_results"] = yara
		}
	}
	return obj{
		"type":       "private_file",
		"id":         rec.sha256,
		"links":      obj{"self": rq.apiURL("private/files/" + rec.sha256)},
		"attributes": attrs,
	}
}

// sandboxNames are the sandboxes that detonate each platform's files.
var sandboxNames = map[string][]string{
	"Win32":     {"Zenbox", "CAPE Sandbox", "VirusTotal Jujubox", "Dr.Web vxCube", "Yomi Hunter", "C2AE"},
	"MSIL":      {"Zenbox", "CAPE Sandbox", "VirusTotal Jujubox", "Dr.Web vxCube"},
	"Linux":     {"Zenbox Linux", "Dr.Web vxCube"},
	"AndroidOS": {"VirusTotal Droidy", "Dr.Web vxCube"},
	"other":     {"Zenbox", "VirusTotal Jujubox", "Yomi Hunter"},
}

// sandboxesFor lists the sandboxes that can detonate a kind of file; none
// for data of unknown type.
func sandboxesFor(k fileKind) []string {
	if k.tag == kindUnknown.tag {
		return nil
	}
	if names, ok := sandboxNames[k.platform]; ok {
		return names
	}
	return sandboxNames["other"]
}

// classifications are the raw sandbox verdicts of each threat category.
var classifications = map[string][]string{
	"trojan":     {"MALWARE", "TROJAN"},
	"ransomware": {"MALWARE", "RANSOM"},
	"banker":     {"MALWARE", "BANKER"},
	"downloader": {"MALWARE", "TROJAN"},
	"hacktool":   {"MALWARE", "EXPLOIT"},
	"miner":      {"GREYWARE"},
	"adware":     {"GREYWARE", "ADWARE"},
	"phishing":   {"PHISHING"},
	"virus":      {"MALWARE"},
}

// sandboxVerdicts detonates a file in the sandboxes of its kind: the
// sandboxes agree with what the antivirus simulation makes of the file.
// It returns the verdicts and the worst category among them.
func (s *Server) sandboxVerdicts(rec *fileRecord, v verdict) (obj, string) {
	names := sandboxesFor(rec.kind)
	if len(names) == 0 {
		return nil, ""
	}
	r := s.rng("sandbox", rec.sha256)
	names = append([]string{}, names...)
	r.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	names = names[:between(r, 1, len(names))]
	mal, sus := v.stats["malicious"], v.stats["suspicious"]
	out, worst := obj{}, "undetected"
	for i, name := range names {
		sv := obj{"sandbox_name": name}
		switch {
		case mal >= 5 && (i == 0 || r.Float64() < 0.8):
			cls := append([]string{"MALWARE"}, classifications[v.threat.family.category]...)
			if len(cls) > 1 {
				cls = cls[1:]
			}
			if r.IntN(3) == 0 {
				cls = append(cls, "EVADER")
			}
			sv["category"], sv["confidence"] = "malicious", between(r, 60, 100)
			sv["malware_classification"] = cls
			sv["malware_names"] = []string{capitalize(v.threat.family.name)}
			worst = "malicious"
		case (mal > 0 || sus > 0) && (i == 0 || r.Float64() < 0.3):
			sv["category"], sv["confidence"] = "suspicious", between(r, 20, 60)
			sv["malware_classification"] = []string{pick(r, []string{"EVADER", "GREYWARE", "UNKNOWN_VERDICT"})}
			if worst != "malicious" {
				worst = "suspicious"
			}
		case r.Float64() < 0.6:
			sv["category"], sv["confidence"] = "harmless", between(r, 40, 90)
			sv["malware_classification"] = []string{"CLEAN"}
			if worst == "undetected" {
				worst = "harmless"
			}
		default:
			sv["category"] = "undetected"
			sv["malware_classification"] = []string{"UNKNOWN_VERDICT"}
		}
		out[name] = sv
	}
	return out, worst
}

// threatSeverity rates a privately scanned file from its sandbox verdicts.
func threatSeverity(rec *fileRecord, v verdict, worst string, date int64) obj {
	data := obj{"type_tag": rec.kind.tag, "can_be_detonated": worst != ""}
	level, why := "SEVERITY_NONE", "no sandbox found it malicious or suspicious"
	switch worst {
	case "":
		level, why = "SEVERITY_UNKNOWN", "the file could not be detonated"
	case "malicious":
		cat := v.threat.family.category
		data["popular_threat_category"] = cat
		switch cat {
		case "ransomware", "banker", "hacktool":
			level = "SEVERITY_HIGH"
		case "miner", "adware":
			level = "SEVERITY_LOW"
		default:
			level = "SEVERITY_MEDIUM"
		}
		why = "it was considered " + cat
	case "suspicious":
		level, why = "SEVERITY_LOW", "a sandbox found it suspicious"
	}
	return obj{
		"version":               5,
		"threat_severity_level": level,
		"level_description":     "Severity " + strings.TrimPrefix(level, "SEVERITY_") + " because " + why + ".",
		"threat_severity_data":  data,
		// VirusTotal sends this date as a string.
		"last_analysis_date": strconv.FormatInt(date, 10),
	}
}

// privateURLObject renders a private URL report, or nil before its first
// analysis completes. Like the real ones, it carries the verdict of Google
// Safebrowsing only. s.mu must be held.
func (s *Server) privateURLObject(u *urlRecord, now time.Time, rq *request) obj {
	var done time.Time
	for i := len(u.analyses) - 1; i >= 0 && done.IsZero(); i-- {
		if a := u.analyses[i]; s.status(a, now) == statusCompleted {
			done = a.created.Add(s.analysisDelay)
		}
	}
	if done.IsZero() {
		return nil
	}
	r := s.rng("private-url", u.id)
	host, tld := "", ""
	if p, err := url.Parse(u.url); err == nil {
		host = p.Hostname()
		tld = host[strings.LastIndex(host, ".")+1:]
	}
	bad := s.urlVerdict("url", u.id).stats["malicious"] > 0
	title, category, result := pick(r, []string{"Welcome to " + host, capitalize(host) + " - Home", host}), "harmless", "clean"
	stats := obj{"malicious": 0, "suspicious": 0, "undetected": 0, "harmless": 1, "timeout": 0}
	if bad {
		title, category, result = pick(r, []string{"Sign in to your account", "Verify your identity"}), "malicious", pick(r, []string{"phishing", "malware"})
		stats["malicious"], stats["harmless"] = 1, 0
	}
	return obj{
		"type":  "private_url",
		"id":    u.id,
		"links": obj{"self": rq.apiURL("private/urls/" + u.id)},
		"attributes": obj{
			"url":                               u.url,
			"last_final_url":                    u.url,
			"title":                             title,
			"tld":                               tld,
			"last_http_response_code":           200,
			"last_http_response_content_length": between(r, 200, 200000),
			"redirection_chain":                 []string{u.url},
			"last_analysis_date":                done.Unix(),
			"expiration":                        done.Add(24 * time.Hour).Unix(),
			"tags":                              []string{},
			"last_analysis_results": obj{"Google Safebrowsing": engineResult{
				Category: category, EngineName: "Google Safebrowsing", Method: "blacklist", Result: &result}},
			"last_analysis_stats": stats,
		},
	}
}
