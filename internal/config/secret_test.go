package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestSecretNeverPrintsItsValue(t *testing.T) {
	const value = "s3cr3t-value-4217"
	s := Secret(value)
	type holder struct {
		Name  string
		Token Secret
		List  []Secret
		Map   map[string]Secret
		Ptr   *Secret
	}
	h := holder{Name: "x", Token: s, List: []Secret{s}, Map: map[string]Secret{"k": s}, Ptr: &s}

	var outputs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%d", "%x", "%X", "%10s", "%T"} {
		outputs = append(outputs, fmt.Sprintf(verb, s), fmt.Sprintf(verb, h), fmt.Sprintf(verb, &h))
	}
	outputs = append(outputs, fmt.Sprint(s), fmt.Sprintln(h), s.String(), s.GoString())
	js, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	txt, _ := s.MarshalText()
	outputs = append(outputs, string(js), string(txt))
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	log.Info("x", "token", s, "holder", h)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("x", "token", s, "holder", h)
	outputs = append(outputs, logs.String())

	for _, out := range outputs {
		if strings.Contains(out, value) {
			t.Errorf("secret leaked in %q", out)
		}
	}
	if got := s.Reveal(); got != value {
		t.Errorf("Reveal() = %q, want %q", got, value)
	}
	if got := fmt.Sprintf("%v|%s|%#v|%q", s, s, s, s); got != `[redacted]|[redacted]|"[redacted]"|"[redacted]"` {
		t.Errorf("formatted = %s", got)
	}
	if got := string(js); !strings.Contains(got, `"Token":"[redacted]"`) {
		t.Errorf("JSON = %s", got)
	}
}

func TestEmptySecretPrintsEmpty(t *testing.T) {
	var s Secret
	js, _ := json.Marshal(s)
	txt, _ := s.MarshalText()
	got := []string{s.String(), fmt.Sprintf("%v", s), s.GoString(), string(js), string(txt), s.LogValue().String()}
	want := []string{"", "", `""`, `""`, "", ""}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("output %d = %q, want %q", i, got[i], want[i])
		}
	}
}

func TestDSNRedactsPasswords(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/usr/share/cb/integrations/virustotal/db/sqlite.db", "/usr/share/cb/integrations/virustotal/db/sqlite.db"},
		{"sqlite:///var/lib/vtc.db?_busy_timeout=1000", "sqlite:///var/lib/vtc.db?_busy_timeout=1000"},
		{"postgres://vtc:pa55word@db.example.com:5432/vtc?sslmode=require", "postgres://vtc:[redacted]@db.example.com:5432/vtc?sslmode=require"},
		{"postgresql://vtc@db/vtc", "postgresql://vtc@db/vtc"},
		{"postgres://db/vtc?user=vtc&password=pa55word", "postgres://db/vtc?user=vtc&password=[redacted]"},
		{"postgres://u:p%40ss@db/vtc", "postgres://u:[redacted]@db/vtc"},
	}
	for _, tt := range tests {
		d := DSN(tt.in)
		for _, got := range []string{d.String(), fmt.Sprintf("%v", d), fmt.Sprintf("%+v", struct{ D DSN }{d})} {
			if !strings.Contains(got, tt.want) {
				t.Errorf("DSN(%q) printed %q, want %q", tt.in, got, tt.want)
			}
		}
		if d.Reveal() != tt.in {
			t.Errorf("Reveal() = %q", d.Reveal())
		}
	}
}
