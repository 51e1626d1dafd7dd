package opencti

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
)

// The double computes the platform's deterministic STIX ids itself
// (opencti-protocol.md §9), independently of the module's internal/stix,
// which is part of the connector under test: a bug there must not hide in
// the checks of the double. TestIDsMatchTheGoldenVectors and the fidelity
// test TestIDsOfRealPlatformObjects pin this implementation.

// oasisNamespace is the UUIDv5 namespace of every deterministic STIX id
// (the platform's OASIS_NAMESPACE, §9.1).
const oasisNamespace = "00abedb4-aa42-466c-9c01-fed23315a9b7"

// specVersion is the STIX version of the objects the double exports.
const specVersion = "2.1"

// OpenCTI's extension definitions, under which the platform exports its
// own properties.
const (
	extensionSDO = "extension-definition--ea279b3e-5c71-4632-ac08-831c66a786ba"
	extensionSCO = "extension-definition--f93e2c80-4231-4f9a-af8b-95c9bd566a82"
)

// Hash algorithm names as STIX writes them.
const (
	hashMD5     = "MD5"
	hashSHA1    = "SHA-1"
	hashSHA256  = "SHA-256"
	hashSHA512  = "SHA-512"
	hashSHA3256 = "SHA3-256"
	hashSHA3512 = "SHA3-512"
	hashSSDEEP  = "SSDEEP"
)

// idHashOrder is the order in which the platform picks the one hash that
// identifies a file or an artifact (§9.2).
var idHashOrder = []string{hashMD5, hashSHA1, hashSHA256, hashSHA512, hashSHA3256, hashSHA3512, hashSSDEEP}

// errNoIDProperties: the object has none of the properties its id is
// derived from (the platform's "Missing required elements").
var errNoIDProperties = errors.New("no contributing property to derive the id from")

// errNotDeterministic is returned by standardID for types whose id the
// double does not recompute.
var errNotDeterministic = errors.New("id not recomputed for this type")

// timestampLayout is JavaScript's Date.toISOString, the form in which the
// platform writes dates and hashes them into ids.
const timestampLayout = "2006-01-02T15:04:05.000Z"

// formatTimestamp returns t as the platform writes it.
func formatTimestamp(t time.Time) string { return t.UTC().Format(timestampLayout) }

// deterministicID returns "<stixType>--" + UUIDv5(OASIS namespace,
// JCS(contrib)) (§9.1). Empty strings and empty lists are dropped first, as
// the platform drops absent contributions.
func deterministicID(stixType string, contrib map[string]any) string {
	for k, v := range contrib {
		if l, isList := v.([]string); v == nil || v == "" || isList && len(l) == 0 {
			delete(contrib, k)
		}
	}
	var b strings.Builder
	jcs(&b, contrib)
	return stixType + "--" + uuidV5(oasisNamespace, b.String())
}

// jcs writes v as RFC 8785 canonical JSON. It knows the values the id
// rules contribute: strings, int64, []string and map[string]any of those.
func jcs(b *strings.Builder, v any) {
	switch x := v.(type) {
	case string:
		jcsString(b, x)
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case []string:
		b.WriteByte('[')
		for i, s := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			jcsString(b, s)
		}
		b.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		// RFC 8785 §3.2.3: keys ordered by their UTF-16 code units.
		slices.SortFunc(keys, func(a, b string) int { return slices.Compare(utf16.Encode([]rune(a)), utf16.Encode([]rune(b))) })
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			jcsString(b, k)
			b.WriteByte(':')
			jcs(b, x[k])
		}
		b.WriteByte('}')
	default:
		panic(fmt.Sprintf("fakeocti: no canonical JSON for %T", v)) // unreachable: the rules below pass only the types above
	}
}

// jcsString writes s as ECMAScript's JSON.stringify does (RFC 8785 §3.2.2.2):
// only the quote, the backslash and the C0 controls are escaped.
func jcsString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if r < 0x20 {
				fmt.Fprintf(b, `\u%04x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
}

// normalizeName is the platform's name normalisation for ids: lower case,
// surrounding white space trimmed.
func normalizeName(s string) string { return strings.TrimSpace(strings.ToLower(s)) }

// hashContribution picks the identifying hash of a file or an artifact:
// algorithm names upper-cased, the first of idHashOrder present.
func hashContribution(hashes map[string]string) (map[string]any, bool) {
	upper := make(map[string]string, len(hashes))
	for algo, v := range hashes {
		upper[strings.ToUpper(algo)] = v
	}
	for _, algo := range idHashOrder {
		if v := upper[algo]; v != "" {
			return map[string]any{algo: v}, true
		}
	}
	return nil, false
}

// fileID is a file's id: its identifying hash, else its name.
func fileID(hashes map[string]string, name string) (string, error) {
	if h, ok := hashContribution(hashes); ok {
		return deterministicID("file", map[string]any{"hashes": h}), nil
	}
	if name != "" {
		return deterministicID("file", map[string]any{"name": name}), nil
	}
	return "", errNoIDProperties
}

// artifactID is an artifact's id: its identifying hash, else its url.
func artifactID(hashes map[string]string, url string) (string, error) {
	if h, ok := hashContribution(hashes); ok {
		return deterministicID("artifact", map[string]any{"hashes": h}), nil
	}
	if url != "" {
		return deterministicID("artifact", map[string]any{"url": url}), nil
	}
	return "", errNoIDProperties
}

// indicatorID is an indicator's id: its pattern as stored (the platform
// does not trim it).
func indicatorID(pattern string) string {
	return deterministicID("indicator", map[string]any{"pattern": pattern})
}

// valueID is the id of an observable identified by its value.
func valueID(stixType, value string) string {
	return deterministicID(stixType, map[string]any{"value": value})
}

// labelID is a label's id: its value lower-cased and trimmed.
func labelID(value string) string { return valueID("label", normalizeName(value)) }

// valueTypes are the observables whose id is {value} (§9.2).
var valueTypes = map[string]bool{
	"ipv4-addr": true, "ipv6-addr": true, "domain-name": true, "url": true, "email-addr": true,
	"mac-addr": true, "hostname": true, "text": true, "user-agent": true, "phone-number": true,
	"cryptocurrency-wallet": true,
}

// nameTypes are the SDOs whose id is {name}, normalised (§9.2).
var nameTypes = map[string]bool{
	"malware": true, "tool": true, "vulnerability": true, "campaign": true,
	"intrusion-set": true, "infrastructure": true,
}

// standardID recomputes the deterministic id of a STIX object from its
// properties, following the platform's rules (§9.2). It returns
// errNotDeterministic for types it does not check and errNoIDProperties
// when the object lacks the properties its id comes from.
func standardID(obj map[string]any) (string, error) {
	typ, _ := obj["type"].(string)
	str := func(k string) string { s, _ := obj[k].(string); return s }
	// Dates contribute as the platform stores them (toISOString); an
	// unreadable one does not contribute.
	date := func(k string) string {
		if t := parseTime(str(k)); !t.IsZero() {
			return formatTimestamp(t)
		}
		return ""
	}
	switch {
	case typ == "indicator":
		if str("pattern") == "" {
			return "", errNoIDProperties
		}
		return indicatorID(str("pattern")), nil
	case valueTypes[typ]:
		if str("value") == "" {
			return "", errNoIDProperties
		}
		return valueID(typ, str("value")), nil
	case typ == "file":
		return fileID(hashesOf(obj), str("name"))
	case typ == "artifact":
		return artifactID(hashesOf(obj), str("url"))
	case typ == "autonomous-system":
		n, ok := number(obj["number"])
		if !ok {
			return "", errNoIDProperties
		}
		return deterministicID(typ, map[string]any{"number": n}), nil
	case typ == "relationship":
		if str("relationship_type") == "" || str("source_ref") == "" || str("target_ref") == "" {
			return "", errNoIDProperties
		}
		return deterministicID(typ, map[string]any{
			"relationship_type": str("relationship_type"), "source_ref": str("source_ref"), "target_ref": str("target_ref"),
			"start_time": date("start_time"), "stop_time": date("stop_time"),
		}), nil
	case typ == "sighting":
		var where []string
		if list, ok := obj["where_sighted_refs"].([]any); ok {
			for _, v := range list {
				if s, ok := v.(string); ok {
					where = append(where, s)
				}
			}
		}
		if str("sighting_of_ref") == "" || len(where) == 0 {
			return "", errNoIDProperties
		}
		return deterministicID(typ, map[string]any{
			"type": "sighting", "sighting_of_ref": str("sighting_of_ref"), "where_sighted_refs": where,
			"first_seen": date("first_seen"), "last_seen": date("last_seen"),
		}), nil
	case typ == "identity":
		if str("name") == "" || str("identity_class") == "" {
			return "", errNoIDProperties
		}
		return deterministicID(typ, map[string]any{"name": normalizeName(str("name")), "identity_class": normalizeName(str("identity_class"))}), nil
	case typ == "location":
		lt := str("x_opencti_location_type")
		if lt == "" {
			lt = extensionString(obj, extensionSDO, "location_type")
		}
		if lt == "" || lt == "Position" || str("name") == "" {
			return "", errNotDeterministic
		}
		return deterministicID(typ, map[string]any{"name": normalizeName(str("name")), "x_opencti_location_type": lt}), nil
	case typ == "note":
		if str("content") == "" {
			return "", errNoIDProperties
		}
		return deterministicID(typ, map[string]any{"content": str("content"), "created": date("created")}), nil
	case typ == "report":
		if str("name") == "" || str("published") == "" {
			return "", errNoIDProperties
		}
		return deterministicID(typ, map[string]any{"name": normalizeName(str("name")), "published": date("published")}), nil
	case nameTypes[typ]:
		if str("name") == "" {
			return "", errNoIDProperties
		}
		return deterministicID(typ, map[string]any{"name": normalizeName(str("name"))}), nil
	case typ == "external-reference":
		switch {
		case str("url") != "":
			return deterministicID(typ, map[string]any{"url": str("url")}), nil
		case str("source_name") != "" && str("external_id") != "":
			return deterministicID(typ, map[string]any{"source_name": str("source_name"), "external_id": str("external_id")}), nil
		}
		return "", errNoIDProperties
	case typ == "marking-definition":
		if _, ok := tlpByMarkingID[str("id")]; ok {
			return str("id"), nil
		}
		return "", errNotDeterministic
	}
	return "", errNotDeterministic
}

// uuidV5 returns the name-based UUID of name in namespace (RFC 4122 §4.3).
func uuidV5(namespace, name string) string {
	ns, err := hex.DecodeString(strings.ReplaceAll(namespace, "-", ""))
	if err != nil || len(ns) != 16 {
		panic("fakeocti: bad uuid namespace " + namespace) // unreachable: constants only
	}
	h := sha1.New()
	h.Write(ns)
	h.Write([]byte(name))
	sum := h.Sum(nil)[:16]
	sum[6] = sum[6]&0x0f | 0x50
	sum[8] = sum[8]&0x3f | 0x80
	return formatUUID(sum)
}
