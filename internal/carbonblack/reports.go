package carbonblack

import (
	"cmp"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// FeedOptions decide which verdicts become reports.
type FeedOptions struct {
	// MinPositives is the number of engines that must detect a file for
	// it to be reported; values below 1 mean 1.
	MinPositives int
	// IncludeSHA256 adds a sha256 IOC when the hash is known (Carbon
	// Black 7.0 and later understand it).
	IncludeSHA256 bool
}

// Limits of the text the feed carries.
const (
	maxLabelRunes       = 80   // a label in a title
	maxTitleRunes       = 200  // a whole title
	maxEngineTextRunes  = 64   // an engine name or an engine's result
	maxDescriptionRunes = 1000 // a whole description
)

// BuildReports turns verdicts into feed reports, one per verdict that
// VirusTotal knows, that at least max(o.MinPositives, 1) engines detect
// and whose Score is at least 1. Verdicts whose MD5 is not 32 hex digits
// cannot be expressed as an IOC and are skipped; when two verdicts have the
// same MD5, the more recently updated one is kept. The reports are sorted
// by id.
//
// A report's id is Binary_<MD5 in upper case>, the original connector's id,
// so that reports keep their identity on servers that synced the original
// feed. The md5 IOC is in lower case: the cbfeeds validator accepts either
// case; lower case is what cbfeeds' own QA template feed uses and how the
// server recorded its built-in VirusTotal feed's hits (alliance_data_*),
// while production feeds with upper-case MD5s (ThreatConnect's, the
// original connector's) show that the server does not depend on case; and
// it is the form of the sha256 IOC and of the hash in the report link.
func BuildReports(vs []Verdict, o FeedOptions) []Report {
	minPos := max(o.MinPositives, 1)
	byID := make(map[string]int, len(vs)) // report id -> index in out
	out := make([]Report, 0, len(vs))
	updated := make([]time.Time, 0, len(vs))
	for _, v := range vs {
		// An imported verdict whose counts are unknown (the original's
		// short_result did not say) passes the threshold: the original
		// published it.
		counted := v.Imported == nil || v.Total > 0
		if !v.Found || counted && v.Positives < minPos || v.Score() < 1 || !isHexDigits(v.MD5, 32) {
			continue
		}
		r := buildReport(v, o)
		if i, dup := byID[r.ID]; dup {
			if v.UpdatedAt.After(updated[i]) {
				out[i], updated[i] = r, v.UpdatedAt
			}
			continue
		}
		byID[r.ID] = len(out)
		out = append(out, r)
		updated = append(updated, v.UpdatedAt)
	}
	slices.SortFunc(out, func(a, b Report) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

func buildReport(v Verdict, o FeedOptions) Report {
	md5 := strings.ToLower(v.MD5)
	r := Report{
		ID:          "Binary_" + strings.ToUpper(v.MD5),
		Timestamp:   reportTimestamp(v),
		Link:        verdictLink(v),
		Title:       reportTitle(v, md5),
		Description: reportDescription(v),
		Score:       v.Score(),
		IOCs:        IOCs{MD5: []string{md5}},
	}
	if sha := strings.ToLower(v.SHA256); o.IncludeSHA256 && isHexDigits(sha, 64) {
		r.IOCs.SHA256 = []string{sha}
	}
	return r
}

// verdictLink is v.Link when it is an absolute http(s) URL, else the
// VirusTotal GUI page of the file's SHA-256 or MD5 (the GUI finds a file
// by any of its hashes), else "".
func verdictLink(v Verdict) string {
	if u, err := url.Parse(v.Link); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" {
		return v.Link
	}
	switch sha, md5 := strings.ToLower(v.SHA256), strings.ToLower(v.MD5); {
	case isHexDigits(sha, 64):
		return "https://www.virustotal.com/gui/file/" + sha
	case isHexDigits(md5, 32):
		return "https://www.virustotal.com/gui/file/" + md5
	}
	return ""
}

// reportTimestamp is UpdatedAt in Unix seconds, falling back to the scan
// date and then to 0 so that a zero time never gives a negative timestamp.
//
// An imported verdict keeps the original's timestamp, so that the Carbon
// Black server sees the report it already has as unchanged.
func reportTimestamp(v Verdict) int64 {
	if v.Imported != nil && v.Imported.At.Unix() > 0 {
		return v.Imported.At.Unix()
	}
	for _, t := range []time.Time{v.UpdatedAt, v.ScanDate} {
		if !t.IsZero() && t.Unix() > 0 {
			return t.Unix()
		}
	}
	return 0
}

// reportTitle is "VirusTotal: 12/68 engines detect <md5> (<label>)".
// A private analysis says so: "VirusTotal private scan: 2/3 sandboxes flag <md5>".
//
// An imported verdict keeps the original's title (or short result), or
// says where it comes from when the original had none.
func reportTitle(v Verdict, md5 string) string {
	if v.Imported != nil {
		if t := cleanText(v.Imported.Title, maxTitleRunes); t != "" {
			return t
		}
		return "VirusTotal (cb-virustotal-connector): score " + strconv.Itoa(v.Score()) + " for " + md5
	}
	t := "VirusTotal: " + strconv.Itoa(v.Positives) + "/" + strconv.Itoa(v.Total) + " engines detect " + md5
	if v.Private {
		t = "VirusTotal private scan: " + strconv.Itoa(v.Positives) + "/" + strconv.Itoa(v.Total) + " sandboxes flag " + md5
	}
	if l := cleanText(v.Label, maxLabelRunes); l != "" {
		t += " (" + l + ")"
	}
	return cleanText(t, maxTitleRunes)
}

// reportDescription is "Detected by: Engine1 (Result1), Engine2 (Result2)",
// cut to maxDescriptionRunes with ", and N more" when it does not fit.
func reportDescription(v Verdict) string {
	head := "Detected by: "
	if v.Private {
		head = "Private analysis (sandboxes, no antivirus engines). Flagged by: "
	}
	var b strings.Builder
	runes, listed := len(head), 0
	for i, d := range v.Detections {
		e := cleanText(d.Engine, maxEngineTextRunes)
		if e == "" {
			continue
		}
		res := cleanText(d.Result, maxEngineTextRunes)
		n := utf8.RuneCountInString(e)
		if res != "" {
			n += len(" ()") + utf8.RuneCountInString(res)
		}
		if listed > 0 {
			n += len(", ")
		}
		// Keep room for the ", and N more" suffix.
		reserve := 0
		if i < len(v.Detections)-1 {
			reserve = len(", and  more") + len(strconv.Itoa(len(v.Detections)))
		}
		if runes+n+reserve > maxDescriptionRunes {
			b.WriteString(", and ")
			b.WriteString(strconv.Itoa(len(v.Detections) - i))
			b.WriteString(" more")
			return b.String()
		}
		if listed == 0 {
			b.Grow(min(maxDescriptionRunes, len(head)+len(v.Detections)*(n+2)) + 8)
			b.WriteString(head)
		} else {
			b.WriteString(", ")
		}
		b.WriteString(e)
		if res != "" {
			b.WriteString(" (")
			b.WriteString(res)
			b.WriteByte(')')
		}
		runes += n
		listed++
	}
	if listed == 0 && v.Private {
		return "Private analysis: flagged by " + strconv.Itoa(v.Positives) + " of " + strconv.Itoa(v.Total) + " sandboxes."
	}
	if listed == 0 && v.Imported != nil && v.Total == 0 {
		return "Verdict of the previous connector (cb-virustotal-connector), score " + strconv.Itoa(v.Score()) + "."
	}
	if listed == 0 {
		return "Detected by " + strconv.Itoa(v.Positives) + " of " + strconv.Itoa(v.Total) + " engines."
	}
	return b.String()
}

// cleanText makes s one line of printable text of at most maxRunes runes:
// whitespace runs (newlines, tabs, Unicode line separators) become one
// space, other control and format characters (including bidi overrides
// and zero-width characters) and invalid UTF-8 are dropped, and a text cut
// short ends with "…".
func cleanText(s string, maxRunes int) string {
	if isCleanASCII(s) && len(s) <= maxRunes {
		return s
	}
	var b strings.Builder
	b.Grow(min(len(s), 4*maxRunes))
	n, space := 0, false
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size <= 1 {
				continue
			}
		}
		switch {
		case unicode.IsSpace(r) || r == '\u2028' || r == '\u2029':
			space = n > 0
			continue
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Cs, r):
			continue
		}
		need := 1
		if space {
			need = 2
		}
		if n+need > maxRunes {
			// Cut: replace the tail so that "…" fits within maxRunes.
			out := []rune(b.String())
			if len(out) >= maxRunes {
				out = out[:maxRunes-1]
			}
			return strings.TrimRight(string(out), " ") + "…"
		}
		if space {
			b.WriteByte(' ')
			space = false
			n++
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// isCleanASCII reports whether s is printable ASCII words separated by
// single spaces, which cleanText leaves as they are.
func isCleanASCII(s string) bool {
	for i := range len(s) {
		c := s[i]
		if c == ' ' {
			if i == 0 || i == len(s)-1 || s[i-1] == ' ' {
				return false
			}
			continue
		}
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

func isHexDigits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
