package carbonblack

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"
)

// FeedError is one rule of the Carbon Black feed format that a feed
// breaks.
type FeedError struct {
	// Report is the index of the report in reports, or -1 when the
	// problem is in feedinfo or in the document itself.
	Report   int
	ReportID string // the report's id, when it has one
	// Field is where the problem is: "feedinfo.icon" for the feedinfo or
	// the document, "title" or "iocs.md5[0]" within a report.
	Field   string
	Problem string
}

func (e *FeedError) Error() string {
	var b strings.Builder
	b.WriteString("carbonblack: invalid feed: ")
	if e.Report >= 0 {
		fmt.Fprintf(&b, "reports[%d]", e.Report)
		if e.ReportID != "" {
			fmt.Fprintf(&b, " (id %q)", e.ReportID)
		}
		if e.Field != "" {
			b.WriteString(" " + e.Field)
		}
	} else {
		b.WriteString(cmp.Or(e.Field, "document"))
	}
	b.WriteString(": " + e.Problem)
	return b.String()
}

// maxFeedErrors caps the problems one validation reports.
const maxFeedErrors = 100

// ValidateFeed checks f against the rules of the carbonblack/cbfeeds
// validator, plus a few of the spec's that the validator does not enforce
// (one-line non-empty titles). It returns every problem found, as
// *FeedError values, up to 100; nil means the feed is valid.
func ValidateFeed(f Feed) []error {
	var v feedValidator
	v.feedInfo(f.FeedInfo)
	v.ids = make(map[string]int, len(f.Reports))
	for i := range f.Reports {
		if v.full() {
			break
		}
		v.report(i, &f.Reports[i])
	}
	return v.errs
}

type feedValidator struct {
	errs []error
	ids  map[string]int // report id -> index of its first report
}

func (v *feedValidator) full() bool { return len(v.errs) > maxFeedErrors }

func (v *feedValidator) add(e *FeedError) {
	switch {
	case len(v.errs) < maxFeedErrors:
		v.errs = append(v.errs, e)
	case len(v.errs) == maxFeedErrors:
		v.errs = append(v.errs, &FeedError{Report: -1, Field: "document",
			Problem: fmt.Sprintf("too many problems, stopped after %d", maxFeedErrors)})
	}
}

func (v *feedValidator) doc(field, problem string) {
	v.add(&FeedError{Report: -1, Field: field, Problem: problem})
}

func (v *feedValidator) rep(i int, r *Report, field, problem string) {
	e := &FeedError{Report: i, Field: field, Problem: problem}
	if r != nil {
		e.ReportID = r.ID
	}
	v.add(e)
}

// feedInfo checks the values of a feedinfo.
func (v *feedValidator) feedInfo(fi FeedInfo) {
	for _, f := range []struct{ key, val string }{
		{"name", fi.Name}, {"display_name", fi.DisplayName}, {"provider_url", fi.ProviderURL},
		{"summary", fi.Summary}, {"tech_data", fi.TechData},
	} {
		if f.val == "" {
			v.doc("feedinfo."+f.key, "required and must not be empty")
		}
	}
	if fi.Name != "" && !isASCIIAlnum(fi.Name) {
		v.doc("feedinfo.name", fmt.Sprintf("%q may only contain a-z, A-Z and 0-9", fi.Name))
	}
	for _, f := range []struct{ key, val string }{{"icon", fi.Icon}, {"icon_small", fi.IconSmall}} {
		if f.val != "" {
			if err := checkIcon(f.val); err != nil {
				v.doc("feedinfo."+f.key, err.Error())
			}
		}
	}
	for _, f := range []struct {
		key string
		val *float64
	}{{"provider_rating", fi.ProviderRating}, {"version", fi.Version}} {
		if f.val != nil && (math.IsNaN(*f.val) || math.IsInf(*f.val, 0)) {
			v.doc("feedinfo."+f.key, "must be a finite number")
		}
	}
}

// checkIcon accepts what the validator accepts: strict base64 (standard
// alphabet, padded, no line breaks) of data that Python's imghdr
// recognises as PNG, GIF or JPEG. A file path, which cbfeeds' Python API
// resolves on the machine that builds the feed, is not an icon.
func checkIcon(s string) error {
	if strings.ContainsAny(s, "\r\n") {
		return errors.New("not base64 image data: contains a line break")
	}
	data, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return fmt.Errorf("not base64 image data (a file path or URL is not accepted): %v", err)
	}
	if imageKind(data) == "" {
		return errors.New("base64 data is not a PNG, GIF or JPEG image")
	}
	return nil
}

// imageKind applies imghdr's PNG, GIF and JPEG tests.
func imageKind(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return "png"
	case bytes.HasPrefix(b, []byte("GIF87a")), bytes.HasPrefix(b, []byte("GIF89a")):
		return "gif"
	case len(b) >= 10 && (string(b[6:10]) == "JFIF" || string(b[6:10]) == "Exif"),
		bytes.HasPrefix(b, []byte{0xff, 0xd8, 0xff, 0xdb}):
		return "jpeg"
	}
	return ""
}

// report checks the values of a report.
func (v *feedValidator) report(i int, r *Report) {
	switch {
	case r.ID == "":
		v.rep(i, r, "id", "required and must not be empty")
	case !isReportID(r.ID):
		v.rep(i, r, "id", "may only contain a-z, A-Z, 0-9 and -_.")
	default:
		if first, dup := v.ids[r.ID]; dup {
			v.rep(i, r, "id", fmt.Sprintf("duplicate of reports[%d]", first))
		} else if v.ids != nil {
			v.ids[r.ID] = i
		}
	}
	switch {
	case strings.TrimSpace(r.Title) == "":
		v.rep(i, r, "title", "required and must not be empty")
	case strings.IndexFunc(r.Title, isLineBreakOrControl) >= 0:
		v.rep(i, r, "title", "must be one line without control characters")
	}
	if r.Score < 0 || r.Score > 100 {
		v.rep(i, r, "score", fmt.Sprintf("%d out of range 0 to 100", r.Score))
	}
	if r.Timestamp < 0 {
		v.rep(i, r, "timestamp", fmt.Sprintf("%d is negative", r.Timestamp))
	}
	for j, t := range r.Tags {
		if strings.EqualFold(t, "event_query") {
			continue
		}
		if n := utf8.RuneCountInString(t); n < 1 || n > 32 || !isAlnum(t) {
			v.rep(i, r, fmt.Sprintf("tags[%d]", j), fmt.Sprintf("%q must be 1 to 32 letters or digits", t))
		}
	}
	v.iocs(i, r)
}

func (v *feedValidator) iocs(i int, r *Report) {
	c := r.IOCs
	lists := []struct {
		key  string
		vals []string
	}{
		{"md5", c.MD5}, {"sha256", c.SHA256}, {"ipv4", c.IPv4}, {"ipv6", c.IPv6},
		{"dns", c.DNS}, {"ja3", c.JA3}, {"ja3s", c.JA3S},
	}
	kinds := 0
	for _, l := range lists {
		if len(l.vals) > 0 {
			kinds++
		}
	}
	if c.Query != nil {
		if kinds > 0 {
			v.rep(i, r, "iocs.query", "a query must be the only IOC of its report")
		}
		v.queryIOC(i, r, c.Query)
		return
	}
	if kinds == 0 {
		v.rep(i, r, "iocs", "has no entries")
		return
	}
	for _, l := range lists {
		for j, s := range l.vals {
			if p := checkIOC(l.key, s); p != "" {
				v.rep(i, r, fmt.Sprintf("iocs.%s[%d]", l.key, j), fmt.Sprintf("%q: %s", s, p))
			}
		}
	}
}

// checkIOC returns what is wrong with one IOC value, or "".
func checkIOC(kind, s string) string {
	switch kind {
	case "md5", "ja3", "ja3s":
		if !isHexDigits(s, 32) {
			return "not 32 hex digits"
		}
	case "sha256":
		if !isHexDigits(s, 64) {
			return "not 64 hex digits"
		}
	case "ipv4":
		if a, err := netip.ParseAddr(s); err != nil || !a.Is4() {
			return "not an IPv4 address"
		}
	case "ipv6":
		if a, err := netip.ParseAddr(s); err != nil || !a.Is6() {
			return "not an IPv6 address"
		}
	case "dns":
		return checkDomain(s)
	}
	return ""
}

// checkDomain applies the validator's loose RFC 1035 checks.
func checkDomain(s string) string {
	d := strings.TrimSpace(s)
	switch {
	case d == "":
		return "empty domain"
	case len(d) > 253:
		return "longer than 253 characters"
	}
	labels := strings.Split(d, ".")
	if len(labels) == 1 {
		return "a domain needs at least two labels"
	}
	if labels[len(labels)-1] == "" { // a trailing dot is allowed
		labels = labels[:len(labels)-1]
	}
	if len(labels) > 127 {
		return "more than 127 labels"
	}
	for _, l := range labels {
		if !isDNSLabel(l) {
			return fmt.Sprintf("invalid label %q", l)
		}
	}
	return ""
}

// isDNSLabel matches ^[a-zA-Z0-9][a-zA-Z0-9-]{0,61}[a-zA-Z0-9]?$.
func isDNSLabel(l string) bool {
	if len(l) < 1 || len(l) > 63 || !isASCIIAlnum(l[:1]) {
		return false
	}
	for k := 1; k < len(l); k++ {
		c := l[k]
		if c == '-' && k < 62 {
			continue
		}
		if !isASCIIAlnum(l[k : k+1]) {
			return false
		}
	}
	return true
}

func (v *feedValidator) queryIOC(i int, r *Report, q *QueryIOC) {
	if q.IndexType != "events" && q.IndexType != "modules" {
		v.rep(i, r, "iocs.query.index_type", fmt.Sprintf("%q is not events or modules", q.IndexType))
	}
	if len(q.SearchQuery) == 0 {
		v.rep(i, r, "iocs.query.search_query", "has no entries")
	}
	for j, sq := range q.SearchQuery {
		field := fmt.Sprintf("iocs.query.search_query[%d]", j)
		if !strings.Contains(sq, "q=") && !strings.Contains(sq, "cb.q.") {
			v.rep(i, r, field, fmt.Sprintf("%q has no q= or cb.q. term", sq))
			continue
		}
		for kv := range strings.SplitSeq(sq, "&") {
			k, val, ok := strings.Cut(kv, "=")
			if !ok || strings.Contains(val, "=") || (k != "q" && !strings.HasPrefix(k, "cb.q.")) {
				continue
			}
			if bad := strings.IndexFunc(val, notQueryChar); bad >= 0 {
				c, _ := utf8.DecodeRuneInString(val[bad:])
				v.rep(i, r, field, fmt.Sprintf("unescaped character %q in the query; use percent-encoding", c))
			}
		}
	}
}

// notQueryChar reports characters that a percent-encoded query value may
// not contain.
func notQueryChar(c rune) bool {
	return !(c < utf8.RuneSelf && isASCIIAlnum(string(c))) && !strings.ContainsRune("-_.~%*()", c)
}

func isReportID(s string) bool {
	for i := range len(s) {
		c := s[i]
		if !(c < utf8.RuneSelf && isASCIIAlnum(s[i:i+1])) && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return s != ""
}

func isASCIIAlnum(s string) bool {
	for i := range len(s) {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return s != ""
}

// isAlnum is Python's str.isalnum: letters and digits of any script.
func isAlnum(s string) bool {
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.IsNumber(r) {
			return false
		}
	}
	return s != ""
}

func isLineBreakOrControl(r rune) bool {
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029'
}
