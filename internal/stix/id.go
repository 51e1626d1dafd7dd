package stix

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Namespace is the UUIDv5 namespace of every deterministic STIX id: the
// OASIS STIX 2.1 SCO namespace, which pycti and the OpenCTI platform
// (OASIS_NAMESPACE) use for all STIX types alike.
const Namespace = "00abedb4-aa42-466c-9c01-fed23315a9b7"

var namespaceBytes = mustParseUUID(Namespace)

func mustParseUUID(s string) [16]byte {
	var u [16]byte
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(b) != len(u) {
		panic("stix: bad UUID constant " + s)
	}
	copy(u[:], b)
	return u
}

// ErrNoIDProperties is returned when an object has none of the properties
// its id is derived from (a file with neither hashes nor name, an external
// reference with neither url nor source_name and external_id). The OpenCTI
// platform rejects such objects ("Missing required elements").
var ErrNoIDProperties = errors.New("no contributing property to derive the id from")

// Hash algorithm names as STIX writes them in hashes dictionaries.
const (
	HashMD5     = "MD5"
	HashSHA1    = "SHA-1"
	HashSHA256  = "SHA-256"
	HashSHA512  = "SHA-512"
	HashSHA3256 = "SHA3-256"
	HashSHA3512 = "SHA3-512"
	HashSSDEEP  = "SSDEEP"
	HashTLSH    = "TLSH"
)

// idHashPriority is the order in which the platform picks the one hash that
// identifies a file or artifact (identifier.js, hashes resolver).
var idHashPriority = []string{HashMD5, HashSHA1, HashSHA256, HashSHA512, HashSHA3256, HashSHA3512, HashSSDEEP}

// GenerateID returns "<stixType>--" + UUIDv5(Namespace, JCS(properties)).
// Properties are hashed exactly as given: no normalisation, no omission of
// empty values. Values may be strings, booleans, integers, float64, nil,
// []string, []any, map[string]string or map[string]any. The typed
// functions (IndicatorID, FileID, …) apply each type's rules and are what
// callers normally want.
func GenerateID(stixType string, properties map[string]any) (string, error) {
	name, err := canonicalJSON(properties)
	if err != nil {
		return "", err
	}
	return stixType + "--" + uuidV5(name), nil
}

// uuidV5 is RFC 4122 / RFC 9562 version 5 (SHA-1, name-based) in Namespace.
func uuidV5(name []byte) string {
	h := sha1.New()
	h.Write(namespaceBytes[:])
	h.Write(name)
	u := h.Sum(nil)[:16]
	u[6] = u[6]&0x0f | 0x50 // version 5
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// idOf is GenerateID for the typed helpers, whose values are always
// supported. Empty strings, empty lists and nil values are dropped first, as
// the platform drops empty contributions.
func idOf(stixType string, properties map[string]any) string {
	for k, v := range properties {
		if l, isList := v.([]string); v == nil || v == "" || isList && len(l) == 0 {
			delete(properties, k)
		}
	}
	id, err := GenerateID(stixType, properties)
	if err != nil {
		panic(err) // unreachable: the typed helpers only pass supported values
	}
	return id
}

// timeProp is the contribution of an optional time: absent when zero.
func timeProp(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return FormatTimestamp(t)
}

// IndicatorID is the id of the indicator with this pattern: {pattern}.
// Surrounding white space is stripped first, as pycti does (the platform
// hashes the stored pattern as is; both agree for trimmed patterns, which
// is what the pattern builders return).
func IndicatorID(pattern string) string {
	return idOf("indicator", map[string]any{"pattern": pyStrip(pattern)})
}

// NoteID is the id of a note: {content} plus {created} when created is not
// zero, created written in TimestampLayout (the serialisation Note uses).
// The content is stripped of surrounding white space as pycti does; the
// platform hashes the stored content, so the two agree only when content
// has no leading or trailing white space, which callers should ensure.
//
// Because created is part of the id, a note re-created at every enrichment
// gets a new id every time (the original connector's behaviour); pass a
// stable created time, or a zero one, to let re-enrichment upsert.
func NoteID(content string, created time.Time) string {
	return idOf("note", map[string]any{"content": pyStrip(content), "created": timeProp(created)})
}

// RelationshipID is the id of a core relationship: {relationship_type,
// source_ref, target_ref} plus start_time and stop_time when not zero.
// The refs must be the standard ids of the two ends. Each time is included
// on its own, as the platform does; pycti's helper drops stop_time when
// start_time is absent, which only matters for that unusual combination.
func RelationshipID(relationshipType, sourceRef, targetRef string, startTime, stopTime time.Time) string {
	return idOf("relationship", map[string]any{
		"relationship_type": relationshipType,
		"source_ref":        sourceRef,
		"target_ref":        targetRef,
		"start_time":        timeProp(startTime),
		"stop_time":         timeProp(stopTime),
	})
}

// SightingID is the id of a sighting: {type: "sighting", sighting_of_ref,
// where_sighted_refs} plus first_seen and last_seen when not zero.
func SightingID(sightingOfRef string, whereSightedRefs []string, firstSeen, lastSeen time.Time) string {
	return idOf("sighting", map[string]any{
		"type":               "sighting",
		"sighting_of_ref":    sightingOfRef,
		"where_sighted_refs": append([]string{}, whereSightedRefs...),
		"first_seen":         timeProp(firstSeen),
		"last_seen":          timeProp(lastSeen),
	})
}

// IdentityID is the id of an identity (organization, individual, sector,
// system): {name, identity_class}, both through NormalizeName.
func IdentityID(name, identityClass string) string {
	return idOf("identity", map[string]any{
		"name":           NormalizeName(name),
		"identity_class": NormalizeName(identityClass),
	})
}

// Location types as OpenCTI writes them in x_opencti_location_type.
const (
	LocationTypeCountry = "Country"
	LocationTypeCity    = "City"
	LocationTypeRegion  = "Region"
)

// LocationID is the id of a named location (Country, City, Region,
// Administrative-Area): {name, x_opencti_location_type}, the name through
// NormalizeName, the type kept as given (e.g. "Country"). Positions, which
// are identified by latitude and longitude, are not covered.
func LocationID(name, locationType string) string {
	return idOf("location", map[string]any{
		"name":                    NormalizeName(name),
		"x_opencti_location_type": locationType,
	})
}

// MalwareID is the id of a malware: {name} through NormalizeName.
func MalwareID(name string) string {
	return idOf("malware", map[string]any{"name": NormalizeName(name)})
}

// ReportID is the id of a report: {name, published}, the name through
// NormalizeName, published in TimestampLayout.
func ReportID(name string, published time.Time) string {
	return idOf("report", map[string]any{"name": NormalizeName(name), "published": timeProp(published)})
}

// KillChainPhaseID is the id OpenCTI gives a kill chain phase:
// {kill_chain_name, phase_name}, not normalised.
func KillChainPhaseID(killChainName, phaseName string) string {
	return idOf("kill-chain-phase", map[string]any{"kill_chain_name": killChainName, "phase_name": phaseName})
}

// AutonomousSystemID is the id of an autonomous-system: {number}.
func AutonomousSystemID(number int64) string {
	return idOf("autonomous-system", map[string]any{"number": number})
}

// ObservableValueID is the id of an observable identified by its value
// alone: ipv4-addr, ipv6-addr, domain-name, hostname, url, email-addr,
// mac-addr, text, user-agent, phone-number, … : {value}, not normalised
// (the platform hashes observable values as stored).
func ObservableValueID(stixType, value string) string {
	return idOf(stixType, map[string]any{"value": value})
}

// IPv4AddrID is the id of an ipv4-addr: {value}.
func IPv4AddrID(value string) string { return ObservableValueID("ipv4-addr", value) }

// IPv6AddrID is the id of an ipv6-addr: {value}.
func IPv6AddrID(value string) string { return ObservableValueID("ipv6-addr", value) }

// DomainNameID is the id of a domain-name: {value}.
func DomainNameID(value string) string { return ObservableValueID("domain-name", value) }

// HostnameID is the id of OpenCTI's custom hostname observable: {value}.
func HostnameID(value string) string { return ObservableValueID("hostname", value) }

// URLID is the id of a url: {value}.
func URLID(value string) string { return ObservableValueID("url", value) }

// TextID is the id of OpenCTI's custom text observable: {value}.
func TextID(value string) string { return ObservableValueID("text", value) }

// idHash picks the one hash that identifies a file or artifact: algorithm
// names are upper-cased, then the first non-empty of MD5, SHA-1, SHA-256,
// SHA-512, SHA3-256, SHA3-512, SSDEEP wins. ok is false when there is none.
func idHash(hashes Hashes) (map[string]any, bool) {
	upper := make(map[string]string, len(hashes))
	for algo, v := range hashes {
		upper[strings.ToUpper(algo)] = v
	}
	for _, algo := range idHashPriority {
		if v := upper[algo]; v != "" {
			return map[string]any{algo: v}, true
		}
	}
	return nil, false
}

// FileID is the id of a file, following the platform rather than the STIX
// default: {hashes: {ALGO: value}} with the single hash idHash picks (MD5
// before SHA-1 before SHA-256 …), else {name}. It fails with
// ErrNoIDProperties when there is neither.
func FileID(hashes Hashes, name string) (string, error) {
	if h, ok := idHash(hashes); ok {
		return idOf("file", map[string]any{"hashes": h}), nil
	}
	if name != "" {
		return idOf("file", map[string]any{"name": name}), nil
	}
	return "", fmt.Errorf("stix: file id: %w", ErrNoIDProperties)
}

// ArtifactID is the id of an artifact: the FileID hash rule, else {url}
// (payload_bin never contributes). It fails with ErrNoIDProperties when
// there is neither.
func ArtifactID(hashes Hashes, url string) (string, error) {
	if h, ok := idHash(hashes); ok {
		return idOf("artifact", map[string]any{"hashes": h}), nil
	}
	if url != "" {
		return idOf("artifact", map[string]any{"url": url}), nil
	}
	return "", fmt.Errorf("stix: artifact id: %w", ErrNoIDProperties)
}

// ExternalReferenceID is the id OpenCTI gives an external reference: {url}
// when url is set, else {source_name, external_id} (both needed), not
// normalised. It fails with ErrNoIDProperties otherwise.
func ExternalReferenceID(url, sourceName, externalID string) (string, error) {
	switch {
	case url != "":
		return idOf("external-reference", map[string]any{"url": url}), nil
	case sourceName != "" && externalID != "":
		return idOf("external-reference", map[string]any{"source_name": sourceName, "external_id": externalID}), nil
	}
	return "", fmt.Errorf("stix: external reference id: %w", ErrNoIDProperties)
}

// MarkingDefinitionID is the id of a marking definition. Both arguments are
// upper-cased as the platform does; a TLP definition (definition type
// "TLP", definition "TLP:CLEAR", "TLP:WHITE", …) has its fixed well-known
// id, any other marking {definition, definition_type}.
func MarkingDefinitionID(definitionType, definition string) string {
	definitionType, definition = strings.ToUpper(definitionType), strings.ToUpper(definition)
	if t, ok := tlpByName[definition]; ok && definitionType == "TLP" {
		return t.MarkingID()
	}
	return idOf("marking-definition", map[string]any{"definition_type": definitionType, "definition": definition})
}
