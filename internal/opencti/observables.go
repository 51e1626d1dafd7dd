package opencti

import (
	"fmt"
	"slices"
	"strings"

	"github.com/vtconnector/vtconnector/internal/stix"
)

// IndicatorObservables returns the observables the STIX pattern of an
// Indicator entity names, as synthetic entities the caller passes to
// LookupFor and, one at a time, to Build as Input.Entity (with
// Input.Indicator = e). Each has the deterministic STIX id of its type, its
// value (or hashes) and the Indicator's markings.
//
// The pattern is read with stix.PatternComparisons and every comparison
// "<object>:<path> = '<string>'" (not negated) on a supported path is kept:
// file:hashes.'SHA-256' / 'SHA-1' / MD5 (StixFile), artifact:hashes.…
// (Artifact, which the original connector did not support, §10.13),
// ipv4-addr:value, domain-name:value, hostname:value and url:value. String
// literals are unescaped (\' and \\). File or artifact hashes compared in
// the same observation expression "[…]" with no OR describe one file and
// are merged. Observables are returned in pattern order, without
// duplicates. It fails when the entity is not a STIX-pattern Indicator,
// when the pattern does not tokenise, or when it names no supported
// observable.
func IndicatorObservables(e Entity) ([]Entity, error) {
	if e.Type != TypeIndicator {
		return nil, fmt.Errorf("opencti: indicator observables: entity %s is a %s, not an Indicator", e.ID, e.Type)
	}
	pattern, _ := e.STIX["pattern"].(string)
	if pt, ok := e.STIX["pattern_type"].(string); ok && pt != "" && !strings.EqualFold(pt, stix.PatternTypeSTIX) {
		return nil, fmt.Errorf("opencti: Cannot enrich Indicator %s: its pattern_type is %q; only STIX patterns name observables", e.ID, pt)
	}
	comparisons, err := stix.PatternComparisons(pattern)
	if err != nil {
		return nil, fmt.Errorf("opencti: Cannot enrich Indicator %s: pattern %q: %w", e.ID, pattern, err)
	}
	markings := e.Markings()
	var (
		out     []Entity
		seen    = map[string]bool{}
		found   []string
		skipped []string
	)
	add := func(ent Entity) {
		if !seen[ent.ID] {
			seen[ent.ID] = true
			out = append(out, ent)
		}
	}
	// Pending merged file hashes per observation expression.
	type fileGroup struct {
		obsType string
		hashes  stix.Hashes
	}
	var pending []*fileGroup // merged hashes of the current observation, per object type
	flush := func() {
		for _, g := range pending {
			if ent, err := hashEntity(g.obsType, g.hashes, markings); err == nil {
				add(ent)
			}
		}
		pending = nil
	}
	lastObs := -1
	for _, c := range comparisons {
		if c.Observation != lastObs {
			flush()
			lastObs = c.Observation
		}
		found = append(found, c.ObjectType)
		if c.Negated || c.Op != "=" || !c.IsString {
			continue
		}
		switch c.ObjectType {
		case "file", "artifact":
			algo, ok := hashAlgorithm(c.Path)
			if !ok || c.Value == "" {
				skipped = append(skipped, c.ObjectType+":"+strings.Join(c.Path, "."))
				continue
			}
			if c.HasOr {
				if ent, err := hashEntity(c.ObjectType, stix.Hashes{algo: c.Value}, markings); err == nil {
					add(ent)
				}
				continue
			}
			i := slices.IndexFunc(pending, func(g *fileGroup) bool { return g.obsType == c.ObjectType })
			if i < 0 {
				pending = append(pending, &fileGroup{obsType: c.ObjectType, hashes: stix.Hashes{}})
				i = len(pending) - 1
			}
			if _, dup := pending[i].hashes[algo]; !dup {
				pending[i].hashes[algo] = c.Value
			}
		case "ipv4-addr", "domain-name", "hostname", "url":
			if len(c.Path) != 1 || c.Path[0] != "value" || c.Value == "" {
				skipped = append(skipped, c.ObjectType+":"+strings.Join(c.Path, "."))
				continue
			}
			add(valueEntity(c.ObjectType, c.Value, markings))
		default:
			skipped = append(skipped, c.ObjectType)
		}
	}
	flush()
	if len(out) == 0 {
		slices.Sort(found)
		found = slices.Compact(found)
		if len(found) == 0 {
			found = []string{"none"}
		}
		return nil, fmt.Errorf("opencti: Cannot enrich Indicator %s: its pattern names no supported observable (found: %s; supported: file and artifact hashes (SHA-256, SHA-1, MD5), ipv4-addr:value, domain-name:value, hostname:value, url:value compared with =)",
			e.ID, strings.Join(found, ", "))
	}
	return out, nil
}

// hashAlgorithm recognises hashes.<algo> paths for the three hashes
// VirusTotal looks files up by, returning the STIX algorithm name.
func hashAlgorithm(path []string) (string, bool) {
	if len(path) != 2 || path[0] != "hashes" {
		return "", false
	}
	switch canonicalHashName(path[1]) {
	case stix.HashSHA256:
		return stix.HashSHA256, true
	case stix.HashSHA1:
		return stix.HashSHA1, true
	case stix.HashMD5:
		return stix.HashMD5, true
	}
	return "", false
}

// observableTypes maps the STIX types IndicatorObservables produces to
// OpenCTI entity types.
var observableTypes = map[string]string{
	"file":        TypeStixFile,
	"artifact":    TypeArtifact,
	"ipv4-addr":   TypeIPv4Addr,
	"domain-name": TypeDomainName,
	"hostname":    TypeHostname,
	"url":         TypeURL,
}

func valueEntity(stixType, value string, markings []string) Entity {
	id := stix.ObservableValueID(stixType, value)
	obj := map[string]any{"type": stixType, "spec_version": stix.SpecVersion, "id": id, "value": value}
	if len(markings) > 0 {
		obj["object_marking_refs"] = stringsToAny(markings)
	}
	return Entity{ID: id, Type: observableTypes[stixType], STIX: obj}
}

func hashEntity(stixType string, hashes stix.Hashes, markings []string) (Entity, error) {
	var (
		id  string
		err error
	)
	if stixType == "artifact" {
		id, err = stix.ArtifactID(hashes, "")
	} else {
		id, err = stix.FileID(hashes, "")
	}
	if err != nil {
		return Entity{}, err
	}
	h := make(map[string]any, len(hashes))
	for k, v := range hashes {
		h[k] = v
	}
	obj := map[string]any{"type": stixType, "spec_version": stix.SpecVersion, "id": id, "hashes": h}
	if len(markings) > 0 {
		obj["object_marking_refs"] = stringsToAny(markings)
	}
	return Entity{ID: id, Type: observableTypes[stixType], STIX: obj}, nil
}
