package carbonblack

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestValidateFeedJSONShape(t *testing.T) {
	base := func() map[string]any {
		var m map[string]any
		b, _ := json.Marshal(validTestFeed(t))
		_ = json.Unmarshal(b, &m)
		return m
	}
	report := func(m map[string]any, i int) map[string]any { return m["reports"].([]any)[i].(map[string]any) }
	for _, tc := range []struct {
		name   string
		doc    func() []byte
		report int
		field  string
	}{
		{"not JSON", func() []byte { return []byte("{") }, -1, ""},
		{"not an object", func() []byte { return []byte("[]") }, -1, ""},
		{"trailing data", func() []byte { b, _ := json.Marshal(base()); return append(b, "{}"...) }, -1, ""},
		{"unknown top-level field", func() []byte { m := base(); m["extra"] = 1; return mustMarshalJSON(m) }, -1, "extra"},
		{"missing feedinfo", func() []byte { m := base(); delete(m, "feedinfo"); return mustMarshalJSON(m) }, -1, "feedinfo"},
		{"missing reports", func() []byte { m := base(); delete(m, "reports"); return mustMarshalJSON(m) }, -1, "reports"},
		{"reports not a list", func() []byte { m := base(); m["reports"] = map[string]any{}; return mustMarshalJSON(m) }, -1, "reports"},
		{"feedinfo missing name", func() []byte { m := base(); delete(m["feedinfo"].(map[string]any), "name"); return mustMarshalJSON(m) }, -1, "feedinfo.name"},
		{"feedinfo unknown field", func() []byte { m := base(); m["feedinfo"].(map[string]any)["owner"] = "x"; return mustMarshalJSON(m) }, -1, "feedinfo.owner"},
		{"feedinfo version is a string", func() []byte { m := base(); m["feedinfo"].(map[string]any)["version"] = "2"; return mustMarshalJSON(m) }, -1, "feedinfo.version"},
		{"feedinfo summary is a number", func() []byte { m := base(); m["feedinfo"].(map[string]any)["summary"] = 1; return mustMarshalJSON(m) }, -1, "feedinfo.summary"},
		{"feedinfo empty category", func() []byte { m := base(); m["feedinfo"].(map[string]any)["category"] = ""; return mustMarshalJSON(m) }, -1, "feedinfo.category"},
		{"feedinfo empty icon", func() []byte { m := base(); m["feedinfo"].(map[string]any)["icon"] = ""; return mustMarshalJSON(m) }, -1, "feedinfo.icon"},
		{"report not an object", func() []byte { m := base(); m["reports"].([]any)[0] = "x"; return mustMarshalJSON(m) }, 0, ""},
		{"report missing title", func() []byte { m := base(); delete(report(m, 0), "title"); return mustMarshalJSON(m) }, 0, "title"},
		{"report unknown field", func() []byte { m := base(); report(m, 0)["dateAdded"] = "2014"; return mustMarshalJSON(m) }, 0, "dateAdded"},
		{"integer id", func() []byte { m := base(); report(m, 0)["id"] = 170227; return mustMarshalJSON(m) }, 0, "id"},
		{"score as a string", func() []byte { m := base(); report(m, 0)["score"] = "17"; return mustMarshalJSON(m) }, 0, "score"},
		{"fractional timestamp", func() []byte { m := base(); report(m, 0)["timestamp"] = 1.5; return mustMarshalJSON(m) }, 0, "timestamp"},
		{"iocs not an object", func() []byte { m := base(); report(m, 0)["iocs"] = []any{}; return mustMarshalJSON(m) }, 0, "iocs"},
		{"empty md5 list", func() []byte {
			m := base()
			report(m, 0)["iocs"] = map[string]any{"md5": []any{}}
			return mustMarshalJSON(m)
		}, 0, "iocs.md5"},
		{"md5 not a list", func() []byte {
			m := base()
			report(m, 0)["iocs"] = map[string]any{"md5": "0123456789abcdef0123456789abcdef"}
			return mustMarshalJSON(m)
		}, 0, "iocs.md5"},
		{"md5 entry not a string", func() []byte {
			m := base()
			report(m, 0)["iocs"] = map[string]any{"md5": []any{1}}
			return mustMarshalJSON(m)
		}, 0, "iocs.md5[0]"},
		{"unknown ioc type", func() []byte {
			m := base()
			report(m, 0)["iocs"] = map[string]any{"sha1": []any{"x"}}
			return mustMarshalJSON(m)
		}, 0, "iocs.sha1"},
		{"query unknown field", func() []byte {
			m := base()
			report(m, 1)["iocs"].(map[string]any)["query"].(map[string]any)["limit"] = 1
			return mustMarshalJSON(m)
		}, 1, "iocs.query.limit"},
		{"query missing index type", func() []byte {
			m := base()
			delete(report(m, 1)["iocs"].(map[string]any)["query"].(map[string]any), "index_type")
			return mustMarshalJSON(m)
		}, 1, "iocs.query.index_type"},
		{"tags not a list", func() []byte { m := base(); report(m, 1)["tags"] = "a,b"; return mustMarshalJSON(m) }, 1, "tags"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := ValidateFeedJSON(tc.doc())
			if len(errs) != 1 {
				t.Fatalf("got %d problems, want 1: %v", len(errs), errors.Join(errs...))
			}
			var fe *FeedError
			if !errors.As(errs[0], &fe) || fe.Report != tc.report || fe.Field != tc.field {
				t.Errorf("problem %#v, want report %d field %q", errs[0], tc.report, tc.field)
			}
		})
	}
	if errs := ValidateFeedJSON(mustMarshalJSON(base())); errs != nil {
		t.Errorf("base document: %v", errors.Join(errs...))
	}
}

func mustMarshalJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
