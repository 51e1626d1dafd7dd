package opencti

import (
	"encoding/json"
	"net/netip"
	"slices"
	"strings"

	"github.com/vtconnector/vtconnector/internal/stix"
)

// autonomousSystem adds the IP's autonomous system and belongs-to (§5.10).
func (b *builder) autonomousSystem() {
	if b.a.ASN <= 0 {
		b.warn("VirusTotal gave no autonomous system for %s", b.obs.Value())
		return
	}
	as := stix.NewAutonomousSystem(b.a.ASN)
	as.Name = b.a.ASOwner
	as.RIR = b.a.RIR
	as.ObjectMarkingRefs = slices.Clone(b.markings)
	b.add(as)
	b.add(b.relationship(stix.RelBelongsTo, b.obs.ID, as.ID))
}

// country adds the IP's country and located-at, with the country's name and
// location type, which the original leaves out (§10.15).
func (b *builder) country() {
	code := strings.ToUpper(strings.TrimSpace(b.a.Country))
	if code == "" {
		b.warn("VirusTotal gave no country for %s", b.obs.Value())
		return
	}
	if len(code) != 2 || code[0] < 'A' || code[0] > 'Z' || code[1] < 'A' || code[1] > 'Z' {
		b.warn("VirusTotal country %q of %s is not an ISO 3166-1 alpha-2 code: skipped", b.a.Country, b.obs.Value())
		return
	}
	name := countryNames[code]
	if name == "" {
		name = code
		b.warn("unknown country code %s: the location is named by its code", code)
	}
	loc := stix.NewCountry(name, code, b.in.Now)
	loc.CreatedByRef = b.author
	loc.ObjectMarkingRefs = slices.Clone(b.markings)
	b.add(loc)
	b.add(b.relationship(stix.RelLocatedAt, b.obs.ID, loc.ID))
}

// dnsRecord is one entry of last_dns_records.
type dnsRecord struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// resolutions adds an IPv4 address and resolves-to per A record (§5.9).
// Unlike the original, values are checked: an invalid address is skipped
// with a warning, and repeated addresses are added once.
func (b *builder) resolutions() {
	raw, ok := b.attrs["last_dns_records"]
	if !ok {
		return
	}
	var records []json.RawMessage
	if json.Unmarshal(raw, &records) != nil {
		b.warn("last_dns_records is not a list: no resolutions")
		return
	}
	seen := map[string]bool{}
	for i, r := range records {
		var rec dnsRecord
		if json.Unmarshal(r, &rec) != nil || rec.Type != "A" {
			continue
		}
		a, err := netip.ParseAddr(strings.TrimSpace(rec.Value))
		if err != nil || !a.Is4() {
			b.warn("last_dns_records[%d]: A record %q is not an IPv4 address: skipped", i, rec.Value)
			continue
		}
		v := a.String()
		if seen[v] {
			continue
		}
		seen[v] = true
		ip := stix.NewIPv4Addr(v)
		ip.CreatedByRef = b.author
		ip.Score = b.scorePtr()
		ip.ObjectMarkingRefs = slices.Clone(b.markings)
		b.add(ip)
		b.add(b.relationship(stix.RelResolvesTo, b.obs.ID, ip.ID))
	}
}
