package opencti

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/vtconnector/vtconnector/internal/stix"
	"github.com/vtconnector/vtconnector/internal/vt"
)

// This file is the pure enrichment builder of the OpenCTI front: from the
// entity the platform sent, the VirusTotal report and the settings, the
// STIX objects to push back. It follows the original connector
// (OpenCTI-Platform/connectors internal-enrichment/virustotal, builder.py
// and the processors) except where its weaknesses are fixed; each fix says
// which item of the behaviour reference's §10 it addresses. The steps
// that add objects live beside their subject: entityupdate.go (the
// enriched entity itself), indicator.go, yara.go, relationships.go and
// note.go.

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
	// Private Scanning reports (Report.Private).
	"private_file": vt.KindFile,
	"private_url":  vt.KindURL,
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
		switch {
		case b.in.Report.Private:
			b.privateReportNote()
		case b.in.Opts.FileCreateNoteFullReport:
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
		if b.in.Report.Private {
			b.privateReportNote()
		} else {
			b.resultsNote()
		}
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

// relationship returns a relationship created by the author, carrying the
// entity's markings (§10.6).
func (b *builder) relationship(relType, source, target string) stix.Relationship {
	r := stix.NewRelationship(relType, source, target, b.in.Now)
	r.CreatedByRef = b.author
	r.ObjectMarkingRefs = slices.Clone(b.markings)
	return r
}

func (b *builder) scorePtr() *int {
	if b.effScore == nil {
		return nil
	}
	return new(*b.effScore)
}
