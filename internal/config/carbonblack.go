package config

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"gopkg.in/ini.v1"
)

// Defaults shared with the other fronts and the CLI.
const (
	// DefaultVirusTotalURL is the VirusTotal API v3 base URL.
	DefaultVirusTotalURL = "https://www.virustotal.com/api/v3"
	// DefaultCarbonBlackConfigPath is where the original connector read its
	// configuration.
	DefaultCarbonBlackConfigPath = "/etc/cb/integrations/virustotal/connector.conf"
	// DefaultCarbonBlackDatabase is vtconnector's SQLite file: in the
	// StateDirectory the shipped systemd unit gives the service user.
	DefaultCarbonBlackDatabase = "/var/lib/vtconnector/carbonblack.db"
	// DefaultCarbonBlackLegacyDatabase is the original connector's SQLite
	// file, imported once at the first start.
	DefaultCarbonBlackLegacyDatabase = "/usr/share/cb/integrations/virustotal/db/sqlite.db"
	// DefaultCarbonBlackLogFile is the original connector's log file.
	DefaultCarbonBlackLogFile = "/var/log/cb/integrations/virustotal/virustotal.log"
	// MaxUploadSize is the largest file VirusTotal accepts (through
	// /files/upload_url).
	MaxUploadSize = 650_000_000
)

// iniSection is the one section the original connector read.
const iniSection = "bridge"

// CarbonBlack is the configuration of the Carbon Black EDR front, read from
// connector.conf. Field comments give the INI key; CarbonBlackOptions
// gives defaults and meanings.
type CarbonBlack struct {
	// Source is the file the configuration was read from, for messages.
	Source string

	// Carbon Black server.
	ServerURL       string        // carbonblack_server_url, without trailing slash
	ServerToken     Secret        // carbonblack_server_token
	ServerSSLVerify bool          // carbonblack_server_sslverify
	ServerCAFile    string        // carbonblack_server_ca_file
	ServerTimeout   time.Duration // cb_timeout

	// Collection of binaries.
	BinaryFilterQuery           string        // binary_filter_query
	MaxBinarySize               int64         // max_binary_size, bytes
	PollPageSize                int           // poll_page_size
	SleepBetweenBatches         time.Duration // sleep_between_batches
	BackfillSleepBetweenBatches time.Duration // backfill_sleep_between_batches
	DaysRescan                  int           // days_rescan; 0 = never re-analyse

	// VirusTotal.
	VTAPIToken         Secret        // virustotal_api_token
	VTURL              string        // virustotal_url, v3 base URL without trailing slash
	VTTimeout          time.Duration // virustotal_timeout
	RequestsPerMinute  int           // virustotal_requests_per_minute; 0 = unlimited
	RequestsPerDay     int           // virustotal_requests_per_day; 0 = unlimited
	RequestsPerMonth   int           // virustotal_requests_per_month; 0 = unlimited
	QuickScanThreads   int           // virustotal_quick_scan_threads
	DeepScanThreads    int           // virustotal_deep_scan_threads
	SubmitFullBinaries bool          // submit_full_binaries
	RescanWindow       time.Duration // rescan_window; 0 = never
	UploadMode         string        // virustotal_upload_mode: public or private
	UploadFileTypes    []string      // virustotal_upload_file_types: pe, elf, macho, any
	UploadUnsignedOnly bool          // virustotal_upload_unsigned_only
	AnalysisWait       time.Duration // virustotal_analysis_wait

	// Feed server and feed registration on the Cb server.
	ListenerPort           int    // listener_port
	ListenerAddress        string // listener_address
	FeedHost               string // feed_host
	LinkHostURL            string // link_host_url; "" = FeedBaseURL()
	CertFile               string // cert_file
	KeyFile                string // key_file
	FeedUsername           string // feed_username
	FeedPassword           Secret // feed_password
	RegisterFeed           bool   // register_feed
	FeedValidateServerCert bool   // feed_validate_server_cert
	FeedUseProxy           bool   // feed_use_proxy
	FeedMinPositives       int    // feed_min_positives
	FeedIncludeSHA256      bool   // feed_include_sha256
	ListenerPublicPages    bool   // listener_public_pages

	// Operation.
	DatabaseURL    DSN        // database_url
	LegacyDatabase string     // legacy_database; "" = no import
	LogFile        string     // log_file; "-" = standard error
	LogLevel       slog.Level // log_level (debug=1 makes the default debug)
	Debug          bool       // debug

	// Read for compatibility with the original, and unused (with a warning).
	LegacyFeedDirectory string // legacy_feed_directory
	UseStreaming        bool   // use_streaming
	StreamingHost       string // carbonblack_streaming_host
	StreamingUsername   string // carbonblack_streaming_username
	StreamingPassword   Secret // carbonblack_streaming_password

	origins map[string]string
	logSet  bool
}

// FeedBaseURL is where the Carbon Black server reaches the feed server:
// https when cert_file and key_file are set, feed_host and listener_port.
func (c *CarbonBlack) FeedBaseURL() string {
	scheme := "http"
	if c.TLS() {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(c.FeedHost, strconv.Itoa(c.ListenerPort))
}

// FeedURL is the feed's URL as registered on the Carbon Black server.
func (c *CarbonBlack) FeedURL() string { return c.FeedBaseURL() + "/feed.json" }

// LinkBaseURL is the base of report links served by the feed server:
// link_host_url, or FeedBaseURL.
func (c *CarbonBlack) LinkBaseURL() string {
	if c.LinkHostURL != "" {
		return c.LinkHostURL
	}
	return c.FeedBaseURL()
}

// ListenAddr is the feed server's listen address, host:port.
func (c *CarbonBlack) ListenAddr() string {
	return net.JoinHostPort(c.ListenerAddress, strconv.Itoa(c.ListenerPort))
}

// TLS reports whether the feed server serves HTTPS (cert_file and key_file set).
func (c *CarbonBlack) TLS() bool { return c.CertFile != "" && c.KeyFile != "" }

// FeedAuth reports whether the feed server requires basic authentication.
func (c *CarbonBlack) FeedAuth() bool { return c.FeedUsername != "" }

// UploadsEnabled reports whether binaries unknown to VirusTotal are
// uploaded: submit_full_binaries and at least one deep-scan thread, the
// original's double opt-in.
func (c *CarbonBlack) UploadsEnabled() bool { return c.SubmitFullBinaries && c.DeepScanThreads > 0 }

// Redacted lists every option with its effective value and origin, secrets
// shown as [redacted], in the order of CarbonBlackOptions.
func (c *CarbonBlack) Redacted() []Setting {
	return redactedSettings(c, cbFields(), iniKey, c.origins)
}

// CarbonBlackOptions documents every connector.conf key, in file order.
func CarbonBlackOptions() []Option {
	fs := cbFields()
	out := make([]Option, len(fs))
	for i := range fs {
		out[i] = fs[i].Option
	}
	return out
}

// LoadCarbonBlack reads and validates a connector.conf. Every problem is
// reported at once (errors.Join), each naming the file and the key.
func LoadCarbonBlack(path string) (*CarbonBlack, []Warning, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	return ParseCarbonBlack(data, path)
}

// ParseCarbonBlack validates connector.conf content; source names it in
// messages. On error the configuration is nil; warnings are returned either way.
func ParseCarbonBlack(data []byte, source string) (*CarbonBlack, []Warning, error) {
	values, sectionWarnings, err := readINI(data, source)
	if err != nil {
		return nil, sectionWarnings, err
	}
	l := newLoader[CarbonBlack]()
	l.warns = append(l.warns, sectionWarnings...)
	c := &CarbonBlack{Source: source}
	fields := cbFields()
	used := map[string]bool{}
	l.apply(c, fields, iniKey,
		func(f *field[CarbonBlack]) *input {
			v, ok := values[f.INI]
			used[f.INI] = ok
			if !ok || v == "" {
				return nil
			}
			ref := source + ": " + f.INI
			return &input{text: v, ref: ref, key: f.INI, origin: source}
		},
		func(f *field[CarbonBlack]) string { return source + ": " + f.INI })

	known := make([]string, len(fields))
	for i := range fields {
		known[i] = fields[i].INI
	}
	var unknown []string
	for k := range values {
		if !used[k] {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		msg := fmt.Sprintf("%s: unknown key %q in [%s]; ignored", source, k, iniSection)
		if s := suggest(k, known); s != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", s)
		}
		l.warns = append(l.warns, Warning{Key: k, Message: msg})
	}

	c.check(l)
	c.origins = l.origins
	if err := l.err(); err != nil {
		return nil, l.warns, err
	}
	return c, l.warns, nil
}

// check validates what involves several keys.
func (c *CarbonBlack) check(l *loader[CarbonBlack]) {
	src := c.Source
	if (c.CertFile == "") != (c.KeyFile == "") && !l.anyBad("cert_file", "key_file") {
		set := "cert_file"
		if c.CertFile == "" {
			set = "key_file"
		}
		l.errorf("%s: cert_file and key_file: set both or neither (only %s is set)", src, set)
	}
	if (c.FeedUsername == "") != (c.FeedPassword == "") && !l.anyBad("feed_username", "feed_password") {
		set := "feed_username"
		if c.FeedUsername == "" {
			set = "feed_password"
		}
		l.errorf("%s: feed_username and feed_password: set both or neither (only %s is set)", src, set)
	}
	if c.QuickScanThreads == 0 && c.DeepScanThreads == 0 &&
		!l.anyBad("virustotal_quick_scan_threads", "virustotal_deep_scan_threads") {
		l.errorf("%s: virustotal_quick_scan_threads and virustotal_deep_scan_threads are both 0: nothing would be looked up", src)
	}
	if !l.anyBad("virustotal_deep_scan_threads", "submit_full_binaries") {
		switch {
		case c.DeepScanThreads > 0 && !c.SubmitFullBinaries:
			l.warnf("virustotal_deep_scan_threads",
				"%s: virustotal_deep_scan_threads=%d but submit_full_binaries is off: no binary will be uploaded to VirusTotal (as in the original)",
				src, c.DeepScanThreads)
		case c.UploadsEnabled():
			l.warnf("submit_full_binaries",
				"%s: submit_full_binaries=1 and virustotal_deep_scan_threads=%d: binaries unknown to VirusTotal will be uploaded, and VirusTotal's community can download them",
				src, c.DeepScanThreads)
		}
	}
	if ip := net.ParseIP(c.ListenerAddress); ip != nil && ip.IsUnspecified() && !c.FeedAuth() {
		l.warnf("listener_address",
			"%s: listener_address %s: the feed server accepts connections on every interface without authentication (the original default); use 127.0.0.1 when Carbon Black runs on this host, or set feed_username and feed_password",
			src, c.ListenerAddress)
	}
	if c.Debug && c.logSet && c.LogLevel != slog.LevelDebug {
		l.warnf("debug", "%s: debug=1 is overridden by log_level=%s", src, levelName(c.LogLevel))
	}
}

func iniKey(f *field[CarbonBlack]) string { return f.INI }

// readINI returns the [bridge] keys (lower-cased, values cleaned the way
// Python 2's RawConfigParser did) and warnings about other sections.
// badINILine finds the first line that is not blank, a comment, a
// [section] header, a continuation (indented) or key=value / key: value,
// and says what is wrong with it without quoting it; 0 when there is none.
func badINILine(data []byte) (int, string) {
	for i, line := range strings.Split(string(data), "\n") {
		t := strings.TrimRight(line, "\r")
		trimmed := strings.TrimSpace(t)
		switch {
		case trimmed == "", strings.HasPrefix(trimmed, "#"), strings.HasPrefix(trimmed, ";"),
			t != "" && (t[0] == ' ' || t[0] == '\t'):
		case strings.HasPrefix(trimmed, "["):
			if !strings.HasSuffix(trimmed, "]") {
				return i + 1, "a [section] header without its closing ]"
			}
		case !strings.ContainsAny(trimmed, "=:"):
			return i + 1, "neither a [section], a comment nor a key=value setting"
		}
	}
	return 0, ""
}

func readINI(data []byte, source string) (map[string]string, []Warning, error) {
	f, err := ini.LoadSources(ini.LoadOptions{
		IgnoreInlineComment:        true, // Python 2 rules are applied below
		IgnoreContinuation:         true, // a trailing backslash is data, as in Python
		InsensitiveKeys:            true, // RawConfigParser lower-cases option names
		AllowPythonMultilineValues: true,
		PreserveSurroundedQuote:    true, // Python keeps quotes
		KeyValueDelimiters:         "=:",
	}, data)
	if err != nil {
		// The library quotes the offending line, which may hold a token:
		// name the line instead.
		if n, why := badINILine(data); n > 0 {
			return nil, nil, fmt.Errorf("%s: not a valid INI file: line %d is %s (its text is not shown: it may hold a secret)", source, n, why)
		}
		return nil, nil, fmt.Errorf("%s: not a valid INI file (the parser's message is not shown: it may quote a secret)", source)
	}
	var warns []Warning
	bridge, err := f.GetSection(iniSection)
	if err != nil {
		var found []string
		for _, s := range f.Sections() {
			if s.Name() != ini.DefaultSection {
				found = append(found, "["+s.Name()+"]")
			}
		}
		if len(found) > 0 {
			return nil, nil, fmt.Errorf("%s: section [%s] is missing (found %s; section names are case-sensitive)", source, iniSection, strings.Join(found, ", "))
		}
		return nil, nil, fmt.Errorf("%s: section [%s] is missing", source, iniSection)
	}
	for _, s := range f.Sections() {
		if name := s.Name(); name != iniSection && name != ini.DefaultSection {
			warns = append(warns, Warning{Key: name,
				Message: fmt.Sprintf("%s: section [%s] is not used (only [%s] is); ignored", source, name, iniSection)})
		}
	}
	values := map[string]string{}
	// Like Python, keys of [DEFAULT] are defaults for every section.
	for _, s := range []*ini.Section{f.Section(ini.DefaultSection), bridge} {
		for _, k := range s.Keys() {
			values[k.Name()] = pythonValue(k.Value())
		}
	}
	return values, warns, nil
}

// pythonValue applies Python 2 RawConfigParser's value rules: a ';'
// preceded by white space starts a comment (only the first ';' is looked
// at), surrounding spaces are dropped, and "" means empty.
func pythonValue(v string) string {
	if i := strings.IndexByte(v, ';'); i > 0 && unicode.IsSpace(rune(v[i-1])) {
		v = v[:i]
	}
	v = strings.TrimSpace(v)
	if v == `""` {
		v = ""
	}
	return v
}

// cbFields is the connector.conf option table, in the order of the dump.
func cbFields() []field[CarbonBlack] {
	type C = CarbonBlack
	return []field[C]{
		urlField(Option{INI: "carbonblack_server_url", Required: true,
			Help: "Base URL of the Carbon Black EDR server, e.g. https://cb.example.com (http or https)."},
			func(c *C) *string { return &c.ServerURL }),
		secretField(Option{INI: "carbonblack_server_token", Required: true,
			Help: "Carbon Black API token (sent as X-Auth-Token)."},
			func(c *C) *Secret { return &c.ServerToken }),
		boolField(Option{INI: "carbonblack_server_sslverify", Default: "false",
			Help: "Verify the Carbon Black server's TLS certificate."},
			func(c *C) *bool { return &c.ServerSSLVerify }),
		stringField(Option{INI: "carbonblack_server_ca_file",
			Help: "PEM bundle of the certificate authorities that sign the Carbon Black server's certificate (a private CA); when set the certificate is verified whatever carbonblack_server_sslverify says. New."},
			func(c *C) *string { return &c.ServerCAFile }),
		secondsField(Option{INI: "cb_timeout", Default: "120",
			Help: "Timeout of one Carbon Black API request (seconds, or a Go duration such as 2m). New."},
			time.Second, func(c *C) *time.Duration { return &c.ServerTimeout }),

		stringField(Option{INI: "binary_filter_query",
			Help: "Extra Carbon Black binary-search terms ANDed to the collection query, e.g. is_executable_image:true."},
			func(c *C) *string { return &c.BinaryFilterQuery }),
		intField(Option{INI: "max_binary_size", Default: "10485760",
			Help: "Largest binary collected, in bytes (the original's fixed orig_mod_len filter was 10485760); at most 650000000, VirusTotal's upload limit. New."},
			1, MaxUploadSize, func(c *C) *int64 { return &c.MaxBinarySize }),
		intField(Option{INI: "poll_page_size", Default: "100",
			Help: "Binaries asked of Carbon Black per page when collecting (1-10000). New."},
			1, 10000, func(c *C) *int { return &c.PollPageSize }),
		secondsField(Option{INI: "sleep_between_batches", Default: "30",
			Help: "Pause between two polls for new binaries, in seconds (or a Go duration)."},
			0, func(c *C) *time.Duration { return &c.SleepBetweenBatches }),
		{
			Option: Option{INI: "backfill_sleep_between_batches", Default: "sleep_between_batches", Computed: true,
				Help: "Pause between two pages of the historical backfill, in seconds (or a Go duration); defaults to sleep_between_batches, which the original used for both. New."},
			set: func(c *C, in *input) error {
				d, err := parseSeconds(in.text, 0)
				c.BackfillSleepBetweenBatches = d
				return err
			},
			get:     func(c *C) string { return formatSeconds(c.BackfillSleepBetweenBatches) },
			compute: func(c *C) { c.BackfillSleepBetweenBatches = c.SleepBetweenBatches },
		},
		{
			Option: Option{INI: "days_rescan", Default: "365",
				Help: "Re-analyse a binary whose last analysis is older than this many days; 0 = never."},
			set: func(c *C, in *input) error {
				n, err := parseInt(in.text, 0, 36500)
				if err != nil {
					return err
				}
				if n == 0 {
					in.warn("0 means never re-analyse (the original re-analysed every binary continuously)")
				}
				c.DaysRescan = int(n)
				return nil
			},
			get: func(c *C) string { return strconv.Itoa(c.DaysRescan) },
		},

		tokenField(Option{INI: "virustotal_api_token", Required: true,
			Help: "VirusTotal API key (sent as the x-apikey header)."}, "PASSWORD",
			func(c *C) *Secret { return &c.VTAPIToken }),
		vtURLField(Option{INI: "virustotal_url", Default: DefaultVirusTotalURL,
			Help: "VirusTotal API v3 base URL (ignored by the original, honoured now). The original example's v2 URL https://www.virustotal.com/vtapi/v2/file/ is read as the v3 default, with a warning."},
			func(c *C) *string { return &c.VTURL }),
		secondsField(Option{INI: "virustotal_timeout", Default: "60",
			Help: "Timeout of one VirusTotal request (seconds, or a Go duration). New."},
			time.Second, func(c *C) *time.Duration { return &c.VTTimeout }),
		intField(Option{INI: "virustotal_requests_per_minute", Default: "4",
			Help: "Requests per minute the API key allows; 0 = unlimited. New."},
			0, math.MaxInt32, func(c *C) *int { return &c.RequestsPerMinute }),
		intField(Option{INI: "virustotal_requests_per_day", Default: "500",
			Help: "Requests per UTC day the API key allows; 0 = unlimited. New."},
			0, math.MaxInt32, func(c *C) *int { return &c.RequestsPerDay }),
		intField(Option{INI: "virustotal_requests_per_month", Default: "15500",
			Help: "Requests per UTC month the API key allows; 0 = unlimited. New."},
			0, math.MaxInt32, func(c *C) *int { return &c.RequestsPerMonth }),
		intField(Option{INI: "virustotal_quick_scan_threads", Default: "2",
			Help: "Hash lookups worked on at once (0-256). Pacing is by quota, not by this."},
			0, 256, func(c *C) *int { return &c.QuickScanThreads }),
		intField(Option{INI: "virustotal_deep_scan_threads", Default: "0",
			Help: "Binaries downloaded from Carbon Black and uploaded to VirusTotal at once (0-256); uploads also need submit_full_binaries."},
			0, 256, func(c *C) *int { return &c.DeepScanThreads }),
		{
			Option: Option{INI: "submit_full_binaries", Default: "0",
				Help: "Upload binaries VirusTotal does not know (with virustotal_deep_scan_threads > 0). As in the original only true or 1 enable it; yes and on leave it off, with a warning."},
			set: func(c *C, in *input) error {
				switch strings.ToLower(strings.TrimSpace(in.text)) {
				case "true", "1":
					c.SubmitFullBinaries = true
				case "false", "0", "no", "off":
					c.SubmitFullBinaries = false
				case "yes", "on":
					c.SubmitFullBinaries = false
					in.warn("only true or 1 enable uploads (as in the original connector); uploads stay disabled")
				default:
					return errors.New("not a boolean (use true or 1 to enable uploads, false or 0 to disable them)")
				}
				return nil
			},
			get: func(c *C) string { return formatBool(c.SubmitFullBinaries) },
		},
		{
			Option: Option{INI: "rescan_window", Default: "NEVER",
				Help: "Ask VirusTotal to rescan a file whose last analysis is at least this old: <int><S|M|H|D|W> (M = minutes), a Go duration like 36h, or NEVER."},
			set: func(c *C, in *input) error {
				d, minutes, err := parseRescanWindow(in.text)
				if err != nil {
					return err
				}
				if minutes {
					in.warn("M means minutes, not months (" + d.String() + ")")
				}
				c.RescanWindow = d
				return nil
			},
			get: func(c *C) string { return formatRescanWindow(c.RescanWindow) },
		},
		enumField(Option{INI: "virustotal_upload_mode", Default: "public",
			Help: "Where uploads go: public (VirusTotal's corpus, antivirus verdicts; its community and partners can download the file, as with the original) or private (VirusTotal Private Scanning, a licence: nothing shared, sandbox and tool verdicts only, never a public fallback). New."},
			uploadModes, strings.ToLower, func(c *C) *string { return &c.UploadMode }),
		fileTypesField(Option{INI: "virustotal_upload_file_types", Default: "pe,elf,macho",
			Help: "Content types a binary must have to be uploaded, recognised by its first bytes: a list of pe, elf, macho, or any. New."},
			func(c *C) *[]string { return &c.UploadFileTypes }),
		boolField(Option{INI: "virustotal_upload_unsigned_only", Default: "false",
			Help: "Upload only binaries Carbon Black reports as not validly signed (digsig_result other than Signed). New."},
			func(c *C) *bool { return &c.UploadUnsignedOnly }),
		analysisWaitField(Option{INI: "virustotal_analysis_wait", Default: "2h0m0s",
			Help: "How long an upload's or a rescan's analysis is waited for (polls spaced 20 s to 2 min) before the report VirusTotal has is taken: <int><M|H|D> or a Go duration. New."},
			func(c *C) *time.Duration { return &c.AnalysisWait }),

		intField(Option{INI: "listener_port", Default: "8080",
			Help: "TCP port of the feed server; also part of the feed URL."},
			1, 65535, func(c *C) *int { return &c.ListenerPort }),
		{
			Option: Option{INI: "listener_address", Default: "0.0.0.0",
				Help: "Address the feed server listens on. 0.0.0.0 (every interface) is the original default, kept for compatibility; prefer 127.0.0.1 when Carbon Black runs on the same host."},
			set: func(c *C, in *input) error {
				h, err := parseHost(in.text)
				c.ListenerAddress = h
				return err
			},
			get: func(c *C) string { return c.ListenerAddress },
		},
		{
			Option: Option{INI: "feed_host", Default: "127.0.0.1",
				Help: "Host name or IP address the Carbon Black server uses to fetch the feed (part of the feed URL)."},
			set: func(c *C, in *input) error {
				h, err := parseHost(in.text)
				c.FeedHost = h
				return err
			},
			get: func(c *C) string { return c.FeedHost },
		},
		{
			Option: Option{INI: "link_host_url", Default: "feed base URL", Computed: true,
				Help: "Base URL prepended to report links served by the feed server (for a reverse proxy); defaults to the feed's base URL."},
			set: func(c *C, in *input) error {
				u, err := parseHTTPURL(in.text)
				c.LinkHostURL = u
				return err
			},
			get:     func(c *C) string { return c.LinkBaseURL() },
			compute: func(*C) {},
		},
		stringField(Option{INI: "cert_file",
			Help: "TLS certificate (PEM) of the feed server; with key_file the feed is served over HTTPS."},
			func(c *C) *string { return &c.CertFile }),
		stringField(Option{INI: "key_file",
			Help: "TLS private key (PEM) of the feed server; set with cert_file."},
			func(c *C) *string { return &c.KeyFile }),
		stringField(Option{INI: "feed_username",
			Help: "Basic-authentication user the feed server requires, and the Carbon Black server is given; set with feed_password. New."},
			func(c *C) *string { return &c.FeedUsername }),
		secretField(Option{INI: "feed_password",
			Help: "Basic-authentication password of the feed; set with feed_username. New."},
			func(c *C) *Secret { return &c.FeedPassword }),
		boolField(Option{INI: "register_feed", Default: "true",
			Help: "Create the feed on the Carbon Black server, and keep its URL and flags up to date. New."},
			func(c *C) *bool { return &c.RegisterFeed }),
		boolField(Option{INI: "feed_validate_server_cert", Default: "false",
			Help: "Registered feed flag: the Carbon Black server validates the feed server's certificate (hard-coded false in the original). New."},
			func(c *C) *bool { return &c.FeedValidateServerCert }),
		boolField(Option{INI: "feed_use_proxy", Default: "false",
			Help: "Registered feed flag: the Carbon Black server fetches the feed through its proxy (hard-coded false in the original). New."},
			func(c *C) *bool { return &c.FeedUseProxy }),
		intField(Option{INI: "feed_min_positives", Default: "1",
			Help: "Publish a report only when at least this many engines detect the binary (the original published on 1). New."},
			1, 1000, func(c *C) *int { return &c.FeedMinPositives }),
		boolField(Option{INI: "feed_include_sha256", Default: "false",
			Help: "Add sha256 IOCs next to md5 in reports (Carbon Black EDR 7.0 and later). New."},
			func(c *C) *bool { return &c.FeedIncludeSHA256 }),
		boolField(Option{INI: "listener_public_pages", Default: "false",
			Help: "Serve /binaries.html (every endpoint MD5 and its verdict), /status, /status.json and /metrics to every client; false serves them only to this host (loopback) or, with feed_username set, to clients with the feed credentials. The feed itself is served as the original served it. New."},
			func(c *C) *bool { return &c.ListenerPublicPages }),

		dsnField(Option{INI: "database_url", Default: DefaultCarbonBlackDatabase,
			Help: "Database: a SQLite file path (also sqlite://PATH or file:PATH), or postgres://USER:PASSWORD@HOST/DB to share the queue and the quota between instances. The default is in /var/lib/vtconnector, the shipped systemd unit's StateDirectory. New."},
			func(c *C) *DSN { return &c.DatabaseURL }),
		{
			Option: Option{INI: "legacy_database", Default: DefaultCarbonBlackLegacyDatabase,
				Help: "The original connector's SQLite database, imported once at the first start when it exists (its verdicts published, its pending rows queued; the file is only read); empty = no import. New."},
			set: func(c *C, in *input) error {
				c.LegacyDatabase = strings.TrimSpace(in.text)
				return nil
			},
			get: func(c *C) string { return c.LegacyDatabase },
		},
		{
			Option: Option{INI: "log_file", Default: DefaultCarbonBlackLogFile,
				Help: "Log file, rotated at 10 MiB with 10 old files kept; - = standard error. New (the original's fixed path)."},
			set: func(c *C, in *input) error {
				c.LogFile = strings.TrimSpace(in.text)
				return nil
			},
			get: func(c *C) string { return c.LogFile },
		},
		{
			Option: Option{INI: "log_level", Default: "info (debug when debug=1)", Computed: true,
				Help: "Least level logged: debug, info, warn or error. New."},
			set: func(c *C, in *input) error {
				l, err := parseLogLevel(in.text)
				c.LogLevel, c.logSet = l, err == nil
				return err
			},
			get: func(c *C) string { return levelName(c.LogLevel) },
			compute: func(c *C) {
				c.LogLevel = slog.LevelInfo
				if c.Debug {
					c.LogLevel = slog.LevelDebug
				}
			},
		},
		{
			Option: Option{INI: "debug", Default: "0",
				Help: "1 logs at debug level (as log_level=debug). An integer as in the original; true and false are accepted with a warning (the original crashed on them)."},
			set: func(c *C, in *input) error {
				s := strings.TrimSpace(in.text)
				if n, err := strconv.ParseInt(s, 10, 64); err == nil {
					c.Debug = n != 0
					return nil
				}
				b, err := parseBool(s)
				if err != nil {
					return errors.New("not an integer (use 1 or 0)")
				}
				c.Debug = b
				in.warn("the original connector expects 1 or 0 and would not start; read as " + debugText(b))
				return nil
			},
			get: func(c *C) string { return debugText(c.Debug) },
		},

		ignoredField(Option{INI: "legacy_feed_directory",
			Help: "Original: directory of old JSON reports to import once. Not supported; ignored with a warning."},
			"is not supported (the one-time import of old JSON reports was dropped); ignored",
			func(c *C, s string) error { c.LegacyFeedDirectory = s; return nil },
			func(c *C) string { return c.LegacyFeedDirectory }),
		ignoredField(Option{INI: "use_streaming", Default: "false",
			Help: "Original: unused streaming switch. Accepted and ignored with a warning."},
			"is unused (the original ignored it too); ignored",
			func(c *C, s string) error {
				b, err := parseBool(s)
				c.UseStreaming = b
				return err
			},
			func(c *C) string { return formatBool(c.UseStreaming) }),
		ignoredField(Option{INI: "carbonblack_streaming_host",
			Help: "Original: unused. Accepted and ignored with a warning."},
			"is unused (the original ignored it too); ignored",
			func(c *C, s string) error { c.StreamingHost = s; return nil },
			func(c *C) string { return c.StreamingHost }),
		ignoredField(Option{INI: "carbonblack_streaming_username",
			Help: "Original: unused. Accepted and ignored with a warning."},
			"is unused (the original ignored it too); ignored",
			func(c *C, s string) error { c.StreamingUsername = s; return nil },
			func(c *C) string { return c.StreamingUsername }),
		ignoredField(Option{INI: "carbonblack_streaming_password", Secret: true,
			Help: "Original: unused. Accepted and ignored with a warning."},
			"is unused (the original ignored it too); ignored",
			func(c *C, s string) error { c.StreamingPassword = Secret(s); return nil },
			func(c *C) string { return c.StreamingPassword.String() }),
	}
}

// ignoredField reads a compatibility key, stores it and warns that it has
// no effect.
func ignoredField(o Option, why string, store func(*CarbonBlack, string) error, get func(*CarbonBlack) string) field[CarbonBlack] {
	return field[CarbonBlack]{
		Option: o,
		set: func(c *CarbonBlack, in *input) error {
			if err := store(c, strings.TrimSpace(in.text)); err != nil {
				return err
			}
			*in.warns = append(*in.warns, Warning{Key: in.key, Message: in.ref + " " + why})
			return nil
		},
		get: get,
	}
}

func debugText(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// IsSet reports whether the INI key was given in the file (not defaulted).
func (c *CarbonBlack) IsSet(key string) bool { return isSet(c.origins, key) }
