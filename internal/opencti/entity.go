package opencti

import (
	"encoding/json"
	"math"
	"slices"
	"strings"

	"github.com/vtconnector/vtconnector/internal/stix"
)

// OpenCTI entity types the enrichment handles (event.entity_type).
const (
	TypeStixFile   = "StixFile"
	TypeArtifact   = "Artifact"
	TypeIPv4Addr   = "IPv4-Addr"
	TypeDomainName = "Domain-Name"
	TypeHostname   = "Hostname"
	TypeURL        = "Url"
	TypeIndicator  = "Indicator"
)

// stixTypes maps the OpenCTI entity types to the STIX type of their export.
var stixTypes = map[string]string{
	TypeStixFile:   "file",
	TypeArtifact:   "artifact",
	TypeIPv4Addr:   "ipv4-addr",
	TypeDomainName: "domain-name",
	TypeHostname:   "hostname",
	TypeURL:        "url",
	TypeIndicator:  "indicator",
}

// Entity is the enriched entity as the platform sent it: event.entity_id
// (its standard id), event.entity_type and the decoded event.stix_entity,
// kept whole (numbers as json.Number) so that fields this package does not
// know travel back unchanged.
type Entity struct {
	ID, Type string
	STIX     map[string]any
}

// UnsupportedTypeError is returned for an entity type the enrichment does
// not handle; its text is the original connector's.
type UnsupportedTypeError struct{ Type string }

func (e *UnsupportedTypeError) Error() string { return e.Type + " is not a supported entity type." }

// Value is the entity's value as OpenCTI shows it (observable_value): the
// value of an IP address, domain, hostname or URL; for a file or artifact
// the first of its SHA-512, SHA-256, SHA-1 and MD5, else its name; for an
// Indicator its name, else its pattern.
func (e Entity) Value() string {
	switch e.Type {
	case TypeStixFile, TypeArtifact:
		h := e.Hashes()
		for _, algo := range []string{stix.HashSHA512, stix.HashSHA256, stix.HashSHA1, stix.HashMD5} {
			if h[algo] != "" {
				return h[algo]
			}
		}
		name, _ := e.STIX["name"].(string)
		return name
	case TypeIndicator:
		if name, _ := e.STIX["name"].(string); name != "" {
			return name
		}
		p, _ := e.STIX["pattern"].(string)
		return p
	}
	v, _ := e.STIX["value"].(string)
	return v
}

// canonicalHashName writes common spellings of hash algorithms the way
// STIX does ("sha256" and "SHA256" become "SHA-256").
func canonicalHashName(algo string) string {
	u := strings.ToUpper(strings.TrimSpace(algo))
	switch u {
	case "SHA256":
		return stix.HashSHA256
	case "SHA1":
		return stix.HashSHA1
	case "SHA512":
		return stix.HashSHA512
	}
	return u
}

// Hashes returns the entity's hashes keyed by STIX algorithm name
// (stix.HashSHA256, …), whatever case the export used.
func (e Entity) Hashes() map[string]string {
	raw, _ := e.STIX["hashes"].(map[string]any)
	out := make(map[string]string, len(raw))
	for algo, v := range raw {
		if s, ok := v.(string); ok && s != "" {
			out[canonicalHashName(algo)] = s
		}
	}
	return out
}

// Markings returns the entity's object_marking_refs, without duplicates.
func (e Entity) Markings() []string {
	l, _ := e.STIX["object_marking_refs"].([]any)
	var out []string
	for _, v := range l {
		if s, ok := v.(string); ok && s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// Score returns the entity's existing score: the top-level x_opencti_score
// when present, else the "score" of the OpenCTI SDO extension, else that of
// the SCO extension (pycti get_attribute_in_extension). ok is false when
// there is none (or it is null).
func (e Entity) Score() (int, bool) {
	if v, ok := e.STIX["x_opencti_score"]; ok && v != nil {
		return scoreValue(v)
	}
	for _, ext := range []string{stix.ExtensionOpenCTISDO, stix.ExtensionOpenCTISCO} {
		if m := extension(e.STIX, ext, false); m != nil {
			if v, ok := m["score"]; ok && v != nil {
				return scoreValue(v)
			}
		}
	}
	return 0, false
}

func scoreValue(v any) (int, bool) {
	switch n := v.(type) {
	case json.Number:
		f, err := n.Float64()
		if err != nil {
			return 0, false
		}
		return clampScore(math.RoundToEven(f)), true
	case float64:
		return clampScore(math.RoundToEven(n)), true
	case int:
		return clampScore(float64(n)), true
	}
	return 0, false
}
