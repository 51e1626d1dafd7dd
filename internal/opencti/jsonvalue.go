package opencti

import (
	"slices"
	"strings"
)

// This file edits the decoded JSON of entities (map[string]any from
// encoding/json): deep copies, OpenCTI extensions, and lists that must not
// repeat what they hold.

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
