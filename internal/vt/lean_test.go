package vt

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// lookups are the four lookups Client and Lean both have.
type lookups interface {
	File(context.Context, string) (*Object, error)
	IPAddress(context.Context, string) (*Object, error)
	Domain(context.Context, string) (*Object, error)
	URLByID(context.Context, string) (*Object, error)
}

// TestLeanMatchesFullDecode: for every file, IP, domain and URL answer in
// testdata, the lean lookups give the same summary as the full decode,
// and Raw only when asked for.
func TestLeanMatchesFullDecode(t *testing.T) {
	samples := map[string]func(c *Client, l *Lean) (*Object, *Object, error){}
	dir := filepath.Join("testdata", "vt")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	body := map[string][]byte{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		var call func(ctx context.Context, c lookups) (*Object, error)
		name := e.Name()
		switch {
		case strings.HasPrefix(name, "file_"):
			call = func(ctx context.Context, c lookups) (*Object, error) {
				return c.File(ctx, strings.Repeat("a", 64))
			}
		case strings.HasPrefix(name, "ip_") && !strings.Contains(name, "resolutions"):
			call = func(ctx context.Context, c lookups) (*Object, error) {
				return c.IPAddress(ctx, "192.0.2.10")
			}
		case strings.HasPrefix(name, "domain_") && !strings.Contains(name, "resolutions"):
			call = func(ctx context.Context, c lookups) (*Object, error) {
				return c.Domain(ctx, "example.org")
			}
		case strings.HasPrefix(name, "url_"):
			call = func(ctx context.Context, c lookups) (*Object, error) {
				return c.URLByID(ctx, "aHR0cDovL2V4YW1wbGUuY29tLw")
			}
		default:
			continue
		}
		body[name] = b
		samples[name] = func(c *Client, l *Lean) (*Object, *Object, error) {
			full, err := call(t.Context(), c)
			if err != nil {
				return nil, nil, err
			}
			lean, err := call(t.Context(), l)
			return full, lean, err
		}
	}
	if len(samples) < 4 {
		t.Fatalf("only %d samples of lookups in %s", len(samples), dir)
	}
	for name, run := range samples {
		t.Run(name, func(t *testing.T) {
			srv := newServer(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(body[name]) })
			c := newTestClient(t, srv)
			for _, keepRaw := range []bool{false, true} {
				full, lean, err := run(c, c.Lean(keepRaw))
				if err != nil {
					t.Fatal(err)
				}
				want := &Object{Type: full.Type, ID: full.ID, Self: full.Self, Private: full.Private}
				fa, wa := &full.Attributes, &want.Attributes
				wa.LastAnalysisStats, wa.MD5, wa.SHA1, wa.SHA256, wa.MeaningfulName = fa.LastAnalysisStats, fa.MD5, fa.SHA1, fa.SHA256, fa.MeaningfulName
				if fa.PopularThreat != nil {
					wa.PopularThreat = &ThreatClassification{SuggestedThreatLabel: fa.PopularThreat.SuggestedThreatLabel}
				}
				if keepRaw {
					want.Raw = full.Raw
				}
				if diff := cmp.Diff(want, lean); diff != "" {
					t.Errorf("keepRaw=%t: lean object (-want +got):\n%s", keepRaw, diff)
				}
			}
		})
	}
}

// TestLeanHostileAnswers: answers that are not a report are transient
// errors, as with the full decode; bad identifiers are refused unsent.
func TestLeanHostileAnswers(t *testing.T) {
	for _, tc := range []struct{ name, body string }{
		{"not JSON", "<html>proxy error</html>"},
		{"truncated", `{"data": {"id": "x", "attributes": {`},
		{"no data", `{"meta": {}}`},
		{"null data", `{"data": null}`},
		{"data not an object", `{"data": "x"}`},
		{"no id", `{"data": {"type": "file", "attributes": {}}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(tc.body)) })
			for _, keepRaw := range []bool{false, true} {
				_, err := newTestClient(t, srv).Lean(keepRaw).File(t.Context(), strings.Repeat("b", 64))
				if !errors.Is(err, ErrTransient) {
					t.Errorf("keepRaw=%t: error %v, want ErrTransient", keepRaw, err)
				}
			}
		})
	}
	t.Run("wrong types are skipped", func(t *testing.T) {
		srv := newServer(t, func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(`{"data": {"type": "file", "id": "x", "attributes": {"md5": 5, "meaningful_name": "a.exe", "last_analysis_stats": {"malicious": "many", "harmless": 2}}}}`))
		})
		o, err := newTestClient(t, srv).Lean(false).File(t.Context(), strings.Repeat("b", 64))
		if err != nil {
			t.Fatal(err)
		}
		if o.Attributes.MeaningfulName != "a.exe" || o.Attributes.MD5 != "" {
			t.Errorf("attributes %+v", o.Attributes)
		}
	})
	t.Run("bad identifier", func(t *testing.T) {
		srv := newServer(t, func(w http.ResponseWriter, _ *http.Request) { t.Error("request sent") })
		l := newTestClient(t, srv).Lean(false)
		if _, err := l.File(t.Context(), "nothex"); !errors.Is(err, ErrBadRequest) {
			t.Errorf("File: %v", err)
		}
		if _, err := l.IPAddress(t.Context(), "300.1.1.1"); !errors.Is(err, ErrBadRequest) {
			t.Errorf("IPAddress: %v", err)
		}
		if _, err := l.URLByID(t.Context(), ""); !errors.Is(err, ErrBadRequest) {
			t.Errorf("URLByID: %v", err)
		}
	})
}
