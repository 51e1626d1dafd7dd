package opencti

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
)

// protocolFeatures are the connector-protocol members of the schema with
// the first platform version that has them (§13 matrix: first pycti tag,
// pycti and the platform being released together). loadSchema removes those
// newer than the emulated version, so that e.g. a 6.7 platform rejects
// auto_update as the real one does (§2.1).
var protocolFeatures = []struct {
	typ, field, arg, since string
}{
	{"RegisterConnectorInput", "playbook_compatible", "", "5.11.0"},
	{"Mutation", "pingConnector", "connectorInfo", "6.2.12"},
	{"Mutation", "stixBundlePush", "", "6.3.0"},
	{"RegisterConnectorInput", "listen_callback_uri", "", "6.5.7"},
	{"RegisterConnectorInput", "auto_update", "", "6.8.9"},
	{"RegisterConnectorInput", "enrichment_resolution", "", "6.8.9"},
	// The 6.8.x schema has no config.s3 (§3.2, GQL); the shared 6.9.17
	// schema has it. 6.9.0 as its first version is an assumption.
	{"ConnectorConfig", "s3", "", "6.9.0"},
}

// loadSchema reads a GraphQL SDL file and removes the protocol features
// newer than version.
func loadSchema(path, version string) (*ast.Schema, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read schema: %w", err)
	}
	s, gerr := gqlparser.LoadSchema(&ast.Source{Name: filepath.Base(path), Input: string(raw)})
	if gerr != nil {
		return nil, fmt.Errorf("load schema %s: %w", path, gerr)
	}
	v, err := parseVersion(version)
	if err != nil {
		return nil, err
	}
	for _, f := range protocolFeatures {
		since, _ := parseVersion(f.since)
		if compareVersions(v, since) >= 0 {
			continue
		}
		def := s.Types[f.typ]
		if def == nil {
			continue
		}
		if f.arg == "" {
			def.Fields = slices.DeleteFunc(def.Fields, func(fd *ast.FieldDefinition) bool { return fd.Name == f.field })
			continue
		}
		if fd := def.Fields.ForName(f.field); fd != nil {
			fd.Arguments = slices.DeleteFunc(fd.Arguments, func(a *ast.ArgumentDefinition) bool { return a.Name == f.arg })
		}
	}
	return s, nil
}

// parseVersion reads "6.8.10" (or a calendar version such as 7.260817.0);
// anything after the numbers (-rc1) is ignored.
func parseVersion(s string) ([]int, error) {
	parts := strings.Split(s, ".")
	out := make([]int, 0, len(parts))
	for i, part := range parts {
		digits := part
		if j := strings.IndexFunc(part, func(r rune) bool { return r < '0' || r > '9' }); j >= 0 {
			if i < len(parts)-1 || j == 0 {
				return nil, fmt.Errorf("invalid version %q", s)
			}
			digits = part[:j]
		}
		n, err := strconv.Atoi(digits)
		if err != nil {
			return nil, fmt.Errorf("invalid version %q", s)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("empty version")
	}
	return out, nil
}

func compareVersions(a, b []int) int {
	for i := range max(len(a), len(b)) {
		var x, y int
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// jsonObject is a decoded JSON object that remembers its key order, so that
// error messages print input values as graphql-js does.
type jsonObject struct {
	keys []string
	vals map[string]any
}

// decodeOrdered decodes JSON into nil, bool, json.Number, string, []any and
// *jsonObject.
func decodeOrdered(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("trailing data after JSON value")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			obj := &jsonObject{vals: map[string]any{}}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, _ := kt.(string)
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				if _, dup := obj.vals[k]; !dup {
					obj.keys = append(obj.keys, k)
				}
				obj.vals[k] = v
			}
			_, err := dec.Token()
			return obj, err
		case '[':
			list := []any{}
			for dec.More() {
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				list = append(list, v)
			}
			_, err := dec.Token()
			return list, err
		}
		return nil, fmt.Errorf("unexpected %v", t)
	default:
		return t, nil
	}
}

// plain turns an ordered value into map[string]any / []any / string /
// bool / float64 / int64 / nil.
func plain(v any) any {
	switch x := v.(type) {
	case *jsonObject:
		m := make(map[string]any, len(x.keys))
		for _, k := range x.keys {
			m[k] = plain(x.vals[k])
		}
		return m
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = plain(e)
		}
		return out
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	}
	return v
}

// inspect prints a value as graphql-js's inspect does in error messages:
// strings quoted, objects as { key: value }, values nested two levels deep
// as [Object] / [Array], at most 10 list items.
func inspect(v any) string { return inspectDepth(v, 0) }

func inspectDepth(v any, depth int) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		b, _ := json.Marshal(x)
		return string(b)
	case bool:
		return strconv.FormatBool(x)
	case json.Number:
		if f, err := x.Float64(); err == nil {
			return jsNumber(f)
		}
		return x.String()
	case float64:
		return jsNumber(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case *jsonObject:
		if len(x.keys) == 0 {
			return "{}"
		}
		if depth >= 2 {
			return "[Object]"
		}
		parts := make([]string, len(x.keys))
		for i, k := range x.keys {
			parts[i] = k + ": " + inspectDepth(x.vals[k], depth+1)
		}
		return "{ " + strings.Join(parts, ", ") + " }"
	case []any:
		if len(x) == 0 {
			return "[]"
		}
		if depth >= 2 {
			return "[Array]"
		}
		n := min(len(x), 10)
		parts := make([]string, 0, n+1)
		for _, e := range x[:n] {
			parts = append(parts, inspectDepth(e, depth+1))
		}
		if rest := len(x) - n; rest == 1 {
			parts = append(parts, "... 1 more item")
		} else if rest > 1 {
			parts = append(parts, fmt.Sprintf("... %d more items", rest))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return fmt.Sprint(v)
}

func jsNumber(f float64) string {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return fmt.Sprint(f)
	}
	if f == math.Trunc(f) && math.Abs(f) < 1e21 {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// coerceVariables checks and coerces the request variables of op against
// the schema with the messages of graphql-js getVariableValues, which is
// what Apollo Server answers with code BAD_USER_INPUT.
func coerceVariables(schema *ast.Schema, op *ast.OperationDefinition, raw any) (map[string]any, []respError) {
	inputs, _ := raw.(*jsonObject)
	if inputs == nil {
		inputs = &jsonObject{vals: map[string]any{}}
	}
	out := map[string]any{}
	var errs []respError
	for _, vd := range op.VariableDefinitions {
		name := vd.Variable
		typeStr := vd.Type.String()
		loc := []location{{vd.Position.Line, vd.Position.Column}}
		fail := func(msg string) {
			errs = append(errs, respError{Message: msg, Locations: loc, Extensions: map[string]any{"code": codeBadUserInput}})
		}
		val, present := inputs.vals[name]
		if !present {
			if vd.DefaultValue != nil {
				if v, err := vd.DefaultValue.Value(nil); err == nil {
					out[name] = v
				}
			} else if vd.Type.NonNull {
				fail(fmt.Sprintf("Variable \"$%s\" of required type \"%s\" was not provided.", name, typeStr))
			}
			continue
		}
		if val == nil && vd.Type.NonNull {
			fail(fmt.Sprintf("Variable \"$%s\" of non-null type \"%s\" must not be null.", name, typeStr))
			continue
		}
		c := coercer{schema: schema, onError: func(path []any, invalid any, msg string) {
			prefix := fmt.Sprintf("Variable \"$%s\" got invalid value %s", name, inspect(invalid))
			if len(path) > 0 {
				prefix += fmt.Sprintf(" at \"%s%s\"", name, printPath(path))
			}
			fail(prefix + "; " + msg)
		}}
		out[name] = c.coerce(val, vd.Type, nil)
	}
	return out, errs
}

func printPath(path []any) string {
	var b strings.Builder
	for _, p := range path {
		if i, ok := p.(int); ok {
			fmt.Fprintf(&b, "[%d]", i)
		} else {
			fmt.Fprintf(&b, ".%v", p)
		}
	}
	return b.String()
}

type coercer struct {
	schema  *ast.Schema
	onError func(path []any, invalid any, msg string)
}

// coerce is graphql-js coerceInputValue: it reports every problem and
// returns the plain coerced value.
func (c coercer) coerce(v any, typ *ast.Type, path []any) any {
	if typ.NonNull {
		if v == nil {
			c.onError(path, v, fmt.Sprintf("Expected non-nullable type \"%s\" not to be null.", typ.String()))
			return nil
		}
		inner := *typ
		inner.NonNull = false
		return c.coerce(v, &inner, path)
	}
	if v == nil {
		return nil
	}
	if typ.Elem != nil {
		if list, ok := v.([]any); ok {
			out := make([]any, len(list))
			for i, e := range list {
				out[i] = c.coerce(e, typ.Elem, append(slices.Clone(path), i))
			}
			return out
		}
		return []any{c.coerce(v, typ.Elem, path)}
	}
	def := c.schema.Types[typ.NamedType]
	if def == nil {
		return plain(v)
	}
	switch def.Kind {
	case ast.InputObject:
		obj, ok := v.(*jsonObject)
		if !ok {
			c.onError(path, v, fmt.Sprintf("Expected type \"%s\" to be an object.", def.Name))
			return nil
		}
		out := map[string]any{}
		for _, fd := range def.Fields {
			fv, present := obj.vals[fd.Name]
			if !present {
				if fd.DefaultValue != nil {
					if dv, err := fd.DefaultValue.Value(nil); err == nil {
						out[fd.Name] = dv
					}
				} else if fd.Type.NonNull {
					c.onError(path, v, fmt.Sprintf("Field \"%s\" of required type \"%s\" was not provided.", fd.Name, fd.Type.String()))
				}
				continue
			}
			out[fd.Name] = c.coerce(fv, fd.Type, append(slices.Clone(path), fd.Name))
		}
		for _, k := range obj.keys {
			if def.Fields.ForName(k) == nil {
				c.onError(path, v, fmt.Sprintf("Field \"%s\" is not defined by type \"%s\".", k, def.Name))
			}
		}
		return out
	case ast.Enum:
		s, ok := v.(string)
		if !ok {
			c.onError(path, v, fmt.Sprintf("Enum \"%s\" cannot represent non-string value: %s.", def.Name, inspect(v)))
			return nil
		}
		if def.EnumValues.ForName(s) == nil {
			c.onError(path, v, fmt.Sprintf("Value \"%s\" does not exist in \"%s\" enum.", s, def.Name))
			return nil
		}
		return s
	case ast.Scalar:
		out, msg := coerceScalar(def.Name, v)
		if msg != "" {
			c.onError(path, v, msg)
			return nil
		}
		return out
	}
	return plain(v)
}

// coerceScalar is the parseValue of the built-in scalars; custom scalars
// (DateTime, StixId, …) accept any value.
func coerceScalar(name string, v any) (any, string) {
	switch name {
	case "String":
		if s, ok := v.(string); ok {
			return s, ""
		}
		return nil, "String cannot represent a non string value: " + inspect(v)
	case "Boolean":
		if b, ok := v.(bool); ok {
			return b, ""
		}
		return nil, "Boolean cannot represent a non boolean value: " + inspect(v)
	case "Int":
		n, ok := v.(json.Number)
		if !ok {
			return nil, "Int cannot represent non-integer value: " + inspect(v)
		}
		f, err := n.Float64()
		if err != nil || f != math.Trunc(f) {
			return nil, "Int cannot represent non-integer value: " + inspect(v)
		}
		if f > math.MaxInt32 || f < math.MinInt32 {
			return nil, "Int cannot represent non 32-bit signed integer value: " + inspect(v)
		}
		return int64(f), ""
	case "Float":
		n, ok := v.(json.Number)
		if !ok {
			return nil, "Float cannot represent non numeric value: " + inspect(v)
		}
		f, err := n.Float64()
		if err != nil {
			return nil, "Float cannot represent non numeric value: " + inspect(v)
		}
		return f, ""
	case "ID":
		switch x := v.(type) {
		case string:
			return x, ""
		case json.Number:
			if i, err := x.Int64(); err == nil {
				return strconv.FormatInt(i, 10), ""
			}
		}
		return nil, "ID cannot represent value: " + inspect(v)
	}
	return plain(v), ""
}
