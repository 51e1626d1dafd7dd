package opencti

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"
)

// Apollo Server error codes.
const (
	codeParseFailed      = "GRAPHQL_PARSE_FAILED"
	codeValidationFailed = "GRAPHQL_VALIDATION_FAILED"
	codeBadUserInput     = "BAD_USER_INPUT"
	codeBadRequest       = "BAD_REQUEST"
	codeOperation        = "OPERATION_RESOLUTION_FAILURE"
	codeInternal         = "INTERNAL_SERVER_ERROR"
)

const maxBodyBytes = 64 << 20

// RecordedDocument is one GraphQL request as the platform received it.
type RecordedDocument struct {
	Time time.Time
	// Name is the operation name: the request's operationName, else the
	// name in the document.
	Name string
	// Operation is "query" or "mutation", "" when the document did not
	// parse.
	Operation string
	// Fields are the root fields of the operation, in document order.
	Fields []string
	// Query and Variables are the request's, verbatim.
	Query     string
	Variables json.RawMessage
	// ValidationErrors are the messages the request was rejected with
	// before execution: parse, validation and variable errors.
	ValidationErrors []string
	// Errors are the messages of every error of the answer, validation and
	// execution alike.
	Errors []string
	// UserID is the authenticated user, "" for a missing or unknown token.
	UserID string
	// UserAgent, ApplicantID (opencti-applicant-id), DraftID
	// (opencti-draft-id) and WorkID (opencti-work-id) are request headers
	// pycti sets.
	UserAgent   string
	ApplicantID string
	DraftID     string
	WorkID      string
}

// ServeHTTP serves POST /graphql and GET /storage/get/<file id>.
func (p *Platform) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/graphql" || r.URL.Path == "/graphql/":
		p.serveGraphQL(w, r)
	case strings.HasPrefix(r.URL.Path, "/storage/get/"):
		p.serveStorage(w, r)
	default:
		http.NotFound(w, r)
	}
}

// authenticate returns the user of the request's bearer token.
func (p *Platform) authenticate(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "bearer") || token == "" {
		return "", false
	}
	if p.users == nil {
		return userIDForToken(token), true
	}
	id, ok := p.users[token]
	return id, ok
}

type location struct {
	Line   int `json:"line"`
	Column int `json:"column"`
}

// respError is a GraphQL error as Apollo Server formats it.
type respError struct {
	Message    string         `json:"message"`
	Locations  []location     `json:"locations,omitempty"`
	Path       []any          `json:"path,omitempty"`
	Extensions map[string]any `json:"extensions,omitempty"`
}

// apiError is an error a resolver raises: the platform's errors.ts errors,
// GraphQLError(message, {extensions: {code, data}}).
type apiError struct {
	message string
	code    string
	data    map[string]any
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func newAPIError(code, message string, httpStatus int, genre string, data map[string]any) *apiError {
	d := map[string]any{"http_status": httpStatus}
	if genre != "" {
		d["genre"] = genre
	}
	for k, v := range data {
		d[k] = v
	}
	return &apiError{message: message, code: code, data: d}
}

func authRequired() *apiError {
	return newAPIError("AUTH_REQUIRED", "You must be logged in to do this.", 401, "TECHNICAL", nil)
}

func functionalError(reason string, data map[string]any) *apiError {
	return newAPIError("FUNCTIONAL_ERROR", reason, 400, "BUSINESS", data)
}

func unsupportedError(reason string, data map[string]any) *apiError {
	return newAPIError("UNSUPPORTED_ERROR", reason, 500, "BUSINESS", data)
}

func workNotAlive() *apiError {
	return newAPIError("WORK_NOT_ALIVE", "Work is no longer alive, no request can be done within the context of this work", 400, "BUSINESS", nil)
}

func unknownError(reason string) *apiError {
	return newAPIError("UNKNOWN_ERROR", reason, 500, "TECHNICAL", nil)
}

type graphQLRequest struct {
	Query         string          `json:"query"`
	OperationName string          `json:"operationName"`
	Variables     json.RawMessage `json:"variables"`
}

func (p *Platform) serveGraphQL(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"errors": []respError{{
			Message: "the OpenCTI double only serves POST /graphql", Extensions: map[string]any{"code": codeBadRequest}}}})
		return
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/json" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"errors": []respError{{
			Message:    fmt.Sprintf("unsupported Content-Type %q: the OpenCTI double takes application/json (no multipart uploads)", mt),
			Extensions: map[string]any{"code": codeBadRequest}}}})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes))
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	badRequest := func(msg string) {
		// Apollo Server answers these 400 before its plugins run. They are
		// recorded too.
		userID, _ := p.authenticate(r)
		p.mu.Lock()
		p.docs = append(p.docs, RecordedDocument{Time: p.now(), UserID: userID, ValidationErrors: []string{msg}, Errors: []string{msg},
			UserAgent: r.Header.Get("User-Agent")})
		p.mu.Unlock()
		writeJSON(w, http.StatusBadRequest, map[string]any{"errors": []respError{{Message: msg, Extensions: map[string]any{"code": codeBadRequest}}}})
	}
	var req graphQLRequest
	if err := json.Unmarshal(body, &req); err != nil {
		badRequest("invalid JSON body: " + err.Error())
		return
	}
	if strings.TrimSpace(req.Query) == "" {
		badRequest("GraphQL operations must contain a non-empty `query` or a `persistedQuery` extension.")
		return
	}
	userID, _ := p.authenticate(r)
	rec := RecordedDocument{
		Time: p.now(), Name: req.OperationName, Query: req.Query, UserID: userID,
		UserAgent: r.Header.Get("User-Agent"), ApplicantID: r.Header.Get("opencti-applicant-id"),
		DraftID: r.Header.Get("opencti-draft-id"), WorkID: r.Header.Get("opencti-work-id"),
	}
	if len(req.Variables) > 0 && !bytes.Equal(bytes.TrimSpace(req.Variables), []byte("null")) {
		rec.Variables = req.Variables
	}
	_, token, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	ctx := context.WithValue(r.Context(), tokenKey{}, strings.TrimSpace(token))
	data, hasData, errs := p.runGraphQL(ctx, &req, userID, &rec)
	for _, e := range errs {
		rec.Errors = append(rec.Errors, e.Message)
	}
	p.mu.Lock()
	p.docs = append(p.docs, rec)
	p.mu.Unlock()
	if len(rec.ValidationErrors) > 0 {
		p.log.Warn("graphql document rejected", "operation", rec.Name, "fields", rec.Fields, "errors", rec.ValidationErrors)
	}

	var buf bytes.Buffer
	buf.WriteByte('{')
	if len(errs) > 0 {
		raw, _ := json.Marshal(errs)
		buf.WriteString(`"errors":`)
		buf.Write(raw)
	}
	if hasData {
		if len(errs) > 0 {
			buf.WriteByte(',')
		}
		raw, err := json.Marshal(data)
		if err != nil {
			raw = []byte("null")
		}
		buf.WriteString(`"data":`)
		buf.Write(raw)
	}
	buf.WriteByte('}')
	// The platform's httpResponsePlugin answers 200 whenever there are
	// errors (Apollo Server would use 400 for invalid documents).
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// runGraphQL parses, validates and executes a request. hasData is false
// when the request was rejected before execution.
func (p *Platform) runGraphQL(ctx context.Context, req *graphQLRequest, userID string, rec *RecordedDocument) (any, bool, []respError) {
	reject := func(errs []respError) (any, bool, []respError) {
		for _, e := range errs {
			rec.ValidationErrors = append(rec.ValidationErrors, e.Message)
		}
		return nil, false, errs
	}
	doc, perr := parser.ParseQuery(&ast.Source{Input: req.Query})
	if perr != nil {
		return reject([]respError{fromGQLError(perr, codeParseFailed, "Syntax Error: ")})
	}
	op, opErr := selectOperation(doc, req.OperationName)
	if op != nil {
		rec.Operation = string(op.Operation)
		if rec.Name == "" {
			rec.Name = op.Name
		}
		rec.Fields = rootFieldNames(doc, op)
	}
	if p.schema != nil {
		if errs := validator.ValidateWithRules(p.schema, doc, nil); len(errs) > 0 {
			out := make([]respError, 0, len(errs))
			for _, e := range errs {
				out = append(out, fromGQLError(e, codeValidationFailed, ""))
			}
			return reject(out)
		}
	} else if op != nil {
		if errs := p.checkRootFields(op); len(errs) > 0 {
			return reject(errs)
		}
	}
	if opErr != nil {
		return reject([]respError{{Message: opErr.Error(), Extensions: map[string]any{"code": codeOperation}}})
	}
	var rawVars any
	if len(req.Variables) > 0 {
		v, err := decodeOrdered(req.Variables)
		if err != nil {
			return reject([]respError{{Message: "invalid variables: " + err.Error(), Extensions: map[string]any{"code": codeBadRequest}}})
		}
		rawVars = v
	}
	var vars map[string]any
	if p.schema != nil {
		var errs []respError
		vars, errs = coerceVariables(p.schema, op, rawVars)
		if len(errs) > 0 {
			return reject(errs)
		}
	} else {
		vars, _ = plain(rawVars).(map[string]any)
	}
	token, _ := ctx.Value(tokenKey{}).(string)
	x := &execution{p: p, ctx: ctx, doc: doc, vars: vars, userID: userID, token: token}
	data := x.run(op)
	return data, true, x.errors
}

func selectOperation(doc *ast.QueryDocument, name string) (*ast.OperationDefinition, error) {
	if name != "" {
		if op := doc.Operations.ForName(name); op != nil {
			return op, nil
		}
		return nil, fmt.Errorf("Unknown operation named \"%s\".", name) //nolint:staticcheck // graphql-js message
	}
	switch len(doc.Operations) {
	case 0:
		return nil, errors.New("Must provide an operation.") //nolint:staticcheck // graphql-js message
	case 1:
		return doc.Operations[0], nil
	}
	return doc.Operations[0], errors.New("Must provide operation name if query contains multiple operations.") //nolint:staticcheck // graphql-js message
}

// rootFieldNames lists the root fields of op, following fragments.
func rootFieldNames(doc *ast.QueryDocument, op *ast.OperationDefinition) []string {
	var out []string
	seen := map[string]bool{}
	var walk func(ast.SelectionSet)
	walk = func(set ast.SelectionSet) {
		for _, sel := range set {
			switch s := sel.(type) {
			case *ast.Field:
				out = append(out, s.Name)
			case *ast.InlineFragment:
				walk(s.SelectionSet)
			case *ast.FragmentSpread:
				if !seen[s.Name] {
					seen[s.Name] = true
					if f := doc.Fragments.ForName(s.Name); f != nil {
						walk(f.SelectionSet)
					}
				}
			}
		}
	}
	walk(op.SelectionSet)
	return out
}

// checkRootFields rejects root fields the double does not know, when no
// schema validates documents.
func (p *Platform) checkRootFields(op *ast.OperationDefinition) []respError {
	table, typ := rootFields(op.Operation), "Query"
	if op.Operation == ast.Mutation {
		typ = "Mutation"
	} else if op.Operation == ast.Subscription {
		return []respError{{Message: "Subscriptions are not supported by the OpenCTI double.", Extensions: map[string]any{"code": codeValidationFailed}}}
	}
	var errs []respError
	for _, sel := range op.SelectionSet {
		f, ok := sel.(*ast.Field)
		if !ok || f.Name == "__typename" {
			continue
		}
		if _, known := table[f.Name]; !known {
			errs = append(errs, respError{
				Message:    fmt.Sprintf("Cannot query field \"%s\" on type \"%s\".", f.Name, typ),
				Locations:  []location{{f.Position.Line, f.Position.Column}},
				Extensions: map[string]any{"code": codeValidationFailed},
			})
		}
	}
	return errs
}

func fromGQLError(err error, code, prefix string) respError {
	var ge *gqlerror.Error
	if !errors.As(err, &ge) {
		return respError{Message: prefix + err.Error(), Extensions: map[string]any{"code": code}}
	}
	msg := prefix + ge.Message
	if prefix != "" && !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	e := respError{Message: msg, Extensions: map[string]any{"code": code}}
	for _, l := range ge.Locations {
		e.Locations = append(e.Locations, location{l.Line, l.Column})
	}
	return e
}

// gqlObject is an object value of the execution: its GraphQL type name and
// its fields, each a value or a fieldFunc.
type gqlObject struct {
	typename string
	fields   map[string]any
}

// fieldFunc resolves a field that takes arguments or has effects.
type fieldFunc func(args map[string]any) (any, error)

// orderedMap is a response object, fields in selection order.
type orderedMap struct {
	keys []string
	vals map[string]any
}

func (m *orderedMap) set(k string, v any) {
	if _, ok := m.vals[k]; !ok {
		m.keys = append(m.keys, k)
	}
	m.vals[k] = v
}

func (m *orderedMap) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range m.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		vb, err := json.Marshal(m.vals[k])
		if err != nil {
			return nil, err
		}
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

type execution struct {
	p      *Platform
	ctx    context.Context
	doc    *ast.QueryDocument
	vars   map[string]any
	userID string
	token  string // the caller's bearer token
	errors []respError
}

// tokenKey carries the caller's token to the execution.
type tokenKey struct{}

// run executes op: root fields one after the other, as graphql-js does
// for mutations (and, the resolvers being synchronous, for queries).
func (x *execution) run(op *ast.OperationDefinition) any {
	root := x.p.rootObject(x, op.Operation)
	m, bubbled := x.selectionSet(op.SelectionSet, root, nil)
	if bubbled {
		return nil
	}
	return m
}

type fieldGroup struct {
	key    string
	fields []*ast.Field
}

func (x *execution) selectionSet(set ast.SelectionSet, obj gqlObject, path []any) (*orderedMap, bool) {
	var groups []fieldGroup
	x.collect(set, obj.typename, &groups, map[string]int{}, map[string]bool{})
	out := &orderedMap{vals: map[string]any{}}
	for _, g := range groups {
		v, bubbled := x.field(obj, g, append(path[:len(path):len(path)], g.key))
		if bubbled {
			return nil, true
		}
		out.set(g.key, v)
	}
	return out, false
}

func (x *execution) collect(set ast.SelectionSet, typename string, groups *[]fieldGroup, index map[string]int, visited map[string]bool) {
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if !x.included(s.Directives) {
				continue
			}
			key := s.Alias
			if key == "" {
				key = s.Name
			}
			if i, ok := index[key]; ok {
				(*groups)[i].fields = append((*groups)[i].fields, s)
				continue
			}
			index[key] = len(*groups)
			*groups = append(*groups, fieldGroup{key: key, fields: []*ast.Field{s}})
		case *ast.InlineFragment:
			if !x.included(s.Directives) || (s.TypeCondition != "" && !x.applies(s.TypeCondition, typename)) {
				continue
			}
			x.collect(s.SelectionSet, typename, groups, index, visited)
		case *ast.FragmentSpread:
			if !x.included(s.Directives) || visited[s.Name] {
				continue
			}
			visited[s.Name] = true
			def := s.Definition
			if def == nil {
				def = x.doc.Fragments.ForName(s.Name)
			}
			if def == nil || !x.applies(def.TypeCondition, typename) {
				continue
			}
			x.collect(def.SelectionSet, typename, groups, index, visited)
		}
	}
}

func (x *execution) included(dirs ast.DirectiveList) bool {
	for _, d := range dirs {
		if d.Name != "skip" && d.Name != "include" {
			continue
		}
		arg := d.Arguments.ForName("if")
		if arg == nil {
			continue
		}
		v, _ := arg.Value.Value(x.vars)
		b, _ := v.(bool)
		if d.Name == "skip" && b || d.Name == "include" && !b {
			return false
		}
	}
	return true
}

// applies reports whether a fragment on cond applies to an object of type
// typename.
func (x *execution) applies(cond, typename string) bool {
	if cond == typename {
		return true
	}
	if s := x.p.schema; s != nil {
		def := s.Types[cond]
		if def == nil || (def.Kind != ast.Interface && def.Kind != ast.Union) {
			return false
		}
		for _, pt := range s.GetPossibleTypes(def) {
			if pt.Name == typename {
				return true
			}
		}
		return false
	}
	for _, i := range implements[typename] {
		if i == cond {
			return true
		}
	}
	return false
}

// implements lists the interfaces of the object types the double returns,
// for fragments when no schema is loaded.
var implements = map[string][]string{
	"StixFile":          {"BasicObject", "StixObject", "StixCoreObject", "StixCyberObservable", "HashedObservable"},
	"Artifact":          {"BasicObject", "StixObject", "StixCoreObject", "StixCyberObservable", "HashedObservable"},
	"IPv4Addr":          {"BasicObject", "StixObject", "StixCoreObject", "StixCyberObservable"},
	"IPv6Addr":          {"BasicObject", "StixObject", "StixCoreObject", "StixCyberObservable"},
	"DomainName":        {"BasicObject", "StixObject", "StixCoreObject", "StixCyberObservable"},
	"Hostname":          {"BasicObject", "StixObject", "StixCoreObject", "StixCyberObservable"},
	"Url":               {"BasicObject", "StixObject", "StixCoreObject", "StixCyberObservable"},
	"Indicator":         {"BasicObject", "StixObject", "StixCoreObject", "StixDomainObject"},
	"Connector":         {"BasicObject", "InternalObject"},
	"MarkingDefinition": {"BasicObject", "StixObject", "StixMetaObject"},
	"Label":             {"BasicObject", "StixObject", "StixMetaObject"},
}

// args evaluates a field's arguments: defaults, literals and variables
// (an absent variable leaves its argument absent).
func (x *execution) args(f *ast.Field) map[string]any {
	out := map[string]any{}
	if f.Definition != nil {
		for _, d := range f.Definition.Arguments {
			if d.DefaultValue != nil {
				if v, err := d.DefaultValue.Value(nil); err == nil {
					out[d.Name] = v
				}
			}
		}
	}
	for _, a := range f.Arguments {
		if a.Value.Kind == ast.Variable {
			v, ok := x.vars[a.Value.Raw]
			if !ok {
				continue
			}
			out[a.Name] = v
			continue
		}
		if v, err := a.Value.Value(x.vars); err == nil {
			out[a.Name] = v
		}
	}
	return out
}

func (x *execution) field(obj gqlObject, g fieldGroup, path []any) (any, bool) {
	f := g.fields[0]
	if f.Name == "__typename" {
		return obj.typename, false
	}
	var typ *ast.Type
	if f.Definition != nil {
		typ = f.Definition.Type
	}
	raw := obj.fields[f.Name]
	if fn, ok := raw.(fieldFunc); ok {
		v, err := fn(x.args(f))
		if err != nil {
			x.addError(err, f, path)
			return nil, typ != nil && typ.NonNull
		}
		raw = v
	}
	return x.complete(obj.typename, g, typ, raw, path)
}

// complete turns a resolved value into its response form, following the
// field's type for non-null propagation.
func (x *execution) complete(parent string, g fieldGroup, typ *ast.Type, v any, path []any) (any, bool) {
	if isNil(v) {
		if typ != nil && typ.NonNull {
			f := g.fields[0]
			x.errors = append(x.errors, respError{
				Message:    fmt.Sprintf("Cannot return null for non-nullable field %s.%s.", parent, f.Name),
				Locations:  []location{{f.Position.Line, f.Position.Column}},
				Path:       path,
				Extensions: map[string]any{"code": codeInternal},
			})
			return nil, true
		}
		return nil, false
	}
	switch val := v.(type) {
	case []any:
		var elem *ast.Type
		if typ != nil {
			elem = typ.Elem
		}
		out := make([]any, len(val))
		for i, item := range val {
			c, bubbled := x.complete(parent, g, elem, item, append(path[:len(path):len(path)], i))
			if bubbled {
				return nil, typ != nil && typ.NonNull
			}
			out[i] = c
		}
		return out, false
	case gqlObject:
		var set ast.SelectionSet
		for _, f := range g.fields {
			set = append(set, f.SelectionSet...)
		}
		m, bubbled := x.selectionSet(set, val, path)
		if bubbled {
			return nil, typ != nil && typ.NonNull
		}
		return m, false
	}
	return v, false
}

func isNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface:
		return rv.IsNil()
	}
	return false
}

func (x *execution) addError(err error, f *ast.Field, path []any) {
	e := respError{
		Locations: []location{{f.Position.Line, f.Position.Column}},
		Path:      path,
	}
	var ae *apiError
	if errors.As(err, &ae) {
		e.Message = ae.message
		e.Extensions = map[string]any{"code": ae.code, "data": ae.data}
	} else {
		e.Message = err.Error()
		e.Extensions = map[string]any{"code": codeInternal}
	}
	x.errors = append(x.errors, e)
}
