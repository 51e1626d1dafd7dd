package opencti

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vtconnector/vtconnector/internal/stix"
	"github.com/vtconnector/vtconnector/internal/vt"
)

// This file is the pure enrichment builder of the OpenCTI front: from the
// entity the platform sent, the VirusTotal report and the settings, the
// STIX objects to push back. It follows the original connector
// (OpenCTI-Platform/connectors internal-enrichment/virustotal, builder.py
// and the processors) except where its weaknesses are fixed; each fix says
// which item of the behaviour reference's §10 it addresses.

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

// IndicatorPolicy is when and how an Indicator is created for an enriched
// observable (the <kind>_indicator_create_positives, _valid_minutes and
// _detect settings).
type IndicatorPolicy struct {
	// CreatePositives is the number of malicious verdicts from which an
	// Indicator is created; 0 or less disables it.
	CreatePositives int
	// ValidMinutes is the Indicator's validity: valid_until is Now plus
	// this many minutes (the original adds days, §10.9). 0 or less leaves
	// valid_until out, so the platform's decay rules apply.
	ValidMinutes int
	// Detect is the Indicator's x_opencti_detection.
	Detect bool
}

// Options are the enrichment settings of the OpenCTI configuration (the
// caller maps config.OpenCTI to them).
type Options struct {
	// ReplaceWithLowerScore writes the VirusTotal score even when the
	// entity already has a higher one; when false the higher score is kept
	// and a "VirusTotal Score" note records the VirusTotal one.
	ReplaceWithLowerScore bool
	// IncludeAttributesInNote adds the "Attributes Info" block to notes.
	IncludeAttributesInNote bool
	// FileCreateNoteFullReport adds the "VirusTotal Report" note to files.
	FileCreateNoteFullReport bool
	// FileImportYARA turns the crowdsourced YARA rules that matched a file
	// into YARA Indicators.
	FileImportYARA bool

	FileIndicator, IPIndicator, DomainIndicator, URLIndicator IndicatorPolicy

	// IPAddRelationships adds the autonomous system and country of IPv4
	// addresses; DomainAddRelationships adds the A-record IPv4 addresses
	// of domains and hostnames.
	IPAddRelationships, DomainAddRelationships bool
}

// Entity is the enriched entity as the platform sent it: event.entity_id
// (its standard id), event.entity_type and the decoded event.stix_entity,
// kept whole (numbers as json.Number) so that fields this package does not
// know travel back unchanged.
type Entity struct {
	ID, Type string
	STIX     map[string]any
}

// maxEntitySize bounds event.stix_entity; real exports are a few KiB.
const maxEntitySize = 16 << 20

// workError is an error whose text is the message the original connector
// reports on the work, kept verbatim so that operators see the same text.
type workError string

func (e workError) Error() string { return string(e) }

// ErrNoHash is the error of a file or artifact without an MD5, SHA-1 or
// SHA-256, with the original connector's message.
const ErrNoHash = workError("Unable to enrich the observable: it has no SHA-256, SHA-1, or MD5 hash.")

// UnsupportedTypeError is returned for an entity type the enrichment does
// not handle; its text is the original connector's.
type UnsupportedTypeError struct{ Type string }

func (e *UnsupportedTypeError) Error() string { return e.Type + " is not a supported entity type." }

var stixIDPattern = regexp.MustCompile(`^[a-z][a-z0-9-]*--[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// ParseEntity checks and decodes the entity of an enrichment message. The
// input is untrusted: the type must be one the enrichment handles, the id a
// STIX id equal to the stix_entity's id, stix_entity a single JSON object
// of that type, and the fields the enrichment reads must have the right
// JSON types (hashes a dictionary of strings, object_marking_refs a list of
// ids, scores numbers from 0 to 100, …). Errors name the offending field.
func ParseEntity(entityID, entityType string, stixEntity []byte) (Entity, error) {
	stixType, ok := stixTypes[entityType]
	if !ok {
		return Entity{}, &UnsupportedTypeError{Type: entityType}
	}
	if entityID == "" {
		return Entity{}, errors.New("opencti: event.entity_id is empty")
	}
	if !stixIDPattern.MatchString(entityID) {
		return Entity{}, fmt.Errorf("opencti: event.entity_id %q is not a STIX id", entityID)
	}
	data := bytes.TrimSpace(stixEntity)
	if len(data) == 0 || string(data) == "null" {
		return Entity{}, errors.New("opencti: event.stix_entity is empty (the connector must register enrichment_resolution stix_bundle)")
	}
	if len(data) > maxEntitySize {
		return Entity{}, fmt.Errorf("opencti: event.stix_entity is %d bytes, more than the %d allowed", len(data), maxEntitySize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return Entity{}, fmt.Errorf("opencti: event.stix_entity: %w", err)
	}
	if _, err := dec.Token(); err == nil {
		return Entity{}, errors.New("opencti: event.stix_entity: data after the JSON object")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return Entity{}, errors.New("opencti: event.stix_entity is not a JSON object")
	}
	if err := checkEntity(obj, entityID, entityType, stixType); err != nil {
		return Entity{}, err
	}
	return Entity{ID: entityID, Type: entityType, STIX: obj}, nil
}

// checkEntity validates the fields of a decoded stix_entity.
func checkEntity(obj map[string]any, entityID, entityType, stixType string) error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("opencti: stix_entity.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	typeOf := func(v any) string {
		switch v.(type) {
		case nil:
			return "null"
		case string:
			return "a string"
		case json.Number:
			return "a number"
		case bool:
			return "a boolean"
		case []any:
			return "a list"
		case map[string]any:
			return "an object"
		}
		return fmt.Sprintf("%T", v)
	}
	str := func(field string, required bool) {
		v, present := obj[field]
		switch {
		case !present && required:
			bad(field, "missing")
		case present:
			if _, ok := v.(string); !ok {
				bad(field, "want a string, got %s", typeOf(v))
			} else if required && v == "" {
				bad(field, "empty")
			}
		}
	}
	strList := func(field string, list any, ids bool) {
		l, ok := list.([]any)
		if !ok {
			bad(field, "want a list of strings, got %s", typeOf(list))
			return
		}
		for i, e := range l {
			s, ok := e.(string)
			switch {
			case !ok:
				bad(fmt.Sprintf("%s[%d]", field, i), "want a string, got %s", typeOf(e))
			case ids && !stixIDPattern.MatchString(s):
				bad(fmt.Sprintf("%s[%d]", field, i), "%q is not a STIX id", s)
			}
		}
	}
	score := func(field string, v any) {
		if v == nil {
			return
		}
		n, ok := v.(json.Number)
		if !ok {
			bad(field, "want a number, got %s", typeOf(v))
			return
		}
		f, err := n.Float64()
		if err != nil || f < 0 || f > 100 {
			bad(field, "score %s is not a number from 0 to 100", n)
		}
	}
	refs := func(field string, v any) {
		l, ok := v.([]any)
		if !ok {
			bad(field, "want a list of external references, got %s", typeOf(v))
			return
		}
		for i, e := range l {
			if _, ok := e.(map[string]any); !ok {
				bad(fmt.Sprintf("%s[%d]", field, i), "want an object, got %s", typeOf(e))
			}
		}
	}

	// Older exports prefix OpenCTI's custom types with "x-opencti-" (pycti
	// accepts both spellings of the id too).
	if t, _ := obj["type"].(string); t != stixType && t != "x-opencti-"+stixType {
		bad("type", "%s, want %q for a %s", quoteOrType(obj["type"], typeOf), stixType, entityType)
	}
	if id, _ := obj["id"].(string); id != entityID && id != "x-opencti-"+entityID {
		bad("id", "%s does not match event.entity_id %q", quoteOrType(obj["id"], typeOf), entityID)
	}
	str("spec_version", false)
	if v, ok := obj["object_marking_refs"]; ok {
		strList("object_marking_refs", v, true)
	}
	if v, ok := obj["labels"]; ok {
		strList("labels", v, false)
	}
	if v, ok := obj["external_references"]; ok {
		refs("external_references", v)
	}
	if v, ok := obj["x_opencti_score"]; ok {
		score("x_opencti_score", v)
	}
	if v, ok := obj["extensions"]; ok {
		exts, isObj := v.(map[string]any)
		if !isObj {
			bad("extensions", "want an object, got %s", typeOf(v))
		}
		for name, ext := range exts {
			e, isObj := ext.(map[string]any)
			if !isObj {
				bad("extensions["+strconv.Quote(name)+"]", "want an object, got %s", typeOf(ext))
				continue
			}
			if name != stix.ExtensionOpenCTISCO && name != stix.ExtensionOpenCTISDO {
				continue
			}
			field := "extensions[" + strconv.Quote(name) + "]."
			if s, ok := e["score"]; ok {
				score(field+"score", s)
			}
			for _, list := range []string{"labels", "additional_names"} {
				if l, ok := e[list]; ok && l != nil {
					strList(field+list, l, false)
				}
			}
			if r, ok := e["external_references"]; ok && r != nil {
				refs(field+"external_references", r)
			}
		}
	}
	switch entityType {
	case TypeStixFile, TypeArtifact:
		if v, ok := obj["hashes"]; ok {
			h, isObj := v.(map[string]any)
			if !isObj {
				bad("hashes", "want an object, got %s", typeOf(v))
			}
			for algo, hv := range h {
				if _, ok := hv.(string); !ok {
					bad("hashes["+strconv.Quote(algo)+"]", "want a string, got %s", typeOf(hv))
				}
			}
		}
		str("name", false)
		if v, ok := obj["size"]; ok && v != nil {
			if _, isNum := v.(json.Number); !isNum {
				bad("size", "want a number, got %s", typeOf(v))
			}
		}
	case TypeIndicator:
		str("pattern", true)
		str("pattern_type", false)
		str("name", false)
	default:
		str("value", true)
	}
	return errors.Join(errs...)
}

func quoteOrType(v any, typeOf func(any) string) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return typeOf(v)
}

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

// Input is everything Build needs.
type Input struct {
	// Entity is the enriched observable; in Indicator mode, one observable
	// of the Indicator (from IndicatorObservables).
	Entity Entity
	// Report is VirusTotal's object for Entity.
	Report *vt.Object
	// Rulesets are the crowdsourced YARA rulesets by id, for
	// Opts.FileImportYARA; a matched rule whose ruleset is missing is
	// skipped with a warning.
	Rulesets map[string]*vt.Object
	// Indicator is set in Indicator mode: the Indicator being enriched.
	// Build then updates the Indicator rather than Entity, creates no new
	// Indicator, and attaches the observable's objects to the observable,
	// which it emits with a based-on relationship from the Indicator. To
	// accumulate labels and references over the Indicator's observables,
	// pass the updated Indicator of one build (Objects[0], re-parsed) as
	// the Indicator of the next.
	Indicator *Entity
	// ServingIP is a URL's last serving IP address (data.id of
	// /urls/{id}/last_serving_ip_address), for the attributes block. The
	// caller fetches it only when Opts.IncludeAttributesInNote is set (the
	// original always fetches it, §10.4); empty prints N/A.
	ServingIP string
	// Author is the VirusTotal identity (VTIdentity).
	Author stix.Identity
	// Now is the time of the enrichment.
	Now  time.Time
	Opts Options
}

// Output is the result of Build.
type Output struct {
	// Objects are the bundle's objects: the updated entity first (a
	// modified copy of Entity.STIX, or of the Indicator in Indicator mode),
	// then the author identity, then the new objects in the order of the
	// original connector.
	Objects []json.RawMessage
	// Score is the VirusTotal score (0 when none could be computed, see
	// Warnings); ScoreKept reports that the entity's higher score was kept.
	Score     int
	ScoreKept bool
	// Warnings are things skipped or left unchanged, for the log.
	Warnings []string
}

// VTIdentity is the author of everything the enrichment creates: the
// organization "VirusTotal" (identity--173c879a-bfb3-5dee-9f1f-3fffd76a8756).
func VTIdentity(now time.Time) stix.Identity {
	id := stix.NewIdentity("VirusTotal", stix.IdentityClassOrganization, now)
	id.Description = "VirusTotal"
	return id
}

// reportKinds maps the VirusTotal object types to lookup kinds.
var reportKinds = map[string]vt.Kind{
	"file":       vt.KindFile,
	"ip_address": vt.KindIP,
	"domain":     vt.KindDomain,
	"url":        vt.KindURL,
}

// Build computes the enrichment of in.Entity (or of in.Indicator) from its
// VirusTotal report. It is pure: no I/O, no clock, no goroutines.
func Build(in Input) (Output, error) {
	b, err := newBuilder(in)
	if err != nil {
		return Output{}, err
	}
	b.run()
	return b.finish()
}

// builder holds the state of one Build.
type builder struct {
	in       Input
	kind     vt.Kind
	attrs    map[string]json.RawMessage // the report's attributes, raw
	a        *vt.Attributes
	target   map[string]any // the updated entity (a copy)
	targetID string
	extID    string // OpenCTI extension of the target
	obs      Entity // the observable
	indMode  bool
	markings []string
	author   string

	score    vtScore
	effScore *int // the score written on the entity and on created objects
	kept     bool
	extRef   *stix.ExternalReference
	names    []string // the file's names after the main name was taken

	objects  []any
	warnings []string
}

func newBuilder(in Input) (*builder, error) {
	switch {
	case in.Report == nil:
		return nil, errors.New("opencti: build: no VirusTotal report")
	case in.Now.IsZero():
		return nil, errors.New("opencti: build: Now is not set")
	case in.Author.ID == "":
		return nil, errors.New("opencti: build: Author is not set (use VTIdentity)")
	case in.Entity.STIX == nil || in.Entity.ID == "":
		return nil, errors.New("opencti: build: Entity is empty (use ParseEntity or IndicatorObservables)")
	}
	if in.Entity.Type == TypeIndicator {
		return nil, errors.New("opencti: build: an Indicator is enriched through its observables: set Input.Indicator and pass each of IndicatorObservables as Entity")
	}
	lookup, err := LookupFor(in.Entity) // also refuses unsupported types
	if err != nil {
		return nil, err
	}
	if k, ok := reportKinds[in.Report.Type]; !ok || k != lookup.Kind {
		return nil, fmt.Errorf("opencti: build: VirusTotal report is a %q object, want a %s for a %s", in.Report.Type, lookup.Kind, in.Entity.Type)
	}
	b := &builder{in: in, kind: lookup.Kind, obs: in.Entity, a: &in.Report.Attributes, author: in.Author.ID}
	b.attrs = reportAttributes(in.Report.Raw)
	if in.Indicator != nil {
		if in.Indicator.Type != TypeIndicator || in.Indicator.STIX == nil {
			return nil, fmt.Errorf("opencti: build: Input.Indicator is a %q, want an Indicator", in.Indicator.Type)
		}
		b.indMode = true
		b.target = cloneJSON(in.Indicator.STIX).(map[string]any)
		b.targetID = in.Indicator.ID
		b.extID = stix.ExtensionOpenCTISDO
		b.markings = mergeStrings(in.Indicator.Markings(), in.Entity.Markings())
	} else {
		b.target = cloneJSON(in.Entity.STIX).(map[string]any)
		b.targetID = in.Entity.ID
		b.extID = stix.ExtensionOpenCTISCO
		b.markings = in.Entity.Markings()
	}
	return b, nil
}

// reportAttributes decodes the attributes member of a VirusTotal object's
// raw JSON (empty when absent or not an object).
func reportAttributes(raw json.RawMessage) map[string]json.RawMessage {
	var data struct {
		Attributes map[string]json.RawMessage `json:"attributes"`
	}
	_ = json.Unmarshal(raw, &data)
	if data.Attributes == nil {
		data.Attributes = map[string]json.RawMessage{}
	}
	return data.Attributes
}

func (b *builder) warn(format string, args ...any) {
	b.warnings = append(b.warnings, fmt.Sprintf(format, args...))
}

// run builds everything, in the original's order (§4 and §5.15).
func (b *builder) run() {
	isFile := b.kind == vt.KindFile
	b.computeScore()
	b.buildExternalReference()
	b.updateTarget(isFile)

	if b.kept {
		b.add(b.note(noteKindScore, b.targetID, "VirusTotal Score", scoreNoteContent(b.score.value), []string{b.targetID}))
	}
	if b.indMode {
		// The observable itself and how the Indicator relates to it; its own
		// relationships below then have valid types (§10.13).
		b.objects = append(b.objects, cloneJSON(b.obs.STIX))
		b.add(b.relationship(stix.RelBasedOn, b.targetID, b.obs.ID))
	}
	switch b.obs.Type {
	case TypeStixFile, TypeArtifact:
		b.autoIndicator(b.in.Opts.FileIndicator)
		if b.in.Opts.FileImportYARA {
			b.yaraIndicators()
		}
		if b.in.Opts.FileCreateNoteFullReport {
			b.fileReportNote()
		}
	case TypeIPv4Addr:
		if b.in.Opts.IPAddRelationships {
			b.autonomousSystem()
			b.country()
		}
		b.autoIndicator(b.in.Opts.IPIndicator)
		b.resultsNote()
	case TypeDomainName, TypeHostname:
		if b.in.Opts.DomainAddRelationships {
			b.resolutions()
		}
		b.autoIndicator(b.in.Opts.DomainIndicator)
		b.resultsNote()
	case TypeURL:
		b.autoIndicator(b.in.Opts.URLIndicator)
		b.resultsNote()
	}
}

func (b *builder) finish() (Output, error) {
	out := Output{Warnings: b.warnings, ScoreKept: b.kept}
	if b.score.ok {
		out.Score = b.score.value
	}
	all := append([]any{b.target, b.in.Author}, b.objects...)
	out.Objects = make([]json.RawMessage, 0, len(all))
	for _, o := range all {
		raw, err := marshalObject(o)
		if err != nil {
			return Output{}, fmt.Errorf("opencti: build: %w", err)
		}
		out.Objects = append(out.Objects, raw)
	}
	return out, nil
}

// marshalObject encodes one object without HTML escaping (so that "<" and
// ">" stay readable in notes and patterns).
func marshalObject(v any) (json.RawMessage, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return json.RawMessage(bytes.TrimRight(buf.Bytes(), "\n")), nil
}

func (b *builder) add(o any) { b.objects = append(b.objects, o) }

// computeScore applies §5.1: the VirusTotal score, the lower-score rule.
func (b *builder) computeScore() {
	b.score = computeScore(b.a.LastAnalysisStats, b.attrs)
	if b.score.warning != "" {
		b.warn("%s", b.score.warning)
	}
	if !b.score.ok {
		return
	}
	var existing int
	var has bool
	if b.indMode {
		existing, has = b.in.Indicator.Score()
	} else {
		existing, has = b.in.Entity.Score()
	}
	eff, kept := applyLowerScoreRule(b.score.value, existing, has, b.in.Opts.ReplaceWithLowerScore)
	b.effScore, b.kept = &eff, kept
}

// buildExternalReference builds the link to the VirusTotal page from the
// report's type and id with vt.GUILink, instead of the original's string
// replacement on links.self, which breaks for domains containing "files"
// (§10.11).
func (b *builder) buildExternalReference() {
	link := vt.GUILink(b.kind, b.in.Report.ID)
	if link == "" {
		b.warn("no VirusTotal link for a %q object", b.in.Report.Type)
		return
	}
	desc := b.a.Magic
	if desc == "" {
		desc = "VirusTotal Report"
	}
	b.extRef = &stix.ExternalReference{SourceName: b.in.Author.Name, URL: link, Description: desc}
}

// updateTarget writes the score, the external reference, the labels and,
// for files in observable mode, the hashes, size and names onto the copy
// of the entity.
func (b *builder) updateTarget(isFile bool) {
	t := b.target
	if b.effScore != nil {
		// pycti put_attribute_in_extension drops the top-level scores first.
		delete(t, "x_opencti_score")
		delete(t, "x_mitre_score")
		extension(t, b.extID, true)["score"] = *b.effScore
	}
	if b.extRef != nil {
		ref := map[string]any{"source_name": b.extRef.SourceName, "url": b.extRef.URL, "description": b.extRef.Description}
		if b.indMode {
			// An Indicator is a domain object: its references are the
			// STIX top-level property, not the extension (§10.13).
			t["external_references"] = appendRef(t["external_references"], ref)
		} else {
			ext := extension(t, b.extID, true)
			ext["external_references"] = appendRef(ext["external_references"], ref)
		}
	}
	if isFile {
		tags := nonEmpty(b.a.Tags)
		if len(tags) > 0 {
			// De-duplicated, unlike the original's observable labels.
			if b.indMode {
				t["labels"] = appendStrings(t["labels"], tags, true)
			} else {
				ext := extension(t, b.extID, true)
				ext["labels"] = appendStrings(ext["labels"], tags, true)
			}
		}
	}
	b.names = nonEmpty(b.a.Names)
	if !isFile || b.indMode {
		return
	}
	// Hashes: VirusTotal's MD5, SHA-1 and SHA-256 replace the entity's.
	hashes, _ := t["hashes"].(map[string]any)
	if hashes == nil {
		hashes = map[string]any{}
	}
	for _, h := range []struct{ algo, value string }{{stix.HashMD5, b.a.MD5}, {stix.HashSHA1, b.a.SHA1}, {stix.HashSHA256, b.a.SHA256}} {
		v := strings.ToLower(h.value)
		if v == "" || !vt.IsHash(v) {
			continue
		}
		for k := range hashes {
			if canonicalHashName(k) == h.algo {
				delete(hashes, k)
			}
		}
		hashes[h.algo] = v
	}
	if len(hashes) > 0 {
		t["hashes"] = hashes
	}
	if b.obs.Type == TypeStixFile {
		if raw, ok := b.attrs["size"]; ok {
			var n json.Number
			if json.Unmarshal(raw, &n) == nil {
				if size, err := n.Int64(); err == nil && size >= 0 {
					t["size"] = size
				}
			}
		}
		// The main name only for a file without one; the original then
		// also drops it from the names list (and from the Names row).
		if name, _ := t["name"].(string); name == "" && len(b.names) > 0 {
			t["name"] = b.names[0]
			b.names = b.names[1:]
		}
	}
	name, _ := t["name"].(string)
	var additional []string
	for _, n := range b.names {
		if n != name {
			additional = append(additional, n)
		}
	}
	if len(additional) > 0 {
		ext := extension(t, b.extID, true)
		ext["additional_names"] = appendStrings(ext["additional_names"], additional, false)
	}
}

// relationship returns a relationship created by the author, carrying the
// entity's markings (§10.6).
func (b *builder) relationship(relType, source, target string) stix.Relationship {
	r := stix.NewRelationship(relType, source, target, b.in.Now)
	r.CreatedByRef = b.author
	r.ObjectMarkingRefs = slices.Clone(b.markings)
	return r
}

// note returns a note with its stable id, created by the author and
// carrying the entity's markings.
func (b *builder) note(kind, keyEntityID, abstract, content string, refs []string) stix.Note {
	n := newStableNote(kind, keyEntityID, abstract, content, refs, b.in.Now)
	n.CreatedByRef = b.author
	n.ObjectMarkingRefs = slices.Clone(b.markings)
	return n
}

// noteRefs are the objects the VirusTotal notes are about: the observable,
// and in Indicator mode the Indicator too.
func (b *builder) noteRefs() []string {
	if b.indMode {
		return []string{b.targetID, b.obs.ID}
	}
	return []string{b.obs.ID}
}

// autoIndicator creates the Indicator of an observable whose malicious
// count reaches the threshold (§5.5), with an escaped pattern (§10.10) and
// valid_until in minutes (§10.9). Not in Indicator mode.
func (b *builder) autoIndicator(p IndicatorPolicy) {
	if b.indMode || p.CreatePositives <= 0 || b.a.LastAnalysisStats == nil || b.a.LastAnalysisStats.Malicious < p.CreatePositives {
		return
	}
	var pattern string
	switch b.obs.Type {
	case TypeStixFile, TypeArtifact:
		sha256 := strings.ToLower(b.a.SHA256)
		if sha256 == "" || !vt.IsHash(sha256) || len(sha256) != 64 {
			lk, _ := LookupFor(b.obs)
			sha256 = lk.ID
		}
		algo := map[int]string{64: stix.HashSHA256, 40: stix.HashSHA1, 32: stix.HashMD5}[len(sha256)]
		pattern = stix.FileHashPattern(algo, sha256)
	case TypeIPv4Addr:
		pattern = stix.IPv4Pattern(b.obs.Value())
	case TypeDomainName, TypeHostname:
		// The original uses the domain-name pattern for hostnames too.
		pattern = stix.DomainNamePattern(b.obs.Value())
	case TypeURL:
		pattern = stix.URLPattern(b.obs.Value())
	}
	ind := stix.NewIndicator(pattern, stix.PatternTypeSTIX, b.in.Now)
	ind.Name = b.obs.Value()
	ind.Description = fmt.Sprintf("Created by VirusTotal connector as the positive count was >= %d", p.CreatePositives)
	if p.ValidMinutes > 0 {
		ind.ValidUntil = stix.NewTimestamp(b.in.Now.Add(time.Duration(p.ValidMinutes) * time.Minute))
	} else {
		b.warn("indicator valid minutes is %d: valid_until left out", p.ValidMinutes)
	}
	ind.CreatedByRef = b.author
	if b.extRef != nil {
		ind.ExternalReferences = []stix.ExternalReference{*b.extRef}
	}
	ind.ObjectMarkingRefs = slices.Clone(b.markings)
	ind.MainObservableType = b.obs.Type
	ind.Detection = new(p.Detect)
	ind.Score = b.scorePtr()
	b.add(ind)
	b.add(b.relationship(stix.RelBasedOn, ind.ID, b.obs.ID))
}

func (b *builder) scorePtr() *int {
	if b.effScore == nil {
		return nil
	}
	return new(*b.effScore)
}

// yaraIndicators turns the crowdsourced YARA results into YARA Indicators
// related to the file (§5.13), with these fixes (§10.12): the pattern is
// the matched rule's own text (plus the imports it needs), valid_from is
// Now rather than the file's forgeable PE timestamp, x_opencti_detection is
// true, the description carries the real ruleset_id, and a missing
// ruleset is skipped for this build only (nothing is cached here).
func (b *builder) yaraIndicators() {
	seen := map[string]bool{}
	for i, r := range b.a.CrowdsourcedYARA {
		if r.RulesetID == "" {
			b.warn("crowdsourced_yara_results[%d] (%s) has no ruleset_id: skipped", i, r.RuleName)
			continue
		}
		rs := b.in.Rulesets[r.RulesetID]
		if rs == nil {
			b.warn("YARA ruleset %s (%s) was not provided: rule %s skipped", r.RulesetID, r.RulesetName, r.RuleName)
			continue
		}
		text, ok := extractYARARule(rs.Attributes.Rules, r.RuleName)
		if !ok {
			b.warn("YARA ruleset %s has no rule %q: skipped", r.RulesetID, r.RuleName)
			continue
		}
		ind := stix.NewIndicator(text, stix.PatternTypeYARA, b.in.Now)
		if seen[ind.ID] {
			continue
		}
		seen[ind.ID] = true
		ind.Name = orDefault(r.RuleName, "No rulename provided")
		ind.Description = yaraDescription(r)
		ind.CreatedByRef = b.author
		ind.ObjectMarkingRefs = slices.Clone(b.markings)
		ind.MainObservableType = TypeStixFile
		ind.Detection = new(true)
		ind.Score = b.scorePtr()
		b.add(ind)
		b.add(b.relationship(stix.RelRelatedTo, b.obs.ID, ind.ID))
	}
}

func orDefault(s, def string) string {
	if strings.TrimSpace(s) == "" {
		return def
	}
	return s
}

// yaraDescription is the YARA Indicator description: a fenced code block
// holding a JSON object pretty-printed with a 2-space indent and ASCII
// escaping (Python json.dumps(indent=2)), keys in the original's order.
func yaraDescription(r vt.YARAResult) string {
	type desc struct {
		Description string `json:"description"`
		Author      string `json:"author"`
		Source      string `json:"source"`
		RulesetID   string `json:"ruleset_id"`
		RulesetName string `json:"ruleset_name"`
	}
	d := desc{
		Description: orDefault(r.Description, "No description provided"),
		Author:      orDefault(r.Author, "No author provided"),
		Source:      orDefault(r.Source, "No source provided"),
		RulesetID:   orDefault(r.RulesetID, "No ruleset id provided"),
		RulesetName: orDefault(r.RulesetName, "No ruleset name provided"),
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	_ = enc.Encode(d) // strings only: cannot fail
	return "```\n" + asciiJSON(strings.TrimRight(buf.String(), "\n")) + "\n```"
}

// asciiJSON escapes every non-ASCII character of a JSON text as \uXXXX
// (surrogate pairs above U+FFFF), as Python's ensure_ascii does. Outside
// strings JSON is ASCII, so escaping the whole text is safe.
func asciiJSON(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r < 0x80:
			b.WriteRune(r)
		case r > 0xFFFF:
			r -= 0x10000
			fmt.Fprintf(&b, `\u%04x\u%04x`, 0xD800+(r>>10), 0xDC00+(r&0x3FF))
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	return b.String()
}

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

// fileReportNote adds the "VirusTotal Report" note of a file (§5.8.1).
func (b *builder) fileReportNote() {
	raw, ok := b.attrs["last_analysis_results"]
	if !ok || string(bytes.TrimSpace(raw)) == "null" {
		return
	}
	results, err := engineResults(raw)
	if err != nil {
		b.warn("%v: no report note", err)
		return
	}
	content := fileReportContent(statsMembers(b.attrs["last_analysis_stats"]), totalAnalyses(results, b.a.LastAnalysisStats), results, b.attributes())
	b.add(b.note(noteKindReport, b.obs.ID, "VirusTotal Report", content, b.noteRefs()))
}

// resultsNote adds the results note of an IP address, domain, hostname or
// URL, with the categories in the same note (§5.8.2, §5.8.3).
func (b *builder) resultsNote() {
	statsRaw, hasStats := b.attrs["last_analysis_stats"]
	stats := statsMembers(statsRaw)
	categories, err := orderedMembers(b.attrs["categories"])
	if err != nil {
		b.warn("categories: %v: left out of the note", err)
		categories = nil
	}
	if (!hasStats || len(stats) == 0) && len(categories) == 0 {
		return
	}
	results, err := engineResults(b.attrs["last_analysis_results"])
	if err != nil {
		b.warn("%v: engine rows left out", err)
		results = nil
	}
	content := resultsContent(stats, totalAnalyses(results, b.a.LastAnalysisStats), results, categories, b.attributes())
	abstract := fmt.Sprintf("VirusTotal Results (%s: %s)", b.obs.Type, b.obs.Value())
	b.add(b.note(noteKindResults, b.obs.ID, abstract, content, b.noteRefs()))
}

// attributes is the attributes block of the observable, "" when disabled.
func (b *builder) attributes() string {
	if !b.in.Opts.IncludeAttributesInNote {
		return ""
	}
	return attributesBlock(b.obs.Type, b.obs.Value(), attributeRows(b.obs.Type, b.attrs, b.a, b.names, b.in.ServingIP))
}

// JSON helpers for the decoded entity.

// cloneJSON deep-copies a decoded JSON value.
func cloneJSON(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = cloneJSON(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = cloneJSON(e)
		}
		return s
	}
	return v
}

// extension returns obj.extensions[id], creating it (with extension_type
// property-extension, which STIX requires) when create is set.
func extension(obj map[string]any, id string, create bool) map[string]any {
	exts, _ := obj["extensions"].(map[string]any)
	if exts == nil {
		if !create {
			return nil
		}
		exts = map[string]any{}
		obj["extensions"] = exts
	}
	ext, _ := exts[id].(map[string]any)
	if ext == nil {
		if !create {
			return nil
		}
		ext = map[string]any{}
		exts[id] = ext
	}
	if create {
		if _, ok := ext["extension_type"]; !ok {
			ext["extension_type"] = "property-extension"
		}
	}
	return ext
}

// appendStrings appends the values missing from a JSON list of strings,
// compared case-insensitively when fold is set (the platform lower-cases
// labels; file names are case-sensitive).
func appendStrings(list any, values []string, fold bool) []any {
	l, _ := list.([]any)
	out := slices.Clone(l)
	has := func(v string) bool {
		for _, e := range out {
			if s, ok := e.(string); ok && (s == v || fold && strings.EqualFold(s, v)) {
				return true
			}
		}
		return false
	}
	for _, v := range values {
		if !has(v) {
			out = append(out, v)
		}
	}
	return out
}

// appendRef appends ref to a JSON list of external references unless one
// with the same URL is there already (so re-enrichment adds no copy).
func appendRef(list any, ref map[string]any) []any {
	l, _ := list.([]any)
	for _, e := range l {
		if m, ok := e.(map[string]any); ok && m["url"] == ref["url"] {
			return slices.Clone(l)
		}
	}
	return append(slices.Clone(l), ref)
}

func nonEmpty(values []string) []string {
	var out []string
	for _, v := range values {
		if strings.TrimSpace(v) != "" {
			out = append(out, v)
		}
	}
	return out
}

func mergeStrings(a, b []string) []string {
	out := slices.Clone(a)
	for _, v := range b {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

func stringsToAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// countryNames maps ISO 3166-1 alpha-2 codes (plus XK, Kosovo, which
// geolocation databases use) to English short names, the names OpenCTI's
// country entities carry, so that the Location id matches the platform's
// country instead of creating a country named by its code (§10.15).
var countryNames = map[string]string{
	"AD": "Andorra", "AE": "United Arab Emirates", "AF": "Afghanistan", "AG": "Antigua and Barbuda",
	"AI": "Anguilla", "AL": "Albania", "AM": "Armenia", "AO": "Angola", "AQ": "Antarctica",
	"AR": "Argentina", "AS": "American Samoa", "AT": "Austria", "AU": "Australia", "AW": "Aruba",
	"AX": "Åland Islands", "AZ": "Azerbaijan", "BA": "Bosnia and Herzegovina", "BB": "Barbados",
	"BD": "Bangladesh", "BE": "Belgium", "BF": "Burkina Faso", "BG": "Bulgaria", "BH": "Bahrain",
	"BI": "Burundi", "BJ": "Benin", "BL": "Saint Barthélemy", "BM": "Bermuda", "BN": "Brunei",
	"BO": "Bolivia", "BQ": "Caribbean Netherlands", "BR": "Brazil", "BS": "Bahamas", "BT": "Bhutan",
	"BV": "Bouvet Island", "BW": "Botswana", "BY": "Belarus", "BZ": "Belize", "CA": "Canada",
	"CC": "Cocos (Keeling) Islands", "CD": "Democratic Republic of the Congo", "CF": "Central African Republic",
	"CG": "Republic of the Congo", "CH": "Switzerland", "CI": "Côte d'Ivoire", "CK": "Cook Islands",
	"CL": "Chile", "CM": "Cameroon", "CN": "China", "CO": "Colombia", "CR": "Costa Rica", "CU": "Cuba",
	"CV": "Cape Verde", "CW": "Curaçao", "CX": "Christmas Island", "CY": "Cyprus", "CZ": "Czechia",
	"DE": "Germany", "DJ": "Djibouti", "DK": "Denmark", "DM": "Dominica", "DO": "Dominican Republic",
	"DZ": "Algeria", "EC": "Ecuador", "EE": "Estonia", "EG": "Egypt", "EH": "Western Sahara",
	"ER": "Eritrea", "ES": "Spain", "ET": "Ethiopia", "FI": "Finland", "FJ": "Fiji",
	"FK": "Falkland Islands", "FM": "Micronesia", "FO": "Faroe Islands", "FR": "France", "GA": "Gabon",
	"GB": "United Kingdom", "GD": "Grenada", "GE": "Georgia", "GF": "French Guiana", "GG": "Guernsey",
	"GH": "Ghana", "GI": "Gibraltar", "GL": "Greenland", "GM": "Gambia", "GN": "Guinea",
	"GP": "Guadeloupe", "GQ": "Equatorial Guinea", "GR": "Greece",
	"GS": "South Georgia and the South Sandwich Islands", "GT": "Guatemala", "GU": "Guam",
	"GW": "Guinea-Bissau", "GY": "Guyana", "HK": "Hong Kong", "HM": "Heard Island and McDonald Islands",
	"HN": "Honduras", "HR": "Croatia", "HT": "Haiti", "HU": "Hungary", "ID": "Indonesia",
	"IE": "Ireland", "IL": "Israel", "IM": "Isle of Man", "IN": "India",
	"IO": "British Indian Ocean Territory", "IQ": "Iraq", "IR": "Iran", "IS": "Iceland", "IT": "Italy",
	"JE": "Jersey", "JM": "Jamaica", "JO": "Jordan", "JP": "Japan", "KE": "Kenya", "KG": "Kyrgyzstan",
	"KH": "Cambodia", "KI": "Kiribati", "KM": "Comoros", "KN": "Saint Kitts and Nevis",
	"KP": "North Korea", "KR": "South Korea", "KW": "Kuwait", "KY": "Cayman Islands",
	"KZ": "Kazakhstan", "LA": "Laos", "LB": "Lebanon", "LC": "Saint Lucia", "LI": "Liechtenstein",
	"LK": "Sri Lanka", "LR": "Liberia", "LS": "Lesotho", "LT": "Lithuania", "LU": "Luxembourg",
	"LV": "Latvia", "LY": "Libya", "MA": "Morocco", "MC": "Monaco", "MD": "Moldova", "ME": "Montenegro",
	"MF": "Saint Martin", "MG": "Madagascar", "MH": "Marshall Islands", "MK": "North Macedonia",
	"ML": "Mali", "MM": "Myanmar", "MN": "Mongolia", "MO": "Macao", "MP": "Northern Mariana Islands",
	"MQ": "Martinique", "MR": "Mauritania", "MS": "Montserrat", "MT": "Malta", "MU": "Mauritius",
	"MV": "Maldives", "MW": "Malawi", "MX": "Mexico", "MY": "Malaysia", "MZ": "Mozambique",
	"NA": "Namibia", "NC": "New Caledonia", "NE": "Niger", "NF": "Norfolk Island", "NG": "Nigeria",
	"NI": "Nicaragua", "NL": "Netherlands", "NO": "Norway", "NP": "Nepal", "NR": "Nauru", "NU": "Niue",
	"NZ": "New Zealand", "OM": "Oman", "PA": "Panama", "PE": "Peru", "PF": "French Polynesia",
	"PG": "Papua New Guinea", "PH": "Philippines", "PK": "Pakistan", "PL": "Poland",
	"PM": "Saint Pierre and Miquelon", "PN": "Pitcairn Islands", "PR": "Puerto Rico", "PS": "Palestine",
	"PT": "Portugal", "PW": "Palau", "PY": "Paraguay", "QA": "Qatar", "RE": "Réunion", "RO": "Romania",
	"RS": "Serbia", "RU": "Russia", "RW": "Rwanda", "SA": "Saudi Arabia", "SB": "Solomon Islands",
	"SC": "Seychelles", "SD": "Sudan", "SE": "Sweden", "SG": "Singapore",
	"SH": "Saint Helena, Ascension and Tristan da Cunha", "SI": "Slovenia", "SJ": "Svalbard and Jan Mayen",
	"SK": "Slovakia", "SL": "Sierra Leone", "SM": "San Marino", "SN": "Senegal", "SO": "Somalia",
	"SR": "Suriname", "SS": "South Sudan", "ST": "São Tomé and Príncipe", "SV": "El Salvador",
	"SX": "Sint Maarten", "SY": "Syria", "SZ": "Eswatini", "TC": "Turks and Caicos Islands", "TD": "Chad",
	"TF": "French Southern Territories", "TG": "Togo", "TH": "Thailand", "TJ": "Tajikistan",
	"TK": "Tokelau", "TL": "Timor-Leste", "TM": "Turkmenistan", "TN": "Tunisia", "TO": "Tonga",
	"TR": "Turkey", "TT": "Trinidad and Tobago", "TV": "Tuvalu", "TW": "Taiwan", "TZ": "Tanzania",
	"UA": "Ukraine", "UG": "Uganda", "UM": "United States Minor Outlying Islands", "US": "United States",
	"UY": "Uruguay", "UZ": "Uzbekistan", "VA": "Vatican City", "VC": "Saint Vincent and the Grenadines",
	"VE": "Venezuela", "VG": "British Virgin Islands", "VI": "United States Virgin Islands",
	"VN": "Vietnam", "VU": "Vanuatu", "WF": "Wallis and Futuna", "WS": "Samoa", "XK": "Kosovo",
	"YE": "Yemen", "YT": "Mayotte", "ZA": "South Africa", "ZM": "Zambia", "ZW": "Zimbabwe",
}
