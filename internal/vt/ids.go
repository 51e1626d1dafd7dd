package vt

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
)

// Kind is the VirusTotal collection an object belongs to.
type Kind string

// The object kinds the connectors look up.
const (
	KindFile   Kind = "file"
	KindIP     Kind = "ip_address"
	KindDomain Kind = "domain"
	KindURL    Kind = "url"
)

// Valid reports whether k is one of the four lookup kinds.
func (k Kind) Valid() bool {
	switch k {
	case KindFile, KindIP, KindDomain, KindURL:
		return true
	}
	return false
}

// GUILink is the VirusTotal web page of an object of kind k with id id
// (for URLs, the SHA-256 id or the URL itself).
func GUILink(k Kind, id string) string {
	switch k {
	case KindFile:
		return GUIBaseURL + "/file/" + url.PathEscape(strings.ToLower(id))
	case KindIP:
		return GUIBaseURL + "/ip-address/" + url.PathEscape(id)
	case KindDomain:
		return GUIBaseURL + "/domain/" + url.PathEscape(id)
	case KindURL:
		return GUIBaseURL + "/url/" + url.PathEscape(id)
	}
	return ""
}

// IsHash reports whether s is an MD5, SHA-1 or SHA-256 in hex.
func IsHash(s string) bool {
	switch len(s) {
	case 32, 40, 64:
	default:
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func netipParse(s string) (string, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		return "", errors.New("not an IP address")
	}
	if a.Zone() != "" {
		return "", errors.New("IP address with a zone")
	}
	return a.Unmap().String(), nil
}

// NormalizeIP returns the canonical text of an IPv4 or IPv6 address.
func NormalizeIP(s string) (string, error) { return netipParse(s) }

// NormalizeDomain lower-cases a host name, drops one trailing dot and
// checks it is a plausible DNS name (labels of 1–63 letters, digits,
// hyphens or underscores, at least two labels, 253 characters at most).
func NormalizeDomain(s string) (string, error) {
	d := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
	if d == "" {
		return "", errors.New("empty domain")
	}
	if len(d) > 253 {
		return "", errors.New("domain longer than 253 characters")
	}
	labels := strings.Split(d, ".")
	if len(labels) < 2 {
		return "", errors.New("domain needs at least two labels")
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return "", fmt.Errorf("bad label %q", l)
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return "", fmt.Errorf("label %q starts or ends with a hyphen", l)
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return "", fmt.Errorf("label %q has a character not allowed in host names", l)
			}
		}
	}
	if _, err := netip.ParseAddr(d); err == nil {
		return "", errors.New("an IP address, not a domain")
	}
	return d, nil
}

// ParseQuery works out what a free-form query is: a hash, an IP address,
// a URL (anything with a scheme, or with a path after a host), or a
// domain. It returns the kind and the normalised value: lower-case hash,
// canonical IP, URL as given, lower-case domain.
func ParseQuery(q string) (Kind, string, error) {
	q = strings.TrimSpace(q)
	if q == "" {
		return "", "", errors.New("empty query")
	}
	if IsHash(q) {
		return KindFile, strings.ToLower(q), nil
	}
	if ip, err := netipParse(strings.Trim(q, "[]")); err == nil {
		return KindIP, ip, nil
	}
	if strings.Contains(q, "://") {
		u, err := url.Parse(q)
		if err != nil || u.Host == "" {
			return "", "", fmt.Errorf("%q is not a valid URL", q)
		}
		return KindURL, q, nil
	}
	if i := strings.IndexAny(q, "/?#"); i > 0 {
		if _, err := NormalizeDomain(q[:i]); err == nil {
			return KindURL, "http://" + q, nil
		}
		if _, err := netipParse(q[:i]); err == nil {
			return KindURL, "http://" + q, nil
		}
	}
	if d, err := NormalizeDomain(q); err == nil {
		return KindDomain, d, nil
	}
	if len(q) == 32 || len(q) == 40 || len(q) == 64 {
		return "", "", fmt.Errorf("%q looks like a hash but is not hexadecimal", q)
	}
	return "", "", fmt.Errorf("%q is not a hash, IP address, domain or URL", q)
}
