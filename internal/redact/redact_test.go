package redact

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"
)

func TestDSNHidesPasswords(t *testing.T) {
	for _, tc := range []struct{ in, want, secret string }{
		{"postgres://vtc:s3cret@db:5432/vtc?sslmode=disable", "postgres://vtc:[redacted]@db:5432/vtc?sslmode=disable", "s3cret"},
		{"postgres://vtc:p/a?s#s@db/vtc", "postgres://vtc:[redacted]@db/vtc", "p/a?s#s"},
		{"postgres://vtc:p@ss@db/vtc", "postgres://vtc:[redacted]@db/vtc", "p@ss"},
		{"postgres://db/vtc?user=vtc&password=hunter22&sslmode=require", "postgres://db/vtc?user=vtc&password=[redacted]&sslmode=require", "hunter22"},
		{"host=db user=vtc password=hunter22 dbname=vtc", "host=db user=vtc password=[redacted] dbname=vtc", "hunter22"},
		{"host=db password='with space' dbname=vtc", "host=db password=[redacted] dbname=vtc", "with space"},
		{"amqps://guest:guest-pass@broker:5671/%2f", "amqps://guest:[redacted]@broker:5671/%2f", "guest-pass"},
		{"/var/lib/vtconnector/cb.db", "/var/lib/vtconnector/cb.db", ""},
		{"postgres://vtc@db/vtc", "postgres://vtc@db/vtc", ""},
	} {
		got := DSN(tc.in)
		if got != tc.want {
			t.Errorf("DSN(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if tc.secret != "" && strings.Contains(got, tc.secret) {
			t.Errorf("DSN(%q) shows the secret", tc.in)
		}
	}
}

func TestPasswordsFindsEveryForm(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"postgres://vtc:s3cret@db/vtc", []string{"s3cret"}},
		{"postgres://vtc:p%40ss@db/vtc", []string{"p%40ss", "p@ss"}},
		{"postgres://db/vtc?user=vtc&password=hunter22", []string{"hunter22"}},
		{"host=db password='with space'", []string{"with space"}},
		{"/var/lib/vtconnector/cb.db", nil},
		{"postgres://vtc@db/vtc", nil},
	} {
		if got := Passwords(tc.in); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("Passwords(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestErrorKeepsTheChain(t *testing.T) {
	base := fmt.Errorf("dial amqp://u:topsecret@host:5672/: %w", fs.ErrNotExist)
	err := Error(base, "k3y-value")
	if strings.Contains(err.Error(), "topsecret") || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Error = %q (Is %v)", err, errors.Is(err, fs.ErrNotExist))
	}
	if err := Error(errors.New("bad key k3y-value"), "k3y-value"); strings.Contains(err.Error(), "k3y-value") {
		t.Errorf("Secrets not removed: %q", err)
	}
	if Error(nil) != nil {
		t.Error("Error(nil) != nil")
	}
}

// FuzzDSN: whatever the DSN, the password of its user information and any
// password=… parameter never survive redaction, and redaction is stable.
func FuzzDSN(f *testing.F) {
	for _, s := range []string{
		"postgres://vtc:s3cret@db:5432/vtc?sslmode=disable", "postgres://vtc:p/a?s#s@db/vtc",
		"host=db password=hunter22", "sqlite:///tmp/x.db", "file:x.db?mode=memory", "postgres://db/x?password=abc",
		"amqp://guest:guest@localhost:5672/", "postgres://:@/", "",
	} {
		f.Add(s, "Zq9secretZq9")
	}
	f.Fuzz(func(t *testing.T, rest, pass string) {
		// A password that cannot be told from the text around it (found
		// in the rest, or inside the fixed parts) proves nothing.
		if len(pass) < 4 || strings.Contains(rest, pass) || strings.Contains("postgres://user:host=h password= "+Mark, pass) {
			return
		}
		keyword := strings.Map(func(r rune) rune {
			if strings.ContainsRune(" '\\&;\t\n\r\v\f", r) || r == 0x85 || r == 0xA0 {
				return 'x'
			}
			return r
		}, pass)
		// kept is the text that legitimately survives redaction: a
		// password found in it (such as "@" and the host) proves nothing.
		for _, tc := range []struct{ dsn, pass, kept string }{
			{"postgres://user:" + pass + "@" + rest, pass, "postgres://user:" + Mark + "@" + rest},
			{"host=h password=" + keyword + " " + rest, keyword, "host=h password=" + Mark + " " + rest},
		} {
			if strings.Contains(tc.kept, tc.pass) {
				continue
			}
			got := DSN(tc.dsn)
			if strings.Contains(got, tc.pass) {
				t.Fatalf("DSN(%q) = %q shows the password %q", tc.dsn, got, tc.pass)
			}
			if DSN(got) != got {
				t.Fatalf("redaction is not stable: %q -> %q -> %q", tc.dsn, got, DSN(got))
			}
		}
	})
}
