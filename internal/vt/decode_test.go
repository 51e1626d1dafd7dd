package vt

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// sample is one answer file of the shared directory: where the API serves
// it and which client method reads it.
type sample struct {
	name   string
	method string // client method that fetches it
	arg    string // argument given to that method
	path   string // request path below /api/v3
	body   []byte
	doc    map[string]any  // the whole file, decoded generically
	data   json.RawMessage // the "data" member exactly as in the file
}

// Methods the decode test exercises; every one must be reached by at
// least one file.
const (
	mFile           = "File"
	mIPAddress      = "IPAddress"
	mDomain         = "Domain"
	mURL            = "URL"
	mDomainResolves = "Resolutions(domains)"
	mIPResolves     = "Resolutions(ip_addresses)"
	mYARARuleset    = "YARARuleset"
	mAnalysis       = "Analysis"
)

// loadSamples reads every file of the shared directory and works out, from
// its name and content, where it is served. Files with an unknown prefix
// fail the test so that a new kind of sample cannot go untested.
func loadSamples(t *testing.T, dir string) []sample {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	var out []sample
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() {
			t.Errorf("%s: unexpected directory in %s", name, dir)
			continue
		}
		if name == "SOURCES.md" || strings.HasPrefix(name, "error_") && strings.HasSuffix(name, ".json") {
			continue // provenance, and error bodies (errors_test.go)
		}
		if !strings.HasSuffix(name, ".json") {
			t.Errorf("%s: unknown file in %s: add it to the decode test", name, dir)
			continue
		}
		body, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("read %s: %v", name, err)
		}
		s := sample{name: name, body: body, doc: decodeGeneric(t, name, body)}
		var env map[string]json.RawMessage
		if err := json.Unmarshal(body, &env); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		s.data = env["data"]
		if len(s.data) == 0 {
			t.Errorf("%s: no data member", name)
			continue
		}
		stem := strings.TrimSuffix(name, ".json")
		data, _ := s.doc["data"].(map[string]any)
		attrs, _ := data["attributes"].(map[string]any)
		switch {
		case strings.HasPrefix(stem, "domain_resolutions_"):
			d := strings.TrimPrefix(stem, "domain_resolutions_")
			s.method, s.arg, s.path = mDomainResolves, d, "domains/"+d+"/resolutions"
		case strings.HasPrefix(stem, "ip_resolutions_"):
			ip := strings.TrimPrefix(stem, "ip_resolutions_")
			s.method, s.arg, s.path = mIPResolves, ip, "ip_addresses/"+ip+"/resolutions"
		case strings.HasPrefix(stem, "domain_"):
			d := strings.TrimPrefix(stem, "domain_")
			s.method, s.arg, s.path = mDomain, d, "domains/"+d
		case strings.HasPrefix(stem, "ip_"):
			ip := strings.TrimPrefix(stem, "ip_")
			s.method, s.arg, s.path = mIPAddress, ip, "ip_addresses/"+ip
		case strings.HasPrefix(stem, "file_"):
			h, _ := attrs["sha256"].(string)
			if len(h) != 64 {
				t.Errorf("%s: attributes.sha256 %q is not a SHA-256", name, h)
				continue
			}
			s.method, s.arg, s.path = mFile, h, "files/"+h
		case strings.HasPrefix(stem, "url_"):
			u, _ := attrs["url"].(string)
			if u == "" {
				t.Errorf("%s: no attributes.url", name)
				continue
			}
			// Unpadded base64url, computed here independently of URLID.
			id := strings.TrimRight(base64.URLEncoding.EncodeToString([]byte(u)), "=")
			s.method, s.arg, s.path = mURL, u, "urls/"+id
		case strings.HasPrefix(stem, "yara_ruleset_"):
			id := strings.TrimPrefix(stem, "yara_ruleset_")
			s.method, s.arg, s.path = mYARARuleset, id, "yara_rulesets/"+id
		case strings.HasPrefix(stem, "analysis_"):
			id, _ := data["id"].(string)
			short := stem[strings.LastIndex(stem, "_")+1:]
			if !strings.HasPrefix(id, short) {
				t.Errorf("%s: data.id %q does not start with %q from the file name", name, id, short)
				continue
			}
			s.method, s.arg, s.path = mAnalysis, id, "analyses/"+id
		default:
			t.Errorf("%s: unknown sample prefix: teach the decode test where it is served", name)
			continue
		}
		out = append(out, s)
	}
	return out
}

// decodeGeneric decodes JSON into maps, slices and json.Numbers: the
// independent reading the typed decoder is checked against.
func decodeGeneric(t *testing.T, what string, b []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("%s: generic decode: %v", what, err)
	}
	return m
}

// jv reads generic JSON values, reporting values of an unexpected type.
type jv struct {
	t    *testing.T
	what string
}

func (j jv) obj(v any, key string) map[string]any {
	j.t.Helper()
	switch x := v.(type) {
	case nil:
		return nil
	case map[string]any:
		return x
	}
	j.t.Errorf("%s: %s is %T, want an object", j.what, key, v)
	return nil
}

func (j jv) str(m map[string]any, key string) string {
	j.t.Helper()
	switch x := m[key].(type) {
	case nil:
		return ""
	case string:
		return x
	}
	j.t.Errorf("%s: %s is %T, want a string", j.what, key, m[key])
	return ""
}

func (j jv) int(m map[string]any, key string) int64 {
	j.t.Helper()
	switch x := m[key].(type) {
	case nil:
		return 0
	case json.Number:
		n, err := x.Int64()
		if err != nil {
			j.t.Errorf("%s: %s: %v", j.what, key, err)
		}
		return n
	}
	j.t.Errorf("%s: %s is %T, want a number", j.what, key, m[key])
	return 0
}

func (j jv) bool(m map[string]any, key string) bool {
	j.t.Helper()
	switch x := m[key].(type) {
	case nil:
		return false
	case bool:
		return x
	}
	j.t.Errorf("%s: %s is %T, want a boolean", j.what, key, m[key])
	return false
}

func (j jv) strs(m map[string]any, key string) []string {
	j.t.Helper()
	switch x := m[key].(type) {
	case nil:
		return nil
	case []any:
		out := make([]string, 0, len(x))
		for i, v := range x {
			s, ok := v.(string)
			if !ok {
				j.t.Errorf("%s: %s[%d] is %T, want a string", j.what, key, i, v)
			}
			out = append(out, s)
		}
		return out
	}
	j.t.Errorf("%s: %s is %T, want a list", j.what, key, m[key])
	return nil
}

func (j jv) list(m map[string]any, key string) []any {
	j.t.Helper()
	switch x := m[key].(type) {
	case nil:
		return nil
	case []any:
		return x
	}
	j.t.Errorf("%s: %s is %T, want a list", j.what, key, m[key])
	return nil
}

// statsKeys are the eight keys of last_analysis_stats.
var statsKeys = []string{"malicious", "suspicious", "undetected", "harmless", "timeout", "confirmed-timeout", "failure", "type-unsupported"}

// statsByKey spells out which Stats field holds which JSON key.
func statsByKey(s *Stats) map[string]int64 {
	return map[string]int64{
		"malicious":         int64(s.Malicious),
		"suspicious":        int64(s.Suspicious),
		"undetected":        int64(s.Undetected),
		"harmless":          int64(s.Harmless),
		"timeout":           int64(s.Timeout),
		"confirmed-timeout": int64(s.ConfirmedTimeout),
		"failure":           int64(s.Failure),
		"type-unsupported":  int64(s.TypeUnsupported),
	}
}

// checkStats compares stats with the JSON object under key in attrs.
func checkStats(t *testing.T, j jv, attrs map[string]any, key string, got *Stats) {
	t.Helper()
	raw, present := attrs[key]
	if !present || raw == nil {
		if got != nil {
			t.Errorf("%s: %s absent from JSON but decoded as %+v", j.what, key, *got)
		}
		return
	}
	if got == nil {
		t.Errorf("%s: %s present in JSON but decoded as nil", j.what, key)
		return
	}
	m := j.obj(raw, key)
	for k := range m {
		if !slices.Contains(statsKeys, k) {
			t.Errorf("%s: %s has key %q that Stats does not decode", j.what, key, k)
		}
	}
	want := map[string]int64{}
	var total int64
	for _, k := range statsKeys {
		want[k] = j.int(m, k)
		total += want[k]
	}
	if diff := cmp.Diff(want, statsByKey(got)); diff != "" {
		t.Errorf("%s: %s (-want +got):\n%s", j.what, key, diff)
	}
	if int64(got.Total()) != total {
		t.Errorf("%s: %s Total() = %d, want %d", j.what, key, got.Total(), total)
	}
}

// wantResults builds the engine results map from the JSON object under key.
func wantResults(j jv, attrs map[string]any, key string) map[string]EngineResult {
	j.t.Helper()
	m := j.obj(attrs[key], key)
	if m == nil {
		return nil
	}
	out := make(map[string]EngineResult, len(m))
	for name, v := range m {
		r := j.obj(v, key+"."+name)
		out[name] = EngineResult{
			Category:      j.str(r, "category"),
			EngineName:    j.str(r, "engine_name"),
			EngineVersion: j.str(r, "engine_version"),
			EngineUpdate:  j.str(r, "engine_update"),
			Method:        j.str(r, "method"),
			Result:        j.str(r, "result"),
		}
	}
	return out
}

// checkResults compares decoded engine results with the JSON ones, and
// Detections with the malicious entries of the JSON.
func checkResults(t *testing.T, j jv, attrs map[string]any, key string, got map[string]EngineResult) {
	t.Helper()
	want := wantResults(j, attrs, key)
	if len(got) != len(want) {
		t.Errorf("%s: %d %s entries decoded, JSON has %d", j.what, len(got), key, len(want))
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("%s: %s (-want +got):\n%s", j.what, key, diff)
	}
}

// checkRaw proves Raw is the data member as received.
func checkRaw(t *testing.T, what string, want, got json.RawMessage) {
	t.Helper()
	var w, g bytes.Buffer
	if err := json.Compact(&w, want); err != nil {
		t.Fatalf("%s: compact sample data: %v", what, err)
	}
	if err := json.Compact(&g, got); err != nil {
		t.Errorf("%s: Raw is not valid JSON: %v", what, err)
		return
	}
	if !bytes.Equal(w.Bytes(), g.Bytes()) {
		t.Errorf("%s: Raw differs from the data member (%d vs %d compact bytes)", what, g.Len(), w.Len())
	}
}

// checkObject checks the fields every object has, then those of its type.
func checkObject(t *testing.T, j jv, data map[string]any, rawData json.RawMessage, o *Object) {
	t.Helper()
	links := j.obj(data["links"], "links")
	if diff := cmp.Diff(
		map[string]string{"id": j.str(data, "id"), "type": j.str(data, "type"), "self": j.str(links, "self")},
		map[string]string{"id": o.ID, "type": o.Type, "self": o.Self},
	); diff != "" {
		t.Errorf("%s: identity (-want +got):\n%s", j.what, diff)
	}
	if o.ID == "" || o.Type == "" {
		t.Errorf("%s: empty id or type", j.what)
	}
	checkRaw(t, j.what, rawData, o.Raw)

	a := j.obj(data["attributes"], "attributes")
	g := &o.Attributes
	checkStats(t, j, a, "last_analysis_stats", g.LastAnalysisStats)
	checkResults(t, j, a, "last_analysis_results", g.LastAnalysisResults)

	var wantDet []string
	for name, r := range wantResults(j, a, "last_analysis_results") {
		if r.Category == "malicious" {
			if r.EngineName != "" {
				name = r.EngineName
			}
			wantDet = append(wantDet, name)
		}
	}
	sort.Strings(wantDet)
	var gotDet []string
	for _, r := range g.Detections() {
		gotDet = append(gotDet, r.EngineName)
	}
	if diff := cmp.Diff(wantDet, gotDet, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("%s: Detections() engines (-want +got):\n%s", j.what, diff)
	}
	if stats := j.obj(a["last_analysis_stats"], "last_analysis_stats"); stats != nil {
		var counted int64
		for _, k := range statsKeys {
			counted += j.int(stats, k)
		}
		// When the sample has a result for every engine counted (some are
		// trimmed), the malicious count and the malicious results agree.
		if n := len(wantResults(j, a, "last_analysis_results")); int64(n) == counted && int64(len(gotDet)) != j.int(stats, "malicious") {
			t.Errorf("%s: %d detections, last_analysis_stats.malicious = %d", j.what, len(gotDet), j.int(stats, "malicious"))
		}
	}

	votes := j.obj(a["total_votes"], "total_votes")
	common := map[string]any{
		"tags":                   j.strs(a, "tags"),
		"reputation":             j.int(a, "reputation"),
		"last_analysis_date":     j.int(a, "last_analysis_date"),
		"last_modification_date": j.int(a, "last_modification_date"),
		"total_votes.harmless":   j.int(votes, "harmless"),
		"total_votes.malicious":  j.int(votes, "malicious"),
		"whois":                  j.str(a, "whois"),
	}
	gotCommon := map[string]any{
		"tags":                   g.Tags,
		"reputation":             int64(g.Reputation),
		"last_analysis_date":     g.LastAnalysisDate,
		"last_modification_date": g.LastModification,
		"total_votes.harmless":   int64(g.TotalVotes.Harmless),
		"total_votes.malicious":  int64(g.TotalVotes.Malicious),
		"whois":                  g.Whois,
	}
	if diff := cmp.Diff(common, gotCommon, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("%s: common attributes (-want +got):\n%s", j.what, diff)
	}

	var want, got map[string]any
	switch j.str(data, "type") {
	case "file":
		var yara []YARAResult
		for i, v := range j.list(a, "crowdsourced_yara_results") {
			y := j.obj(v, fmt.Sprintf("crowdsourced_yara_results[%d]", i))
			yara = append(yara, YARAResult{
				RulesetID:      j.str(y, "ruleset_id"),
				RulesetName:    j.str(y, "ruleset_name"),
				RuleName:       j.str(y, "rule_name"),
				Description:    j.str(y, "description"),
				Author:         j.str(y, "author"),
				Source:         j.str(y, "source"),
				MatchInSubfile: j.bool(y, "match_in_subfile"),
			})
		}
		var gotRulesets []string
		for _, y := range g.CrowdsourcedYARA {
			gotRulesets = append(gotRulesets, y.RulesetID)
		}
		var wantRulesets []string
		for _, y := range yara {
			wantRulesets = append(wantRulesets, y.RulesetID)
		}
		ptc := j.obj(a["popular_threat_classification"], "popular_threat_classification")
		gotLabel := ""
		if g.PopularThreat != nil {
			gotLabel = g.PopularThreat.SuggestedThreatLabel
		}
		if (ptc == nil) != (g.PopularThreat == nil) {
			t.Errorf("%s: popular_threat_classification presence: JSON %v, decoded %v", j.what, ptc != nil, g.PopularThreat != nil)
		}
		want = map[string]any{
			"md5": j.str(a, "md5"), "sha1": j.str(a, "sha1"), "sha256": j.str(a, "sha256"),
			"ssdeep": j.str(a, "ssdeep"), "tlsh": j.str(a, "tlsh"), "vhash": j.str(a, "vhash"),
			"size": j.int(a, "size"), "type_description": j.str(a, "type_description"),
			"type_tag": j.str(a, "type_tag"), "magic": j.str(a, "magic"),
			"meaningful_name": j.str(a, "meaningful_name"), "names": j.strs(a, "names"),
			"times_submitted":       j.int(a, "times_submitted"),
			"first_submission_date": j.int(a, "first_submission_date"),
			"last_submission_date":  j.int(a, "last_submission_date"),
			"yara count":            len(yara), "yara ruleset ids": wantRulesets, "yara": yara,
			"suggested_threat_label": j.str(ptc, "suggested_threat_label"),
			"id is sha256":           true,
		}
		got = map[string]any{
			"md5": g.MD5, "sha1": g.SHA1, "sha256": g.SHA256,
			"ssdeep": g.SSDeep, "tlsh": g.TLSH, "vhash": g.Vhash,
			"size": g.Size, "type_description": g.TypeDescription,
			"type_tag": g.TypeTag, "magic": g.Magic,
			"meaningful_name": g.MeaningfulName, "names": g.Names,
			"times_submitted":       int64(g.TimesSubmitted),
			"first_submission_date": g.FirstSubmissionDate,
			"last_submission_date":  g.LastSubmissionDate,
			"yara count":            len(g.CrowdsourcedYARA), "yara ruleset ids": gotRulesets, "yara": g.CrowdsourcedYARA,
			"suggested_threat_label": gotLabel,
			"id is sha256":           o.ID == g.SHA256,
		}
		if g.MD5 == "" || g.SHA256 == "" || g.Size == 0 {
			t.Errorf("%s: file without md5, sha256 or size", j.what)
		}
	case "ip_address":
		want = map[string]any{
			"asn": j.int(a, "asn"), "as_owner": j.str(a, "as_owner"), "country": j.str(a, "country"),
			"continent": j.str(a, "continent"), "network": j.str(a, "network"),
			"regional_internet_registry": j.str(a, "regional_internet_registry"),
		}
		got = map[string]any{
			"asn": g.ASN, "as_owner": g.ASOwner, "country": g.Country,
			"continent": g.Continent, "network": g.Network,
			"regional_internet_registry": g.RIR,
		}
		if g.ASN == 0 || g.Country == "" || g.Network == "" {
			t.Errorf("%s: IP without asn, country or network", j.what)
		}
	case "url":
		want = map[string]any{
			"url": j.str(a, "url"), "last_final_url": j.str(a, "last_final_url"), "title": j.str(a, "title"),
			"last_http_response_code": j.int(a, "last_http_response_code"),
			"threat_names":            j.strs(a, "threat_names"), "times_submitted": j.int(a, "times_submitted"),
			"first_submission_date": j.int(a, "first_submission_date"),
		}
		got = map[string]any{
			"url": g.URL, "last_final_url": g.LastFinalURL, "title": g.Title,
			"last_http_response_code": int64(g.LastHTTPResponseCode),
			"threat_names":            g.ThreatNames, "times_submitted": int64(g.TimesSubmitted),
			"first_submission_date": g.FirstSubmissionDate,
		}
		if g.URL == "" {
			t.Errorf("%s: URL without url", j.what)
		}
	case "domain":
		cats := map[string]string{}
		for k := range j.obj(a["categories"], "categories") {
			cats[k] = j.str(j.obj(a["categories"], "categories"), k)
		}
		want = map[string]any{
			"registrar": j.str(a, "registrar"), "creation_date": j.int(a, "creation_date"), "categories": cats,
		}
		got = map[string]any{
			"registrar": g.Registrar, "creation_date": g.CreationDate, "categories": g.Categories,
		}
	case "resolution":
		want = map[string]any{
			"host_name": j.str(a, "host_name"), "ip_address": j.str(a, "ip_address"),
			"date": j.int(a, "date"), "resolver": j.str(a, "resolver"),
		}
		got = map[string]any{
			"host_name": g.HostName, "ip_address": g.IPAddress, "date": g.Date, "resolver": g.Resolver,
		}
		if g.HostName == "" || g.IPAddress == "" {
			t.Errorf("%s: resolution without host_name or ip_address", j.what)
		}
	case "yara_ruleset":
		want = map[string]any{
			"name": j.str(a, "name"), "rules": j.str(a, "rules"), "source": j.str(a, "source"), "author": j.str(a, "author"),
		}
		got = map[string]any{"name": g.Name, "rules": g.Rules, "source": g.Source, "author": g.Author}
		if !strings.Contains(g.Rules, "rule ") {
			t.Errorf("%s: rules text has no YARA rule: %.80q", j.what, g.Rules)
		}
	default:
		t.Errorf("%s: no type-specific checks for type %q", j.what, j.str(data, "type"))
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("%s: %s attributes (-want +got):\n%s", j.what, j.str(data, "type"), diff)
	}
}

// TestDecodeSharedSamples serves every shared VirusTotal answer at its real
// API path and checks what the client decodes against an independent,
// generic reading of the same JSON.
// TestDecodeSamples decodes the project's synthetic answers in
// testdata/vt (written from the VirusTotal simulator's documented shapes,
// see testdata/vt/SOURCES.md), served on their real paths.
func TestDecodeSamples(t *testing.T) { checkDecodeSamples(t, filepath.Join("testdata", "vt")) }

// TestDecodeSharedSamples is a fidelity test: the same checks over the
// real VirusTotal answers of ../shared/testdata/vt.
func TestDecodeSharedSamples(t *testing.T) { checkDecodeSamples(t, sharedDir(t)) }

func checkDecodeSamples(t *testing.T, dir string) {
	samples := loadSamples(t, dir)
	if len(samples) == 0 {
		t.Fatal("no samples found")
	}

	routes := map[string][]byte{}
	for _, s := range samples {
		routes["/api/v3/"+s.path] = s.body
		if s.method == mURL {
			// The API also answers on the SHA-256 id it returns.
			id, _ := s.doc["data"].(map[string]any)["id"].(string)
			routes["/api/v3/urls/"+id] = s.body
		}
	}
	var mu sync.Mutex
	hits := map[string]int{}
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits[r.URL.Path]++
		mu.Unlock()
		if r.Method != http.MethodGet || r.URL.RawQuery != "" {
			t.Errorf("unexpected request %s %s", r.Method, r.URL)
		}
		body, ok := routes[r.URL.Path]
		if !ok {
			t.Errorf("request for unserved path %q", r.URL.Path)
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":{"code":"NotFoundError","message":"no such sample"}}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	c := newTestClient(t, srv)

	reached := map[string]bool{}
	for _, s := range samples {
		t.Run(s.name, func(t *testing.T) {
			reached[s.method] = true
			j := jv{t: t, what: s.name}
			data, _ := s.doc["data"].(map[string]any) // nil for collections
			ctx := t.Context()
			switch s.method {
			case mFile, mIPAddress, mDomain, mURL, mYARARuleset:
				var o, again *Object
				var err, err2 error
				switch s.method {
				case mFile:
					o, err = c.File(ctx, s.arg)
					again, err2 = c.File(ctx, strings.ToUpper(s.arg)) // hashes are case-insensitive
				case mIPAddress:
					o, err = c.IPAddress(ctx, s.arg)
					again, err2 = c.IPAddress(ctx, "::ffff:"+s.arg) // v4-mapped form unmapped
				case mDomain:
					o, err = c.Domain(ctx, s.arg)
					again, err2 = c.Domain(ctx, strings.ToUpper(s.arg)+".") // normalised
				case mURL:
					o, err = c.URL(ctx, s.arg)
					again, err2 = c.URLByID(ctx, j.str(data, "id")) // by the SHA-256 id
				case mYARARuleset:
					o, err = c.YARARuleset(ctx, s.arg)
					again, err2 = o, nil // ruleset ids have one spelling
				}
				if err != nil || err2 != nil {
					t.Fatalf("%s(%q): %v; variant: %v", s.method, s.arg, err, err2)
				}
				checkObject(t, j, data, s.data, o)
				if diff := cmp.Diff(o, again); diff != "" {
					t.Errorf("equivalent argument decoded differently (-first +variant):\n%s", diff)
				}
				if s.method == mIPAddress && o.ID != s.arg {
					t.Errorf("ip id = %q, file name says %q", o.ID, s.arg)
				}
				if s.method == mDomain && o.ID != s.arg {
					t.Errorf("domain id = %q, file name says %q", o.ID, s.arg)
				}
				if s.method == mYARARuleset && o.ID != s.arg {
					t.Errorf("ruleset id = %q, file name says %q", o.ID, s.arg)
				}
			case mDomainResolves, mIPResolves:
				coll := "domains"
				if s.method == mIPResolves {
					coll = "ip_addresses"
				}
				p, err := c.Resolutions(ctx, coll, s.arg, "", 0)
				if err != nil {
					t.Fatalf("Resolutions(%s, %s): %v", coll, s.arg, err)
				}
				items := j.list(s.doc, "data")
				var rawItems []json.RawMessage
				if err := json.Unmarshal(s.data, &rawItems); err != nil {
					t.Fatal(err)
				}
				if len(p.Objects) != len(items) || len(items) == 0 {
					t.Fatalf("%d resolutions decoded, JSON has %d", len(p.Objects), len(items))
				}
				for i, it := range items {
					jj := jv{t: t, what: s.name + "[" + p.Objects[i].ID + "]"}
					m := jj.obj(it, "data[]")
					checkObject(t, jj, m, rawItems[i], p.Objects[i])
					a := jj.obj(m["attributes"], "attributes")
					key := map[string]string{"domains": "host_name", "ip_addresses": "ip_address"}[coll]
					if jj.str(a, key) != s.arg {
						t.Errorf("resolution %d: %s = %q, want the queried %q", i, key, jj.str(a, key), s.arg)
					}
				}
				links := j.obj(s.doc["links"], "links")
				meta := j.obj(s.doc["meta"], "meta")
				wantCursor := ""
				if j.str(links, "next") != "" {
					t.Fatalf("sample has a next link; extend the test to check its cursor")
				}
				if p.Cursor != wantCursor || int64(p.Count) != j.int(meta, "count") {
					t.Errorf("cursor %q count %d, want %q and %d", p.Cursor, p.Count, wantCursor, j.int(meta, "count"))
				}
			case mAnalysis:
				a, err := c.Analysis(ctx, s.arg)
				if err != nil {
					t.Fatalf("Analysis(%q): %v", s.arg, err)
				}
				attrs := j.obj(data["attributes"], "attributes")
				st := a.Stats
				checkStats(t, j, attrs, "stats", &st)
				checkResults(t, j, attrs, "results", a.Results)
				meta := j.obj(s.doc["meta"], "meta")
				fi := j.obj(meta["file_info"], "meta.file_info")
				ui := j.obj(meta["url_info"], "meta.url_info")
				want := map[string]any{
					"id": j.str(data, "id"), "status": j.str(attrs, "status"), "date": j.int(attrs, "date"),
					"completed": j.str(attrs, "status") == "completed",
					"sha256":    j.str(fi, "sha256"), "md5": j.str(fi, "md5"), "url_id": j.str(ui, "id"), "url": j.str(ui, "url"),
				}
				got := map[string]any{
					"id": a.ID, "status": a.Status, "date": a.Date, "completed": a.Completed(),
					"sha256": a.SHA256, "md5": a.MD5, "url_id": a.URLID, "url": a.URL,
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("analysis (-want +got):\n%s", diff)
				}
				if a.Status == "" || a.Stats.Total() == 0 {
					t.Errorf("analysis without status or stats: %+v", a)
				}
			default:
				t.Fatalf("no call for method %q", s.method)
			}
		})
	}

	for _, m := range []string{mFile, mIPAddress, mDomain, mURL, mDomainResolves, mIPResolves, mYARARuleset, mAnalysis} {
		if !reached[m] {
			t.Errorf("no shared sample exercises %s", m)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, s := range samples {
		if hits["/api/v3/"+s.path] == 0 {
			t.Errorf("%s: nothing requested its real path /api/v3/%s", s.name, s.path)
		}
	}
}

// TestDecodeSamplesCrossReferences checks facts that tie samples together,
// in the synthetic samples and (fidelity) in the real ones,
// as the connectors rely on them: the YARA ruleset a file report points at
// is the one served, and the sample set has the variety the tests assume.
func TestDecodeSamplesCrossReferences(t *testing.T) {
	for _, dir := range []string{filepath.Join("testdata", "vt"), sharedVT} {
		t.Run(dir, func(t *testing.T) {
			if dir == sharedVT {
				dir = sharedDir(t) // fidelity: skips without ../shared
			}
			checkSamplesCrossReferences(t, dir)
		})
	}
}

func checkSamplesCrossReferences(t *testing.T, dir string) {
	samples := loadSamples(t, dir)
	rulesets := map[string]bool{}
	for _, s := range samples {
		if s.method == mYARARuleset {
			rulesets[s.arg] = true
		}
	}
	var yaraFiles, malicious int
	referenced := false
	for _, s := range samples {
		if s.method != mFile {
			continue
		}
		o, err := DecodeObject(s.data)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if len(o.Attributes.CrowdsourcedYARA) > 0 {
			yaraFiles++
		}
		if o.Attributes.LastAnalysisStats != nil && o.Attributes.LastAnalysisStats.Malicious > 0 {
			malicious++
		}
		for _, y := range o.Attributes.CrowdsourcedYARA {
			if rulesets[y.RulesetID] {
				referenced = true
			}
		}
	}
	if yaraFiles < 2 || malicious < 2 || !referenced {
		t.Errorf("samples: %d files with YARA results, %d malicious, ruleset referenced %v; want ≥2, ≥2, true",
			yaraFiles, malicious, referenced)
	}
}

// TestDecodeObjectTolerance: every attribute is optional, nulls are fine,
// a field of the wrong type is skipped without losing the others, and
// only a non-object or a missing id fails.
func TestDecodeObjectTolerance(t *testing.T) {
	raw := json.RawMessage(` {"type":"file","id":"abc","unknown_top":{"x":1},"links":{"self":"https://x/files/abc"},
		"attributes":{
			"size":"big","tags":"not-a-list","reputation":{"x":1},"last_analysis_date":"yesterday",
			"md5":"546bb6ef89bebfb053999777f6930d7e","names":["a.exe",null,"b.exe"],
			"registrar":null,"popular_threat_classification":null,"whois":null,
			"crowdsourced_yara_results":[{"ruleset_id":"00888403c4","rule_name":"r","match_in_subfile":true,"extra":[1,2]}],
			"last_analysis_results":{"Z":{"category":"malicious","result":null},"A":{"category":"malicious","engine_name":"Alpha","result":"Trojan"},"M":{"category":"undetected"}},
			"last_analysis_stats":{"malicious":2,"undetected":1,"new-category":9},
			"known_distributors":{"distributors":["Microsoft"]},
			"something_new":{"deep":[{"a":null}]}
		}} `)
	o, err := DecodeObject(raw)
	if err != nil {
		t.Fatalf("DecodeObject: %v", err)
	}
	want := &Object{
		Type: "file", ID: "abc", Self: "https://x/files/abc",
		Raw: json.RawMessage(bytes.TrimSpace(raw)),
		Attributes: Attributes{
			MD5:              "546bb6ef89bebfb053999777f6930d7e",
			Names:            []string{"a.exe", "", "b.exe"},
			CrowdsourcedYARA: []YARAResult{{RulesetID: "00888403c4", RuleName: "r", MatchInSubfile: true}},
			LastAnalysisResults: map[string]EngineResult{
				"Z": {Category: "malicious"},
				"A": {Category: "malicious", EngineName: "Alpha", Result: "Trojan"},
				"M": {Category: "undetected"},
			},
			LastAnalysisStats: &Stats{Malicious: 2, Undetected: 1},
			KnownDistributors: json.RawMessage(`{"distributors":["Microsoft"]}`),
		},
	}
	if diff := cmp.Diff(want, o); diff != "" {
		t.Errorf("decoded object (-want +got):\n%s", diff)
	}
	var det []string
	for _, r := range o.Attributes.Detections() {
		det = append(det, r.EngineName+"="+r.Result)
	}
	if diff := cmp.Diff([]string{"Alpha=Trojan", "Z="}, det); diff != "" {
		t.Errorf("Detections, sorted, named by map key when engine_name is missing (-want +got):\n%s", diff)
	}

	for _, tt := range []struct{ name, raw string }{
		{"empty", ""},
		{"null", "null"},
		{"list", `[{"id":"x"}]`},
		{"string", `"x"`},
		{"no id", `{"type":"file","attributes":{}}`},
		{"id of the wrong type", `{"type":"file","id":5}`},
		{"broken JSON", `{"type":"file","id":"x"`},
	} {
		if o, err := DecodeObject(json.RawMessage(tt.raw)); err == nil {
			t.Errorf("DecodeObject(%s %q) = %+v, want an error", tt.name, tt.raw, o)
		}
	}

	for _, attrs := range []string{`null`, `[]`, `"x"`} {
		o, err := DecodeObject(json.RawMessage(`{"type":"domain","id":"example.com","attributes":` + attrs + `}`))
		if err != nil || o.ID != "example.com" || !cmp.Equal(o.Attributes, Attributes{}) {
			t.Errorf("attributes %s: %+v, %v; want an object with empty attributes", attrs, o, err)
		}
	}
}

func TestTime(t *testing.T) {
	if !Time(0).IsZero() || !Time(-5).IsZero() {
		t.Error("Time of a non-positive epoch is not zero")
	}
	// 1591701032 is 2020-06-09T11:10:32Z (the analysis sample's date).
	if got, want := Time(1591701032), "2020-06-09T11:10:32Z"; got.Format("2006-01-02T15:04:05Z07:00") != want || got.Location().String() != "UTC" {
		t.Errorf("Time(1591701032) = %v, want %s in UTC", got, want)
	}
}
