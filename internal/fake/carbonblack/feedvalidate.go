package carbonblack

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"unicode"
)

// The rules below are those of the carbonblack/cbfeeds validator (feed.py):
// a feed is {"feedinfo": {...}, "reports": [...]}; an invalid feedinfo
// makes the whole document invalid, an invalid report is rejected on its
// own. Unlike the validator's default, negative scores (down to -100) are
// accepted: the server has supported them since Cb 4.2.

// feedInfo is a validated feedinfo.
type feedInfo struct {
	name, displayName, providerURL, summary, techData string
	category, icon, iconSmall                         string
	providerRating                                    float64
}

// parsedFeed is a fetched document after validation.
type parsedFeed struct {
	info     feedInfo
	reports  []Report
	rejected []Rejection
	warnings []string
}

// defaultProviderRating is what the real server lists for feeds whose
// feedinfo has no provider_rating.
const defaultProviderRating = 3.0

var (
	reportIDPattern = regexp.MustCompile(`^[a-zA-Z0-9_.-]+$`)
	dnsLabelPattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9-]{0,61}[a-zA-Z0-9]?$`)
	iocTypes        = []string{"md5", "sha256", "ipv4", "ipv6", "dns", "query", "ja3", "ja3s"}
)

// parseFeed validates a feed document. The error is about the document as a
// whole; rejected reports are listed in the result.
func parseFeed(body []byte) (parsedFeed, error) {
	var out parsedFeed
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var top map[string]any
	if err := dec.Decode(&top); err != nil || top == nil {
		return out, errors.New("invalid feed: not a JSON object")
	}
	infoRaw, ok := top["feedinfo"].(map[string]any)
	if !ok {
		return out, errors.New("invalid feed: missing 'feedinfo' object")
	}
	reports, ok := top["reports"].([]any)
	if !ok {
		return out, errors.New("invalid feed: missing 'reports' list")
	}
	info, err := validateFeedInfo(infoRaw)
	if err != nil {
		return out, fmt.Errorf("invalid feed: feedinfo: %w", err)
	}
	out.info = info
	out.reports = []Report{}
	seen := map[string]bool{}
	for i, raw := range reports {
		obj, _ := raw.(map[string]any)
		r, warns, err := validateReport(obj)
		if err == nil && seen[r.ID] {
			err = fmt.Errorf("duplicate report id %q", r.ID)
		}
		if err != nil {
			out.rejected = append(out.rejected, Rejection{Index: i, ReportID: idText(obj), Reason: err.Error()})
			continue
		}
		seen[r.ID] = true
		out.reports = append(out.reports, r)
		out.warnings = append(out.warnings, warns...)
	}
	return out, nil
}

func idText(obj map[string]any) string {
	if v, ok := obj["id"]; ok && v != nil {
		return fmt.Sprint(v)
	}
	return ""
}

func validateFeedInfo(m map[string]any) (feedInfo, error) {
	var missing []string
	for _, k := range []string{"display_name", "name", "provider_url", "summary", "tech_data"} {
		if _, ok := m[k]; !ok {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return feedInfo{}, fmt.Errorf("missing required field(s): %s", strings.Join(missing, ", "))
	}
	known := []string{"display_name", "name", "provider_url", "summary", "tech_data", "category", "icon", "icon_small", "provider_rating", "version"}
	for _, k := range known {
		v, ok := m[k]
		if !ok {
			continue
		}
		switch k {
		case "provider_rating", "version":
			if _, isNum := v.(json.Number); !isNum {
				return feedInfo{}, fmt.Errorf("field %q must be a number", k)
			}
		default:
			s, isStr := v.(string)
			if !isStr {
				return feedInfo{}, fmt.Errorf("field %q must be a string", k)
			}
			if s == "" && slices.Contains([]string{"name", "display_name", "summary", "tech_data", "category"}, k) {
				return feedInfo{}, fmt.Errorf("field %q must not be an empty string", k)
			}
		}
	}
	for _, k := range []string{"icon", "icon_small"} {
		if v, ok := m[k]; ok {
			if err := checkIcon(v.(string)); err != nil {
				return feedInfo{}, fmt.Errorf("field %q: %w", k, err)
			}
		}
	}
	name := m["name"].(string)
	for _, r := range name {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			return feedInfo{}, fmt.Errorf("feed name %q may only contain a-z, A-Z and 0-9", name)
		}
	}
	info := feedInfo{
		name:           name,
		displayName:    m["display_name"].(string),
		providerURL:    m["provider_url"].(string),
		summary:        m["summary"].(string),
		techData:       m["tech_data"].(string),
		category:       str(m["category"]),
		icon:           str(m["icon"]),
		iconSmall:      str(m["icon_small"]),
		providerRating: defaultProviderRating,
	}
	if n, ok := m["provider_rating"].(json.Number); ok {
		info.providerRating, _ = n.Float64()
	}
	return info, nil
}

// checkIcon requires base64 of a PNG, GIF or JPEG image (a file path, as
// in some old feeds, is not accepted).
func checkIcon(s string) error {
	data, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return fmt.Errorf("not base64 image data: %w", err)
	}
	switch {
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")),
		bytes.HasPrefix(data, []byte("GIF87a")), bytes.HasPrefix(data, []byte("GIF89a")),
		bytes.HasPrefix(data, []byte{0xff, 0xd8, 0xff}):
		return nil
	}
	return errors.New("not a PNG, GIF or JPEG image")
}

// validateReport checks one report; warnings are accepted oddities.
func validateReport(m map[string]any) (Report, []string, error) {
	var r Report
	if m == nil {
		return r, nil, errors.New("report is not a JSON object")
	}
	var missing []string
	for _, k := range []string{"id", "iocs", "link", "score", "timestamp", "title"} {
		if _, ok := m[k]; !ok {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return r, nil, fmt.Errorf("missing required field(s): %s", strings.Join(missing, ", "))
	}
	for _, k := range []string{"id", "link", "title", "description"} {
		if v, ok := m[k]; ok {
			if _, isStr := v.(string); !isStr {
				return r, nil, fmt.Errorf("field %q must be a string", k)
			}
		}
	}
	ints := map[string]int64{}
	for _, k := range []string{"timestamp", "score"} {
		n, isNum := m[k].(json.Number)
		if !isNum {
			return r, nil, fmt.Errorf("field %q must be an integer", k)
		}
		f, err := n.Float64()
		if err != nil {
			return r, nil, fmt.Errorf("field %q must be an integer", k)
		}
		ints[k] = int64(f)
	}
	r.ID, r.Link, r.Title, r.Description = m["id"].(string), m["link"].(string), m["title"].(string), str(m["description"])
	r.Timestamp, r.Score = ints["timestamp"], int(ints["score"])
	if v, ok := m["tags"]; ok {
		tags, err := stringList(v, "tags")
		if err != nil {
			return r, nil, err
		}
		for _, t := range tags {
			if strings.EqualFold(t, "event_query") {
				continue
			}
			if len(t) < 1 || len(t) > 32 || !isAlnum(t) {
				return r, nil, fmt.Errorf("tag %q must be 1 to 32 letters or digits", t)
			}
		}
		r.Tags = tags
	}
	if r.Score < -100 || r.Score > 100 {
		return r, nil, fmt.Errorf("score %d out of range -100 to 100", r.Score)
	}
	if !reportIDPattern.MatchString(r.ID) {
		return r, nil, fmt.Errorf("id %q may only contain a-z, A-Z, 0-9 and -_.", r.ID)
	}
	if err := validateIOCs(m["iocs"], &r); err != nil {
		return r, nil, err
	}
	var warns []string
	switch {
	case strings.TrimSpace(r.Title) == "":
		warns = append(warns, fmt.Sprintf("report %s: empty title", r.ID))
	case strings.ContainsAny(r.Title, "\r\n"):
		warns = append(warns, fmt.Sprintf("report %s: title is not one line", r.ID))
	}
	return r, warns, nil
}

func validateIOCs(v any, r *Report) error {
	iocs, ok := v.(map[string]any)
	if !ok {
		return errors.New("field 'iocs' must be an object")
	}
	if len(iocs) == 0 {
		return errors.New("field 'iocs' has no entries")
	}
	for _, key := range slices.Sorted(maps.Keys(iocs)) {
		item := iocs[key]
		if !slices.Contains(iocTypes, key) {
			return fmt.Errorf("unknown ioc type %q", key)
		}
		if key == "query" {
			if len(iocs) > 1 {
				return errors.New("a query ioc must be the only ioc of its report")
			}
			q, err := validateQueryIOC(item)
			if err != nil {
				return err
			}
			r.Query = q
			continue
		}
		list, err := stringList(item, "iocs."+key)
		if err != nil {
			return err
		}
		if len(list) == 0 {
			return fmt.Errorf("ioc %q must have at least 1 entry", key)
		}
		for _, e := range list {
			if err := checkIOC(key, e); err != nil {
				return err
			}
		}
		switch key {
		case "md5":
			r.MD5 = list
		case "sha256":
			r.SHA256 = list
		case "ipv4":
			r.IPv4 = list
		case "ipv6":
			r.IPv6 = list
		case "dns":
			r.DNS = list
		case "ja3":
			r.JA3 = list
		case "ja3s":
			r.JA3S = list
		}
	}
	return nil
}

func checkIOC(key, e string) error {
	switch key {
	case "md5", "ja3", "ja3s":
		if !isHex(e, 32) {
			return fmt.Errorf("ioc %q has an invalid hash: %q", key, e)
		}
	case "sha256":
		if !isHex(e, 64) {
			return fmt.Errorf("ioc %q has an invalid hash: %q", key, e)
		}
	case "ipv4", "ipv6":
		if _, err := netip.ParseAddr(e); err != nil {
			return fmt.Errorf("ioc %q has an invalid address: %q", key, e)
		}
	case "dns":
		d := strings.TrimSpace(e)
		if d == "" || len(d) > 253 {
			return fmt.Errorf("ioc \"dns\" has an invalid domain: %q", e)
		}
		parts := strings.Split(d, ".")
		if len(parts) == 1 {
			return fmt.Errorf("ioc \"dns\" has too few labels: %q", e)
		}
		if parts[len(parts)-1] == "" {
			parts = parts[:len(parts)-1]
		}
		for _, p := range parts {
			if !dnsLabelPattern.MatchString(p) {
				return fmt.Errorf("ioc \"dns\" has an invalid domain: %q", e)
			}
		}
	}
	return nil
}

func validateQueryIOC(v any) (*QueryIOC, error) {
	q, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("ioc \"query\" must be an object")
	}
	it, _ := q["index_type"].(string)
	if it != "events" && it != "modules" {
		return nil, fmt.Errorf("ioc \"query\": index_type %v is not events or modules", q["index_type"])
	}
	sq, err := stringList(q["search_query"], "iocs.query.search_query")
	if err != nil {
		return nil, err
	}
	if len(sq) == 0 {
		return nil, errors.New("ioc \"query\": search_query is empty")
	}
	for _, item := range sq {
		if !strings.Contains(item, "q=") && !strings.Contains(item, "cb.q.") {
			return nil, fmt.Errorf("ioc \"query\": bad search_query %q", item)
		}
		for kv := range strings.SplitSeq(item, "&") {
			k, val, ok := strings.Cut(kv, "=")
			if !ok || strings.Contains(val, "=") || (k != "q" && !strings.HasPrefix(k, "cb.q.")) {
				continue
			}
			for _, c := range val {
				if !isAlnumASCII(c) && !strings.ContainsRune("-_.~%*()", c) {
					return nil, fmt.Errorf("ioc \"query\": unescaped character %q in query; use percent-encoding", c)
				}
			}
		}
	}
	return &QueryIOC{IndexType: it, SearchQuery: sq}, nil
}

func stringList(v any, name string) ([]string, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("field %q must be a list of strings", name)
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		s, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("field %q has a non-string entry %v", name, e)
		}
		out = append(out, s)
	}
	return out, nil
}

func isAlnum(s string) bool {
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			return false
		}
	}
	return s != ""
}

func isAlnumASCII(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
