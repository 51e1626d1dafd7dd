package opencti

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vtconnector/vtconnector/internal/stix"
	"github.com/vtconnector/vtconnector/internal/vt"
)

// Notes. The original connector creates its notes with an id salted with
// the wall-clock time, so every enrichment adds new notes (§10.7). Here
// every note has an id that depends only on the entity and the kind of
// note, so re-enrichment sends the same id with new content and the
// platform updates the note in place. How the platform does it
// (OpenCTI-Platform/opencti, opencti-graphql):
//   - database/data-builder.js buildEntityData keeps an incoming stix_id
//     that differs from the computed standard_id (for a note: content plus
//     created) in x_opencti_stix_ids; stix-converter isTrustedStixId only
//     distrusts UUIDv1 ids, and ours are v5;
//   - schema/identifier getInputIds puts input.stix_id among the ids
//     database/middleware.ts internalCreateEntityRaw looks up (the id
//     filter matches standard_id, internal_id and x_opencti_stix_ids), so
//     the next import with the same id finds the note and calls
//     upsertElement instead of creating one;
//   - utils/upsert-utils buildUpdatePatchForUpsert keeps the id in
//     x_opencti_stix_ids, aligns created to the oldest value, and
//     generateAttributesInputsForUpsert replaces content and abstract (both
//     upsert: true for Note) when the connector user's confidence is at
//     least the note's.

// Note kinds, part of the stable note ids.
const (
	noteKindReport  = "virustotal-report"  // files: the full report
	noteKindResults = "virustotal-results" // IP, domain, hostname, URL: results and categories
	noteKindScore   = "virustotal-score"   // the VirusTotal score when a higher one is kept
)

// NoteKey is the fixed string whose id (with no created time) is the id of
// the note of kind about the entity entityID: NoteID(NoteKey(…), zero).
func NoteKey(kind, entityID string) string {
	return "vtconnector:" + kind + ":" + entityID
}

// stableNoteID is the deterministic id of the note of kind about entityID.
// It does not depend on the content, which changes at every enrichment.
func stableNoteID(kind, entityID string) string {
	return stix.NoteID(NoteKey(kind, entityID), time.Time{})
}

// newStableNote returns a note with its stable id. created and modified are
// now: the platform keeps the oldest created on upsert (upsert-utils
// buildUpdatePatchForUpsert aligns "created" to the oldest value) and
// modified shows the last enrichment.
func newStableNote(kind, keyEntityID, abstract, content string, objectRefs []string, now time.Time) stix.Note {
	n := stix.NewNote(content, objectRefs, now)
	n.ID = stableNoteID(kind, keyEntityID)
	n.Abstract = abstract
	return n
}

// jsonMember is one member of a JSON object, in document order.
type jsonMember struct {
	Key   string
	Value json.RawMessage
}

// orderedMembers decodes the members of a JSON object in the order they
// appear, which Go maps lose: note rows follow VirusTotal's key order, as
// the original's Python dicts do. null or empty input gives no members.
func orderedMembers(raw json.RawMessage) ([]jsonMember, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}
	var out []jsonMember
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("object key %v is not a string", tok)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out = append(out, jsonMember{Key: key, Value: v})
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	return out, nil
}

// naCell is what an empty ("falsy") value prints as, as in the original.
const naCell = "N/A"

// mdCell escapes s for a cell of a markdown (GFM) table: line breaks and
// other control characters become spaces, and the characters that would
// end the cell or open HTML, autolinks, links or images (| \ < > [) are
// backslash-escaped, so an engine name or verdict cannot break the table
// or inject markup that does more than emphasis. Empty values print N/A.
func mdCell(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return naCell
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r < 0x20 || r == 0x7f || r == '\u2028' || r == '\u2029' || r == '\u0085':
			b.WriteByte(' ')
		case strings.ContainsRune(`|\<>[`, r):
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// mdRow writes one table row.
func mdRow(b *strings.Builder, cells ...string) {
	b.WriteString("|")
	for _, c := range cells {
		b.WriteString(" ")
		b.WriteString(c)
		b.WriteString(" |")
	}
	b.WriteString("\n")
}

// jsonText renders a JSON scalar for a note cell: strings as they are,
// numbers as written, booleans as true/false; null, missing, empty
// strings, false and 0 are "falsy" and print N/A like the original
// (Python's `or 'N/A'`); arrays of strings are joined with ", ".
func jsonText(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return ""
	}
	return anyText(v)
}

func anyText(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case json.Number:
		if f, err := x.Float64(); err == nil && f == 0 {
			return ""
		}
		return x.String()
	case bool:
		if !x {
			return ""
		}
		return "true"
	case []any:
		parts := make([]string, 0, len(x))
		for _, e := range x {
			if s := anyText(e); s != "" {
				parts = append(parts, s)
			}
		}
		return strings.Join(parts, ", ")
	}
	return ""
}

// countCell prints a verdict count: the number as VirusTotal wrote it
// (including 0), N/A when the key is missing or not a number.
func countCell(stats map[string]json.RawMessage, key string) string {
	raw, ok := stats[key]
	if !ok {
		return naCell
	}
	var n json.Number
	if json.Unmarshal(raw, &n) != nil || n == "" {
		return naCell
	}
	return n.String()
}

// isoDate prints a VirusTotal epoch as an ISO 8601 UTC time instead of the
// raw integer the original prints (§10.16); missing or zero is N/A.
func isoDate(raw json.RawMessage) string {
	var n json.Number
	if json.Unmarshal(raw, &n) != nil {
		return naCell
	}
	epoch, err := n.Int64()
	if err != nil || epoch <= 0 {
		return naCell
	}
	return vt.Time(epoch).Format(time.RFC3339)
}

// engineResult is one entry of last_analysis_results, as raw JSON values so
// that null, missing and wrong-typed fields all print N/A.
type engineResult struct {
	name, version, method, category, result string
}

// engineResults reads last_analysis_results in VirusTotal's order. The
// engine name falls back to the member key when engine_name is empty.
func engineResults(raw json.RawMessage) ([]engineResult, error) {
	members, err := orderedMembers(raw)
	if err != nil {
		return nil, fmt.Errorf("last_analysis_results: %w", err)
	}
	out := make([]engineResult, 0, len(members))
	for _, m := range members {
		fields := map[string]json.RawMessage{}
		_ = json.Unmarshal(m.Value, &fields) // a non-object entry prints N/A everywhere
		r := engineResult{
			name:     jsonText(fields["engine_name"]),
			version:  jsonText(fields["engine_version"]),
			method:   jsonText(fields["method"]),
			category: jsonText(fields["category"]),
			result:   jsonText(fields["result"]),
		}
		if r.name == "" {
			r.name = m.Key
		}
		out = append(out, r)
	}
	return out, nil
}

// statsMembers decodes last_analysis_stats for the count cells.
func statsMembers(raw json.RawMessage) map[string]json.RawMessage {
	m := map[string]json.RawMessage{}
	_ = json.Unmarshal(raw, &m)
	return m
}

// totalAnalyses is the "Total Analyses" cell: the number of engines in
// last_analysis_results as in the original, or, when VirusTotal sent no
// per-engine results, the sum of the verdict counts rather than a
// misleading 0.
func totalAnalyses(results []engineResult, stats *vt.Stats) string {
	if len(results) > 0 || stats == nil {
		return strconv.Itoa(len(results))
	}
	return strconv.Itoa(stats.Total())
}

// fileReportContent is the "VirusTotal Report" note of a file (§5.8.1),
// without the original's formatting bugs: a blank line separates every
// block (the attributes block is no longer glued to the last row), quotes
// are ASCII, empty values print N/A.
func fileReportContent(stats map[string]json.RawMessage, total string, results []engineResult, attributes string) string {
	var b strings.Builder
	b.WriteString("| Total Analyses | Malicious | Suspicious | Undetected | Harmless | Timeout | Confirmed timeout | Failure | Unsupported |\n")
	b.WriteString("|----------------|-----------|------------|------------|----------|---------|-------------------|---------|-------------|\n")
	mdRow(&b, total, countCell(stats, "malicious"), countCell(stats, "suspicious"), countCell(stats, "undetected"),
		countCell(stats, "harmless"), countCell(stats, "timeout"), countCell(stats, "confirmed-timeout"),
		countCell(stats, "failure"), countCell(stats, "type-unsupported"))
	b.WriteString("\n## Last Analysis Results\n\n")
	b.WriteString("Any falsy value will be replaced by 'N/A'\n\n")
	b.WriteString("| Engine name | Engine version | Method | Category | Result |\n")
	b.WriteString("|-------------|----------------|--------|----------|--------|\n")
	for _, r := range results {
		mdRow(&b, mdCell(r.name), mdCell(r.version), mdCell(r.method), mdCell(r.category), mdCell(r.result))
	}
	if attributes != "" {
		b.WriteString("\n")
		b.WriteString(attributes)
	}
	return strings.TrimRight(b.String(), "\n")
}

// resultsContent is the results note of an IP address, domain, hostname or
// URL (§5.8.2) with the categories (§5.8.3) as a second table of the same
// note, so that each entity has one note, plus the attributes block once.
func resultsContent(stats map[string]json.RawMessage, total string, results []engineResult, categories []jsonMember, attributes string) string {
	var b strings.Builder
	b.WriteString("| Total Analyses | Malicious | Suspicious | Harmless | Undetected |\n")
	b.WriteString("|----------------|-----------|------------|----------|------------|\n")
	mdRow(&b, total, countCell(stats, "malicious"), countCell(stats, "suspicious"), countCell(stats, "harmless"), countCell(stats, "undetected"))
	b.WriteString("\n### Last Analysis Results\n\n")
	b.WriteString("| Engine name | Method | Category | Result |\n")
	b.WriteString("|-------------|--------|----------|--------|\n")
	for _, r := range results {
		mdRow(&b, mdCell(r.name), mdCell(r.method), mdCell(r.category), mdCell(r.result))
	}
	if len(categories) > 0 {
		b.WriteString("\n### Categories\n\n")
		b.WriteString("| Vendor | Category |\n")
		b.WriteString("|--------|----------|\n")
		for _, c := range categories {
			mdRow(&b, mdCell(c.Key), mdCell(jsonText(c.Value)))
		}
	}
	if attributes != "" {
		b.WriteString("\n")
		b.WriteString(attributes)
	}
	return strings.TrimRight(b.String(), "\n")
}

// attributeRow is one row of the attributes block.
type attributeRow struct{ label, value string }

// attributesBlock is the "Attributes Info" block (§5.8.4), with ISO dates
// and ASCII quotes; "" when there are no rows.
func attributesBlock(entityType, value string, rows []attributeRow) string {
	if len(rows) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "## Attributes Info (%s: %s)\n\n", entityType, mdCell(value))
	b.WriteString("Any falsy value will be replaced by 'N/A'\n\n")
	b.WriteString("| Attributes |      |\n")
	b.WriteString("|--------|----------|\n")
	for _, r := range rows {
		mdRow(&b, mdCell(r.label), mdCell(r.value))
	}
	return b.String()
}

// attributeRows returns the attribute rows of an entity type. Artifact
// gets the StixFile rows and Hostname the Domain-Name rows, which the
// original lacks (§10.16). names is the file's names list after the main
// name was taken from it (as in the original); servingIP is the URL's last
// serving IP address.
func attributeRows(entityType string, attrs map[string]json.RawMessage, a *vt.Attributes, names []string, servingIP string) []attributeRow {
	date := func(key string) string {
		if v, ok := attrs[key]; ok {
			return isoDate(v)
		}
		return naCell
	}
	text := func(key string) string { return jsonText(attrs[key]) }
	switch entityType {
	case TypeStixFile, TypeArtifact:
		label := ""
		if a.PopularThreat != nil {
			label = a.PopularThreat.SuggestedThreatLabel
		}
		verified := ""
		if sig, ok := attrs["signature_info"]; ok {
			var s map[string]json.RawMessage
			if json.Unmarshal(sig, &s) == nil {
				verified = jsonText(s["verified"])
			}
		}
		return []attributeRow{
			{"File Type", text("type_description")},
			{"Type Tags", text("type_tags")},
			{"Last Submission", date("last_submission_date")},
			{"Popular Threat Label", label},
			{"Signature Verification", verified},
			{"Names", strings.Join(names, ", ")},
		}
	case TypeIPv4Addr:
		return []attributeRow{
			{"Country", text("country")},
			{"Autonomous System Label", text("as_owner")},
		}
	case TypeDomainName, TypeHostname:
		return []attributeRow{
			{"Creation Date", date("creation_date")},
			{"Last Analysis Date", date("last_analysis_date")},
		}
	case TypeURL:
		return []attributeRow{
			{"Final URL", text("last_final_url")},
			{"Last Analysis Date", date("last_analysis_date")},
			{"Serving IP Address", servingIP},
		}
	}
	return nil
}

// scoreNoteContent is the "VirusTotal Score" note: the VirusTotal score in
// a fenced code block, as in the original.
func scoreNoteContent(score int) string {
	return "```\n" + strconv.Itoa(score) + "\n```"
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
