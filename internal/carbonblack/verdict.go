package carbonblack

import (
	"time"
)

// Verdict is what the connector knows about one Carbon Black binary after
// asking VirusTotal: the input of the feed and of the HTML index.
type Verdict struct {
	MD5    string `json:"md5"`              // upper case, as Carbon Black reports it
	SHA256 string `json:"sha256,omitempty"` // lower case; empty when unknown
	// Found is false when VirusTotal does not know the file.
	Found bool `json:"found"`
	// Positives is the number of engines whose category is malicious;
	// Total the engines that gave a verdict (malicious, suspicious,
	// undetected or harmless; timeouts, failures and unsupported types are
	// not counted).
	Positives  int `json:"positives"`
	Suspicious int `json:"suspicious"`
	Total      int `json:"total"`
	// Detections lists the engines that detect the file and the name
	// each gives, sorted by engine name.
	Detections []Detection `json:"detections,omitempty"`
	Label      string      `json:"label,omitempty"`    // VirusTotal's suggested threat label, if any
	ScanDate   time.Time   `json:"scan_date,omitzero"` // VirusTotal's last_analysis_date
	// UpdatedAt is when this verdict last changed; it becomes the feed
	// report's timestamp, so that Carbon Black's incremental sync picks
	// up changes.
	UpdatedAt time.Time `json:"-"`
	// Key is the verdict's key in the store (its MD5 as stored), set when
	// it is read; the HTML index pages by it.
	Key  string `json:"-"`
	Link string `json:"link"` // the VirusTotal GUI page of the file
	// Private: the verdict comes from a VirusTotal Private Scanning
	// analysis: Positives and Total count sandboxes and tools, not
	// antivirus engines, and Detections name the sandboxes.
	Private bool `json:"private,omitempty"`
	// Imported, when set, is the original connector's verdict carried
	// over by ImportLegacy; it is published as the original published it
	// until a lookup of our own replaces the verdict.
	Imported *ImportedVerdict `json:"imported,omitempty"`
}

// ImportedVerdict is what the original connector's database said about a
// binary (a binary_data row in state 100).
type ImportedVerdict struct {
	Score int    `json:"score"`           // the original's score, 0..100
	Title string `json:"title,omitempty"` // its title, or short_result when title is empty
	// At is the row's last_modified: the original's report timestamp and
	// the time days_rescan counts from.
	At time.Time `json:"at"`
}

// Detection is one engine's detection.
type Detection struct {
	Engine string `json:"engine"`
	Result string `json:"result"`
}

// Score is the feed score of a verdict: the original connector's
// trunc(100 × positives / total), at least 1 when anything detects the
// file so that a published report never has score 0.
//
// An imported verdict keeps the original's score.
func (v Verdict) Score() int {
	if v.Imported != nil {
		return min(max(v.Imported.Score, 0), 100)
	}
	if v.Positives <= 0 || v.Total <= 0 {
		return 0
	}
	s := 100 * v.Positives / v.Total
	return min(max(s, 1), 100)
}

// FeedName is the feed's name on the Carbon Black server, kept from the
// original connector so that the alliance_score_virustotalconnector tags
// it left on binaries keep excluding them from collection (until a full
// sync of our feed replaces them: the connector asks for none before it
// has published verdicts of its own).
const FeedName = "virustotalconnector"
