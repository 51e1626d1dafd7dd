// Package stixschema validates STIX 2.1 objects against the official
// OASIS JSON schemas, read from a local copy (nothing is fetched): the
// schemas' $id URLs are mapped onto the directory. Tests of the packages
// that produce STIX use it; it does no other I/O and imports no other
// vtconnector package.
package stixschema

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// BaseURL is the prefix of the $id of every official STIX 2.1 schema.
const BaseURL = "http://raw.githubusercontent.com/oasis-open/cti-stix2-json-schemas/stix2.1/schemas/"

type loader string

func (dir loader) Load(url string) (any, error) {
	rel, ok := strings.CutPrefix(url, BaseURL)
	if !ok {
		return nil, fmt.Errorf("refusing to load %s: only %s* is available offline", url, BaseURL)
	}
	f, err := os.Open(filepath.Join(string(dir), filepath.FromSlash(rel)))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return jsonschema.UnmarshalJSON(f)
}

// Validator compiles schemas from a local copy of the official set, once
// each. It is safe for concurrent use.
type Validator struct {
	dir      string
	mu       sync.Mutex
	compiler *jsonschema.Compiler
	cache    map[string]*jsonschema.Schema
}

// New returns a validator over dir, the stix2.1-json-schemas directory.
func New(dir string) *Validator {
	c := jsonschema.NewCompiler()
	c.UseLoader(loader(dir))
	c.AssertFormat()
	return &Validator{dir: dir, compiler: c, cache: map[string]*jsonschema.Schema{}}
}

// Schema compiles (once) the schema at rel, e.g. "sdos/indicator.json".
func (v *Validator) Schema(rel string) (*jsonschema.Schema, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if s, ok := v.cache[rel]; ok {
		return s, nil
	}
	s, err := v.compiler.Compile(BaseURL + rel)
	if err != nil {
		return nil, fmt.Errorf("stixschema: compile %s: %w", rel, err)
	}
	v.cache[rel] = s
	return s, nil
}

// ForType is the schema file of a STIX type: its own when the official
// set has one, else core.json for custom domain objects (they have
// created) and cyber-observable-core.json for custom observables such as
// OpenCTI's hostname and text.
func (v *Validator) ForType(stixType string, obj map[string]any) string {
	for _, sub := range []string{"sdos", "sros", "observables", "common"} {
		rel := sub + "/" + stixType + ".json"
		if _, err := os.Stat(filepath.Join(v.dir, filepath.FromSlash(rel))); err == nil {
			return rel
		}
	}
	if _, ok := obj["created"]; ok {
		return "common/core.json"
	}
	return "common/cyber-observable-core.json"
}

// Validate checks one JSON object against the schema at rel.
func (v *Validator) Validate(rel string, data []byte) error {
	s, err := v.Schema(rel)
	if err != nil {
		return err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("stixschema: %w", err)
	}
	return s.Validate(inst)
}

// ValidateObject checks one STIX object against the schema of its type.
func (v *Validator) ValidateObject(data []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("stixschema: %w", err)
	}
	m, _ := inst.(map[string]any)
	typ, _ := m["type"].(string)
	s, err := v.Schema(v.ForType(typ, m))
	if err != nil {
		return err
	}
	return s.Validate(inst)
}
