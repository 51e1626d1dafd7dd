package vt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// VirusTotal Private Scanning (docs.virustotal.com/reference/private-files-api):
// files and URLs scanned without being shared, for keys with the Private
// Scanning license (others get 403, ErrForbidden). The conversation mirrors
// the public one under /private/; the reports carry sandbox verdicts and a
// threat severity instead of antivirus results.

// PrivateUploadFile uploads a file for private scanning (streamed from disk;
// /private/files up to 32 MB, /private/files/upload_url above) and returns
// the analysis id. Same size rules/errors as UploadFile.
func (c *Client) PrivateUploadFile(ctx context.Context, path string) (string, error) {
	return c.uploadFile(ctx, "private upload", "private/files", path)
}

// PrivateSubmitURL submits a URL for private scanning and returns the
// analysis id.
func (c *Client) PrivateSubmitURL(ctx context.Context, rawURL string) (string, error) {
	return c.submitURL(ctx, "private submit url", "private/urls", rawURL)
}

// PrivateAnalysis returns the state of a private analysis (GET
// /private/analyses/{id}), as *Analysis (Status, Date, SHA256/MD5 from
// meta.file_info when present, URLID/URL from meta.url_info).
func (c *Client) PrivateAnalysis(ctx context.Context, id string) (*Analysis, error) {
	return c.analysis(ctx, "private analysis", "private/analyses", id)
}

// PrivateFile returns the private report of a file (GET
// /private/files/{sha256}); Object.Private is true. The endpoint takes only
// a SHA-256, unlike its public counterpart.
func (c *Client) PrivateFile(ctx context.Context, sha256 string) (*Object, error) {
	if len(sha256) != 64 || !IsHash(sha256) {
		return nil, fmt.Errorf("vt: private file %q: %w: not a SHA-256 (private reports are addressed by SHA-256 only)", sha256, ErrBadRequest)
	}
	return c.privateObject(ctx, "private/files/"+strings.ToLower(sha256))
}

// PrivateURL returns the private report of a URL (GET /private/urls/{id})
// given its identifier: the SHA-256 VirusTotal returns or the unpadded
// base64url of the URL (see URLID); Object.Private is true.
func (c *Client) PrivateURL(ctx context.Context, id string) (*Object, error) {
	if id == "" {
		return nil, fmt.Errorf("vt: private url: %w: empty identifier", ErrBadRequest)
	}
	return c.privateObject(ctx, "private/urls/"+url.PathEscape(id))
}

func (c *Client) privateObject(ctx context.Context, path string) (*Object, error) {
	o, err := c.getObject(ctx, path)
	if err != nil {
		return nil, err
	}
	markPrivate(o)
	return o, nil
}

// markPrivate flags o as a private report and gives it the stats of its
// sandbox verdicts when VirusTotal sent none, so that it reads like a
// public report.
func markPrivate(o *Object) {
	o.Private = true
	if o.Attributes.LastAnalysisStats == nil {
		st := PrivateStats(&o.Attributes)
		o.Attributes.LastAnalysisStats = &st
	}
}

// PrivateStats summarises a private report's sandbox verdicts as Stats (one
// count per sandbox by category), the only verdict such a report has.
// Verdicts of a category other than malicious, suspicious, harmless and
// undetected are not counted.
func PrivateStats(a *Attributes) Stats {
	var s Stats
	if a == nil {
		return s
	}
	for _, v := range a.SandboxVerdicts {
		switch strings.ToLower(v.Category) {
		case "malicious":
			s.Malicious++
		case "suspicious":
			s.Suspicious++
		case "harmless":
			s.Harmless++
		case "undetected":
			s.Undetected++
		}
	}
	return s
}

// SandboxVerdict is one entry of sandbox_verdicts
// (docs.virustotal.com/reference/sandbox_verdicts).
type SandboxVerdict struct {
	// Category is malicious, suspicious, harmless or undetected.
	Category string `json:"category"`
	// Confidence is 0 to 100.
	Confidence int `json:"confidence"`
	// MalwareClassification holds the raw sandbox verdicts, e.g. "TROJAN".
	MalwareClassification []string `json:"malware_classification"`
	// MalwareNames are malware family names.
	MalwareNames []string `json:"malware_names"`
	SandboxName  string   `json:"sandbox_name"`
}

// Threat severity levels of ThreatSeverity.Level.
const (
	SeverityHigh    = "SEVERITY_HIGH"
	SeverityMedium  = "SEVERITY_MEDIUM"
	SeverityLow     = "SEVERITY_LOW"
	SeverityNone    = "SEVERITY_NONE"
	SeverityUnknown = "SEVERITY_UNKNOWN"
)

// ThreatSeverity is threat_severity: VirusTotal's assessment of how
// dangerous a file is, present in public and private file reports.
type ThreatSeverity struct {
	// Level is threat_severity_level, one of the Severity constants.
	Level string `json:"threat_severity_level"`
	// LevelDescription explains the level, e.g. "Severity HIGH because ...".
	LevelDescription string             `json:"level_description"`
	Data             ThreatSeverityData `json:"threat_severity_data"`
	Version          int                `json:"version"`
	// LastAnalysisDate is epoch seconds; VirusTotal sends it as a string
	// or a number, both are read.
	LastAnalysisDate int64 `json:"-"`
}

// ThreatSeverityData is threat_severity.threat_severity_data: the facts
// the level was derived from.
type ThreatSeverityData struct {
	PopularThreatCategory             string `json:"popular_threat_category"`
	NumGAVDetections                  int    `json:"num_gav_detections"`
	TypeTag                           string `json:"type_tag"`
	CanBeDetonated                    bool   `json:"can_be_detonated"`
	HasDroppedFilesWithDetections     bool   `json:"has_dropped_files_with_detections"`
	HasExecutionParentsWithDetections bool   `json:"has_execution_parents_with_detections"`
}

// UnmarshalJSON decodes tolerantly, like the rest of Attributes, and reads
// last_analysis_date given as a number or a string of digits.
func (t *ThreatSeverity) UnmarshalJSON(b []byte) error {
	type plain ThreatSeverity
	var w struct {
		*plain
		LastAnalysisDate json.RawMessage `json:"last_analysis_date"`
	}
	w.plain = (*plain)(t)
	if err := tolerant(json.Unmarshal(b, &w)); err != nil {
		return err
	}
	d := bytes.Trim(bytes.TrimSpace(w.LastAnalysisDate), `"`)
	if n, err := strconv.ParseInt(string(d), 10, 64); err == nil && n > 0 {
		t.LastAnalysisDate = n
	}
	return nil
}
