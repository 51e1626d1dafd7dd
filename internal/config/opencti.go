package config

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// OpenCTI is the configuration of the OpenCTI front, read from the
// environment and an optional config.yml. Field comments give the
// environment variable; OpenCTIOptions gives YAML paths, defaults and
// meanings.
type OpenCTI struct {
	// Platform (opencti.*).
	URL           string   // OPENCTI_URL, without trailing slash
	Token         Secret   // OPENCTI_TOKEN
	SSLVerify     bool     // OPENCTI_SSL_VERIFY (true, false, or a CA bundle's path)
	SSLCAFile     string   // OPENCTI_SSL_VERIFY given as a CA bundle's path (pycti passes it to requests' verify)
	JSONLogging   bool     // OPENCTI_JSON_LOGGING
	CustomHeaders []Header // OPENCTI_CUSTOM_HEADERS

	// Connector registration and behaviour (connector.*).
	ConnectorID          string     // CONNECTOR_ID
	ConnectorName        string     // CONNECTOR_NAME
	Scope                []string   // CONNECTOR_SCOPE
	Auto                 bool       // CONNECTOR_AUTO
	AutoUpdate           bool       // CONNECTOR_AUTO_UPDATE
	EnrichmentResolution string     // CONNECTOR_ENRICHMENT_RESOLUTION: none, stix_bundle or deferred
	OnlyContextual       bool       // CONNECTOR_ONLY_CONTEXTUAL
	LogLevel             slog.Level // CONNECTOR_LOG_LEVEL
	ValidateBeforeImport bool       // CONNECTOR_VALIDATE_BEFORE_IMPORT
	SendToQueue          bool       // CONNECTOR_SEND_TO_QUEUE
	QueueProtocol        string     // CONNECTOR_QUEUE_PROTOCOL: amqp or api
	ListenProtocol       string     // CONNECTOR_LISTEN_PROTOCOL: AMQP or API
	ListenAPI            ListenAPI  // CONNECTOR_LISTEN_PROTOCOL_API_*, LISTEN_PROTOCOL_API_SSL_*
	ExposeMetrics        bool       // CONNECTOR_EXPOSE_METRICS
	MetricsPort          int        // CONNECTOR_METRICS_PORT

	// RabbitMQ overrides of what registration returns (mq.*).
	MQ MQ

	// VirusTotal (virustotal.*).
	VTToken                   Secret          // VIRUSTOTAL_TOKEN
	VTURL                     string          // VIRUSTOTAL_URL
	VTTimeout                 time.Duration   // VIRUSTOTAL_TIMEOUT
	RequestsPerMinute         int             // VIRUSTOTAL_REQUESTS_PER_MINUTE; 0 = unlimited
	RequestsPerDay            int             // VIRUSTOTAL_REQUESTS_PER_DAY; 0 = unlimited
	RequestsPerMonth          int             // VIRUSTOTAL_REQUESTS_PER_MONTH; 0 = unlimited
	MaxTLP                    string          // VIRUSTOTAL_MAX_TLP, upper case, e.g. "TLP:AMBER"
	ReplaceWithLowerScore     bool            // VIRUSTOTAL_REPLACE_WITH_LOWER_SCORE
	IncludeAttributesInNote   bool            // VIRUSTOTAL_INCLUDE_ATTRIBUTES_IN_NOTE
	FileCreateNoteFullReport  bool            // VIRUSTOTAL_FILE_CREATE_NOTE_FULL_REPORT
	FileUploadUnseenArtifacts bool            // VIRUSTOTAL_FILE_UPLOAD_UNSEEN_ARTIFACTS
	FileImportYARA            bool            // VIRUSTOTAL_FILE_IMPORT_YARA
	FileIndicator             IndicatorPolicy // VIRUSTOTAL_FILE_INDICATOR_*
	IPAddRelationships        bool            // VIRUSTOTAL_IP_ADD_RELATIONSHIPS
	IPIndicator               IndicatorPolicy // VIRUSTOTAL_IP_INDICATOR_*
	DomainAddRelationships    bool            // VIRUSTOTAL_DOMAIN_ADD_RELATIONSHIPS (also Hostname)
	DomainIndicator           IndicatorPolicy // VIRUSTOTAL_DOMAIN_INDICATOR_* (also Hostname)
	URLUploadUnseen           bool            // VIRUSTOTAL_URL_UPLOAD_UNSEEN
	UploadMode                string          // VIRUSTOTAL_UPLOAD_MODE: public or private
	UploadMaxTLP              string          // VIRUSTOTAL_UPLOAD_MAX_TLP, upper case
	UploadMaxSize             int64           // VIRUSTOTAL_UPLOAD_MAX_SIZE, bytes
	UploadFileTypes           []string        // VIRUSTOTAL_UPLOAD_FILE_TYPES
	AnalysisWait              time.Duration   // VIRUSTOTAL_ANALYSIS_WAIT
	URLIndicator              IndicatorPolicy // VIRUSTOTAL_URL_INDICATOR_*

	// vtconnector itself (vtconnector.*).
	DatabaseURL DSN // VTCONNECTOR_DATABASE_URL
	Concurrency int // VTCONNECTOR_CONCURRENCY
	// DeliveryTimeout bounds how long a request is held unacknowledged
	// and how long a lookup waits for quota before it is parked.
	DeliveryTimeout time.Duration // VTCONNECTOR_DELIVERY_TIMEOUT
	HTTPAddr        string        // VTCONNECTOR_HTTP_ADDR; "" = no status/metrics server

	origins map[string]string
}

// ListenAPI is pycti's HTTP callback mode (CONNECTOR_LISTEN_PROTOCOL=API):
// the platform's workers post each request to URI+Path.
type ListenAPI struct {
	Port          int    // CONNECTOR_LISTEN_PROTOCOL_API_PORT
	Path          string // CONNECTOR_LISTEN_PROTOCOL_API_PATH
	SSL           bool   // CONNECTOR_LISTEN_PROTOCOL_API_SSL
	URI           string // CONNECTOR_LISTEN_PROTOCOL_API_URI, registered with Path as listen_callback_uri
	SSLCert       string // LISTEN_PROTOCOL_API_SSL_CERT: PEM text or file path
	SSLKey        Secret // LISTEN_PROTOCOL_API_SSL_KEY: PEM text or file path
	SSLPassphrase Secret // LISTEN_PROTOCOL_API_SSL_PASSPHRASE
}

// Header is one OPENCTI_CUSTOM_HEADERS entry, sent with every GraphQL request.
type Header struct {
	Name  string
	Value Secret
}

// MQ overrides the RabbitMQ connection that registerConnector returns;
// zero values mean "as returned".
type MQ struct {
	Host                  string // MQ_HOST
	Port                  int    // MQ_PORT
	VHost                 string // MQ_VHOST
	UseSSL                *bool  // MQ_USE_SSL
	User                  string // MQ_USER
	Pass                  Secret // MQ_PASS
	SSLCA                 string // MQ_USE_SSL_CA: PEM text or file path
	SSLCert               string // MQ_USE_SSL_CERT: PEM text or file path
	SSLKey                Secret // MQ_USE_SSL_KEY: PEM text or file path
	SSLPassphrase         Secret // MQ_USE_SSL_PASSPHRASE
	SSLRejectUnauthorized bool   // MQ_USE_SSL_REJECT_UNAUTHORIZED
}

// IndicatorPolicy is when and how an Indicator is created for one
// observable family.
type IndicatorPolicy struct {
	CreatePositives int  // *_INDICATOR_CREATE_POSITIVES; 0 = never
	ValidMinutes    int  // *_INDICATOR_VALID_MINUTES
	Detect          bool // *_INDICATOR_DETECT
}

// enrichable lists the entity types the connector can enrich, in their
// canonical spelling.
var enrichable = []string{"StixFile", "Artifact", "IPv4-Addr", "Domain-Name", "Hostname", "Url", "Indicator"}

// tlpLevels are VIRUSTOTAL_MAX_TLP's values, from least to most restricted.
var tlpLevels = []string{"TLP:CLEAR", "TLP:WHITE", "TLP:GREEN", "TLP:AMBER", "TLP:AMBER+STRICT", "TLP:RED"}

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// MaxDeliveryTimeout is the largest VTCONNECTOR_DELIVERY_TIMEOUT, well
// under RabbitMQ's default consumer_timeout of 30 minutes.
const MaxDeliveryTimeout = 25 * time.Minute

// placeholder is the value the upstream samples ship for every credential.
const placeholder = "ChangeMe"

// Redacted lists every option with its effective value and origin, secrets
// shown as [redacted], in the order of OpenCTIOptions.
func (c *OpenCTI) Redacted() []Setting {
	out := redactedSettings(c, ociFields(nil), envKey, c.origins)
	news := map[string]bool{}
	for _, o := range OpenCTIOptions() {
		news[o.Env] = strings.HasSuffix(strings.TrimSpace(o.Help), "New.") || strings.HasPrefix(o.Env, "VTCONNECTOR_")
	}
	for i := range out {
		out[i].Status = "as pycti"
		if news[out[i].Key] {
			out[i].Status = "new (vtconnector)"
		}
		if st, ok := ociStatus[out[i].Key]; ok {
			out[i].Status = st
		}
	}
	return out
}

// ociStatus says how settings that differ from pycti or the original
// connector, or that a reader may doubt, are treated (config check shows
// it). Settings not listed behave as pycti (or are new).
var ociStatus = map[string]string{
	"CONNECTOR_TYPE":                   "fixed: INTERNAL_ENRICHMENT",
	"CONNECTOR_ENRICHMENT_RESOLUTION":  "honoured: deferred reads the entity from the platform",
	"CONNECTOR_ONLY_CONTEXTUAL":        "honoured: registered, the platform applies it",
	"CONNECTOR_VALIDATE_BEFORE_IMPORT": "refused when true (no workbench or draft upload)",
	"CONNECTOR_SEND_TO_QUEUE":          "honoured: false sends no bundle and reports no work",
	"CONNECTOR_LISTEN_PROTOCOL":        "honoured: AMQP or API",
	"CONNECTOR_EXPOSE_METRICS":         "honoured: vtconnector's own metrics (see VTCONNECTOR_HTTP_ADDR)",
	"CONNECTOR_METRICS_PORT":           "honoured: port of vtconnector's status and metrics server",
	"MQ_USE_SSL_PASSPHRASE":            "honoured for legacy encrypted PEM keys; encrypted PKCS#8 keys are refused",
	"VIRUSTOTAL_REQUESTS_PER_MINUTE":   "differs: the key's whole per-minute budget (the original paced only resolutions)",
}

// OpenCTIOptions documents every environment variable and config.yml key.
func OpenCTIOptions() []Option {
	fs := ociFields(nil)
	out := make([]Option, len(fs))
	for i := range fs {
		out[i] = fs[i].Option
	}
	return out
}

// EnvMap turns os.Environ()-style "NAME=value" entries into the map
// LoadOpenCTI takes.
func EnvMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// LoadOpenCTI reads the configuration from env (the process environment as
// a map, see EnvMap) and, when yamlPath is not empty, from that config.yml,
// the environment winning. A yamlPath that cannot be read is an error. Every problem is
// reported at once (errors.Join), each naming its variable, and its YAML
// path when the value came from the file.
func LoadOpenCTI(env map[string]string, yamlPath string) (*OpenCTI, []Warning, error) {
	var data []byte
	if yamlPath != "" {
		var err error
		if data, err = os.ReadFile(yamlPath); err != nil {
			return nil, nil, fmt.Errorf("config: %w", err)
		}
		if data == nil {
			data = []byte{}
		}
	}
	return ParseOpenCTI(env, data, yamlPath)
}

// ParseOpenCTI is LoadOpenCTI with the config.yml content given (nil = no
// file) and named yamlSource in messages.
func ParseOpenCTI(env map[string]string, yamlData []byte, yamlSource string) (*OpenCTI, []Warning, error) {
	l := newLoader[OpenCTI]()
	var file map[string]*yaml.Node
	if yamlData != nil {
		var err error
		file, err = readYAML(yamlData, yamlSource, l)
		if err != nil {
			return nil, l.warns, err
		}
	}
	fields := ociFields(env)
	notes := aliasNotes()
	knownEnv := map[string]bool{}
	knownYAML := map[string]bool{}
	for i := range fields {
		f := &fields[i]
		for _, n := range append([]string{f.Env}, f.EnvAliases...) {
			knownEnv[n] = true
		}
		for _, p := range append([]string{f.YAML}, f.YAMLAliases...) {
			knownYAML[p] = true
		}
	}

	c := &OpenCTI{}
	l.apply(c, fields, envKey,
		func(f *field[OpenCTI]) *input {
			var found *input
			for _, n := range append([]string{f.Env}, f.EnvAliases...) {
				v := strings.TrimSpace(env[n])
				if v == "" {
					continue
				}
				if found != nil {
					l.warnf(n, "%s is ignored: %s is also set", n, found.key)
					continue
				}
				found = &input{text: v, ref: n, key: n, origin: "env " + n}
				if note := notes[n]; note != "" {
					l.warnf(n, "%s %s", n, note)
				}
			}
			if found != nil {
				return found
			}
			for _, p := range append([]string{f.YAML}, f.YAMLAliases...) {
				node, ok := file[p]
				if !ok {
					continue
				}
				in := &input{ref: fmt.Sprintf("%s: %s (%s)", yamlSource, p, f.Env), key: p, origin: yamlSource + " " + p}
				if !yamlValue(node, in) {
					continue // null: as if absent
				}
				if note := notes[p]; note != "" {
					l.warnf(p, "%s: %s %s", yamlSource, p, note)
				}
				return in
			}
			return nil
		},
		func(f *field[OpenCTI]) string { return fmt.Sprintf("%s (%s)", f.Env, f.YAML) })

	warnUnknownEnv(env, knownEnv, l)
	warnUnknownYAML(file, knownYAML, yamlSource, l)
	c.check(l)
	c.origins = l.origins
	if err := l.err(); err != nil {
		return nil, l.warns, err
	}
	return c, l.warns, nil
}

// check validates what involves several keys.
func (c *OpenCTI) check(l *loader[OpenCTI]) {
	if !l.anyBad("VIRUSTOTAL_MAX_TLP") && slices.Index(tlpLevels, c.MaxTLP) > slices.Index(tlpLevels, "TLP:GREEN") {
		var on, what []string
		if c.FileUploadUnseenArtifacts {
			on, what = append(on, "VIRUSTOTAL_FILE_UPLOAD_UNSEEN_ARTIFACTS"), append(what, "artifacts")
		}
		if c.URLUploadUnseen {
			on, what = append(on, "VIRUSTOTAL_URL_UPLOAD_UNSEEN"), append(what, "URLs")
		}
		if len(on) > 0 {
			l.warnf(on[0], "%s: %s unknown to VirusTotal are submitted to it, where its community can see them; with VIRUSTOTAL_MAX_TLP=%s that includes %s data",
				strings.Join(on, " and "), strings.Join(what, " and "), c.MaxTLP, c.MaxTLP)
		}
	}
	if c.DeliveryTimeout > MaxDeliveryTimeout {
		l.errorf("VTCONNECTOR_DELIVERY_TIMEOUT %s: must be at most %s, well under RabbitMQ's default consumer_timeout (30m)", c.DeliveryTimeout, MaxDeliveryTimeout)
	}
	if c.ValidateBeforeImport {
		l.errorf("CONNECTOR_VALIDATE_BEFORE_IMPORT=true is not supported (pycti uploads each bundle to a workbench or a draft for validation; vtconnector imports directly): set it to false")
	}
	if c.ListenProtocol == "API" && c.ListenAPI.SSL && (c.ListenAPI.SSLCert == "" || c.ListenAPI.SSLKey.Reveal() == "") {
		l.errorf("CONNECTOR_LISTEN_PROTOCOL_API_SSL=true: LISTEN_PROTOCOL_API_SSL_CERT and LISTEN_PROTOCOL_API_SSL_KEY are required")
	}
	if c.ExposeMetrics && c.HTTPAddr == "" && !l.anyBad("VTCONNECTOR_HTTP_ADDR") {
		l.warnf("VTCONNECTOR_HTTP_ADDR", "CONNECTOR_EXPOSE_METRICS is true but VTCONNECTOR_HTTP_ADDR is off: no metrics are served")
	}
}

func envKey(f *field[OpenCTI]) string { return f.Env }

// aliasNotes are the warnings given when a legacy name is used.
func aliasNotes() map[string]string {
	const rpm = "is read as VIRUSTOTAL_REQUESTS_PER_MINUTE, the whole per-minute budget of the key (upstream it paced only IP-resolution paging)"
	return map[string]string{
		"QUEUE_PROTOCOL":                     "is deprecated; use CONNECTOR_QUEUE_PROTOCOL",
		"VIRUSTOTAL_API_REQUESTS_PER_MINUTE": rpm,
		"virustotal.api_requests_per_minute": rpm,
	}
}

// ignoredNames are variables pycti or the upstream connector read that
// vtconnector accepts and ignores, with why. A trailing * matches a prefix.
var ignoredNames = []struct{ name, why string }{
	{"CONNECTOR_CONFIDENCE_LEVEL", "is deprecated since OpenCTI 6.0 and ignored: the platform applies the connector user's confidence level"},
	{"CONNECTOR_UPDATE_EXISTING_DATA", "is a legacy setting pycti no longer reads; ignored"},
	{"CONNECTOR_QUEUE_THRESHOLD", "applies to scheduled import connectors only; ignored"},
	{"CONNECTOR_DURATION_PERIOD", "applies to scheduled import connectors only; ignored"},
	{"CONNECTOR_RUN_AND_TERMINATE", "applies to scheduled import connectors only; ignored"},
	{"CONNECTOR_LIVE_STREAM_*", "applies to stream connectors only; ignored"},
	{"CONNECTOR_SEND_TO_DIRECTORY*", "is not supported by vtconnector; ignored"},
	{"CONNECTOR_SEND_TO_S3*", "is not supported by vtconnector; ignored"},
	{"CONNECTOR_AUTO_CREATE_SERVICE_ACCOUNT*", "is not supported by vtconnector; ignored"},
	{"CONNECTOR_METRICS_NAMESPACE", "is not supported by vtconnector; ignored"},
	{"CONNECTOR_METRICS_SUBSYSTEM", "is not supported by vtconnector; ignored"},
	{"VIRUSTOTAL_IP_ADD_RESOLUTIONS", "is not supported by vtconnector; ignored"},
	{"VIRUSTOTAL_IP_RESOLUTIONS_*", "is not supported by vtconnector; ignored"},
	{"VIRUSTOTAL_GTI_*", "is not supported by vtconnector (Google Threat Intelligence); ignored"},
	{"VIRUSTOTAL_*_INDICATOR_CONFIG", "is not supported; use the *_INDICATOR_CREATE_POSITIVES, _VALID_MINUTES and _DETECT options; ignored"},
}

// ignoredWhy returns why a variable is ignored, or "".
func ignoredWhy(name string) string {
	for _, ig := range ignoredNames {
		pre, suf, wild := strings.Cut(ig.name, "*")
		if !wild && name == ig.name || wild && len(name) >= len(pre)+len(suf) && strings.HasPrefix(name, pre) && strings.HasSuffix(name, suf) {
			return ig.why
		}
	}
	return ""
}

// envToYAML maps CONNECTOR_LOG_LEVEL to connector.log_level.
func envToYAML(name string) string {
	sec, key, _ := strings.Cut(strings.ToLower(name), "_")
	return sec + "." + key
}

func yamlToEnv(path string) string {
	return strings.ToUpper(strings.Replace(path, ".", "_", 1))
}

func warnUnknownEnv(env map[string]string, known map[string]bool, l *loader[OpenCTI]) {
	var names []string
	for n, v := range env {
		if strings.TrimSpace(v) != "" && !known[n] {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	candidates := make([]string, 0, len(known))
	for k := range known {
		candidates = append(candidates, k)
	}
	slices.Sort(candidates)
	for _, n := range names {
		if why := ignoredWhy(n); why != "" {
			l.warnf(n, "%s %s", n, why)
			continue
		}
		if !strings.HasPrefix(n, "OPENCTI_") && !strings.HasPrefix(n, "CONNECTOR_") &&
			!strings.HasPrefix(n, "VIRUSTOTAL_") && !strings.HasPrefix(n, "VTCONNECTOR_") {
			continue
		}
		msg := fmt.Sprintf("unknown variable %s; ignored", n)
		if s := suggest(n, candidates); s != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", s)
		}
		l.warnf(n, "%s", msg)
	}
}

func warnUnknownYAML(file map[string]*yaml.Node, known map[string]bool, source string, l *loader[OpenCTI]) {
	var paths []string
	for p := range file {
		if !known[p] {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)
	candidates := make([]string, 0, len(known))
	for k := range known {
		candidates = append(candidates, k)
	}
	slices.Sort(candidates)
	for _, p := range paths {
		if why := ignoredWhy(yamlToEnv(p)); why != "" {
			l.warnf(p, "%s: %s %s", source, p, why)
			continue
		}
		msg := fmt.Sprintf("%s: unknown key %s; ignored", source, p)
		if s := suggest(p, candidates); s != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", s)
		}
		l.warnf(p, "%s", msg)
	}
}

// readYAML flattens config.yml's two levels into "section.key" → node.
func readYAML(data []byte, source string, l *loader[OpenCTI]) (map[string]*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: not valid YAML: %w", source, err)
	}
	out := map[string]*yaml.Node{}
	if len(doc.Content) == 0 {
		return out, nil // empty file
	}
	root := resolve(doc.Content[0])
	if isNull(root) {
		return out, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: must be a mapping of sections (opencti:, connector:, virustotal:, mq:, vtconnector:)", source)
	}
	sections := map[string]bool{"opencti": true, "connector": true, "virustotal": true, "mq": true, "vtconnector": true}
	var errs []error
	for i := 0; i+1 < len(root.Content); i += 2 {
		name := strings.ToLower(root.Content[i].Value)
		sec := resolve(root.Content[i+1])
		if !sections[name] {
			l.warnf(name, "%s: unknown section %s; ignored", source, name)
			continue
		}
		if isNull(sec) {
			continue
		}
		if sec.Kind != yaml.MappingNode {
			errs = append(errs, fmt.Errorf("%s: %s: must be a mapping of keys", source, name))
			continue
		}
		for j := 0; j+1 < len(sec.Content); j += 2 {
			out[name+"."+strings.ToLower(sec.Content[j].Value)] = resolve(sec.Content[j+1])
		}
	}
	return out, errors.Join(errs...)
}

func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// yamlValue fills in's text or list from a node; false when the node is
// null or an empty string (pycti: as if absent).
func yamlValue(n *yaml.Node, in *input) bool {
	switch {
	case isNull(n):
		return false
	case n.Kind == yaml.ScalarNode:
		in.text = strings.TrimSpace(n.Value)
		return in.text != ""
	case n.Kind == yaml.SequenceNode:
		in.isList = true
		for _, item := range n.Content {
			if item = resolve(item); item.Kind != yaml.ScalarNode {
				in.invalid = "must be a value or a list of values, not a list of mappings or lists"
				return true
			}
			in.list = append(in.list, item.Value)
		}
		return true
	default:
		in.invalid = "must be a value, not a mapping"
		return true
	}
}

// defaultDatabase is the OpenCTI front's SQLite file: in the user's cache
// directory ($XDG_CACHE_HOME, else $HOME/.cache), else in the working
// directory. It holds a cache and the quota ledger, nothing that cannot be
// rebuilt (the work queue is RabbitMQ's).
func defaultDatabase(env map[string]string) DSN {
	if d := env["XDG_CACHE_HOME"]; filepath.IsAbs(d) {
		return DSN(filepath.Join(d, "vtconnector", "vtconnector.db"))
	}
	if h := env["HOME"]; filepath.IsAbs(h) {
		return DSN(filepath.Join(h, ".cache", "vtconnector", "vtconnector.db"))
	}
	return "vtconnector.db"
}

// ociFields is the OpenCTI option table; env feeds computed defaults.
func ociFields(env map[string]string) []field[OpenCTI] {
	type C = OpenCTI
	o := func(env, help string) Option {
		return Option{Env: env, YAML: envToYAML(env), Help: help}
	}
	d := func(opt Option, def string) Option { opt.Default = def; return opt }
	req := func(opt Option) Option { opt.Required = true; return opt }
	// vt is a virustotal.* option that the seed documents without the
	// VIRUSTOTAL_ prefix: both names are read, the prefixed one first.
	vt := func(name, def, help string) Option {
		return Option{Env: "VIRUSTOTAL_" + name, YAML: "virustotal." + strings.ToLower(name),
			EnvAliases: []string{name}, Default: def, Help: help}
	}
	indicator := func(prefix, family string, p func(*C) *IndicatorPolicy) []field[C] {
		return []field[C]{
			intField(vt(prefix+"_INDICATOR_CREATE_POSITIVES", "10",
				"Create an Indicator for "+family+" observables once this many engines detect them; 0 = never."),
				0, math.MaxInt32, func(c *C) *int { return &p(c).CreatePositives }),
			intField(vt(prefix+"_INDICATOR_VALID_MINUTES", "2880",
				"How long the created Indicator is valid, in minutes."),
				1, math.MaxInt32, func(c *C) *int { return &p(c).ValidMinutes }),
			boolField(vt(prefix+"_INDICATOR_DETECT", "true",
				"Set the created Indicator's detection flag."),
				func(c *C) *bool { return &p(c).Detect }),
		}
	}

	fs := []field[C]{
		urlField(req(o("OPENCTI_URL", "URL of the OpenCTI platform, e.g. http://opencti:8080.")),
			func(c *C) *string { return &c.URL }),
		tokenField(req(o("OPENCTI_TOKEN", "API token of the OpenCTI user the connector acts as.")), placeholder,
			func(c *C) *Secret { return &c.Token }),
		field[C]{
			Option: d(o("OPENCTI_SSL_VERIFY", "Verify the platform's TLS certificate: true, false (pycti's default; a warning is logged for an https platform), or the path of a PEM CA bundle to verify it against (as pycti, which hands the value to requests)."), "false"),
			set: func(c *C, in *input) error {
				if b, err := parseBool(in.text); err == nil {
					c.SSLVerify, c.SSLCAFile = b, ""
					return nil
				}
				path := strings.TrimSpace(in.text)
				if st, err := os.Stat(path); err != nil || st.IsDir() {
					return errors.New("not a boolean, nor the path of a CA bundle file")
				}
				c.SSLVerify, c.SSLCAFile = true, path
				return nil
			},
			get: func(c *C) string {
				if c.SSLCAFile != "" {
					return c.SSLCAFile
				}
				return formatBool(c.SSLVerify)
			},
		},
		boolField(d(o("OPENCTI_JSON_LOGGING", "Log JSON lines rather than text."), "true"),
			func(c *C) *bool { return &c.JSONLogging }),
		{
			Option: Option{Env: "OPENCTI_CUSTOM_HEADERS", YAML: "opencti.custom_headers", Secret: true,
				Help: "Extra HTTP headers for the platform, as NAME:VALUE pairs separated by ; (values are treated as secrets)."},
			set: func(c *C, in *input) error {
				var hs []Header
				for part := range strings.SplitSeq(in.text, ";") {
					if strings.TrimSpace(part) == "" {
						continue
					}
					name, value, ok := strings.Cut(part, ":")
					name = strings.TrimSpace(name)
					if !ok || name == "" || strings.ContainsAny(name, " \t") {
						return errors.New("must be NAME:VALUE pairs separated by ;")
					}
					hs = append(hs, Header{Name: name, Value: Secret(strings.TrimSpace(value))})
				}
				c.CustomHeaders = hs
				return nil
			},
			get: func(c *C) string {
				parts := make([]string, len(c.CustomHeaders))
				for i, h := range c.CustomHeaders {
					parts[i] = h.Name + ":" + h.Value.String()
				}
				return strings.Join(parts, ";")
			},
		},

		{
			Option: req(o("CONNECTOR_ID", "Unique UUID of this connector instance (generate one with uuidgen); keep it across restarts.")),
			set: func(c *C, in *input) error {
				v := strings.TrimSpace(in.text)
				if !uuidPattern.MatchString(v) {
					return errors.New("not a UUID (generate one with uuidgen)")
				}
				c.ConnectorID = v // as given: the platform knows the connector by this exact id
				return nil
			},
			get: func(c *C) string { return c.ConnectorID },
		},
		{
			Option: d(o("CONNECTOR_TYPE", "Always INTERNAL_ENRICHMENT; another value is replaced, with a warning."), "INTERNAL_ENRICHMENT"),
			set: func(_ *C, in *input) error {
				if !strings.EqualFold(strings.TrimSpace(in.text), "INTERNAL_ENRICHMENT") {
					in.warn("vtconnector is an internal-enrichment connector; registered as INTERNAL_ENRICHMENT")
				}
				return nil
			},
			get: func(*C) string { return "INTERNAL_ENRICHMENT" },
		},
		{
			Option: d(o("CONNECTOR_NAME", "Name shown in OpenCTI."), "VirusTotal"),
			set: func(c *C, in *input) error {
				c.ConnectorName = strings.TrimSpace(in.text)
				return nil
			},
			get: func(c *C) string { return c.ConnectorName },
		},
		{
			Option: d(o("CONNECTOR_SCOPE", "Entity types to enrich, comma-separated (a list in config.yml): StixFile, Artifact, IPv4-Addr, Domain-Name, Hostname, Url, Indicator."),
				"StixFile,Artifact,IPv4-Addr,Domain-Name,Url,Hostname,Indicator"),
			list: true,
			set: func(c *C, in *input) error {
				items := in.list
				if !in.isList {
					items = strings.Split(in.text, ",")
				}
				var scope, unknown []string
				for _, it := range items {
					it = strings.TrimSpace(it)
					if it == "" {
						continue
					}
					if i := slices.IndexFunc(enrichable, func(t string) bool { return strings.EqualFold(t, it) }); i >= 0 {
						it = enrichable[i]
					} else {
						unknown = append(unknown, it)
					}
					if !slices.Contains(scope, it) {
						scope = append(scope, it)
					}
				}
				if len(scope) == 0 {
					return errors.New("must name at least one entity type")
				}
				if len(unknown) > 0 {
					in.warn(strings.Join(unknown, ", ") + ": not entity types vtconnector enriches (" + strings.Join(enrichable, ", ") + ")")
				}
				c.Scope = scope
				return nil
			},
			get: func(c *C) string { return strings.Join(c.Scope, ",") },
		},
		boolField(d(o("CONNECTOR_AUTO", "Enrich new and updated observables automatically, not only on request."), "false"),
			func(c *C) *bool { return &c.Auto }),
		boolField(d(o("CONNECTOR_AUTO_UPDATE", "Also enrich automatically when an entity is updated (pycti 6.8.9)."), "false"),
			func(c *C) *bool { return &c.AutoUpdate }),
		enumField(d(o("CONNECTOR_ENRICHMENT_RESOLUTION", "What the platform sends with each request: none, stix_bundle (the entity's STIX export) or deferred (pycti 6.8.9)."), "none"),
			[]string{"none", "stix_bundle", "deferred"}, strings.ToLower, func(c *C) *string { return &c.EnrichmentResolution }),
		boolField(d(o("CONNECTOR_ONLY_CONTEXTUAL", "Only enrich entities that are part of a container's context."), "false"),
			func(c *C) *bool { return &c.OnlyContextual }),
		logLevelField(d(o("CONNECTOR_LOG_LEVEL", "Least level logged: debug, info, warn (or warning) or error."), "error"),
			func(c *C) *slog.Level { return &c.LogLevel }),
		boolField(d(o("CONNECTOR_VALIDATE_BEFORE_IMPORT", "Send results to a workbench for validation instead of importing them."), "false"),
			func(c *C) *bool { return &c.ValidateBeforeImport }),
		boolField(d(o("CONNECTOR_SEND_TO_QUEUE", "Send bundles to the platform (and report work progress)."), "true"),
			func(c *C) *bool { return &c.SendToQueue }),
		func() field[C] {
			opt := d(o("CONNECTOR_QUEUE_PROTOCOL", "How bundles are pushed: amqp (RabbitMQ) or api (GraphQL stixBundlePush)."), "amqp")
			opt.EnvAliases = []string{"QUEUE_PROTOCOL"}
			return enumField(opt, []string{"amqp", "api"}, strings.ToLower, func(c *C) *string { return &c.QueueProtocol })
		}(),
		enumField(d(o("CONNECTOR_LISTEN_PROTOCOL", "How requests arrive: AMQP (consumed from RabbitMQ) or API (posted by the platform's workers to an HTTP callback server, pycti 6.5.7)."), "AMQP"),
			[]string{"AMQP", "API"}, strings.ToUpper, func(c *C) *string { return &c.ListenProtocol }),
		intField(d(o("CONNECTOR_LISTEN_PROTOCOL_API_PORT", "API listen protocol: port of the callback server (every interface, as pycti)."), "7070"),
			1, 65535, func(c *C) *int { return &c.ListenAPI.Port }),
		{
			Option: d(o("CONNECTOR_LISTEN_PROTOCOL_API_PATH", "API listen protocol: path of the callback."), "/api/callback"),
			set: func(c *C, in *input) error {
				v := strings.TrimSpace(in.text)
				if !strings.HasPrefix(v, "/") || strings.ContainsAny(v, " ?#") {
					return errors.New("must be a URL path starting with /")
				}
				c.ListenAPI.Path = v
				return nil
			},
			get: func(c *C) string { return c.ListenAPI.Path },
		},
		boolField(d(o("CONNECTOR_LISTEN_PROTOCOL_API_SSL", "API listen protocol: serve the callback over TLS (LISTEN_PROTOCOL_API_SSL_CERT and _KEY)."), "false"),
			func(c *C) *bool { return &c.ListenAPI.SSL }),
		field[C]{
			Option: Option{Env: "CONNECTOR_LISTEN_PROTOCOL_API_URI", YAML: "connector.listen_protocol_api_uri", Computed: true,
				Default: "http://127.0.0.1:7070, or https://127.0.0.1:7070 when CONNECTOR_LISTEN_PROTOCOL_API_SSL=true",
				Help:    "API listen protocol: base URL the platform's workers reach the callback server at; registered with the path as listen_callback_uri."},
			set: func(c *C, in *input) error {
				v, err := parseHTTPURL(in.text)
				c.ListenAPI.URI = v
				return err
			},
			get: func(c *C) string { return c.ListenAPI.URI },
			compute: func(c *C) {
				c.ListenAPI.URI = "http://127.0.0.1:7070"
				if c.ListenAPI.SSL {
					c.ListenAPI.URI = "https://127.0.0.1:7070"
				}
			},
		},
		stringField(Option{Env: "LISTEN_PROTOCOL_API_SSL_CERT", YAML: "connector.listen_protocol_api_ssl_cert", Help: "API listen protocol: the callback server's certificate (chain), PEM text or file path."},
			func(c *C) *string { return &c.ListenAPI.SSLCert }),
		secretField(Option{Env: "LISTEN_PROTOCOL_API_SSL_KEY", YAML: "connector.listen_protocol_api_ssl_key", Help: "API listen protocol: the callback server's private key, PEM text or file path."},
			func(c *C) *Secret { return &c.ListenAPI.SSLKey }),
		secretField(Option{Env: "LISTEN_PROTOCOL_API_SSL_PASSPHRASE", YAML: "connector.listen_protocol_api_ssl_passphrase", Help: "API listen protocol: passphrase of the private key (legacy PEM encryption)."},
			func(c *C) *Secret { return &c.ListenAPI.SSLPassphrase }),
		boolField(d(o("CONNECTOR_EXPOSE_METRICS", "Serve Prometheus metrics on every interface at CONNECTOR_METRICS_PORT (see VTCONNECTOR_HTTP_ADDR)."), "false"),
			func(c *C) *bool { return &c.ExposeMetrics }),
		intField(d(o("CONNECTOR_METRICS_PORT", "Port of the metrics and status server."), "9095"),
			1, 65535, func(c *C) *int { return &c.MetricsPort }),

		stringField(o("MQ_HOST", "RabbitMQ host, overriding the one the platform returns at registration."),
			func(c *C) *string { return &c.MQ.Host }),
		func() field[C] {
			f := intField(o("MQ_PORT", "RabbitMQ port override."), 1, 65535, func(c *C) *int { return &c.MQ.Port })
			f.get = func(c *C) string {
				if c.MQ.Port == 0 {
					return ""
				}
				return strconv.Itoa(c.MQ.Port)
			}
			return f
		}(),
		stringField(o("MQ_VHOST", "RabbitMQ virtual host override."),
			func(c *C) *string { return &c.MQ.VHost }),
		{
			Option: o("MQ_USE_SSL", "RabbitMQ TLS override (true or false)."),
			set: func(c *C, in *input) error {
				b, err := parseBool(in.text)
				if err == nil {
					c.MQ.UseSSL = &b
				}
				return err
			},
			get: func(c *C) string {
				if c.MQ.UseSSL == nil {
					return ""
				}
				return formatBool(*c.MQ.UseSSL)
			},
		},
		stringField(o("MQ_USER", "RabbitMQ user override."),
			func(c *C) *string { return &c.MQ.User }),
		secretField(o("MQ_PASS", "RabbitMQ password override."),
			func(c *C) *Secret { return &c.MQ.Pass }),
		stringField(o("MQ_USE_SSL_CA", "RabbitMQ TLS: CA certificates, PEM text or file path."),
			func(c *C) *string { return &c.MQ.SSLCA }),
		stringField(o("MQ_USE_SSL_CERT", "RabbitMQ TLS: client certificate, PEM text or file path."),
			func(c *C) *string { return &c.MQ.SSLCert }),
		secretField(o("MQ_USE_SSL_KEY", "RabbitMQ TLS: client private key, PEM text or file path."),
			func(c *C) *Secret { return &c.MQ.SSLKey }),
		secretField(o("MQ_USE_SSL_PASSPHRASE", "RabbitMQ TLS: passphrase of the client key."),
			func(c *C) *Secret { return &c.MQ.SSLPassphrase }),
		boolField(d(o("MQ_USE_SSL_REJECT_UNAUTHORIZED", "RabbitMQ TLS: verify the server certificate (false in pycti, kept)."), "false"),
			func(c *C) *bool { return &c.MQ.SSLRejectUnauthorized }),

		tokenField(req(o("VIRUSTOTAL_TOKEN", "VirusTotal API key (sent as the x-apikey header).")), placeholder,
			func(c *C) *Secret { return &c.VTToken }),
		vtURLField(d(o("VIRUSTOTAL_URL", "VirusTotal API v3 base URL (a simulator or a proxy). New."), DefaultVirusTotalURL),
			func(c *C) *string { return &c.VTURL }),
		secondsField(d(o("VIRUSTOTAL_TIMEOUT", "Timeout of one VirusTotal request (seconds, or a Go duration). New."), "60"),
			time.Second, func(c *C) *time.Duration { return &c.VTTimeout }),
		func() field[C] {
			opt := d(o("VIRUSTOTAL_REQUESTS_PER_MINUTE", "Requests per minute the API key allows; 0 = unlimited. New; the upstream VIRUSTOTAL_API_REQUESTS_PER_MINUTE is read too."), "4")
			opt.EnvAliases = []string{"VIRUSTOTAL_API_REQUESTS_PER_MINUTE"}
			opt.YAMLAliases = []string{"virustotal.api_requests_per_minute"}
			return intField(opt, 0, math.MaxInt32, func(c *C) *int { return &c.RequestsPerMinute })
		}(),
		intField(d(o("VIRUSTOTAL_REQUESTS_PER_DAY", "Requests per UTC day the API key allows; 0 = unlimited. New."), "500"),
			0, math.MaxInt32, func(c *C) *int { return &c.RequestsPerDay }),
		intField(d(o("VIRUSTOTAL_REQUESTS_PER_MONTH", "Requests per UTC month the API key allows; 0 = unlimited. New."), "15500"),
			0, math.MaxInt32, func(c *C) *int { return &c.RequestsPerMonth }),
		enumField(d(o("VIRUSTOTAL_MAX_TLP", "Most restrictive TLP marking an entity may carry and still be sent to VirusTotal (any case): TLP:CLEAR, TLP:WHITE, TLP:GREEN, TLP:AMBER, TLP:AMBER+STRICT, TLP:RED."), "TLP:AMBER"),
			tlpLevels, strings.ToUpper, func(c *C) *string { return &c.MaxTLP }),
		boolField(d(o("VIRUSTOTAL_REPLACE_WITH_LOWER_SCORE", "Write VirusTotal's score even when it is lower than the entity's (false: keep the higher score and say so in a note)."), "true"),
			func(c *C) *bool { return &c.ReplaceWithLowerScore }),
		boolField(d(o("VIRUSTOTAL_INCLUDE_ATTRIBUTES_IN_NOTE", "Add the attributes block to the VirusTotal note."), "false"),
			func(c *C) *bool { return &c.IncludeAttributesInNote }),

		boolField(vt("FILE_CREATE_NOTE_FULL_REPORT", "true", "Attach the full report to files and artifacts as a note."),
			func(c *C) *bool { return &c.FileCreateNoteFullReport }),
		boolField(vt("FILE_UPLOAD_UNSEEN_ARTIFACTS", "true", "Upload artifacts (up to 32 MB) VirusTotal does not know, for analysis; VirusTotal's community can then see them."),
			func(c *C) *bool { return &c.FileUploadUnseenArtifacts }),
	}
	fs = append(fs, indicator("FILE", "File and Artifact", func(c *C) *IndicatorPolicy { return &c.FileIndicator })...)
	fs = append(fs,
		boolField(vt("FILE_IMPORT_YARA", "true", "Import crowdsourced YARA rules that match the file as Indicators."),
			func(c *C) *bool { return &c.FileImportYARA }))
	fs = append(fs, indicator("IP", "IPv4", func(c *C) *IndicatorPolicy { return &c.IPIndicator })...)
	fs = append(fs,
		boolField(vt("IP_ADD_RELATIONSHIPS", "false", "Add the IP's autonomous system and location, with relationships."),
			func(c *C) *bool { return &c.IPAddRelationships }))
	fs = append(fs, indicator("DOMAIN", "Domain-Name and Hostname", func(c *C) *IndicatorPolicy { return &c.DomainIndicator })...)
	fs = append(fs,
		boolField(vt("DOMAIN_ADD_RELATIONSHIPS", "false", "Add the IPv4 addresses a domain resolves to, with resolves-to relationships."),
			func(c *C) *bool { return &c.DomainAddRelationships }),
		boolField(vt("URL_UPLOAD_UNSEEN", "true", "Submit URLs VirusTotal does not know, for analysis; VirusTotal's community can then see them."),
			func(c *C) *bool { return &c.URLUploadUnseen }))
	fs = append(fs, indicator("URL", "Url", func(c *C) *IndicatorPolicy { return &c.URLIndicator })...)
	fs = append(fs,
		enumField(vt("UPLOAD_MODE", "public", "Where uploads of unseen artifacts and URLs go: public (VirusTotal's corpus, antivirus verdicts, as with the original) or private (VirusTotal Private Scanning, a licence: nothing shared, sandbox and tool verdicts only, never a public fallback). New."),
			uploadModes, strings.ToLower, func(c *C) *string { return &c.UploadMode }),
		enumField(vt("UPLOAD_MAX_TLP", "TLP:CLEAR", "Most restrictive TLP an artifact or URL may carry and still be uploaded (lookups obey VIRUSTOTAL_MAX_TLP). New."),
			tlpLevels, strings.ToUpper, func(c *C) *string { return &c.UploadMaxTLP }),
		intField(vt("UPLOAD_MAX_SIZE", "32000000", "Largest artifact uploaded, in bytes (at most 650000000; the original uploaded up to 32 MB). New."),
			1, MaxUploadSize, func(c *C) *int64 { return &c.UploadMaxSize }),
		fileTypesField(vt("UPLOAD_FILE_TYPES", "any", "Content types an artifact must have to be uploaded, recognised by its first bytes: a list of pe, elf, macho, or any. New."),
			func(c *C) *[]string { return &c.UploadFileTypes }),
		analysisWaitField(vt("ANALYSIS_WAIT", "2h0m0s", "How long the analysis of an uploaded artifact or a submitted URL is waited for (the message is acknowledged meanwhile) before the report VirusTotal has is taken: a Go duration or <int><M|H|D>. New."),
			func(c *C) *time.Duration { return &c.AnalysisWait }),
	)

	fs = append(fs,
		field[C]{
			Option: Option{Env: "VTCONNECTOR_DATABASE_URL", YAML: "vtconnector.database_url", Computed: true,
				Default: "$XDG_CACHE_HOME/vtconnector/vtconnector.db, else $HOME/.cache/vtconnector/vtconnector.db, else ./vtconnector.db",
				Help:    "Database for the VirusTotal cache and the quota ledger: a SQLite file path (also sqlite://PATH or file:PATH), or postgres://USER:PASSWORD@HOST/DB to share the quota between instances. New."},
			redact: redactDSN,
			set: func(c *C, in *input) error {
				v, err := parseDSN(in.text)
				c.DatabaseURL = v
				return err
			},
			get:     func(c *C) string { return c.DatabaseURL.String() },
			compute: func(c *C) { c.DatabaseURL = defaultDatabase(env) },
		},
		intField(Option{Env: "VTCONNECTOR_CONCURRENCY", YAML: "vtconnector.concurrency", Default: "4",
			Help: "Enrichments worked on at once (1-64). Pacing is by quota, not by this. New."},
			1, 64, func(c *C) *int { return &c.Concurrency }),
		secondsField(Option{Env: "VTCONNECTOR_DELIVERY_TIMEOUT", YAML: "vtconnector.delivery_timeout", Default: "300",
			Help: "Longest an enrichment request is held unacknowledged (seconds or a Go duration, 1s to 25m, under RabbitMQ's 30-minute consumer_timeout): requests are parked in the database and acknowledged on arrival, and work that would wait longer than this for quota is parked until the quota frees. New."},
			time.Second, func(c *C) *time.Duration { return &c.DeliveryTimeout }),
		field[C]{
			Option: Option{Env: "VTCONNECTOR_HTTP_ADDR", YAML: "vtconnector.http_addr", Computed: true,
				Default: "127.0.0.1:CONNECTOR_METRICS_PORT, or :CONNECTOR_METRICS_PORT (every interface) when CONNECTOR_EXPOSE_METRICS=true",
				Help:    "Listen address of the status page, /healthz and /metrics; off = none. New."},
			set: func(c *C, in *input) error {
				v := strings.TrimSpace(in.text)
				if strings.EqualFold(v, "off") {
					c.HTTPAddr = ""
					return nil
				}
				host, port, err := net.SplitHostPort(v)
				if err != nil {
					return errors.New("must be HOST:PORT, :PORT or off")
				}
				if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
					return errors.New("port must be between 1 and 65535")
				}
				if host != "" {
					if _, err := parseHost(host); err != nil {
						return err
					}
				}
				c.HTTPAddr = v
				return nil
			},
			get: func(c *C) string {
				if c.HTTPAddr == "" {
					return "off"
				}
				return c.HTTPAddr
			},
			compute: func(c *C) {
				host := "127.0.0.1"
				if c.ExposeMetrics {
					host = ""
				}
				c.HTTPAddr = net.JoinHostPort(host, strconv.Itoa(c.MetricsPort))
			},
		},
	)
	return fs
}

// IsSet reports whether the environment variable (or its config.yml key)
// was given (not defaulted).
func (c *OpenCTI) IsSet(env string) bool { return isSet(c.origins, env) }
