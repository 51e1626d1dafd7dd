package opencti

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// openctiNamespace is the platform's OPENCTI_NAMESPACE, the UUIDv5
// namespace of its internal objects (§9.1). The double derives the internal
// ids it invents from it, so that they are stable.
const openctiNamespace = "b639ff3b-00eb-42ed-aa36-a8dd6f8fb4cf"

// adminUserID is the platform's OPENCTI_ADMIN_UUID, the user manual
// enrichments are asked by in the double.
const adminUserID = "88ec0c6a-13ce-5e39-b486-354fe4a7084f"

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

func hashesOf(obj map[string]any) map[string]string {
	m, _ := obj["hashes"].(map[string]any)
	if len(m) == 0 {
		return nil
	}
	h := map[string]string{}
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
