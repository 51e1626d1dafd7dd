package vt

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Everything synthetic is a pure function of (Config.Seed, a purpose label,
// an id): digest hashes them, rng turns the digest into a generator.

// anchor is the "now" of the synthetic world: synthetic dates lie before it,
// so they do not change with the wall clock.
var anchor = time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC).Unix()

func (s *Server) digest(parts ...string) [32]byte {
	h := sha256.New()
	var seed [8]byte
	binary.LittleEndian.PutUint64(seed[:], uint64(s.cfg.Seed))
	h.Write(seed[:])
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func (s *Server) rng(parts ...string) *rand.Rand {
	d := s.digest(parts...)
	return rand.New(rand.NewPCG(binary.LittleEndian.Uint64(d[:8]), binary.LittleEndian.Uint64(d[8:16])))
}

// hexID returns n hex digits derived from parts.
func (s *Server) hexID(n int, parts ...string) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		d := s.digest(append(parts, fmt.Sprint(i))...)
		b.WriteString(hex.EncodeToString(d[:]))
	}
	return b.String()[:n]
}

// unknown reports whether a never-seen id of the given kind is unknown to
// the simulated service.
func (s *Server) unknown(kind, id string) bool {
	if s.unknownPct == 0 {
		return false
	}
	d := s.digest("unknown", kind, id)
	return binary.LittleEndian.Uint64(d[:8])%100 < s.unknownPct
}

func between(r *rand.Rand, lo, hi int) int { return lo + r.IntN(hi-lo+1) }

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// pastDate returns a date before end, skewed towards recent: half within 30
// days, most within two years, some up to ten years back.
func pastDate(r *rand.Rand, end int64) int64 {
	const day = 86400
	var back int64
	switch p := r.Float64(); {
	case p < 0.5:
		back = r.Int64N(30 * day)
	case p < 0.85:
		back = 30*day + r.Int64N(700*day)
	default:
		back = 730*day + r.Int64N(3000*day)
	}
	return end - back
}

func yyyymmdd(unix int64) string { return time.Unix(unix, 0).UTC().Format("20060102") }

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// engineResult is one engine's entry in last_analysis_results or an
// analysis' results.
type engineResult struct {
	Category      string  `json:"category"`
	EngineName    string  `json:"engine_name"`
	EngineVersion string  `json:"engine_version,omitempty"`
	EngineUpdate  string  `json:"engine_update,omitempty"`
	Method        string  `json:"method"`
	Result        *string `json:"result"`
}

// threat is what a malicious file is detected as.
type threat struct {
	platform string
	family   family
	variant  string
}

// verdict is a complete scan outcome.
type verdict struct {
	stats   map[string]int
	results map[string]engineResult
	threat  *threat // files with detections only
}

// fileStatKeys are the keys of a file's last_analysis_stats.
var fileStatKeys = []string{"malicious", "suspicious", "undetected", "harmless", "timeout",
	"confirmed-timeout", "failure", "type-unsupported"}

// urlStatKeys are the keys of a URL, domain or IP last_analysis_stats.
var urlStatKeys = []string{"malicious", "suspicious", "undetected", "harmless", "timeout"}

// fileVerdict scans a file: key identifies the file, kind drives the
// platform of detection names, date is the analysis date, forced is the
// number of detections to use instead of a random one (-1 for random).
func (s *Server) fileVerdict(key string, kind fileKind, date int64, forced int) verdict {
	r := s.rng("file-verdict", key)
	engines := make([]avEngine, len(avEngines))
	copy(engines, avEngines)
	r.Shuffle(len(engines), func(i, j int) { engines[i], engines[j] = engines[j], engines[i] })
	engines = engines[:between(r, 60, 75)]

	malicious, suspicious := 0, 0
	switch p := r.Float64(); {
	case forced >= 0:
		malicious = min(forced, len(engines))
	case p < 0.68: // clean
		if r.Float64() < 0.05 {
			suspicious = 1
		}
	case p < 0.78: // a few detections
		malicious = between(r, 1, 4)
	default:
		malicious = between(r, 5, 60)
	}
	rest := len(engines) - malicious - suspicious
	unsupported := min(rest, between(r, 0, 10))
	if malicious > 20 {
		unsupported = min(rest, between(r, 0, 4))
	}
	rest -= unsupported
	timeout, failure, harmless := 0, 0, 0
	if r.Float64() < 0.15 {
		timeout = min(rest, 1)
	}
	rest -= timeout
	if r.Float64() < 0.1 {
		failure = min(rest, 1)
	}
	rest -= failure
	if malicious == 0 && r.Float64() < 0.1 {
		harmless = min(rest, 1)
	}
	rest -= harmless

	var th *threat
	if malicious+suspicious > 0 {
		fams := familiesByPlatform[kind.platform]
		th = &threat{platform: kind.platform, family: pick(r, fams), variant: string(rune('A' + r.IntN(26)))}
		if forced >= 0 && kind.tag == "text" {
			th = &threat{platform: "Script", family: family{"eicar", "virus"}, variant: "A"}
		}
	}

	categories := make([]string, 0, len(engines))
	for range malicious {
		categories = append(categories, "malicious")
	}
	for _, c := range []struct {
		name string
		n    int
	}{{"suspicious", suspicious}, {"type-unsupported", unsupported}, {"timeout", timeout},
		{"failure", failure}, {"harmless", harmless}, {"undetected", rest}} {
		for range c.n {
			categories = append(categories, c.name)
		}
	}
	r.Shuffle(len(categories), func(i, j int) { categories[i], categories[j] = categories[j], categories[i] })

	v := verdict{stats: map[string]int{}, results: make(map[string]engineResult, len(engines)), threat: th}
	for _, k := range fileStatKeys {
		v.stats[k] = 0
	}
	for i, e := range engines {
		cat := categories[i]
		v.stats[cat]++
		res := engineResult{Category: cat, EngineName: e.name, EngineVersion: e.version,
			EngineUpdate: yyyymmdd(date - int64(r.IntN(2))*86400), Method: "blacklist"}
		switch cat {
		case "malicious":
			name := s.detectionName(e.name, th, r)
			res.Result = &name
		case "suspicious":
			name := "Suspicious.low.ml.score"
			res.Result = &name
		}
		v.results[e.name] = res
	}
	return v
}

// detectionName invents the name an engine gives a threat, in one of the
// naming styles real engines use.
func (s *Server) detectionName(engine string, th *threat, r *rand.Rand) string {
	if th.family.name == "eicar" {
		return "EICAR-Test-File (not a virus)"
	}
	fam := capitalize(th.family.name)
	cat := capitalize(th.family.category)
	if th.family.category == "ransomware" {
		cat = "Ransom"
	}
	d := s.digest("engine-style", engine)
	switch d[0] % 10 {
	case 0:
		return fmt.Sprintf("Trojan.GenericKD.%d", 60000000+r.IntN(9999999))
	case 1:
		return fmt.Sprintf("%s:%s-%s [Trj]", th.platform, fam, th.variant)
	case 2:
		return fmt.Sprintf("%s:%s/%s.%s%s!MTB", cat, th.platform, fam, th.variant, string(rune('A'+r.IntN(26))))
	case 3:
		return fmt.Sprintf("HEUR:%s.%s.%s.gen", cat, th.platform, fam)
	case 4:
		return fmt.Sprintf("Gen:Variant.%s.%d", fam, 1000+r.IntN(90000))
	case 5:
		return fmt.Sprintf("a variant of %s/%s.%s %s", th.platform, fam, th.variant, strings.ToLower(cat))
	case 6:
		return fmt.Sprintf("Mal/Generic-%s", th.variant)
	case 7:
		return pick(r, []string{"malicious (high confidence)", "Unsafe", "static engine - malicious", "Malicious"})
	case 8:
		return fmt.Sprintf("%s.%s.%s.%s", cat, th.platform, fam, strings.ToLower(th.variant)+"x")
	default:
		return fmt.Sprintf("%s/%s.%s", th.platform, fam, th.variant)
	}
}

// urlVerdict scans a URL, domain or IP address with the URL scanners.
func (s *Server) urlVerdict(kind, key string) verdict {
	r := s.rng("url-verdict", kind, key)
	engines := make([]string, len(urlEngines))
	copy(engines, urlEngines)
	r.Shuffle(len(engines), func(i, j int) { engines[i], engines[j] = engines[j], engines[i] })
	engines = engines[:between(r, 85, len(urlEngines))]
	malicious, suspicious := 0, 0
	switch p := r.Float64(); {
	case p < 0.8:
	case p < 0.87:
		suspicious = between(r, 1, 2)
	default:
		malicious = between(r, 1, 18)
		suspicious = between(r, 0, 2)
	}
	undetected := between(r, 8, 25)
	harmless := len(engines) - malicious - suspicious - undetected
	categories := make([]string, 0, len(engines))
	for _, c := range []struct {
		name string
		n    int
	}{{"malicious", malicious}, {"suspicious", suspicious}, {"undetected", undetected}, {"harmless", harmless}} {
		for range c.n {
			categories = append(categories, c.name)
		}
	}
	r.Shuffle(len(categories), func(i, j int) { categories[i], categories[j] = categories[j], categories[i] })
	v := verdict{stats: map[string]int{}, results: make(map[string]engineResult, len(engines))}
	for _, k := range urlStatKeys {
		v.stats[k] = 0
	}
	for i, e := range engines {
		cat := categories[i]
		v.stats[cat]++
		var res string
		switch cat {
		case "harmless":
			res = "clean"
		case "undetected":
			res = "unrated"
		case "suspicious":
			res = pick(r, []string{"suspicious", "spam"})
		default:
			res = pick(r, []string{"malicious", "malware", "phishing"})
		}
		v.results[e] = engineResult{Category: cat, EngineName: e, Method: "blacklist", Result: &res}
	}
	return v
}

// yaraSeed is what a pooled YARA ruleset detects.
type yaraSeed struct {
	family family
	style  int
}

// buildYaraPool prepares, for every family, a few rulesets that files of
// that family match. Pooled rulesets are always known.
func (s *Server) buildYaraPool() {
	s.yaraPool = map[string]yaraSeed{}
	s.yaraByFamily = map[string][]string{}
	for _, platform := range sortedKeys(familiesByPlatform) {
		for _, f := range familiesByPlatform[platform] {
			if _, done := s.yaraByFamily[f.name]; done {
				continue
			}
			for style := range 3 {
				st := (int(s.digest("yara-style", f.name)[0]) + style) % len(yaraStyles)
				id := s.hexID(10, "yara-ruleset", f.name, fmt.Sprint(style))
				s.yaraPool[id] = yaraSeed{family: f, style: st}
				s.yaraByFamily[f.name] = append(s.yaraByFamily[f.name], id)
			}
		}
	}
}

// yaraRuleset is a synthetic crowdsourced YARA ruleset.
type yaraRuleset struct {
	id, name, author, source, license string
	ruleNames                         []string
	descriptions                      []string
	rules                             string
}

func (s *Server) synthYaraRuleset(id string) yaraRuleset {
	r := s.rng("yara", id)
	seed, ok := s.yaraPool[id]
	if !ok {
		fams := familiesByPlatform[pick(r, sortedKeys(familiesByPlatform))]
		seed = yaraSeed{family: pick(r, fams), style: r.IntN(len(yaraStyles))}
	}
	st := yaraStyles[seed.style]
	fam := seed.family
	rs := yaraRuleset{id: id, author: st.author, source: st.source, license: st.license}
	ident := strings.ReplaceAll(fam.name, "-", "_")
	switch seed.style % 3 {
	case 0:
		rs.name = "mal_" + ident
	case 1:
		rs.name = "win." + ident + "_auto"
	default:
		rs.name = capitalize(fam.category) + "_" + capitalize(ident)
	}
	var b strings.Builder
	n := between(r, 1, 3)
	for i := range n {
		rule := fmt.Sprintf("%s_%s_%s_%d", strings.ToUpper(fam.category[:3]), capitalize(ident), id[:4], i+1)
		desc := fmt.Sprintf("Detects %s %s samples", capitalize(fam.name), fam.category)
		rs.ruleNames = append(rs.ruleNames, rule)
		rs.descriptions = append(rs.descriptions, desc)
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "rule %s {\n    meta:\n        author = %q\n        description = %q\n        date = %q\n        reference = %q\n    strings:\n",
			rule, st.author, desc, time.Unix(pastDate(r, anchor), 0).UTC().Format(time.DateOnly), st.source)
		fmt.Fprintf(&b, "        $s1 = %q ascii wide\n", fam.name+"_"+s.hexID(6, "yara-string", id, fmt.Sprint(i)))
		fmt.Fprintf(&b, "        $h1 = { %s }\n", hexPattern(r))
		b.WriteString("    condition:\n        filesize < 5MB and any of them\n}\n")
	}
	rs.rules = b.String()
	return rs
}

func hexPattern(r *rand.Rand) string {
	parts := make([]string, 0, 8)
	for i := range 8 {
		if i == 4 {
			parts = append(parts, "??")
			continue
		}
		parts = append(parts, fmt.Sprintf("%02X", r.IntN(256)))
	}
	return strings.Join(parts, " ")
}

func (rs yaraRuleset) object(rq *request) obj {
	return obj{
		"type":  "yara_ruleset",
		"id":    rs.id,
		"links": obj{"self": rq.apiURL("yara_rulesets/" + rs.id)},
		"attributes": obj{
			"name":       rs.name,
			"rules":      rs.rules,
			"source":     rs.source,
			"author":     rs.author,
			"license":    rs.license,
			"rule_names": rs.ruleNames,
		},
	}
}
