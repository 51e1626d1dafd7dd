package opencti

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"maps"
	"mime"
	"net/http"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Entity is an object of the platform's knowledge an enrichment can target.
type Entity struct {
	// Type is the OpenCTI entity type: StixFile, Artifact, IPv4-Addr,
	// IPv6-Addr, Domain-Name, Hostname, Url or Indicator.
	Type string
	// Value is the observable value of IPv4-Addr, IPv6-Addr, Domain-Name,
	// Hostname and Url.
	Value string
	// Hashes of a StixFile or an Artifact ("SHA-256" …). An Artifact
	// without hashes but with an import file gets the file's MD5, SHA-1,
	// SHA-256 and SHA-512, as the platform computes them on upload.
	Hashes map[string]string
	// Name is a StixFile's file name, or an Indicator's name (default: the
	// pattern).
	Name string
	// URL is an Artifact's url.
	URL string
	// MimeType of a StixFile or Artifact.
	MimeType string
	// Pattern, PatternType (default "stix") and MainObservableType
	// (x_opencti_main_observable_type) of an Indicator. The indicator's
	// x_opencti_observable_values are read from the pattern's comparisons.
	Pattern            string
	PatternType        string
	MainObservableType string
	// Markings are marking-definition ids, or TLP names ("TLP:AMBER"),
	// which stand for the fixed TLP ids.
	Markings []string
	// GrantedRefs are the organisations (identity ids) the entity is
	// shared with, exported as granted_refs in its OpenCTI extension.
	GrantedRefs []string
	// Score is x_opencti_score, nil for none.
	Score       *int
	Labels      []string
	Description string
	// ImportFiles are files uploaded on the entity (importFiles), served at
	// /storage/get/<file id> like the platform.
	ImportFiles []ImportFile
}

// ImportFile is a file attached to an entity.
type ImportFile struct {
	Name     string
	Data     []byte
	MimeType string
}

type entity struct {
	Entity
	standardID string
	internalID string
	createdAt  time.Time
	updatedAt  time.Time
	files      []*storedFile
}

type storedFile struct {
	id       string
	name     string
	mimeType string
	data     []byte
	modified time.Time
	entityID string
}

// entityTypes maps the supported OpenCTI entity types to their STIX type
// and GraphQL type name.
var entityTypes = map[string]struct{ stixType, gqlType string }{
	"StixFile":    {"file", "StixFile"},
	"Artifact":    {"artifact", "Artifact"},
	"IPv4-Addr":   {"ipv4-addr", "IPv4Addr"},
	"IPv6-Addr":   {"ipv6-addr", "IPv6Addr"},
	"Domain-Name": {"domain-name", "DomainName"},
	"Hostname":    {"hostname", "Hostname"},
	"Url":         {"url", "Url"},
	"Indicator":   {"indicator", "Indicator"},
}

// AddEntity adds e to the platform's knowledge, or updates the entity with
// the same standard id (score, description and mime type replaced when set,
// labels, markings and files added), and returns its standard STIX id (its
// deterministic id). It returns "" and logs why when e
// has an unknown type or none of the properties its id is derived from.
func (p *Platform) AddEntity(e Entity) string {
	typ, ok := entityTypes[e.Type]
	if !ok {
		p.log.Error("add entity: unsupported entity type", "entity_type", e.Type)
		return ""
	}
	e.Hashes = cloneHashes(e.Hashes)
	if e.Type == "Artifact" && len(e.Hashes) == 0 && len(e.ImportFiles) > 0 {
		e.Hashes = hashFile(e.ImportFiles[0].Data)
	}
	var (
		id  string
		err error
	)
	switch e.Type {
	case "StixFile":
		id, err = fileID(e.Hashes, e.Name)
	case "Artifact":
		id, err = artifactID(e.Hashes, e.URL)
	case "Indicator":
		if strings.TrimSpace(e.Pattern) == "" {
			err = errNoIDProperties
			break
		}
		if e.PatternType == "" {
			e.PatternType = "stix"
		}
		if e.Name == "" {
			e.Name = e.Pattern
		}
		id = indicatorID(e.Pattern)
	default:
		if e.Value == "" {
			err = errNoIDProperties
			break
		}
		id = valueID(typ.stixType, e.Value)
	}
	if err != nil {
		p.log.Error("add entity: cannot derive its id", "entity_type", e.Type, "error", err)
		return ""
	}
	markings := make([]string, 0, len(e.Markings))
	for _, m := range e.Markings {
		if t, ok := tlpByName(m); ok {
			m = t.id
		}
		if !slices.Contains(markings, m) {
			markings = append(markings, m)
		}
	}
	e.Markings = markings

	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	ent := p.entities[id]
	if ent == nil {
		ent = &entity{Entity: e, standardID: id, internalID: internalIDFor(id), createdAt: now}
		ent.ImportFiles = nil
		ent.Labels = nil
		ent.GrantedRefs = nil
		ent.Markings = nil
		p.entities[id] = ent
		p.entOrder = append(p.entOrder, id)
		p.internal[ent.internalID] = id
	} else {
		if e.Score != nil {
			ent.Score = e.Score
		}
		if e.Description != "" {
			ent.Description = e.Description
		}
		if e.MimeType != "" {
			ent.MimeType = e.MimeType
		}
	}
	ent.updatedAt = now
	ent.Labels = union(ent.Labels, e.Labels)
	ent.GrantedRefs = union(ent.GrantedRefs, e.GrantedRefs)
	ent.Markings = union(ent.Markings, e.Markings)
	for _, f := range e.ImportFiles {
		sf := &storedFile{
			id:       "import/" + e.Type + "/" + ent.internalID + "/" + f.Name,
			name:     f.Name,
			mimeType: f.MimeType,
			data:     slices.Clone(f.Data),
			modified: now,
			entityID: id,
		}
		if sf.mimeType == "" {
			sf.mimeType = "application/octet-stream"
		}
		ent.files = slices.DeleteFunc(ent.files, func(o *storedFile) bool { return o.id == sf.id })
		ent.files = append(ent.files, sf)
		p.files[sf.id] = sf
	}
	p.notifyLocked()
	return id
}

// Entities returns the standard ids of the entities, in the order they
// were added.
func (p *Platform) Entities() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.entOrder)
}

// entityLocked finds an entity by standard or internal id. p.mu must be
// held.
func (p *Platform) entityLocked(id string) *entity {
	if e := p.entities[id]; e != nil {
		return e
	}
	if sid, ok := p.internal[id]; ok {
		return p.entities[sid]
	}
	return nil
}

func cloneHashes(h map[string]string) map[string]string {
	if len(h) == 0 {
		return nil
	}
	out := make(map[string]string, len(h))
	for k, v := range h {
		out[k] = v
	}
	return out
}

func hashFile(data []byte) map[string]string {
	m5 := md5.Sum(data)
	s1 := sha1.Sum(data)
	s256 := sha256.Sum256(data)
	s512 := sha512.Sum512(data)
	return map[string]string{
		hashMD5:    hex.EncodeToString(m5[:]),
		hashSHA1:   hex.EncodeToString(s1[:]),
		hashSHA256: hex.EncodeToString(s256[:]),
		hashSHA512: hex.EncodeToString(s512[:]),
	}
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// hashOrder is the order in which the platform's hashValue picks the hash
// that is a hashed observable's observable_value.
var hashOrder = []string{hashSHA256, hashSHA1, hashMD5, hashSHA512, hashSHA3256, hashSHA3512, hashSSDEEP}

func (e *entity) stixType() string { return entityTypes[e.Type].stixType }
func (e *entity) gqlType() string  { return entityTypes[e.Type].gqlType }

// observableValue is the platform's observable_value / representative.
func (e *entity) observableValue() string {
	switch e.Type {
	case "StixFile", "Artifact":
		for _, a := range hashOrder {
			if v := e.Hashes[a]; v != "" {
				return v
			}
		}
		for _, k := range slices.Sorted(maps.Keys(e.Hashes)) {
			return e.Hashes[k]
		}
		if e.Type == "StixFile" && e.Name != "" {
			return e.Name
		}
		if e.URL != "" {
			return e.URL
		}
		return "Unknown"
	case "Indicator":
		return e.Name
	}
	return e.Value
}

// toStix is the platform's STIX 2.1 export of the entity
// (convertStoreToStix_2_1): the object with its OpenCTI extensions, empty
// properties omitted.
func (e *entity) toStix() map[string]any {
	ts := formatTimestamp
	octi := map[string]any{
		"extension_type": "property-extension",
		"id":             e.internalID,
		"type":           e.Type,
		"created_at":     ts(e.createdAt),
		"updated_at":     ts(e.updatedAt),
		"is_inferred":    false,
		"creator_ids":    []any{adminUserID},
		"granted_refs":   stringList(e.GrantedRefs),
	}
	obj := map[string]any{
		"id":                  e.standardID,
		"spec_version":        specVersion,
		"type":                e.stixType(),
		"object_marking_refs": stringList(e.Markings),
	}
	var score any
	if e.Score != nil {
		score = *e.Score
	}
	if e.Type == "Indicator" {
		octi["score"] = score
		octi["main_observable_type"] = e.MainObservableType
		octi["observable_values"] = observableValuesStix(e.Pattern)
		obj["created"] = ts(e.createdAt)
		obj["modified"] = ts(e.updatedAt)
		obj["revoked"] = false
		obj["confidence"] = 100
		obj["labels"] = stringList(e.Labels)
		obj["name"] = e.Name
		obj["description"] = e.Description
		obj["pattern"] = e.Pattern
		obj["pattern_type"] = e.PatternType
		obj["valid_from"] = ts(e.createdAt)
		obj["extensions"] = map[string]any{extensionSDO: clean(octi)}
		return clean(obj)
	}
	sco := map[string]any{
		"extension_type": "property-extension",
		"labels":         stringList(e.Labels),
		"description":    e.Description,
		"score":          score,
	}
	switch e.Type {
	case "StixFile", "Artifact":
		if len(e.Hashes) > 0 {
			h := map[string]any{}
			for k, v := range e.Hashes {
				h[k] = v
			}
			obj["hashes"] = h
		}
		obj["mime_type"] = e.MimeType
		if e.Type == "StixFile" {
			obj["name"] = e.Name
		} else {
			obj["url"] = e.URL
		}
	case "Hostname":
		// Custom observables carry the SCO properties at the top level.
		obj["value"] = e.Value
		obj["labels"] = stringList(e.Labels)
		obj["description"] = e.Description
		obj["score"] = score
		sco = map[string]any{"extension_type": "new-sco"}
	default:
		obj["value"] = e.Value
	}
	obj["extensions"] = map[string]any{extensionSDO: clean(octi), extensionSCO: clean(sco)}
	return clean(obj)
}

// stixObjects is the platform's bundle of the entity with its dependencies
// (stixBundleByIdStringify): the entity, then its marking definitions.
func (e *entity) stixObjects(custom map[string]Marking) []any {
	out := []any{e.toStix()}
	for _, m := range e.Markings {
		if c, ok := custom[m]; ok {
			out = append(out, c.stixObject(m))
			continue
		}
		if t, ok := tlpByMarkingID[m]; ok {
			obj := t.stixObject()
			obj["extensions"] = map[string]any{extensionSDO: map[string]any{
				"extension_type": "property-extension",
				"id":             internalIDFor(m),
				"type":           "Marking-Definition",
				"order":          t.order,
				"color":          t.color,
			}}
			out = append(out, obj)
		}
	}
	return out
}

// clean drops nil, empty strings and empty lists and maps, as the
// platform's cleanObject does.
func clean(m map[string]any) map[string]any {
	for k, v := range m {
		switch x := v.(type) {
		case nil:
			delete(m, k)
		case string:
			if x == "" {
				delete(m, k)
			}
		case []any:
			if len(x) == 0 {
				delete(m, k)
			}
		case map[string]any:
			if len(x) == 0 {
				delete(m, k)
			}
		}
	}
	return m
}

func stringList(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// patternComparisonRE finds the comparisons "<type>:<path> = '<value>'" of a
// STIX pattern.
var patternComparisonRE = regexp.MustCompile(`([a-z0-9-]+):([A-Za-z0-9_.'\-]+)\s*=\s*'((?:[^'\\]|\\.)*)'`)

// observableValue is one observable a pattern is about.
type observableValue struct {
	typ, value string
	hashes     [][2]string
}

// patternObservables extracts the observables of the equality comparisons
// of a pattern, as the platform's getObservableValuesFromPattern does for
// x_opencti_observable_values.
func patternObservables(pattern string) []observableValue {
	var out []observableValue
	for _, m := range patternComparisonRE.FindAllStringSubmatch(pattern, -1) {
		value := strings.NewReplacer(`\'`, `'`, `\\`, `\`).Replace(m[3])
		prop := m[2]
		switch m[1] {
		case "file", "artifact":
			typ := "StixFile"
			if m[1] == "artifact" {
				typ = "Artifact"
			}
			if algo, ok := strings.CutPrefix(prop, "hashes."); ok {
				algo = strings.Trim(algo, "'")
				out = append(out, observableValue{typ: typ, value: value, hashes: [][2]string{{algo, value}}})
			} else {
				out = append(out, observableValue{typ: typ, value: value})
			}
		default:
			typ := m[1]
			for t, v := range entityTypes {
				if v.stixType == m[1] {
					typ = t
				}
			}
			out = append(out, observableValue{typ: typ, value: value})
		}
	}
	return out
}

func observableValuesStix(pattern string) []any {
	var out []any
	for _, o := range patternObservables(pattern) {
		v := map[string]any{"type": o.typ, "value": o.value}
		if len(o.hashes) > 0 {
			h := map[string]any{}
			for _, kv := range o.hashes {
				h[kv[0]] = kv[1]
			}
			v["hashes"] = h
		}
		out = append(out, v)
	}
	return out
}

// updateFromImportLocked applies an imported STIX object to the entity it
// is about (same standard id): score, description and labels, the
// properties an enrichment changes. p.mu must be held.
func (p *Platform) updateFromImportLocked(obj map[string]any) {
	id, _ := obj["id"].(string)
	e := p.entities[id]
	if e == nil {
		return
	}
	// OpenCTI reads these from x_opencti_* properties, from the top level of
	// its custom observables, or from its extensions.
	exts, _ := obj["extensions"].(map[string]any)
	sco, _ := exts[extensionSCO].(map[string]any)
	sdo, _ := exts[extensionSDO].(map[string]any)
	first := func(key string, sources ...map[string]any) any {
		for _, src := range sources {
			if v, ok := src[key]; ok && v != nil {
				return v
			}
		}
		return nil
	}
	score := first("x_opencti_score", obj)
	if score == nil {
		score = first("score", obj, sco, sdo)
	}
	if n, ok := number(score); ok {
		s := int(n)
		e.Score = &s
	}
	if e.Type != "Indicator" {
		desc := first("x_opencti_description", obj)
		if desc == nil {
			desc = first("description", obj, sco)
		}
		if d, ok := desc.(string); ok && d != "" {
			e.Description = d
		}
	}
	for _, v := range []any{obj["x_opencti_labels"], obj["labels"], sco["labels"]} {
		list, _ := v.([]any)
		for _, l := range list {
			if s, ok := l.(string); ok && !slices.Contains(e.Labels, s) {
				e.Labels = append(e.Labels, s)
			}
		}
	}
	e.updatedAt = p.now()
}

// serveStorage answers GET /storage/get/<file id> with the file's bytes,
// 401 without a valid token, 404 for an unknown file.
func (p *Platform) serveStorage(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	if _, ok := p.authenticate(r); !ok {
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	id := strings.TrimPrefix(r.URL.Path, "/storage/get/")
	p.mu.Lock()
	f := p.files[id]
	var (
		data     []byte
		name, mt string
		modified time.Time
	)
	if f != nil {
		data, name, mt, modified = f.data, f.name, f.mimeType, f.modified
	}
	p.mu.Unlock()
	if f == nil {
		http.Error(w, "Not Found", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", mt)
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": path.Base(name)}))
	w.Header().Set("Last-Modified", modified.UTC().Format(http.TimeFormat))
	if r.Method == http.MethodHead {
		return
	}
	if _, err := w.Write(data); err != nil {
		p.log.Debug("storage: write file", "file_id", id, "error", err)
	}
}

func (e *entity) String() string { return fmt.Sprintf("%s %s", e.Type, e.standardID) }
