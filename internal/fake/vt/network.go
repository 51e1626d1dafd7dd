package vt

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// normalizeIP validates an IPv4 or IPv6 literal and returns its canonical
// text.
func normalizeIP(s string) (string, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return "", false
	}
	return a.String(), true
}

// normalizeDomain validates a host name and lower-cases it.
func normalizeDomain(d string) (string, bool) {
	d = strings.TrimSuffix(strings.ToLower(d), ".")
	if d == "" || len(d) > 253 {
		return "", false
	}
	labels := strings.Split(d, ".")
	if len(labels) < 2 {
		return "", false
	}
	for i, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return "", false
		}
		for j := 0; j < len(l); j++ {
			c := l[j]
			ok := (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || (c == '_' && i < len(labels)-1)
			if !ok {
				return "", false
			}
		}
	}
	tld := labels[len(labels)-1]
	if _, err := strconv.Atoi(tld); err == nil {
		return "", false // an IPv4 address, not a domain
	}
	return d, true
}

// ipFacts is a synthetic IP address. Every valid address is known, as on the
// real service.
type ipFacts struct {
	ip        string
	as        autonomousSystem
	network   netip.Prefix
	lastMod   int64
	whoisDate int64
}

func (s *Server) synthIP(ip string) ipFacts {
	r := s.rng("ip", ip)
	a := netip.MustParseAddr(ip)
	bits := pick(r, []int{16, 18, 20, 22, 24})
	if a.Is6() && !a.Is4In6() {
		bits = pick(r, []int{29, 32, 36, 48})
	}
	net, _ := a.Prefix(min(bits, a.BitLen()))
	lastMod := pastDate(r, anchor)
	return ipFacts{ip: ip, as: pick(r, autonomousSystems), network: net, lastMod: lastMod,
		whoisDate: lastMod - r.Int64N(90*86400)}
}

func (s *Server) ipObject(f ipFacts, rq *request) obj {
	r := s.rng("ip-attrs", f.ip)
	v := s.urlVerdict("ip", f.ip)
	region := countryRegion[f.as.country]
	mal := v.stats["malicious"]
	tags := []string{}
	if mal > 3 {
		tags = append(tags, pick(r, []string{"tor", "proxy", "scanner"}))
	}
	whois := fmt.Sprintf("NetRange: %s - %s\nCIDR: %s\nNetName: %s\nOriginAS: AS%d\nOrganization: %s\nCountry: %s\nRegDate: %s\n",
		f.network.Masked().Addr(), lastAddr(f.network), f.network.Masked(),
		strings.ToUpper(strings.Fields(f.as.owner)[0])+"-NET", f.as.asn, f.as.owner, f.as.country,
		time.Unix(f.whoisDate-r.Int64N(3000*86400), 0).UTC().Format(time.DateOnly))
	return obj{
		"type":  "ip_address",
		"id":    f.ip,
		"links": obj{"self": rq.apiURL("ip_addresses/" + f.ip)},
		"attributes": obj{
			"asn":                        f.as.asn,
			"as_owner":                   f.as.owner,
			"country":                    f.as.country,
			"continent":                  region[0],
			"regional_internet_registry": region[1],
			"network":                    f.network.Masked().String(),
			"reputation":                 -mal*2 + r.IntN(3),
			"tags":                       tags,
			"last_analysis_stats":        v.stats,
			"last_analysis_results":      v.results,
			"last_analysis_date":         f.lastMod,
			"last_modification_date":     f.lastMod,
			"whois":                      whois,
			"whois_date":                 f.whoisDate,
			"total_votes":                obj{"harmless": r.IntN(3), "malicious": min(mal, r.IntN(3))},
		},
	}
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	host := p.Addr().BitLen() - p.Bits()
	for i := len(b) - 1; i >= 0 && host > 0; i-- {
		n := min(host, 8)
		b[i] |= byte(1<<n - 1)
		host -= n
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func (s *Server) handleGetIP(w http.ResponseWriter, r *http.Request, rq *request) {
	ip, ok := normalizeIP(rq.params[0])
	if !ok {
		invalidArg(w, fmt.Sprintf("%q is not a valid IP address", rq.params[0]))
		return
	}
	if s.serveFixture(w, "ip_addresses/"+ip) {
		return
	}
	writeJSON(w, http.StatusOK, dataEnvelope(s.ipObject(s.synthIP(ip), rq)))
}

func invalidArg(w http.ResponseWriter, msg string) {
	writeError(w, http.StatusBadRequest, "InvalidArgumentError", msg)
}

// serveFixture writes the loaded body at path, if any.
func (s *Server) serveFixture(w http.ResponseWriter, path string) bool {
	s.mu.Lock()
	body := s.fixtures[path]
	s.mu.Unlock()
	if body == nil {
		return false
	}
	writeBody(w, http.StatusOK, body)
	return true
}

// domainFacts is a synthetic domain.
type domainFacts struct {
	domain       string
	created      int64
	lastAnalysis int64
	registrar    string
}

func (s *Server) synthDomain(d string) domainFacts {
	r := s.rng("domain", d)
	last := pastDate(r, anchor)
	return domainFacts{domain: d, lastAnalysis: last,
		created:   last - 30*86400 - r.Int64N(25*365*86400),
		registrar: pick(r, registrars)}
}

func (s *Server) domainObject(f domainFacts, rq *request) obj {
	r := s.rng("domain-attrs", f.domain)
	v := s.urlVerdict("domain", f.domain)
	mal := v.stats["malicious"]
	categories := obj{}
	pool := cleanCategories
	if mal > 0 {
		pool = badCategories
	}
	for _, e := range categoryEngines[:between(r, 1, 4)] {
		categories[e] = pick(r, pool)
	}
	var records []obj
	for i, res := range s.domainResolutions(f) {
		if i == 2 {
			break
		}
		records = append(records, obj{"type": "A", "value": res.ip, "ttl": pick(r, []int{300, 3600, 14400})})
	}
	records = append(records,
		obj{"type": "NS", "value": "ns1." + pick(r, domainWords) + ".net", "ttl": 86400},
		obj{"type": "NS", "value": "ns2." + pick(r, domainWords) + ".net", "ttl": 86400},
		obj{"type": "MX", "value": "mail." + f.domain, "ttl": 3600, "priority": 10},
		obj{"type": "SOA", "value": "ns1." + f.domain, "ttl": 3600, "rname": "hostmaster." + f.domain,
			"serial": 2024000000 + r.IntN(999999), "refresh": 7200, "retry": 3600, "expire": 1209600, "minimum": 300},
	)
	ranks := obj{}
	if mal == 0 && r.Float64() < 0.4 {
		for _, p := range []string{"Majestic", "Cisco Umbrella", "Tranco"}[:between(r, 1, 3)] {
			ranks[p] = obj{"rank": between(r, 1, 1000000), "timestamp": f.lastAnalysis - r.Int64N(86400)}
		}
	}
	tags := []string{}
	if mal > 0 {
		tags = append(tags, pick(r, []string{"dga", "phishing", "malware"}))
	}
	age := int((f.lastAnalysis - f.created) / (365 * 86400))
	expires := time.Unix(f.created, 0).UTC().AddDate(age+between(r, 1, 5), 0, 0)
	whois := fmt.Sprintf("Domain Name: %s\nRegistrar: %s\nCreation Date: %s\nRegistry Expiry Date: %s\nName Server: NS1.%s\nDNSSEC: unsigned\n",
		strings.ToUpper(f.domain), f.registrar, time.Unix(f.created, 0).UTC().Format(time.RFC3339),
		expires.Format(time.RFC3339), strings.ToUpper(f.domain))
	tld := f.domain[strings.LastIndexByte(f.domain, '.')+1:]
	return obj{
		"type":  "domain",
		"id":    f.domain,
		"links": obj{"self": rq.apiURL("domains/" + f.domain)},
		"attributes": obj{
			"categories":             categories,
			"registrar":              f.registrar,
			"creation_date":          f.created,
			"reputation":             -mal*3 + r.IntN(5),
			"tags":                   tags,
			"tld":                    tld,
			"last_dns_records":       records,
			"last_dns_records_date":  f.lastAnalysis,
			"last_analysis_stats":    v.stats,
			"last_analysis_results":  v.results,
			"last_analysis_date":     f.lastAnalysis,
			"last_modification_date": f.lastAnalysis + r.Int64N(3600),
			"popularity_ranks":       ranks,
			"whois":                  whois,
			"whois_date":             f.lastAnalysis - r.Int64N(30*86400),
			"total_votes":            obj{"harmless": r.IntN(5), "malicious": min(mal, r.IntN(3))},
		},
	}
}

// domainID validates the {domain} parameter; it writes the error and
// reports false when invalid.
func domainID(w http.ResponseWriter, raw string) (string, bool) {
	d, ok := normalizeDomain(raw)
	if !ok {
		invalidArg(w, fmt.Sprintf("%q is not a valid domain", raw))
	}
	return d, ok
}

func domainNotFound(w http.ResponseWriter, d string) {
	writeError(w, http.StatusNotFound, "NotFoundError", fmt.Sprintf("Domain %q not found", d))
}

func (s *Server) handleGetDomain(w http.ResponseWriter, r *http.Request, rq *request) {
	d, ok := domainID(w, rq.params[0])
	if !ok || s.serveFixture(w, "domains/"+d) {
		return
	}
	if s.unknown("domain", d) {
		domainNotFound(w, d)
		return
	}
	writeJSON(w, http.StatusOK, dataEnvelope(s.domainObject(s.synthDomain(d), rq)))
}

// resolution is one passive DNS record.
type resolution struct {
	ip, host string
	date     int64
	resolver string
}

// domainResolutions lists a domain's resolutions, newest first.
func (s *Server) domainResolutions(f domainFacts) []resolution {
	r := s.rng("domain-resolutions", f.domain)
	n := r.IntN(61)
	out := make([]resolution, 0, n)
	date := f.lastAnalysis
	for range n {
		out = append(out, resolution{ip: randomIPv4(r), host: f.domain, date: date, resolver: pick(r, resolvers)})
		date -= 3600 + r.Int64N(40*86400)
	}
	return out
}

// ipResolutions lists the host names that resolved to an address, newest
// first; every host is a known domain.
func (s *Server) ipResolutions(f ipFacts) []resolution {
	r := s.rng("ip-resolutions", f.ip)
	n := r.IntN(61)
	out := make([]resolution, 0, n)
	date := f.lastMod
	for range n {
		host := s.knownDomainName(r)
		out = append(out, resolution{ip: f.ip, host: host, date: date, resolver: pick(r, resolvers)})
		date -= 3600 + r.Int64N(40*86400)
	}
	return out
}

func randomIPv4(r *rand.Rand) string {
	for {
		var b [4]byte
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		a := netip.AddrFrom4(b)
		if b[0] != 0 && b[0] < 224 && a.IsGlobalUnicast() && !a.IsPrivate() && !a.IsLoopback() {
			return a.String()
		}
	}
}

// knownDomainName invents a host name the simulator will answer for.
func (s *Server) knownDomainName(r *rand.Rand) string {
	for {
		name := pick(r, domainWords)
		if r.IntN(3) == 0 {
			name += strconv.Itoa(r.IntN(1000))
		}
		name += "." + pick(r, tlds)
		if r.IntN(2) == 0 {
			name = pick(r, subdomainWords) + "." + name
		}
		if !s.unknown("domain", name) {
			return name
		}
	}
}

func (s *Server) resolutionObject(res resolution, rq *request) obj {
	id := res.ip + res.host
	return obj{
		"type":  "resolution",
		"id":    id,
		"links": obj{"self": rq.apiURL("resolutions/" + id)},
		"attributes": obj{
			"date":                           res.date,
			"host_name":                      res.host,
			"ip_address":                     res.ip,
			"resolver":                       res.resolver,
			"host_name_last_analysis_stats":  s.urlVerdict("domain", res.host).stats,
			"ip_address_last_analysis_stats": s.urlVerdict("ip", res.ip).stats,
		},
	}
}

func (s *Server) handleDomainResolutions(w http.ResponseWriter, r *http.Request, rq *request) {
	d, ok := domainID(w, rq.params[0])
	if !ok || s.serveFixture(w, "domains/"+d+"/resolutions") {
		return
	}
	if s.unknown("domain", d) {
		domainNotFound(w, d)
		return
	}
	s.serveResolutions(w, r, rq, "domains/"+d+"/resolutions", s.domainResolutions(s.synthDomain(d)))
}

func (s *Server) handleIPResolutions(w http.ResponseWriter, r *http.Request, rq *request) {
	ip, ok := normalizeIP(rq.params[0])
	if !ok {
		invalidArg(w, fmt.Sprintf("%q is not a valid IP address", rq.params[0]))
		return
	}
	if s.serveFixture(w, "ip_addresses/"+ip+"/resolutions") {
		return
	}
	s.serveResolutions(w, r, rq, "ip_addresses/"+ip+"/resolutions", s.ipResolutions(s.synthIP(ip)))
}

const (
	defaultPageSize = 10
	maxPageSize     = 40
)

// serveResolutions answers one page of a resolutions collection, honouring
// limit (default 10, at most 40) and cursor, with links.next while more
// remain.
func (s *Server) serveResolutions(w http.ResponseWriter, r *http.Request, rq *request, path string, all []resolution) {
	q := r.URL.Query()
	limit := defaultPageSize
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			invalidArg(w, fmt.Sprintf("Invalid limit %q: expected a positive integer", v))
			return
		}
		limit = min(n, maxPageSize)
	}
	offset := 0
	if c := q.Get("cursor"); c != "" {
		n, ok := decodeCursor(c)
		if !ok {
			invalidArg(w, fmt.Sprintf("Invalid cursor %q", c))
			return
		}
		offset = n
	}
	start, end := min(offset, len(all)), min(offset+limit, len(all))
	items := make([]obj, 0, end-start)
	for _, res := range all[start:end] {
		items = append(items, s.resolutionObject(res, rq))
	}
	self := rq.apiURL(path)
	if r.URL.RawQuery != "" {
		self += "?" + r.URL.RawQuery
	}
	meta := obj{"count": len(all)}
	links := obj{"self": self}
	if end < len(all) {
		c := encodeCursor(end)
		meta["cursor"] = c
		next := url.Values{"cursor": {c}, "limit": {strconv.Itoa(limit)}}
		links["next"] = rq.apiURL(path) + "?" + next.Encode()
	}
	writeJSON(w, http.StatusOK, obj{"data": items, "meta": meta, "links": links})
}

// Cursors are opaque to clients, as on the real service.
func encodeCursor(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("offset:" + strconv.Itoa(offset)))
}

func decodeCursor(c string) (int, bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, false
	}
	v, ok := strings.CutPrefix(string(b), "offset:")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	return n, err == nil && n >= 0
}

func (s *Server) handleGetYaraRuleset(w http.ResponseWriter, r *http.Request, rq *request) {
	id := rq.params[0]
	if len(id) > 64 || !isHex(id) {
		invalidArg(w, fmt.Sprintf("Invalid YARA ruleset identifier %q", id))
		return
	}
	id = strings.ToLower(id)
	if s.serveFixture(w, "yara_rulesets/"+id) {
		return
	}
	if _, pooled := s.yaraPool[id]; !pooled && s.unknown("yara", id) {
		writeError(w, http.StatusNotFound, "NotFoundError", fmt.Sprintf("YaraRuleset %q not found", id))
		return
	}
	writeJSON(w, http.StatusOK, dataEnvelope(s.synthYaraRuleset(id).object(rq)))
}
