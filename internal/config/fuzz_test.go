package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fuzzSecret is a token no valid input contains by chance.
const fuzzSecret = "Fz7TOKENq9Xw"

// noSecret fails when the secret shows in an error or a warning.
func noSecret(t *testing.T, err error, warns []Warning) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), fuzzSecret) {
		t.Fatalf("the error shows the secret: %v", err)
	}
	for _, w := range warns {
		if strings.Contains(w.String(), fuzzSecret) {
			t.Fatalf("a warning shows the secret: %s", w)
		}
	}
}

// FuzzParseCarbonBlack: any connector.conf is read without a panic, the
// tokens never show in errors or warnings, and a configuration that loads
// dumps every key without its secrets.
func FuzzParseCarbonBlack(f *testing.F) {
	for _, seed := range []string{
		"listener_port=4000\nvirustotal_api_token=abc\n",
		"[bridge\nlistener_port=1\n",
		"carbonblack_server_token other-token\n",
		"rescan_window=-9223372036854775807S\n",
		"binary_filter_query=-(digsig_result:\"Signed\")\n",
		"database_url=postgres://u:p/w?x@db/x\n",
		"[DEFAULT]\nlog_file=-\n[bridge]\nfeed_password=x\n",
		"  continued\nkey\n",
		"virustotal_upload_file_types=pe,docx\nvirustotal_analysis_wait=NEVER\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		if strings.Contains(strings.ToLower(body), strings.ToLower(fuzzSecret)) {
			return // the secret typed in another key is no longer a secret
		}
		data := "[bridge]\ncarbonblack_server_url=https://cb.example\ncarbonblack_server_token=" + fuzzSecret +
			"\nvirustotal_api_token=" + fuzzSecret + "\n" + body
		c, warns, err := ParseCarbonBlack([]byte(data), "connector.conf")
		noSecret(t, err, warns)
		if err == nil {
			for _, s := range c.Redacted() {
				if strings.Contains(s.Value, fuzzSecret) {
					t.Fatalf("the dump shows the secret in %s", s.Key)
				}
			}
			if c.RescanWindow < 0 || c.AnalysisWait < time.Minute {
				t.Fatalf("accepted rescan_window %s / analysis wait %s", c.RescanWindow, c.AnalysisWait)
			}
		}
	})
}

// FuzzLoadOpenCTI: any config.yml and any values of the variables load
// without a panic and never show the tokens.
func FuzzLoadOpenCTI(f *testing.F) {
	for _, seed := range []struct{ yaml, scope, tlp string }{
		{"opencti:\n  url: http://x\n", "StixFile,Artifact", "TLP:AMBER"},
		{"virustotal:\n  max_tlp: TLP:RED\n  upload_mode: private\n", "", "tlp:clear"},
		{"connector: [1, 2", "Url", "x"},
		{"opencti:\n  token: other-token\n", "Indicator", "TLP:AMBER+STRICT"},
		{"vtconnector:\n  database_url: 'host=db password=x'\n", "", ""},
	} {
		f.Add(seed.yaml, seed.scope, seed.tlp)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, yaml, scope, tlp string) {
		if strings.Contains(strings.ToLower(yaml+scope+tlp), strings.ToLower(fuzzSecret)) {
			return // the secret typed in another setting is no longer a secret
		}
		path := filepath.Join(dir, "config.yml")
		if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		env := map[string]string{
			"OPENCTI_URL": "http://opencti:8080", "OPENCTI_TOKEN": fuzzSecret, "CONNECTOR_ID": "5d4e7a4b-0b1c-4a8e-9d7c-3f2a1b0c9e8d",
			"VIRUSTOTAL_TOKEN": fuzzSecret, "CONNECTOR_SCOPE": scope, "VIRUSTOTAL_MAX_TLP": tlp, "VIRUSTOTAL_UPLOAD_MAX_TLP": tlp,
		}
		c, warns, err := LoadOpenCTI(env, path)
		noSecret(t, err, warns)
		if err == nil {
			for _, s := range c.Redacted() {
				if strings.Contains(s.Value, fuzzSecret) {
					t.Fatalf("the dump shows the secret in %s", s.Key)
				}
			}
		}
	})
}

// FuzzRescanWindow: a window is positive or "never", never a negative or
// overflowed duration, and formatting it reads back the same.
func FuzzRescanWindow(f *testing.F) {
	for _, s := range []string{"12H", "NEVER", "90M", "-9223372036854775807S", "9223372036854775807W", "36h", "1Q", " 3 d ", "0S"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, _, err := parseRescanWindow(s)
		if err != nil {
			return
		}
		if d < 0 || strings.HasPrefix(strings.TrimSpace(s), "-") && d != 0 {
			t.Fatalf("parseRescanWindow(%q) = %s: a negative window was accepted", s, d)
		}
		back, _, err := parseRescanWindow(formatRescanWindow(d))
		if err != nil || back != d {
			t.Fatalf("%q -> %s -> %q -> %s (%v): no round trip", s, d, formatRescanWindow(d), back, err)
		}
		if w, err := parseAnalysisWait(s); err == nil && w < time.Minute {
			t.Fatalf("parseAnalysisWait(%q) = %s: below a minute", s, w)
		}
	})
}

// FuzzParseDSN: an accepted DSN prints without its password.
func FuzzParseDSN(f *testing.F) {
	for _, s := range []string{"postgres://u:" + fuzzSecret + "@db/x", "host=db password=" + fuzzSecret, "/var/lib/x.db", "sqlite://", "mysql://u:p@h/x", "file:x.db?mode=memory"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseDSN(s)
		if err != nil {
			if strings.Contains(err.Error(), fuzzSecret) && !strings.Contains(strings.SplitN(s, "://", 2)[0], fuzzSecret) {
				t.Fatalf("parseDSN(%q) error shows the secret: %v", s, err)
			}
			return
		}
		if i := strings.Index(s, fuzzSecret); i >= 0 && strings.HasPrefix(strings.ToLower(strings.TrimSpace(s)), "postgres") {
			before := s[:i]
			if strings.Contains(before, "://") && strings.Contains(before[strings.Index(before, "://")+3:], ":") && strings.Contains(s[i:], "@") &&
				!strings.ContainsAny(before[strings.Index(before, "://")+3:], "@") && strings.Contains(d.String(), fuzzSecret) {
				t.Fatalf("DSN %q prints as %q: the password shows", s, d.String())
			}
		}
	})
}
