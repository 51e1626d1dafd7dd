package opencti

import (
	"fmt"
	"time"

	"github.com/vektah/gqlparser/v2/ast"
)

// rootResolver resolves a root field.
type rootResolver func(x *execution, args map[string]any) (any, error)

// rootFields are the root fields the double implements.
func rootFields(op ast.Operation) map[string]rootResolver {
	if op == ast.Mutation {
		return map[string]rootResolver{
			"registerConnector":     (*execution).registerConnector,
			"pingConnector":         (*execution).pingConnector,
			"resetStateConnector":   (*execution).resetStateConnector,
			"deleteConnector":       (*execution).deleteConnector,
			"workAdd":               (*execution).workAdd,
			"workEdit":              (*execution).workEdit,
			"workDelete":            (*execution).workDelete,
			"stixBundlePush":        (*execution).stixBundlePush,
			"stixCoreObjectEdit":    (*execution).stixCoreObjectEdit,
			"playbookStepExecution": (*execution).playbookStepExecution,
		}
	}
	return map[string]rootResolver{
		"about":               (*execution).about,
		"connector":           (*execution).connector,
		"connectors":          (*execution).connectors,
		"connectorsForWorker": (*execution).connectors,
		"work":                (*execution).work,
		"isWorkAlive":         (*execution).isWorkAlive,
		"stixCoreObject":      (*execution).stixCoreObject,
		"stixCyberObservable": (*execution).stixCyberObservable,
		"indicator":           (*execution).indicator,
		"markingDefinition":   (*execution).markingDefinition,
	}
}

// rootObject is the Query or Mutation object. Every root field needs an
// authenticated user, as the platform's @auth directives do.
func (p *Platform) rootObject(x *execution, op ast.Operation) gqlObject {
	typename := "Query"
	if op == ast.Mutation {
		typename = "Mutation"
	}
	obj := gqlObject{typename: typename, fields: map[string]any{}}
	for name, r := range rootFields(op) {
		obj.fields[name] = fieldFunc(func(args map[string]any) (any, error) {
			if x.userID == "" {
				return nil, authRequired()
			}
			return r(x, args)
		})
	}
	// Fields the schema has but the double does not implement.
	for _, sel := range x.doc.Operations {
		for _, s := range sel.SelectionSet {
			f, ok := s.(*ast.Field)
			if !ok || f.Name == "__typename" {
				continue
			}
			if _, ok := obj.fields[f.Name]; !ok {
				name := f.Name
				obj.fields[name] = fieldFunc(func(map[string]any) (any, error) {
					return nil, unsupportedError(fmt.Sprintf("%s.%s is not implemented by the OpenCTI double", typename, name), nil)
				})
			}
		}
	}
	return obj
}

// Argument readers. Without a schema arguments are not coerced, so they
// tolerate other JSON types.

func argString(args map[string]any, k string) (string, bool) {
	switch v := args[k].(type) {
	case string:
		return v, true
	case int64:
		return fmt.Sprint(v), true
	case float64:
		return fmt.Sprint(v), true
	}
	return "", false
}

func argBool(args map[string]any, k string) (bool, bool) {
	b, ok := args[k].(bool)
	return b, ok
}

func argInt(args map[string]any, k string) (int, bool) {
	n, ok := number(args[k])
	return int(n), ok
}

func argStrings(args map[string]any, k string) ([]string, bool) {
	switch v := args[k].(type) {
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out, true
	case string:
		return []string{v}, true
	}
	return nil, false
}

func optBool(args map[string]any, k string) *bool {
	if b, ok := argBool(args, k); ok {
		return &b
	}
	return nil
}

func optString(args map[string]any, k string) *string {
	if s, ok := argString(args, k); ok {
		return &s
	}
	return nil
}

func dateTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return formatTimestamp(t)
}

// --- about

func (x *execution) about(map[string]any) (any, error) {
	return gqlObject{typename: "AppInfo", fields: map[string]any{
		"version":      x.p.version,
		"dependencies": []any{},
	}}, nil
}
