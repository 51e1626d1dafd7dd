package config

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vtconnector/vtconnector/internal/redact"
)

// Warning is a configuration problem that does not stop the program: a
// deprecated, unknown or ignored key, or a risky but valid setting.
type Warning struct {
	// Key is the INI key, environment variable or YAML path concerned.
	Key string
	// Message is the complete text; it names the source and the key and
	// never contains a secret.
	Message string
}

func (w Warning) String() string { return w.Message }

// Option documents one configuration key, for docs/CONFIGURATION.md and
// its test. The loaders are driven by the same tables, so what is
// documented is what is read.
type Option struct {
	// INI is the connector.conf key (Carbon Black front).
	INI string
	// Env is the environment variable (OpenCTI front).
	Env string
	// YAML is the config.yml path (OpenCTI front), e.g. "virustotal.max_tlp".
	YAML string
	// EnvAliases are other variables read when Env is not set, in order:
	// the seed's unprefixed names (FILE_…), legacy names.
	EnvAliases []string
	// YAMLAliases are other config.yml paths read when YAML is not set.
	YAMLAliases []string
	// Default is the default as one would write it in the file or the
	// variable, or a description when it is computed (see Computed).
	// Empty means "unset".
	Default string
	// Computed is true when Default describes a value derived from other
	// settings or from the environment.
	Computed bool
	// Required options have no default; loading fails without them.
	Required bool
	// Secret options are never printed.
	Secret bool
	// Help says what the option does, in one or two sentences.
	Help string
}

// Setting is one line of a redacted configuration dump.
type Setting struct {
	// Key is the INI key (Carbon Black) or the environment variable (OpenCTI).
	Key string
	// Value is the effective value as text; secrets show as [redacted].
	Value string
	// Origin says where the value came from: "default", the file name, the
	// file name and YAML path, or "env NAME".
	Origin string
	// Status says how the OpenCTI front treats the setting compared with
	// pycti and the original connector (OpenCTI only).
	Status string
}

// field is one row of a front's option table: its documentation and how to
// read, compute and print it.
type field[T any] struct {
	Option
	// set parses the input and stores it in the config. Its error is the
	// problem only ("not an integer"); the loader adds the key and value.
	set func(c *T, in *input) error
	// get renders the effective value for Redacted; secrets redacted.
	get func(c *T) string
	// compute, when set, produces the default after every other option is
	// known (Option.Computed).
	compute func(c *T)
	// list accepts a YAML sequence as well as a comma-separated string.
	list bool
	// redact, when set, is applied to the value before messages quote it.
	redact func(string) string
}

// input is one value being read, with what messages need to name it.
type input struct {
	text   string
	list   []string // YAML sequence
	isList bool
	ref    string // how messages name the key: `connector.conf: rescan_window`, `VIRUSTOTAL_TOKEN`
	key    string // Warning.Key
	origin string // Setting.Origin
	secret bool
	redact func(string) string
	warns  *[]Warning
	// invalid, when set, is why the value cannot be read at all (a YAML
	// mapping where a value belongs).
	invalid string
}

// show names the key and, unless it is secret, quotes the value.
func (in *input) show() string {
	if in.secret {
		return in.ref
	}
	r := in.redact
	if r == nil {
		r = func(s string) string { return s }
	}
	if in.isList {
		l := make([]string, len(in.list))
		for i, s := range in.list {
			l[i] = r(s)
		}
		return fmt.Sprintf("%s %q", in.ref, l)
	}
	return fmt.Sprintf("%s %q", in.ref, r(in.text))
}

func (in *input) warn(msg string) {
	*in.warns = append(*in.warns, Warning{Key: in.key, Message: in.show() + ": " + msg})
}

// loader applies a field table to a config.
type loader[T any] struct {
	errs    []error
	warns   []Warning
	origins map[string]string // key → Setting.Origin
	bad     map[string]bool   // keys whose value was rejected
}

func newLoader[T any]() *loader[T] {
	return &loader[T]{origins: map[string]string{}, bad: map[string]bool{}}
}

func (l *loader[T]) errorf(format string, a ...any) {
	l.errs = append(l.errs, fmt.Errorf(format, a...))
}

func (l *loader[T]) warnf(key, format string, a ...any) {
	l.warns = append(l.warns, Warning{Key: key, Message: fmt.Sprintf(format, a...)})
}

// apply reads every field through lookup (nil = not given), applying
// defaults and reporting missing required keys with missing(f).
func (l *loader[T]) apply(c *T, fields []field[T], key func(*field[T]) string,
	lookup func(*field[T]) *input, missing func(*field[T]) string) {
	var computed []*field[T]
	for i := range fields {
		f := &fields[i]
		k := key(f)
		in := lookup(f)
		if in == nil {
			switch {
			case f.Required:
				l.errorf("%s: required", missing(f))
				l.bad[k] = true
			case f.compute != nil:
				computed = append(computed, f)
			case f.Default != "":
				var discard []Warning
				d := &input{text: f.Default, ref: k, key: k, secret: f.Secret, warns: &discard}
				if err := f.set(c, d); err != nil {
					// The tables are tested: a default that does not parse is a bug.
					panic(fmt.Sprintf("config: default of %s: %v", k, err))
				}
				l.origins[k] = "default"
			default:
				l.origins[k] = "default"
			}
			continue
		}
		in.secret = f.Secret
		in.redact = f.redact
		in.warns = &l.warns
		l.origins[k] = in.origin
		if in.invalid != "" {
			l.errs = append(l.errs, fmt.Errorf("%s: %s", in.ref, in.invalid))
			l.bad[k] = true
			continue
		}
		if in.isList && !f.list {
			l.errs = append(l.errs, fmt.Errorf("%s: must be a single value, not a list", in.show()))
			l.bad[k] = true
			continue
		}
		if err := f.set(c, in); err != nil {
			l.errs = append(l.errs, fmt.Errorf("%s: %w", in.show(), err))
			l.bad[k] = true
		}
	}
	for _, f := range computed {
		f.compute(c)
		l.origins[key(f)] = "default"
	}
}

// anyBad reports whether one of the keys was rejected, so that checks
// across keys do not pile up on a value already reported.
func (l *loader[T]) anyBad(keys ...string) bool {
	for _, k := range keys {
		if l.bad[k] {
			return true
		}
	}
	return false
}

func (l *loader[T]) err() error { return errors.Join(l.errs...) }

func redactedSettings[T any](c *T, fields []field[T], key func(*field[T]) string, origins map[string]string) []Setting {
	out := make([]Setting, 0, len(fields))
	for i := range fields {
		f := &fields[i]
		k := key(f)
		origin := origins[k]
		if origin == "" {
			origin = "default"
		}
		out = append(out, Setting{Key: k, Value: f.get(c), Origin: origin})
	}
	return out
}

// ---- value parsers: each returns the problem only, without the key ----

const boolWords = "true/false, yes/no, on/off or 1/0"

func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "yes", "true", "on":
		return true, nil
	case "0", "no", "false", "off":
		return false, nil
	}
	return false, errors.New("not a boolean (use " + boolWords + ")")
}

func parseInt(s string, lo, hi int64) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, errors.New("not an integer")
	}
	if n < lo || n > hi {
		return 0, rangeError(lo, hi)
	}
	return n, nil
}

// rangeError describes [lo, hi]; an upper bound of MaxInt32 or more is
// "no upper bound".
func rangeError(lo, hi int64) error {
	switch {
	case hi >= math.MaxInt32 && lo == 0:
		return errors.New("must not be negative")
	case hi >= math.MaxInt32:
		return fmt.Errorf("must be at least %d", lo)
	default:
		return fmt.Errorf("must be between %d and %d", lo, hi)
	}
}

// parseSeconds reads a whole number of seconds (the original's style) or a
// Go duration such as 90s or 2m.
func parseSeconds(s string, lo time.Duration) (time.Duration, error) {
	s = strings.TrimSpace(s)
	var d time.Duration
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n > math.MaxInt64/int64(time.Second) || n < math.MinInt64/int64(time.Second) {
			return 0, errors.New("too large")
		}
		d = time.Duration(n) * time.Second
	} else if d, err = time.ParseDuration(s); err != nil {
		return 0, errors.New("not a number of seconds or a Go duration like 90s")
	}
	if d < lo {
		if lo == 0 {
			return 0, errors.New("must not be negative")
		}
		return 0, fmt.Errorf("must be at least %s", lo)
	}
	return d, nil
}

// parseHTTPURL accepts an absolute http or https URL with a host and
// returns it without trailing slashes.
func parseHTTPURL(s string) (string, error) {
	s = strings.TrimSpace(s)
	u, err := url.Parse(s)
	if err != nil {
		return "", errors.New("not a URL")
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		if u.Opaque != "" {
			return "", errors.New("must start with http:// or https://")
		}
	case "":
		return "", errors.New("must start with http:// or https://")
	default:
		if u.Opaque != "" { // host:port without a scheme
			return "", errors.New("must start with http:// or https://")
		}
		return "", errors.New("scheme must be http or https")
	}
	if u.Host == "" || u.Hostname() == "" {
		return "", errors.New("URL has no host")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", errors.New("port must be between 1 and 65535")
		}
	}
	return strings.TrimRight(s, "/"), nil
}

// parseVirusTotalURL is parseHTTPURL that also maps an API v2 URL (the
// original Carbon Black example's https://www.virustotal.com/vtapi/v2/file/)
// to the v3 API of the same host, with a warning.
func parseVirusTotalURL(in *input) (string, error) {
	u, err := parseHTTPURL(in.text)
	if err != nil {
		return "", err
	}
	p, _ := url.Parse(u)
	if strings.HasPrefix(strings.ToLower(p.Path), "/vtapi/v2") {
		v3 := strings.ToLower(p.Scheme) + "://" + p.Host + "/api/v3"
		in.warn("a VirusTotal API v2 URL; vtconnector speaks API v3 and uses " + v3)
		return v3, nil
	}
	return u, nil
}

// parseHost accepts a host name or an IP address, without scheme, port or path.
func parseHost(s string) (string, error) {
	s = strings.TrimSpace(s)
	if ip := strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"); net.ParseIP(ip) != nil {
		return ip, nil
	}
	if s == "" || len(s) > 253 {
		return "", errors.New("must be a host name or IP address")
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_') {
			return "", errors.New("must be a host name or IP address (no scheme, port or path)")
		}
	}
	return s, nil
}

// parseLogLevel accepts debug, info, warn, warning and error, in any case.
func parseLogLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, errors.New("must be one of debug, info, warn, error")
}

func levelName(l slog.Level) string { return strings.ToLower(l.String()) }

// keywordDSN recognises a libpq keyword/value DSN ("host=db user=…"),
// which would otherwise be taken for an SQLite file name.
var keywordDSN = regexp.MustCompile(`^\s*(host|hostaddr|port|dbname|user|password|sslmode|service)\s*=`)

// parseDSN checks the form of a database URL; the store opens it.
func parseDSN(s string) (DSN, error) {
	s = strings.TrimSpace(s)
	lower := strings.ToLower(s)
	switch {
	case strings.HasPrefix(lower, "postgres://"), strings.HasPrefix(lower, "postgresql://"):
		if _, err := url.Parse(s); err != nil {
			return "", errors.New("not a valid postgres:// URL")
		}
	case strings.HasPrefix(lower, "sqlite://"):
		if len(s) == len("sqlite://") {
			return "", errors.New("empty SQLite path")
		}
	case strings.HasPrefix(lower, "file:"):
	case strings.Contains(s, "://"):
		scheme, _, _ := strings.Cut(s, "://")
		return "", fmt.Errorf("unsupported scheme %q: use a file path, sqlite://PATH, file:PATH or postgres://USER:PASSWORD@HOST/DB", redact.DSN(scheme))
	case keywordDSN.MatchString(s):
		return "", errors.New("a PostgreSQL key=value DSN (host=… password=…) is not supported: use postgres://USER:PASSWORD@HOST/DB")
	}
	return DSN(s), nil
}

func formatSeconds(d time.Duration) string { return d.String() }

func formatBool(b bool) string { return strconv.FormatBool(b) }

// suggest returns the known name closest to an unknown one, if close enough
// to be a typo.
func suggest(name string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := editDistance(name, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// ---- field constructors ----

func boolField[T any](o Option, p func(*T) *bool) field[T] {
	return field[T]{
		Option: o,
		set: func(c *T, in *input) error {
			b, err := parseBool(in.text)
			if err == nil {
				*p(c) = b
			}
			return err
		},
		get: func(c *T) string { return formatBool(*p(c)) },
	}
}

func intField[T any, N ~int | ~int64](o Option, lo, hi int64, p func(*T) *N) field[T] {
	return field[T]{
		Option: o,
		set: func(c *T, in *input) error {
			n, err := parseInt(in.text, lo, hi)
			if err == nil {
				*p(c) = N(n)
			}
			return err
		},
		get: func(c *T) string { return strconv.FormatInt(int64(*p(c)), 10) },
	}
}

// enumField reads one of values, after fold (e.g. strings.ToUpper).
func enumField[T any](o Option, values []string, fold func(string) string, p func(*T) *string) field[T] {
	return field[T]{
		Option: o,
		set: func(c *T, in *input) error {
			v := fold(strings.TrimSpace(in.text))
			if !slices.Contains(values, v) {
				return fmt.Errorf("must be one of %s", strings.Join(values, ", "))
			}
			*p(c) = v
			return nil
		},
		get: func(c *T) string { return *p(c) },
	}
}

func stringField[T any](o Option, p func(*T) *string) field[T] {
	return field[T]{
		Option: o,
		set: func(c *T, in *input) error {
			*p(c) = strings.TrimSpace(in.text)
			return nil
		},
		get: func(c *T) string { return *p(c) },
	}
}

func secretField[T any](o Option, p func(*T) *Secret) field[T] {
	o.Secret = true
	return field[T]{
		Option: o,
		set: func(c *T, in *input) error {
			*p(c) = Secret(strings.TrimSpace(in.text))
			return nil
		},
		get: func(c *T) string { return p(c).String() },
	}
}

// tokenField is secretField that also rejects the placeholder the
// original's sample configuration ships.
func tokenField[T any](o Option, placeholder string, p func(*T) *Secret) field[T] {
	f := secretField(o, p)
	f.set = func(c *T, in *input) error {
		v := strings.TrimSpace(in.text)
		if strings.EqualFold(v, placeholder) {
			return errors.New("still the sample configuration's placeholder " + placeholder)
		}
		*p(c) = Secret(v)
		return nil
	}
	return f
}

func secondsField[T any](o Option, lo time.Duration, p func(*T) *time.Duration) field[T] {
	return field[T]{
		Option: o,
		set: func(c *T, in *input) error {
			d, err := parseSeconds(in.text, lo)
			if err == nil {
				*p(c) = d
			}
			return err
		},
		get: func(c *T) string { return formatSeconds(*p(c)) },
	}
}

// urlField reads an http(s) URL; credentials in it (user:password@)
// never show in messages or dumps.
func urlField[T any](o Option, p func(*T) *string) field[T] {
	return field[T]{
		Option: o,
		redact: redactDSN,
		set: func(c *T, in *input) error {
			u, err := parseHTTPURL(in.text)
			if err == nil {
				*p(c) = u
			}
			return err
		},
		get: func(c *T) string { return redactDSN(*p(c)) },
	}
}

func vtURLField[T any](o Option, p func(*T) *string) field[T] {
	return field[T]{
		Option: o,
		redact: redactDSN,
		set: func(c *T, in *input) error {
			u, err := parseVirusTotalURL(in)
			if err == nil {
				*p(c) = u
			}
			return err
		},
		get: func(c *T) string { return redactDSN(*p(c)) },
	}
}

func logLevelField[T any](o Option, p func(*T) *slog.Level) field[T] {
	return field[T]{
		Option: o,
		set: func(c *T, in *input) error {
			l, err := parseLogLevel(in.text)
			if err == nil {
				*p(c) = l
			}
			return err
		},
		get: func(c *T) string { return levelName(*p(c)) },
	}
}

func dsnField[T any](o Option, p func(*T) *DSN) field[T] {
	return field[T]{
		Option: o,
		redact: redactDSN,
		set: func(c *T, in *input) error {
			d, err := parseDSN(in.text)
			if err == nil {
				*p(c) = d
			}
			return err
		},
		get: func(c *T) string { return p(c).String() },
	}
}

// isSet reports whether key was given (not defaulted) in origins.
func isSet(origins map[string]string, key string) bool {
	o, ok := origins[key]
	return ok && o != "default"
}
