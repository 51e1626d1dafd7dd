package carbonblack

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
)

// ValidateFeedJSON checks a serialised feed document: that it is JSON of
// the right shape, with the right types and no unknown fields (the
// validator's strict, "pedantic", mode), and then ValidateFeed's rules.
func ValidateFeedJSON(doc []byte) []error {
	var v feedValidator
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var top any
	if err := dec.Decode(&top); err != nil {
		v.doc("", "not JSON: "+err.Error())
		return v.errs
	}
	if dec.More() {
		v.doc("", "data after the JSON document")
	}
	obj, ok := top.(map[string]any)
	if !ok {
		v.doc("", "not a JSON object")
		return v.errs
	}
	for _, k := range sortedKeys(obj) {
		if k != "feedinfo" && k != "reports" {
			v.doc(k, "unknown field")
		}
	}
	switch raw, ok := obj["feedinfo"]; {
	case !ok:
		v.doc("feedinfo", "missing")
	default:
		if fi, ok := v.decodeFeedInfo(raw); ok {
			v.feedInfo(fi)
		}
	}
	raw, ok := obj["reports"]
	if !ok {
		v.doc("reports", "missing")
		return v.errs
	}
	list, ok := raw.([]any)
	if !ok {
		v.doc("reports", "must be a list")
		return v.errs
	}
	v.ids = make(map[string]int, len(list))
	for i, rr := range list {
		if v.full() {
			break
		}
		if r, ok := v.decodeReport(i, rr); ok {
			v.report(i, &r)
		}
	}
	return v.errs
}

// decodeFeedInfo checks the shape and types of a feedinfo object.
func (v *feedValidator) decodeFeedInfo(raw any) (FeedInfo, bool) {
	var fi FeedInfo
	m, ok := raw.(map[string]any)
	if !ok {
		v.doc("feedinfo", "must be an object")
		return fi, false
	}
	n := len(v.errs)
	for _, k := range []string{"name", "display_name", "provider_url", "summary", "tech_data"} {
		if _, ok := m[k]; !ok {
			v.doc("feedinfo."+k, "required field missing")
		}
	}
	strs := map[string]*string{
		"name": &fi.Name, "display_name": &fi.DisplayName, "provider_url": &fi.ProviderURL,
		"summary": &fi.Summary, "tech_data": &fi.TechData, "category": &fi.Category,
		"icon": &fi.Icon, "icon_small": &fi.IconSmall,
	}
	nums := map[string]**float64{"provider_rating": &fi.ProviderRating, "version": &fi.Version}
	for _, k := range sortedKeys(m) {
		val := m[k]
		if p, ok := strs[k]; ok {
			s, isStr := val.(string)
			switch {
			case !isStr:
				v.doc("feedinfo."+k, fmt.Sprintf("must be a string, not %s", jsonKind(val)))
			case s == "" && k != "provider_url":
				v.doc("feedinfo."+k, "must not be an empty string")
			default:
				*p = s
			}
			continue
		}
		if p, ok := nums[k]; ok {
			num, isNum := val.(json.Number)
			f, err := num.Float64()
			if !isNum || err != nil {
				v.doc("feedinfo."+k, fmt.Sprintf("must be a number, not %s", jsonKind(val)))
				continue
			}
			*p = &f
			continue
		}
		v.doc("feedinfo."+k, "unknown field")
	}
	return fi, len(v.errs) == n
}

// decodeReport checks the shape and types of a report object.
func (v *feedValidator) decodeReport(i int, raw any) (Report, bool) {
	var r Report
	m, ok := raw.(map[string]any)
	if !ok {
		v.rep(i, nil, "", "must be an object")
		return r, false
	}
	if id, ok := m["id"].(string); ok {
		r.ID = id
	}
	n := len(v.errs)
	for _, k := range []string{"id", "iocs", "link", "score", "timestamp", "title"} {
		if _, ok := m[k]; !ok {
			v.rep(i, &r, k, "required field missing")
		}
	}
	strs := map[string]*string{"id": &r.ID, "link": &r.Link, "title": &r.Title, "description": &r.Description}
	for _, k := range sortedKeys(m) {
		val := m[k]
		switch k {
		case "id", "link", "title", "description":
			if s, ok := val.(string); ok {
				*strs[k] = s
			} else {
				v.rep(i, &r, k, fmt.Sprintf("must be a string, not %s", jsonKind(val)))
			}
		case "timestamp", "score":
			num, err := jsonInt(val)
			if err != nil {
				v.rep(i, &r, k, err.Error())
				continue
			}
			if k == "score" {
				num = max(min(num, math.MaxInt32), math.MinInt32)
				r.Score = int(num)
			} else {
				r.Timestamp = num
			}
		case "tags":
			r.Tags = v.stringList(i, &r, "tags", val, false)
		case "iocs":
			v.decodeIOCs(i, &r, val)
		default:
			v.rep(i, &r, k, "unknown field")
		}
	}
	return r, len(v.errs) == n
}

func (v *feedValidator) decodeIOCs(i int, r *Report, raw any) {
	m, ok := raw.(map[string]any)
	if !ok {
		v.rep(i, r, "iocs", fmt.Sprintf("must be an object, not %s", jsonKind(raw)))
		return
	}
	lists := map[string]*[]string{
		"md5": &r.IOCs.MD5, "sha256": &r.IOCs.SHA256, "ipv4": &r.IOCs.IPv4, "ipv6": &r.IOCs.IPv6,
		"dns": &r.IOCs.DNS, "ja3": &r.IOCs.JA3, "ja3s": &r.IOCs.JA3S,
	}
	for _, k := range sortedKeys(m) {
		val := m[k]
		if p, ok := lists[k]; ok {
			*p = v.stringList(i, r, "iocs."+k, val, true)
			continue
		}
		if k != "query" {
			v.rep(i, r, "iocs."+k, "unknown IOC type")
			continue
		}
		q, ok := val.(map[string]any)
		if !ok {
			v.rep(i, r, "iocs.query", fmt.Sprintf("must be an object, not %s", jsonKind(val)))
			continue
		}
		r.IOCs.Query = &QueryIOC{}
		for _, qk := range sortedKeys(q) {
			switch qk {
			case "index_type":
				if s, ok := q[qk].(string); ok {
					r.IOCs.Query.IndexType = s
				} else {
					v.rep(i, r, "iocs.query.index_type", fmt.Sprintf("must be a string, not %s", jsonKind(q[qk])))
				}
			case "search_query":
				r.IOCs.Query.SearchQuery = v.stringList(i, r, "iocs.query.search_query", q[qk], false)
			default:
				v.rep(i, r, "iocs.query."+qk, "unknown field")
			}
		}
		for _, qk := range []string{"index_type", "search_query"} {
			if _, ok := q[qk]; !ok {
				v.rep(i, r, "iocs.query."+qk, "required field missing")
			}
		}
	}
}

func (v *feedValidator) stringList(i int, r *Report, field string, raw any, nonEmpty bool) []string {
	list, ok := raw.([]any)
	if !ok {
		v.rep(i, r, field, fmt.Sprintf("must be a list of strings, not %s", jsonKind(raw)))
		return nil
	}
	if nonEmpty && len(list) == 0 {
		v.rep(i, r, field, "must have at least one entry")
		return nil
	}
	out := make([]string, 0, len(list))
	for j, e := range list {
		s, ok := e.(string)
		if !ok {
			v.rep(i, r, fmt.Sprintf("%s[%d]", field, j), fmt.Sprintf("must be a string, not %s", jsonKind(e)))
			continue
		}
		out = append(out, s)
	}
	return out
}

// jsonInt reads an integral JSON number (the validator accepts a float and
// truncates it; a fraction here is a bug, so it is refused).
func jsonInt(val any) (int64, error) {
	num, ok := val.(json.Number)
	if !ok {
		return 0, fmt.Errorf("must be an integer, not %s", jsonKind(val))
	}
	if n, err := num.Int64(); err == nil {
		return n, nil
	}
	f, err := num.Float64()
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, fmt.Errorf("must be an integer, not %s", num)
	}
	return int64(f), nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
