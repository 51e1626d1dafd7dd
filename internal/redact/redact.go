// Package redact removes credentials from text that is about to be shown:
// database DSNs (URL and key=value forms), URLs with user information, and
// error messages that quote them. It is the one place that knows where
// passwords hide in a connection string, so that config dumps, store
// errors, broker errors and logs agree.
//
// It errs on the side of hiding: when a string cannot be read for sure,
// more is hidden, never less. It imports nothing of vtconnector's.
package redact

import (
	"net/url"
	"regexp"
	"strings"
)

// Mark replaces what was hidden.
const Mark = "[redacted]"

// keywordSecret matches a password given as key=value, in a libpq
// keyword DSN (password=… or password='…') or a URL query (&password=…).
var keywordSecret = regexp.MustCompile(`(?i)\b(password|pass|passwd|pwd|sslpassword|sslkey_password|token|apikey|api_key)(\s*=\s*)('(?:[^'\\]|\\.)*'?|[^\s&;]*)`)

// DSN hides the password of a database DSN or any URL: the user
// information's password (whatever characters it holds: '/', '?', '#' and
// '@' included) and password-like key=value parameters. The rest stays
// readable for diagnostics.
func DSN(s string) string {
	if scheme, after, ok := strings.Cut(s, "://"); ok {
		// The user information ends at the last '@'; a password may hold
		// any character, so everything up to there after the first ':'
		// is hidden (an '@' later in the query hides more, never less).
		if at := strings.LastIndexByte(after, '@'); at >= 0 {
			userinfo, rest := after[:at], after[at:]
			if user, _, hasPass := strings.Cut(userinfo, ":"); hasPass {
				userinfo = user + ":" + Mark
			}
			after = userinfo + rest
		}
		s = scheme + "://" + after
	}
	return keywordSecret.ReplaceAllString(s, "${1}${2}"+Mark)
}

// Passwords returns the passwords a DSN or URL holds, as written and
// unescaped, for Secrets: a driver's error may quote one without the
// rest of the DSN.
func Passwords(dsn string) []string {
	var out []string
	add := func(p string) {
		if p == "" {
			return
		}
		out = append(out, p)
		if u, err := url.QueryUnescape(p); err == nil && u != p {
			out = append(out, u)
		}
	}
	if _, after, ok := strings.Cut(dsn, "://"); ok {
		if at := strings.LastIndexByte(after, '@'); at >= 0 {
			if _, pass, ok := strings.Cut(after[:at], ":"); ok {
				add(pass)
			}
		}
	}
	for _, m := range keywordSecret.FindAllStringSubmatch(dsn, -1) {
		add(strings.Trim(m[3], "'"))
	}
	return out
}

// Secrets removes each non-empty secret from s, e.g. from an error
// message a library built around a URL or a key it was given.
func Secrets(s string, secrets ...string) string {
	for _, sec := range secrets {
		if len(sec) >= 3 {
			s = strings.ReplaceAll(s, sec, Mark)
		}
	}
	return s
}

// Error is err with its message passed through DSN and Secrets; it keeps
// err for errors.Is and errors.As.
func Error(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := Secrets(DSN(err.Error()), secrets...)
	if msg == err.Error() {
		return err
	}
	return &redacted{msg: msg, err: err}
}

type redacted struct {
	msg string
	err error
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }
