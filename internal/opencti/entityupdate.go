package opencti

import (
	"encoding/json"
	"strings"

	"github.com/vtconnector/vtconnector/internal/stix"
	"github.com/vtconnector/vtconnector/internal/vt"
)

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
