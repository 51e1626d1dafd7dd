package opencti

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/vtconnector/vtconnector/internal/stix"
)

// openctiNamespace is the platform's OPENCTI_NAMESPACE, the UUIDv5
// namespace of its internal objects (§9.1). The double derives the internal
// ids it invents from it, so that they are stable.
const openctiNamespace = "b639ff3b-00eb-42ed-aa36-a8dd6f8fb4cf"

// adminUserID is the platform's OPENCTI_ADMIN_UUID, the user manual
// enrichments are asked by in the double.
const adminUserID = "88ec0c6a-13ce-5e39-b486-354fe4a7084f"

// uuidV5 returns the name-based UUID of name in namespace (RFC 4122 §4.3).
func uuidV5(namespace, name string) string {
	ns, err := hex.DecodeString(strings.ReplaceAll(namespace, "-", ""))
	if err != nil || len(ns) != 16 {
		panic("fakeocti: bad uuid namespace " + namespace)
	}
	h := sha1.New()
	h.Write(ns)
	h.Write([]byte(name))
	sum := h.Sum(nil)[:16]
	sum[6] = sum[6]&0x0f | 0x50
	sum[8] = sum[8]&0x3f | 0x80
	return formatUUID(sum)
}

// uuidV4 returns a random UUID.
func uuidV4() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return formatUUID(b[:])
}

func formatUUID(b []byte) string {
	s := hex.EncodeToString(b)
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:32]
}

// userIDForToken is the id of the platform user owning an API token.
func userIDForToken(token string) string { return uuidV5(openctiNamespace, "user:"+token) }

// internalIDFor is the internal id the double gives the entity with a
// standard id.
func internalIDFor(standardID string) string { return uuidV5(openctiNamespace, standardID) }

var (
	uuidRE   = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	stixIDRE = regexp.MustCompile(`^([a-z0-9][a-z0-9-]*[a-z0-9]|[a-z0-9])--(.+)$`)
)

// checkIDSyntax reports whether id is "<typ>--<uuid>".
func checkIDSyntax(typ, id string) error {
	m := stixIDRE.FindStringSubmatch(id)
	if m == nil {
		return fmt.Errorf("id %q is not <type>--<uuid>", id)
	}
	if m[1] != typ {
		return fmt.Errorf("id %q does not start with its type %q", id, typ)
	}
	if !uuidRE.MatchString(m[2]) {
		return fmt.Errorf("id %q does not end with a UUID", id)
	}
	return nil
}

// isStixID reports whether s looks like a STIX id ("<type>--<uuid>").
func isStixID(s string) bool {
	m := stixIDRE.FindStringSubmatch(s)
	return m != nil && uuidRE.MatchString(m[2])
}

// valueTypes are the observables whose id is {value} (§9.2).
var valueTypes = map[string]bool{
	"ipv4-addr": true, "ipv6-addr": true, "domain-name": true, "url": true, "email-addr": true,
	"mac-addr": true, "hostname": true, "text": true, "user-agent": true, "phone-number": true,
	"cryptocurrency-wallet": true,
}

// nameTypes are the SDOs whose id is {name} through NormalizeName (§9.2).
var nameTypes = map[string]bool{
	"malware": true, "tool": true, "vulnerability": true, "campaign": true,
	"intrusion-set": true, "infrastructure": true,
}

// errNotDeterministic is returned by standardID for types whose id the
// double does not recompute.
var errNotDeterministic = errors.New("id not recomputed for this type")

// standardID recomputes the deterministic id of a STIX object from its
// properties with internal/stix, following the platform's rules (§9.2). It
// returns errNotDeterministic for types it does not check and
// stix.ErrNoIDProperties when the object lacks the properties its id comes
// from.
func standardID(obj map[string]any) (string, error) {
	typ, _ := obj["type"].(string)
	str := func(k string) string { s, _ := obj[k].(string); return s }
	switch {
	case typ == "indicator":
		if str("pattern") == "" {
			return "", stix.ErrNoIDProperties
		}
		return stix.IndicatorID(str("pattern")), nil
	case valueTypes[typ]:
		if str("value") == "" {
			return "", stix.ErrNoIDProperties
		}
		return stix.ObservableValueID(typ, str("value")), nil
	case typ == "file":
		return stix.FileID(hashesOf(obj), str("name"))
	case typ == "artifact":
		return stix.ArtifactID(hashesOf(obj), str("url"))
	case typ == "autonomous-system":
		n, ok := number(obj["number"])
		if !ok {
			return "", stix.ErrNoIDProperties
		}
		return stix.AutonomousSystemID(n), nil
	case typ == "relationship":
		if str("relationship_type") == "" || str("source_ref") == "" || str("target_ref") == "" {
			return "", stix.ErrNoIDProperties
		}
		return stix.RelationshipID(str("relationship_type"), str("source_ref"), str("target_ref"),
			parseTime(str("start_time")), parseTime(str("stop_time"))), nil
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
			return "", stix.ErrNoIDProperties
		}
		return stix.SightingID(str("sighting_of_ref"), where, parseTime(str("first_seen")), parseTime(str("last_seen"))), nil
	case typ == "identity":
		if str("name") == "" || str("identity_class") == "" {
			return "", stix.ErrNoIDProperties
		}
		return stix.IdentityID(str("name"), str("identity_class")), nil
	case typ == "location":
		lt := str("x_opencti_location_type")
		if lt == "" {
			lt = extensionString(obj, stix.ExtensionOpenCTISDO, "location_type")
		}
		if lt == "" || lt == "Position" || str("name") == "" {
			return "", errNotDeterministic
		}
		return stix.LocationID(str("name"), lt), nil
	case typ == "note":
		if str("content") == "" {
			return "", stix.ErrNoIDProperties
		}
		return stix.NoteID(str("content"), parseTime(str("created"))), nil
	case typ == "report":
		if str("name") == "" || str("published") == "" {
			return "", stix.ErrNoIDProperties
		}
		return stix.ReportID(str("name"), parseTime(str("published"))), nil
	case nameTypes[typ]:
		if str("name") == "" {
			return "", stix.ErrNoIDProperties
		}
		return stix.GenerateID(typ, map[string]any{"name": stix.NormalizeName(str("name"))})
	case typ == "external-reference":
		return stix.ExternalReferenceID(str("url"), str("source_name"), str("external_id"))
	case typ == "marking-definition":
		if _, ok := stix.TLPFromMarkingID(str("id")); ok {
			return str("id"), nil
		}
		return "", errNotDeterministic
	}
	return "", errNotDeterministic
}

func hashesOf(obj map[string]any) stix.Hashes {
	m, _ := obj["hashes"].(map[string]any)
	if len(m) == 0 {
		return nil
	}
	h := stix.Hashes{}
	for k, v := range m {
		if s, ok := v.(string); ok && s != "" {
			h[k] = s
		}
	}
	return h
}

func extensionString(obj map[string]any, ext, key string) string {
	exts, _ := obj["extensions"].(map[string]any)
	e, _ := exts[ext].(map[string]any)
	s, _ := e[key].(string)
	return s
}

func number(v any) (int64, bool) {
	switch n := v.(type) {
	case float64:
		return int64(n), n == float64(int64(n))
	case int:
		return int64(n), true
	case int64:
		return n, true
	case string:
		i, err := strconv.ParseInt(n, 10, 64)
		return i, err == nil
	}
	return 0, false
}

// parseTime reads a STIX timestamp; the zero time when empty or invalid.
func parseTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}
