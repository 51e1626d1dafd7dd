package opencti

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/vtconnector/vtconnector/internal/stix"
	"github.com/vtconnector/vtconnector/internal/vt"
)

// Lookup is what to ask VirusTotal for an entity.
type Lookup struct {
	Kind vt.Kind
	// ID is the hash (lower case), IP address, domain (lower case) or URL.
	ID string
}

// LookupFor returns the VirusTotal lookup of an observable: a file or
// artifact by its SHA-256, else SHA-1, else MD5; an IPv4 address; a domain
// for Domain-Name and Hostname; a URL. Values are checked so that nothing
// malformed reaches VirusTotal. Indicators are looked up through
// IndicatorObservables.
func LookupFor(e Entity) (Lookup, error) {
	switch e.Type {
	case TypeStixFile, TypeArtifact:
		h := e.Hashes()
		for _, algo := range []struct {
			name string
			size int
		}{{stix.HashSHA256, 64}, {stix.HashSHA1, 40}, {stix.HashMD5, 32}} {
			v := strings.TrimSpace(h[algo.name])
			if v == "" {
				continue
			}
			if len(v) != algo.size || !vt.IsHash(v) {
				return Lookup{}, fmt.Errorf("opencti: %s %s: hashes[%q] %q is not a hexadecimal %s", e.Type, e.ID, algo.name, v, algo.name)
			}
			return Lookup{Kind: vt.KindFile, ID: strings.ToLower(v)}, nil
		}
		return Lookup{}, ErrNoHash
	case TypeIPv4Addr:
		v := strings.TrimSpace(e.Value())
		a, err := netip.ParseAddr(v)
		if err != nil || !a.Is4() {
			return Lookup{}, fmt.Errorf("opencti: IPv4-Addr %s: value %q is not a single IPv4 address (VirusTotal has no reports of networks)", e.ID, v)
		}
		return Lookup{Kind: vt.KindIP, ID: a.String()}, nil
	case TypeDomainName, TypeHostname:
		d, err := vt.NormalizeDomain(e.Value())
		if err != nil {
			return Lookup{}, fmt.Errorf("opencti: %s %s: value %q: %w", e.Type, e.ID, e.Value(), err)
		}
		return Lookup{Kind: vt.KindDomain, ID: d}, nil
	case TypeURL:
		v := strings.TrimSpace(e.Value())
		if v == "" {
			return Lookup{}, fmt.Errorf("opencti: Url %s has an empty value", e.ID)
		}
		return Lookup{Kind: vt.KindURL, ID: v}, nil
	case TypeIndicator:
		return Lookup{}, fmt.Errorf("opencti: Indicator %s: look up each of its IndicatorObservables", e.ID)
	}
	return Lookup{}, &UnsupportedTypeError{Type: e.Type}
}

// workError is an error whose text is the message the original connector
// reports on the work, kept verbatim so that operators see the same text.
type workError string

func (e workError) Error() string { return string(e) }

// ErrNoHash is the error of a file or artifact without an MD5, SHA-1 or
// SHA-256, with the original connector's message.
const ErrNoHash = workError("Unable to enrich the observable: it has no SHA-256, SHA-1, or MD5 hash.")
