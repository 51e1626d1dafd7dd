package vt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Object is one VirusTotal object (file, url, domain, ip_address,
// yara_ruleset, resolution, analysis...). Attributes holds the fields the
// connectors use, decoded tolerantly; Raw keeps the whole "data" member as
// received so that nothing is lost when it is cached or shown in full.
type Object struct {
	Type       string
	ID         string
	Self       string // links.self
	Attributes Attributes
	Raw        json.RawMessage
	// Private is true for reports of VirusTotal Private Scanning
	// (private_file, private_url...). Such a report has no antivirus
	// verdict: its Attributes.LastAnalysisStats, when VirusTotal sent
	// none, is PrivateStats of its sandbox verdicts (Raw is left as sent).
	Private bool
}

// Stats is last_analysis_stats (or an analysis's stats).
type Stats struct {
	Malicious        int `json:"malicious"`
	Suspicious       int `json:"suspicious"`
	Undetected       int `json:"undetected"`
	Harmless         int `json:"harmless"`
	Timeout          int `json:"timeout"`
	ConfirmedTimeout int `json:"confirmed-timeout"`
	Failure          int `json:"failure"`
	TypeUnsupported  int `json:"type-unsupported"`
}

// Total is the number of engines that gave any answer.
func (s Stats) Total() int {
	return s.Malicious + s.Suspicious + s.Undetected + s.Harmless + s.Timeout +
		s.ConfirmedTimeout + s.Failure + s.TypeUnsupported
}

// EngineResult is one entry of last_analysis_results.
type EngineResult struct {
	Category      string `json:"category"`
	EngineName    string `json:"engine_name"`
	EngineVersion string `json:"engine_version"`
	EngineUpdate  string `json:"engine_update"`
	Method        string `json:"method"`
	Result        string `json:"result"`
}

// YARAResult is one entry of crowdsourced_yara_results.
type YARAResult struct {
	RulesetID      string `json:"ruleset_id"`
	RulesetName    string `json:"ruleset_name"`
	RuleName       string `json:"rule_name"`
	Description    string `json:"description"`
	Author         string `json:"author"`
	Source         string `json:"source"`
	MatchInSubfile bool   `json:"match_in_subfile"`
}

// Votes is total_votes.
type Votes struct {
	Harmless  int `json:"harmless"`
	Malicious int `json:"malicious"`
}

// ThreatClassification is popular_threat_classification.
type ThreatClassification struct {
	SuggestedThreatLabel  string       `json:"suggested_threat_label"`
	PopularThreatCategory []CountValue `json:"popular_threat_category"`
	PopularThreatName     []CountValue `json:"popular_threat_name"`
}

// CountValue is a {count, value} pair.
type CountValue struct {
	Count int    `json:"count"`
	Value string `json:"value"`
}

// Attributes are the object attributes the connectors read. Every field is
// optional; a field of the wrong JSON type is left at its zero value rather
// than failing the whole object.
type Attributes struct {
	// Common to analysed objects.
	LastAnalysisStats   *Stats                  `json:"last_analysis_stats"`
	LastAnalysisResults map[string]EngineResult `json:"last_analysis_results"`
	LastAnalysisDate    int64                   `json:"last_analysis_date"`
	LastModification    int64                   `json:"last_modification_date"`
	Reputation          int                     `json:"reputation"`
	Tags                []string                `json:"tags"`
	TotalVotes          Votes                   `json:"total_votes"`
	Categories          map[string]string       `json:"categories"`
	Whois               string                  `json:"whois"`

	// Files.
	MD5                 string                `json:"md5"`
	SHA1                string                `json:"sha1"`
	SHA256              string                `json:"sha256"`
	SSDeep              string                `json:"ssdeep"`
	TLSH                string                `json:"tlsh"`
	Vhash               string                `json:"vhash"`
	Size                int64                 `json:"size"`
	TypeDescription     string                `json:"type_description"`
	TypeTag             string                `json:"type_tag"`
	Magic               string                `json:"magic"`
	MeaningfulName      string                `json:"meaningful_name"`
	Names               []string              `json:"names"`
	TimesSubmitted      int                   `json:"times_submitted"`
	FirstSubmissionDate int64                 `json:"first_submission_date"`
	LastSubmissionDate  int64                 `json:"last_submission_date"`
	CrowdsourcedYARA    []YARAResult          `json:"crowdsourced_yara_results"`
	PopularThreat       *ThreatClassification `json:"popular_threat_classification"`
	KnownDistributors   json.RawMessage       `json:"known_distributors"`

	// Files, including private ones: the verdicts of the sandboxes that
	// detonated the file, by sandbox name, and VirusTotal's severity.
	SandboxVerdicts map[string]SandboxVerdict `json:"sandbox_verdicts"`
	ThreatSeverity  *ThreatSeverity           `json:"threat_severity"`

	// IP addresses.
	ASN       int64  `json:"asn"`
	ASOwner   string `json:"as_owner"`
	Country   string `json:"country"`
	Continent string `json:"continent"`
	Network   string `json:"network"`
	RIR       string `json:"regional_internet_registry"`

	// URLs.
	URL                  string   `json:"url"`
	LastFinalURL         string   `json:"last_final_url"`
	Title                string   `json:"title"`
	LastHTTPResponseCode int      `json:"last_http_response_code"`
	ThreatNames          []string `json:"threat_names"`

	// Domains.
	Registrar    string `json:"registrar"`
	CreationDate int64  `json:"creation_date"`

	// Resolutions.
	Date      int64  `json:"date"`
	HostName  string `json:"host_name"`
	IPAddress string `json:"ip_address"`
	Resolver  string `json:"resolver"`

	// YARA rulesets.
	Name   string `json:"name"`
	Rules  string `json:"rules"`
	Source string `json:"source"`
	Author string `json:"author"`

	// Analyses.
	Status  string                  `json:"status"`
	Stats   *Stats                  `json:"stats"`
	Results map[string]EngineResult `json:"results"`
}

// Detections lists the engines whose category is malicious, sorted by name,
// with the result they gave.
func (a *Attributes) Detections() []EngineResult {
	var out []EngineResult
	for name, r := range a.LastAnalysisResults {
		if r.Category != "malicious" {
			continue
		}
		if r.EngineName == "" {
			r.EngineName = name
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].EngineName < out[j].EngineName })
	return out
}

// Time converts VirusTotal epoch seconds to a time; zero stays zero.
func Time(epoch int64) time.Time {
	if epoch <= 0 {
		return time.Time{}
	}
	return time.Unix(epoch, 0).UTC()
}

type wireObject struct {
	Type  string `json:"type"`
	ID    string `json:"id"`
	Links struct {
		Self string `json:"self"`
	} `json:"links"`
	Attributes json.RawMessage `json:"attributes"`
}

// DecodeObject decodes one object (the value of a "data" member). It
// fails only when the input is not a JSON object or has no id; attribute
// fields of unexpected types are skipped.
func DecodeObject(raw json.RawMessage) (*Object, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, errors.New("vt: decode object: not a JSON object")
	}
	var w wireObject
	if err := tolerant(json.Unmarshal(raw, &w)); err != nil {
		return nil, fmt.Errorf("vt: decode object: %w", err)
	}
	if w.ID == "" {
		return nil, errors.New("vt: decode object: missing id")
	}
	o := &Object{Type: w.Type, ID: w.ID, Self: w.Links.Self, Raw: append(json.RawMessage(nil), raw...)}
	if a := bytes.TrimSpace(w.Attributes); len(a) > 0 && a[0] == '{' {
		if err := tolerant(json.Unmarshal(a, &o.Attributes)); err != nil {
			return nil, fmt.Errorf("vt: decode %s %q attributes: %w", w.Type, w.ID, err)
		}
	}
	if strings.HasPrefix(w.Type, "private_") {
		markPrivate(o)
	}
	return o, nil
}

// tolerant drops type mismatches: encoding/json skips such a field and
// decodes the rest, which is what we want for VirusTotal's loose schema.
func tolerant(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return nil
	}
	return err
}
