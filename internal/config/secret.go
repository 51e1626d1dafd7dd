package config

import (
	"github.com/vtconnector/vtconnector/internal/redact"

	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
)

const redacted = "[redacted]"

// Secret is a credential (API key, token, password). It prints as
// [redacted] through fmt (every verb, %#v included), log/slog, JSON and text
// marshalling; an empty Secret prints as the empty string so that "not set"
// stays visible. Reveal returns the value for the one place that sends it.
type Secret string

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

// String returns "[redacted]", or "" when the secret is empty.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString returns the redacted text as a Go string literal.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// Format prints the redacted text whatever the verb, so that %d or %x
// cannot reach the value either.
func (s Secret) Format(f fmt.State, verb rune) { formatRedacted(f, verb, s.String()) }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText implements encoding.TextMarshaler.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// MarshalJSON implements json.Marshaler.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// DSN is a database URL: a SQLite file path (or sqlite://PATH, file:PATH)
// or a postgres:// URL. It prints with any password replaced by
// [redacted], the rest left readable for diagnostics.
type DSN string

// Reveal returns the URL with its password, for opening the database.
func (d DSN) Reveal() string { return string(d) }

// String returns the URL with its password redacted.
func (d DSN) String() string { return redactDSN(string(d)) }

// GoString returns the redacted URL as a Go string literal.
func (d DSN) GoString() string { return strconv.Quote(d.String()) }

// Format prints the redacted URL whatever the verb.
func (d DSN) Format(f fmt.State, verb rune) { formatRedacted(f, verb, d.String()) }

// LogValue implements slog.LogValuer.
func (d DSN) LogValue() slog.Value { return slog.StringValue(d.String()) }

// MarshalText implements encoding.TextMarshaler.
func (d DSN) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// MarshalJSON implements json.Marshaler.
func (d DSN) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

func formatRedacted(f fmt.State, verb rune, s string) {
	switch {
	case verb == 'v' && f.Flag('#'), verb == 'q':
		_, _ = io.WriteString(f, strconv.Quote(s))
	default:
		_, _ = io.WriteString(f, s)
	}
}

// redactDSN hides the password of a URL's user information and the value
// of password-like query parameters.
func redactDSN(s string) string { return redact.DSN(s) }
