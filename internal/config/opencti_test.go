package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

const testConnectorID = "2d5c3f4a-8b1e-4c6d-9a7f-0e1d2c3b4a59"

// requiredEnv is the least environment that loads.
func requiredEnv() map[string]string {
	return map[string]string{
		"OPENCTI_URL":      "http://opencti:8080",
		"OPENCTI_TOKEN":    "octi-token-1",
		"CONNECTOR_ID":     testConnectorID,
		"VIRUSTOTAL_TOKEN": "vt-token-1",
	}
}

func with(env map[string]string, kv ...string) map[string]string {
	for i := 0; i+1 < len(kv); i += 2 {
		env[kv[i]] = kv[i+1]
	}
	return env
}

// defaultOpenCTI is what requiredEnv plus HOME=/home/vtc loads to: the
// seed's defaults and vtconnector's.
func defaultOpenCTI() *OpenCTI {
	ind := IndicatorPolicy{CreatePositives: 10, ValidMinutes: 2880, Detect: true}
	return &OpenCTI{
		URL:                       "http://opencti:8080",
		Token:                     "octi-token-1",
		JSONLogging:               true,
		ConnectorID:               testConnectorID,
		ConnectorName:             "VirusTotal",
		Scope:                     []string{"StixFile", "Artifact", "IPv4-Addr", "Domain-Name", "Url", "Hostname", "Indicator"},
		EnrichmentResolution:      "none",
		LogLevel:                  slog.LevelError,
		SendToQueue:               true,
		QueueProtocol:             "amqp",
		ListenProtocol:            "AMQP",
		ListenAPI:                 ListenAPI{Port: 7070, Path: "/api/callback", URI: "http://127.0.0.1:7070"},
		MetricsPort:               9095,
		VTToken:                   "vt-token-1",
		VTURL:                     "https://www.virustotal.com/api/v3",
		VTTimeout:                 time.Minute,
		RequestsPerMinute:         4,
		RequestsPerDay:            500,
		RequestsPerMonth:          15500,
		MaxTLP:                    "TLP:AMBER",
		ReplaceWithLowerScore:     true,
		FileCreateNoteFullReport:  true,
		FileUploadUnseenArtifacts: true,
		FileImportYARA:            true,
		FileIndicator:             ind,
		IPIndicator:               ind,
		DomainIndicator:           ind,
		URLUploadUnseen:           true,
		URLIndicator:              ind,
		UploadMode:                "public",
		UploadMaxTLP:              "TLP:CLEAR",
		UploadMaxSize:             32000000,
		UploadFileTypes:           []string{"any"},
		AnalysisWait:              2 * time.Hour,
		DatabaseURL:               "/home/vtc/.cache/vtconnector/vtconnector.db",
		Concurrency:               4,
		DeliveryTimeout:           5 * time.Minute,
		HTTPAddr:                  "127.0.0.1:9095",
	}
}

var ignoreOrigins = cmpopts.IgnoreUnexported(OpenCTI{})

func TestOpenCTIDefaults(t *testing.T) {
	c, warns, err := ParseOpenCTI(with(requiredEnv(), "HOME", "/home/vtc"), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(defaultOpenCTI(), c, ignoreOrigins); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	want := []string{"VIRUSTOTAL_FILE_UPLOAD_UNSEEN_ARTIFACTS and VIRUSTOTAL_URL_UPLOAD_UNSEEN: artifacts and URLs unknown to VirusTotal are submitted to it, where its community can see them; with VIRUSTOTAL_MAX_TLP=TLP:AMBER that includes TLP:AMBER data"}
	if diff := cmp.Diff(want, messages(warns)); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}

func TestOpenCTIFromEnvironmentOnly(t *testing.T) {
	env := with(requiredEnv(),
		"HOME", "/home/vtc",
		"PATH", "/usr/bin",
		"OPENCTI_URL", "https://opencti.example.com/",
		"OPENCTI_SSL_VERIFY", "True",
		"OPENCTI_JSON_LOGGING", "false",
		"OPENCTI_CUSTOM_HEADERS", "X-Tenant: blue; X-Proxy-Auth:abc",
		"CONNECTOR_NAME", "VirusTotal EU",
		"CONNECTOR_SCOPE", "StixFile, artifact ,IPV4-ADDR,,Url",
		"CONNECTOR_AUTO", "yes",
		"CONNECTOR_AUTO_UPDATE", "1",
		"CONNECTOR_ENRICHMENT_RESOLUTION", "STIX_BUNDLE",
		"CONNECTOR_ONLY_CONTEXTUAL", "on",
		"CONNECTOR_LOG_LEVEL", "WARNING",
		"CONNECTOR_VALIDATE_BEFORE_IMPORT", "FALSE",
		"CONNECTOR_SEND_TO_QUEUE", "no",
		"CONNECTOR_QUEUE_PROTOCOL", "API",
		"CONNECTOR_LISTEN_PROTOCOL", "amqp",
		"CONNECTOR_EXPOSE_METRICS", "true",
		"CONNECTOR_METRICS_PORT", "9100",
		"MQ_HOST", "rabbitmq",
		"MQ_PORT", "5671",
		"MQ_VHOST", "/",
		"MQ_USE_SSL", "true",
		"MQ_USER", "opencti",
		"MQ_PASS", "mq-pass-1",
		"MQ_USE_SSL_REJECT_UNAUTHORIZED", "true",
		"VIRUSTOTAL_URL", "http://127.0.0.1:8990/api/v3",
		"VIRUSTOTAL_TIMEOUT", "90s",
		"VIRUSTOTAL_REQUESTS_PER_MINUTE", "1000",
		"VIRUSTOTAL_REQUESTS_PER_DAY", "0",
		"VIRUSTOTAL_REQUESTS_PER_MONTH", "0",
		"VIRUSTOTAL_MAX_TLP", "tlp:green",
		"VIRUSTOTAL_REPLACE_WITH_LOWER_SCORE", "false",
		"VIRUSTOTAL_INCLUDE_ATTRIBUTES_IN_NOTE", "true",
		"VIRUSTOTAL_FILE_CREATE_NOTE_FULL_REPORT", "false",
		"FILE_UPLOAD_UNSEEN_ARTIFACTS", "false",
		"VIRUSTOTAL_FILE_INDICATOR_CREATE_POSITIVES", "5",
		"FILE_INDICATOR_VALID_MINUTES", "60",
		"FILE_INDICATOR_DETECT", "false",
		"FILE_IMPORT_YARA", "true",
		"IP_INDICATOR_CREATE_POSITIVES", "0",
		"VIRUSTOTAL_IP_ADD_RELATIONSHIPS", "0",
		"DOMAIN_ADD_RELATIONSHIPS", "no",
		"VIRUSTOTAL_DOMAIN_INDICATOR_VALID_MINUTES", "1440",
		"URL_UPLOAD_UNSEEN", "false",
		"URL_INDICATOR_CREATE_POSITIVES", "3",
		"VTCONNECTOR_DATABASE_URL", "postgres://vtc:db-pass-1@db/vtc",
		"VTCONNECTOR_CONCURRENCY", "8",
		"VTCONNECTOR_HTTP_ADDR", "0.0.0.0:9200",
	)
	c, warns, err := ParseOpenCTI(env, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	yes := true
	want := defaultOpenCTI()
	want.URL = "https://opencti.example.com"
	want.SSLVerify = true
	want.JSONLogging = false
	want.CustomHeaders = []Header{{Name: "X-Tenant", Value: "blue"}, {Name: "X-Proxy-Auth", Value: "abc"}}
	want.ConnectorName = "VirusTotal EU"
	want.Scope = []string{"StixFile", "Artifact", "IPv4-Addr", "Url"}
	want.Auto, want.AutoUpdate, want.OnlyContextual = true, true, true
	want.EnrichmentResolution = "stix_bundle"
	want.LogLevel = slog.LevelWarn
	want.SendToQueue = false
	want.QueueProtocol = "api"
	want.ExposeMetrics = true
	want.MetricsPort = 9100
	want.MQ = MQ{Host: "rabbitmq", Port: 5671, VHost: "/", UseSSL: &yes, User: "opencti", Pass: "mq-pass-1", SSLRejectUnauthorized: true}
	want.VTURL = "http://127.0.0.1:8990/api/v3"
	want.VTTimeout = 90 * time.Second
	want.RequestsPerMinute, want.RequestsPerDay, want.RequestsPerMonth = 1000, 0, 0
	want.MaxTLP = "TLP:GREEN"
	want.ReplaceWithLowerScore = false
	want.IncludeAttributesInNote = true
	want.FileCreateNoteFullReport = false
	want.FileUploadUnseenArtifacts = false
	want.FileIndicator = IndicatorPolicy{CreatePositives: 5, ValidMinutes: 60, Detect: false}
	want.FileImportYARA = true
	want.IPIndicator.CreatePositives = 0
	want.IPAddRelationships = false
	want.DomainAddRelationships = false
	want.DomainIndicator.ValidMinutes = 1440
	want.URLUploadUnseen = false
	want.URLIndicator.CreatePositives = 3
	want.DatabaseURL = "postgres://vtc:db-pass-1@db/vtc"
	want.Concurrency = 8
	want.HTTPAddr = "0.0.0.0:9200"
	if diff := cmp.Diff(want, c, ignoreOrigins); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if len(warns) != 0 {
		t.Errorf("warnings: %q", messages(warns))
	}
}

const fullYAML = `opencti:
  url: 'http://localhost:8080/'
  token: 'yaml-octi-token'
connector:
  id: '` + testConnectorID + `'
  type: 'INTERNAL_ENRICHMENT'
  name: 'VirusTotal'
  scope:
    - StixFile
    - Artifact
    - IPv4-Addr
    - Domain-Name
    - Url
  auto: true # Enable/disable auto-enrichment of observables
  log_level: 'info'
  expose_metrics: false
mq:
  host: rabbitmq
virustotal:
  token: 'yaml-vt-token'
  max_tlp: 'TLP:AMBER+STRICT'
  replace_with_lower_score: false
  file_create_note_full_report: true
  file_upload_unseen_artifacts: false
  file_indicator_create_positives: 0
  file_indicator_valid_minutes: 2880
  file_indicator_detect: true
  file_import_yara: yes
  ip_indicator_create_positives: 20
  ip_add_relationships: false
  domain_add_relationships: ~
  url_upload_unseen: false
  api_requests_per_minute: 30
vtconnector:
  database_url: /var/lib/vtconnector/opencti.db
  concurrency: 2
`

func TestOpenCTIFromYAMLOnly(t *testing.T) {
	c, warns, err := ParseOpenCTI(map[string]string{"HOME": "/home/vtc"}, []byte(fullYAML), "config.yml")
	if err != nil {
		t.Fatal(err)
	}
	want := defaultOpenCTI()
	want.URL = "http://localhost:8080"
	want.Token = "yaml-octi-token"
	want.Scope = []string{"StixFile", "Artifact", "IPv4-Addr", "Domain-Name", "Url"}
	want.Auto = true
	want.LogLevel = slog.LevelInfo
	want.MQ.Host = "rabbitmq"
	want.VTToken = "yaml-vt-token"
	want.MaxTLP = "TLP:AMBER+STRICT"
	want.ReplaceWithLowerScore = false
	want.FileUploadUnseenArtifacts = false
	want.FileIndicator.CreatePositives = 0
	want.FileImportYARA = true
	want.IPIndicator.CreatePositives = 20
	want.IPAddRelationships = false
	want.URLUploadUnseen = false
	want.RequestsPerMinute = 30
	want.DatabaseURL = "/var/lib/vtconnector/opencti.db"
	want.Concurrency = 2
	if diff := cmp.Diff(want, c, ignoreOrigins); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	wantWarns := []string{
		"config.yml: virustotal.api_requests_per_minute is read as VIRUSTOTAL_REQUESTS_PER_MINUTE, the whole per-minute budget of the key (upstream it paced only IP-resolution paging)",
	}
	if diff := cmp.Diff(wantWarns, messages(warns)); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}

func TestOpenCTIYAMLScopeAsString(t *testing.T) {
	env := requiredEnv()
	delete(env, "CONNECTOR_ID")
	yml := "connector:\n  id: " + testConnectorID + "\n  scope: 'StixFile, Url'\n  auto: 'True'\n"
	c, _, err := ParseOpenCTI(env, []byte(yml), "config.yml")
	if err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(c.Scope, []string{"StixFile", "Url"}) || !c.Auto || c.ConnectorID != testConnectorID {
		t.Errorf("Scope, Auto, ConnectorID = %q, %v, %q", c.Scope, c.Auto, c.ConnectorID)
	}
}

func TestOpenCTIEnvironmentOverridesYAML(t *testing.T) {
	env := map[string]string{
		"OPENCTI_URL":                     "http://opencti:8080",
		"CONNECTOR_SCOPE":                 "Url",
		"CONNECTOR_LOG_LEVEL":             "debug",
		"VIRUSTOTAL_MAX_TLP":              "TLP:RED",
		"FILE_INDICATOR_CREATE_POSITIVES": "7", // unprefixed env still beats the file
		"VIRUSTOTAL_IP_ADD_RELATIONSHIPS": "",  // empty: as if unset, the file wins
		"HOME":                            "/home/vtc",
	}
	c, _, err := ParseOpenCTI(env, []byte(fullYAML), "config.yml")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range c.Redacted() {
		got[s.Key] = s.Value + " (" + s.Origin + ")"
	}
	want := map[string]string{
		"OPENCTI_URL":         "http://opencti:8080 (env OPENCTI_URL)",
		"OPENCTI_TOKEN":       "[redacted] (config.yml opencti.token)",
		"CONNECTOR_ID":        testConnectorID + " (config.yml connector.id)",
		"CONNECTOR_SCOPE":     "Url (env CONNECTOR_SCOPE)",
		"CONNECTOR_AUTO":      "true (config.yml connector.auto)",
		"CONNECTOR_LOG_LEVEL": "debug (env CONNECTOR_LOG_LEVEL)",
		"VIRUSTOTAL_MAX_TLP":  "TLP:RED (env VIRUSTOTAL_MAX_TLP)",
		"VIRUSTOTAL_FILE_INDICATOR_CREATE_POSITIVES": "7 (env FILE_INDICATOR_CREATE_POSITIVES)",
		"VIRUSTOTAL_IP_ADD_RELATIONSHIPS":            "false (config.yml virustotal.ip_add_relationships)",
		"VIRUSTOTAL_DOMAIN_ADD_RELATIONSHIPS":        "false (default)",
		"VIRUSTOTAL_REQUESTS_PER_MINUTE":             "30 (config.yml virustotal.api_requests_per_minute)",
		"VIRUSTOTAL_TOKEN":                           "[redacted] (config.yml virustotal.token)",
		"CONNECTOR_NAME":                             "VirusTotal (config.yml connector.name)",
		"VTCONNECTOR_HTTP_ADDR":                      "127.0.0.1:9095 (default)",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %q, want %q", k, got[k], w)
		}
	}
}

func TestOpenCTIPrefixedNameWins(t *testing.T) {
	env := with(requiredEnv(),
		"VIRUSTOTAL_FILE_INDICATOR_CREATE_POSITIVES", "5",
		"FILE_INDICATOR_CREATE_POSITIVES", "50",
		"URL_UPLOAD_UNSEEN", "false",
		"VIRUSTOTAL_API_REQUESTS_PER_MINUTE", "10",
		"QUEUE_PROTOCOL", "api",
	)
	c, warns, err := ParseOpenCTI(env, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if c.FileIndicator.CreatePositives != 5 || c.URLUploadUnseen || c.RequestsPerMinute != 10 || c.QueueProtocol != "api" {
		t.Errorf("FileIndicator.CreatePositives, URLUploadUnseen, RequestsPerMinute, QueueProtocol = %d, %v, %d, %q",
			c.FileIndicator.CreatePositives, c.URLUploadUnseen, c.RequestsPerMinute, c.QueueProtocol)
	}
	want := []string{
		"QUEUE_PROTOCOL is deprecated; use CONNECTOR_QUEUE_PROTOCOL",
		"VIRUSTOTAL_API_REQUESTS_PER_MINUTE is read as VIRUSTOTAL_REQUESTS_PER_MINUTE, the whole per-minute budget of the key (upstream it paced only IP-resolution paging)",
		"FILE_INDICATOR_CREATE_POSITIVES is ignored: VIRUSTOTAL_FILE_INDICATOR_CREATE_POSITIVES is also set",
		"VIRUSTOTAL_FILE_UPLOAD_UNSEEN_ARTIFACTS: artifacts unknown to VirusTotal are submitted to it, where its community can see them; with VIRUSTOTAL_MAX_TLP=TLP:AMBER that includes TLP:AMBER data",
	}
	if diff := cmp.Diff(want, messages(warns)); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	env["VIRUSTOTAL_REQUESTS_PER_MINUTE"] = "20"
	c, _, err = ParseOpenCTI(env, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if c.RequestsPerMinute != 20 {
		t.Errorf("RequestsPerMinute = %d; VIRUSTOTAL_REQUESTS_PER_MINUTE should win over its alias", c.RequestsPerMinute)
	}
}

func TestOpenCTIEnvironmentErrors(t *testing.T) {
	env := map[string]string{
		"OPENCTI_URL":                           "opencti:8080",
		"OPENCTI_TOKEN":                         "ChangeMe",
		"OPENCTI_CUSTOM_HEADERS":                "X-Auth hdr-secret-1",
		"CONNECTOR_ID":                          "ChangeMe",
		"CONNECTOR_SCOPE":                       " , ",
		"CONNECTOR_AUTO":                        "maybe",
		"CONNECTOR_ENRICHMENT_RESOLUTION":       "full",
		"CONNECTOR_LOG_LEVEL":                   "trace",
		"CONNECTOR_QUEUE_PROTOCOL":              "http",
		"CONNECTOR_LISTEN_PROTOCOL":             "HTTP",
		"CONNECTOR_METRICS_PORT":                "0",
		"MQ_PORT":                               "abc",
		"MQ_USE_SSL":                            "sometimes",
		"VIRUSTOTAL_URL":                        "ftp://vt",
		"VIRUSTOTAL_TIMEOUT":                    "fast",
		"VIRUSTOTAL_REQUESTS_PER_DAY":           "-1",
		"VIRUSTOTAL_MAX_TLP":                    "TLP:BLUE",
		"FILE_INDICATOR_CREATE_POSITIVES":       "ten",
		"VIRUSTOTAL_IP_INDICATOR_VALID_MINUTES": "0",
		"VIRUSTOTAL_URL_INDICATOR_DETECT":       "yep",
		"VTCONNECTOR_DATABASE_URL":              "redis://cache:6379",
		"VTCONNECTOR_CONCURRENCY":               "100",
		"VTCONNECTOR_HTTP_ADDR":                 "localhost",
	}
	c, _, err := ParseOpenCTI(env, nil, "")
	if c != nil {
		t.Errorf("config = %+v, want nil", c)
	}
	want := []string{
		`OPENCTI_URL "opencti:8080": must start with http:// or https://`,
		`OPENCTI_TOKEN: still the sample configuration's placeholder ChangeMe`,
		`OPENCTI_CUSTOM_HEADERS: must be NAME:VALUE pairs separated by ;`,
		`CONNECTOR_ID "ChangeMe": not a UUID (generate one with uuidgen)`,
		`CONNECTOR_SCOPE ",": must name at least one entity type`,
		`CONNECTOR_AUTO "maybe": not a boolean (use true/false, yes/no, on/off or 1/0)`,
		`CONNECTOR_ENRICHMENT_RESOLUTION "full": must be one of none, stix_bundle, deferred`,
		`CONNECTOR_LOG_LEVEL "trace": must be one of debug, info, warn, error`,
		`CONNECTOR_QUEUE_PROTOCOL "http": must be one of amqp, api`,
		`CONNECTOR_LISTEN_PROTOCOL "HTTP": must be one of AMQP, API`,
		`CONNECTOR_METRICS_PORT "0": must be between 1 and 65535`,
		`MQ_PORT "abc": not an integer`,
		`MQ_USE_SSL "sometimes": not a boolean (use true/false, yes/no, on/off or 1/0)`,
		`VIRUSTOTAL_TOKEN (virustotal.token): required`,
		`VIRUSTOTAL_URL "ftp://vt": scheme must be http or https`,
		`VIRUSTOTAL_TIMEOUT "fast": not a number of seconds or a Go duration like 90s`,
		`VIRUSTOTAL_REQUESTS_PER_DAY "-1": must not be negative`,
		`VIRUSTOTAL_MAX_TLP "TLP:BLUE": must be one of TLP:CLEAR, TLP:WHITE, TLP:GREEN, TLP:AMBER, TLP:AMBER+STRICT, TLP:RED`,
		`FILE_INDICATOR_CREATE_POSITIVES "ten": not an integer`,
		`VIRUSTOTAL_IP_INDICATOR_VALID_MINUTES "0": must be at least 1`,
		`VIRUSTOTAL_URL_INDICATOR_DETECT "yep": not a boolean (use true/false, yes/no, on/off or 1/0)`,
		`VTCONNECTOR_DATABASE_URL "redis://cache:6379": unsupported scheme "redis": use a file path, sqlite://PATH, file:PATH or postgres://USER:PASSWORD@HOST/DB`,
		`VTCONNECTOR_CONCURRENCY "100": must be between 1 and 64`,
		`VTCONNECTOR_HTTP_ADDR "localhost": must be HOST:PORT, :PORT or off`,
	}
	if diff := cmp.Diff(want, errLines(err)); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}

func TestOpenCTIYAMLErrorsNameTheFileAndPath(t *testing.T) {
	const bad = `opencti:
  url: ftp://opencti
connector:
  id: 42
  scope: {a: 1}
  auto: maybe
virustotal:
  token: ChangeMe
  max_tlp: [TLP:RED]
  file_indicator_create_positives: 2.5
`
	_, _, err := ParseOpenCTI(nil, []byte(bad), "/etc/vtconnector/config.yml")
	want := []string{
		`/etc/vtconnector/config.yml: opencti.url (OPENCTI_URL) "ftp://opencti": scheme must be http or https`,
		`OPENCTI_TOKEN (opencti.token): required`,
		`/etc/vtconnector/config.yml: connector.id (CONNECTOR_ID) "42": not a UUID (generate one with uuidgen)`,
		`/etc/vtconnector/config.yml: connector.scope (CONNECTOR_SCOPE): must be a value, not a mapping`,
		`/etc/vtconnector/config.yml: connector.auto (CONNECTOR_AUTO) "maybe": not a boolean (use true/false, yes/no, on/off or 1/0)`,
		`/etc/vtconnector/config.yml: virustotal.token (VIRUSTOTAL_TOKEN): still the sample configuration's placeholder ChangeMe`,
		`/etc/vtconnector/config.yml: virustotal.max_tlp (VIRUSTOTAL_MAX_TLP) ["TLP:RED"]: must be a single value, not a list`,
		`/etc/vtconnector/config.yml: virustotal.file_indicator_create_positives (VIRUSTOTAL_FILE_INDICATOR_CREATE_POSITIVES) "2.5": not an integer`,
	}
	if diff := cmp.Diff(want, errLines(err)); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}

func TestOpenCTIYAMLStructureErrors(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"not YAML", "opencti: [\n", "config.yml: not valid YAML: "},
		{"not a mapping", "- a\n- b\n", "config.yml: must be a mapping of sections (opencti:, connector:, virustotal:, mq:, vtconnector:)"},
		{"section not a mapping", "opencti: http://x\n", "config.yml: opencti: must be a mapping of keys"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ParseOpenCTI(requiredEnv(), []byte(tt.yaml), "config.yml")
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error = %v, want prefix %q", err, tt.want)
			}
		})
	}
	for _, empty := range []string{"", "# nothing\n", "~\n", "opencti:\n"} {
		if _, _, err := ParseOpenCTI(requiredEnv(), []byte(empty), "config.yml"); err != nil {
			t.Errorf("ParseOpenCTI(%q): %v", empty, err)
		}
	}
}

func TestOpenCTIWarnings(t *testing.T) {
	env := with(requiredEnv(),
		"CONNECTOR_CONFIDENCE_LEVEL", "50",
		"CONNECTOR_UPDATE_EXISTING_DATA", "true",
		"CONNECTOR_TYPE", "EXTERNAL_IMPORT",
		"CONNECTOR_SCOPE", "file,Url,ip",
		"CONNECTOR_LIVE_STREAM_ID", "live",
		"CONNECTOR_EXPOSE_METRICS", "true",
		"VTCONNECTOR_HTTP_ADDR", "off",
		"VIRUSTOTAL_GTI_ENRICHMENT_ENABLED", "true",
		"VIRUSTOTAL_MAX_TLP", "TLP:GREEN",
		"VIRUSTOTAL_TOKN", "vt-typo-secret",
		"OPENCTI_UNKNOWN", "x",
		"MQ_SOMETHING", "x",
		"UNRELATED", "x",
	)
	yml := `connector:
  confidence_level: 50
  duration_period: PT1H
virustotal:
  gti_include_reports: true
  file_indicator_config: {threshold: 1}
  tokn: x
extra:
  x: 1
`
	_, warns, err := ParseOpenCTI(env, []byte(yml), "config.yml")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"config.yml: unknown section extra; ignored",
		`CONNECTOR_TYPE "EXTERNAL_IMPORT": vtconnector is an internal-enrichment connector; registered as INTERNAL_ENRICHMENT`,
		`CONNECTOR_SCOPE "file,Url,ip": file, ip: not entity types vtconnector enriches (StixFile, Artifact, IPv4-Addr, Domain-Name, Hostname, Url, Indicator)`,
		"CONNECTOR_CONFIDENCE_LEVEL is deprecated since OpenCTI 6.0 and ignored: the platform applies the connector user's confidence level",
		"CONNECTOR_LIVE_STREAM_ID applies to stream connectors only; ignored",
		"CONNECTOR_UPDATE_EXISTING_DATA is a legacy setting pycti no longer reads; ignored",
		"unknown variable OPENCTI_UNKNOWN; ignored",
		"VIRUSTOTAL_GTI_ENRICHMENT_ENABLED is not supported by vtconnector (Google Threat Intelligence); ignored",
		"unknown variable VIRUSTOTAL_TOKN; ignored (did you mean VIRUSTOTAL_TOKEN?)",
		"config.yml: connector.confidence_level is deprecated since OpenCTI 6.0 and ignored: the platform applies the connector user's confidence level",
		"config.yml: connector.duration_period applies to scheduled import connectors only; ignored",
		"config.yml: virustotal.file_indicator_config is not supported; use the *_INDICATOR_CREATE_POSITIVES, _VALID_MINUTES and _DETECT options; ignored",
		"config.yml: virustotal.gti_include_reports is not supported by vtconnector (Google Threat Intelligence); ignored",
		"config.yml: unknown key virustotal.tokn; ignored (did you mean virustotal.token?)",
		"CONNECTOR_EXPOSE_METRICS is true but VTCONNECTOR_HTTP_ADDR is off: no metrics are served",
	}
	if diff := cmp.Diff(want, messages(warns)); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}

func TestOpenCTIComputedDefaults(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		database string
		httpAddr string
	}{
		{"XDG cache directory", map[string]string{"XDG_CACHE_HOME": "/var/cache/u", "HOME": "/home/u"}, "/var/cache/u/vtconnector/vtconnector.db", "127.0.0.1:9095"},
		{"home cache directory", map[string]string{"HOME": "/home/u"}, "/home/u/.cache/vtconnector/vtconnector.db", "127.0.0.1:9095"},
		{"no home: working directory", map[string]string{"XDG_CACHE_HOME": "relative"}, "vtconnector.db", "127.0.0.1:9095"},
		{"exposed metrics listen on every interface", map[string]string{"CONNECTOR_EXPOSE_METRICS": "true", "CONNECTOR_METRICS_PORT": "9500"}, "vtconnector.db", ":9500"},
		{"metrics port moves the local status server", map[string]string{"CONNECTOR_METRICS_PORT": "9501"}, "vtconnector.db", "127.0.0.1:9501"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := requiredEnv()
			for k, v := range tt.env {
				env[k] = v
			}
			c, _, err := ParseOpenCTI(env, nil, "")
			if err != nil {
				t.Fatal(err)
			}
			if c.DatabaseURL.Reveal() != tt.database || c.HTTPAddr != tt.httpAddr {
				t.Errorf("DatabaseURL, HTTPAddr = %q, %q; want %q, %q", c.DatabaseURL.Reveal(), c.HTTPAddr, tt.database, tt.httpAddr)
			}
		})
	}
}

func TestOpenCTIValueForms(t *testing.T) {
	tests := []struct {
		name  string
		env   []string
		check func(*OpenCTI) bool
	}{
		{"TLP in any case", []string{"VIRUSTOTAL_MAX_TLP", "tlp:amber+strict"}, func(c *OpenCTI) bool { return c.MaxTLP == "TLP:AMBER+STRICT" }},
		{"TLP:WHITE accepted", []string{"VIRUSTOTAL_MAX_TLP", "TLP:WHITE"}, func(c *OpenCTI) bool { return c.MaxTLP == "TLP:WHITE" }},
		{"pycti booleans", []string{"CONNECTOR_AUTO", "True", "OPENCTI_SSL_VERIFY", "YES", "CONNECTOR_SEND_TO_QUEUE", "False"},
			func(c *OpenCTI) bool { return c.Auto && c.SSLVerify && !c.SendToQueue }},
		{"log level warn", []string{"CONNECTOR_LOG_LEVEL", "warn"}, func(c *OpenCTI) bool { return c.LogLevel == slog.LevelWarn }},
		{"scope de-duplicated and canonical", []string{"CONNECTOR_SCOPE", "url,Url,HOSTNAME,indicator"},
			func(c *OpenCTI) bool { return cmp.Equal(c.Scope, []string{"Url", "Hostname", "Indicator"}) }},
		{"v2 VirusTotal URL mapped to v3", []string{"VIRUSTOTAL_URL", "https://www.virustotal.com/vtapi/v2/"},
			func(c *OpenCTI) bool { return c.VTURL == DefaultVirusTotalURL }},
		{"HTTP address off", []string{"VTCONNECTOR_HTTP_ADDR", "OFF"}, func(c *OpenCTI) bool { return c.HTTPAddr == "" }},
		{"HTTP address port only", []string{"VTCONNECTOR_HTTP_ADDR", ":9300"}, func(c *OpenCTI) bool { return c.HTTPAddr == ":9300" }},
		{"MQ_USE_SSL false is kept apart from unset", []string{"MQ_USE_SSL", "false"}, func(c *OpenCTI) bool { return c.MQ.UseSSL != nil && !*c.MQ.UseSSL }},
		{"surrounding spaces are ignored", []string{"VTCONNECTOR_CONCURRENCY", " 3 "}, func(c *OpenCTI) bool { return c.Concurrency == 3 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := ParseOpenCTI(with(requiredEnv(), tt.env...), nil, "")
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Errorf("unexpected config: %+v", c)
			}
		})
	}
}

func TestOpenCTISecretsNeverPrinted(t *testing.T) {
	secrets := map[string]string{
		"OPENCTI_TOKEN":            "octi-SECRET-1",
		"VIRUSTOTAL_TOKEN":         "vt-SECRET-2",
		"MQ_PASS":                  "mq-SECRET-3",
		"MQ_USE_SSL_KEY":           "key-SECRET-4",
		"MQ_USE_SSL_PASSPHRASE":    "phrase-SECRET-5",
		"OPENCTI_CUSTOM_HEADERS":   "Authorization:Bearer hdr-SECRET-6",
		"VTCONNECTOR_DATABASE_URL": "postgres://vtc:db-SECRET-7@db/vtc",
	}
	env := with(requiredEnv(), "VIRUSTOTAL_GTI_API_KEY", "gti-SECRET-8", "VIRUSTOTAL_APIKEY", "typo-SECRET-9")
	for k, v := range secrets {
		env[k] = v
	}
	leaks := []string{"SECRET-1", "SECRET-2", "SECRET-3", "SECRET-4", "SECRET-5", "SECRET-6", "SECRET-7", "SECRET-8", "SECRET-9"}

	c, warns, err := ParseOpenCTI(env, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	outputs := []string{fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), string(js), fmt.Sprint(messages(warns))}
	for _, s := range c.Redacted() {
		outputs = append(outputs, s.Key+"="+s.Value+" "+s.Origin)
	}

	// Mistakes next to the secrets: the messages name keys, not values.
	bad := with(env, "OPENCTI_CUSTOM_HEADERS", "Authorization Bearer hdr-SECRET-6", "VTCONNECTOR_DATABASE_URL", "mysql://vtc:db-SECRET-7@db/vtc", "CONNECTOR_ID", "x")
	_, badWarns, badErr := ParseOpenCTI(bad, []byte("virustotal:\n  token: ChangeMe\nmq:\n  pass: [mq-SECRET-3]\n"), "config.yml")
	if badErr == nil {
		t.Fatal("no error for a bad configuration")
	}
	outputs = append(outputs, badErr.Error(), fmt.Sprint(messages(badWarns)))
	for _, out := range outputs {
		for _, s := range leaks {
			if strings.Contains(out, s) {
				t.Errorf("secret %q printed in %q", s, out)
			}
		}
	}
	if c.Token.Reveal() != "octi-SECRET-1" || c.VTToken.Reveal() != "vt-SECRET-2" || c.CustomHeaders[0].Value.Reveal() != "Bearer hdr-SECRET-6" {
		t.Error("Reveal does not return the configured secrets")
	}
}

func TestLoadOpenCTI(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(path, []byte("virustotal:\n  max_tlp: TLP:PURPLE\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := LoadOpenCTI(requiredEnv(), path)
	want := path + `: virustotal.max_tlp (VIRUSTOTAL_MAX_TLP) "TLP:PURPLE": must be one of TLP:CLEAR, TLP:WHITE, TLP:GREEN, TLP:AMBER, TLP:AMBER+STRICT, TLP:RED`
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %q", err, want)
	}

	empty := filepath.Join(dir, "empty.yml")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOpenCTI(requiredEnv(), empty); err != nil {
		t.Errorf("empty config.yml: %v", err)
	}
	if _, _, err := LoadOpenCTI(requiredEnv(), ""); err != nil {
		t.Errorf("no config.yml: %v", err)
	}
	_, _, err = LoadOpenCTI(requiredEnv(), filepath.Join(dir, "missing.yml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: error = %v, want fs.ErrNotExist", err)
	}
}

func TestEnvMap(t *testing.T) {
	got := EnvMap([]string{"A=1", "B=x=y", "C=", "NOEQUALS"})
	want := map[string]string{"A": "1", "B": "x=y", "C": ""}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("EnvMap (-want +got):\n%s", diff)
	}
}

// loaderDefaults are the defaults the original connector's config loader
// sets where the seed's README says otherwise (OpenCTI-Platform/connectors
// @a2681ba8, internal-enrichment/virustotal: src/virustotal/models/configs/
// virustotal_configs.py and __metadata__/CONNECTOR_CONFIG_DOC.md agree).
var loaderDefaults = map[string]string{
	"FILE_IMPORT_YARA":         "true",
	"IP_ADD_RELATIONSHIPS":     "false",
	"DOMAIN_ADD_RELATIONSHIPS": "false",
}

// seedRow is one row of the seed README's option tables.
type seedRow struct{ param, env, mandatory, def string }

var (
	seedRowPattern     = regexp.MustCompile("^\\|\\s*`([a-z_]+)`\\s*\\|\\s*`([A-Z_]+)`\\s*\\|\\s*(Yes|No)\\s*\\|(.*)\\|\\s*$")
	seedDefaultPattern = regexp.MustCompile("\\(default: `([^`]*)`\\)")
)

// TestOpenCTISeedTables is a fidelity test: it checks every variable of the seed's tables
// (../shared/seeds/003_*.txt): it is read, under the documented config.yml
// name, and its documented default is the loaded default.
func TestOpenCTISeedTables(t *testing.T) {
	matches, _ := filepath.Glob("../../../shared/seeds/003_*.txt")
	if len(matches) == 0 {
		t.Skip("fidelity test: the original connector's README (../shared/seeds/003_*.txt) is absent; it lives outside the repository")
	}
	data, err := os.ReadFile(matches[0])
	if err != nil {
		t.Fatal(err)
	}
	var rows []seedRow
	for line := range strings.Lines(string(data)) {
		m := seedRowPattern.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		r := seedRow{param: m[1], env: m[2], mandatory: m[3]}
		if d := seedDefaultPattern.FindStringSubmatch(m[4]); d != nil {
			r.def = d[1]
		}
		rows = append(rows, r)
	}
	if len(rows) < 20 {
		t.Fatalf("found %d rows in the seed's tables; the table format changed?", len(rows))
	}

	c, _, err := ParseOpenCTI(requiredEnv(), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]string{}
	for _, s := range c.Redacted() {
		values[s.Key] = s.Value
	}
	opts := OpenCTIOptions()
	defaults := 0
	for _, r := range rows {
		var opt *Option
		for i := range opts {
			if opts[i].Env == r.env || opts[i].Env == "VIRUSTOTAL_"+r.env || contains(opts[i].EnvAliases, r.env) {
				opt = &opts[i]
			}
		}
		if opt == nil {
			if ignoredWhy(r.env) == "" {
				t.Errorf("seed variable %s is neither read nor knowingly ignored", r.env)
			}
			continue
		}
		if yamlName := strings.Replace(opt.YAML, ".", "_", 1); yamlName != r.param && opt.YAML != "virustotal."+r.param {
			t.Errorf("%s: config.yml path %s does not match the seed's %s", r.env, opt.YAML, r.param)
		}
		if r.mandatory == "Yes" && !opt.Required && opt.Default == "" {
			t.Errorf("%s: mandatory in the seed but neither required nor defaulted", r.env)
		}
		if r.def == "" {
			continue
		}
		if d, ok := loaderDefaults[r.env]; ok {
			r.def = d // the original's code, not the seed's README, decides
		}
		defaults++
		if got := values[opt.Env]; got != r.def {
			t.Errorf("%s: loaded default %q, the seed documents %q", r.env, got, r.def)
		}
		if opt.Default != r.def {
			t.Errorf("%s: documented default %q, the seed documents %q", r.env, opt.Default, r.def)
		}
	}
	if defaults < 18 {
		t.Errorf("compared %d documented defaults, want at least 18", defaults)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestOpenCTIDeliveryTimeoutStaysUnderRabbitMQsConsumerTimeout(t *testing.T) {
	c, _, err := ParseOpenCTI(with(requiredEnv(), "VTCONNECTOR_DELIVERY_TIMEOUT", "90s"), nil, "")
	if err != nil || c.DeliveryTimeout != 90*time.Second {
		t.Fatalf("90s: %v, %v", c, err)
	}
	for _, v := range []string{"30m", "0", "-5"} {
		if _, _, err := ParseOpenCTI(with(requiredEnv(), "VTCONNECTOR_DELIVERY_TIMEOUT", v), nil, ""); err == nil || !strings.Contains(err.Error(), "VTCONNECTOR_DELIVERY_TIMEOUT") {
			t.Errorf("%s: error %v, want one naming VTCONNECTOR_DELIVERY_TIMEOUT", v, err)
		}
	}
}

func TestOpenCTISettingsHonouredOrRefused(t *testing.T) {
	if _, _, err := ParseOpenCTI(with(requiredEnv(), "CONNECTOR_VALIDATE_BEFORE_IMPORT", "true"), nil, ""); err == nil || !strings.Contains(err.Error(), "CONNECTOR_VALIDATE_BEFORE_IMPORT") {
		t.Errorf("CONNECTOR_VALIDATE_BEFORE_IMPORT=true: error %v, want a refusal naming it", err)
	}
	if _, _, err := ParseOpenCTI(with(requiredEnv(), "CONNECTOR_LISTEN_PROTOCOL", "api", "CONNECTOR_LISTEN_PROTOCOL_API_SSL", "true"), nil, ""); err == nil || !strings.Contains(err.Error(), "LISTEN_PROTOCOL_API_SSL_CERT") {
		t.Errorf("API listen over TLS without a certificate: error %v", err)
	}
	c, _, err := ParseOpenCTI(requiredEnv(), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range c.Redacted() {
		if s.Status == "" {
			t.Errorf("%s has no status", s.Key)
		}
		if s.Key == "CONNECTOR_VALIDATE_BEFORE_IMPORT" && !strings.Contains(s.Status, "refused") {
			t.Errorf("%s: status %q", s.Key, s.Status)
		}
	}
}

func TestCredentialsInURLsNeverShow(t *testing.T) {
	env := map[string]string{
		"OPENCTI_URL": "https://admin:pl4tform-pw@opencti.example:8443", "OPENCTI_TOKEN": "t0ken-value", "CONNECTOR_ID": "5d4e7a4b-0b1c-4a8e-9d7c-3f2a1b0c9e8d",
		"VIRUSTOTAL_TOKEN": "vt-key-value", "VIRUSTOTAL_URL": "https://u:pr0xy-pw@proxy.example/api/v3",
	}
	c, _, err := LoadOpenCTI(env, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range c.Redacted() {
		if strings.Contains(s.Value, "pl4tform-pw") || strings.Contains(s.Value, "pr0xy-pw") {
			t.Errorf("%s=%s shows a password", s.Key, s.Value)
		}
	}
	if c.URL != "https://admin:pl4tform-pw@opencti.example:8443" {
		t.Errorf("the platform URL lost its credentials: %q", c.URL)
	}
	env["OPENCTI_URL"] = "ftp://admin:pl4tform-pw@opencti.example"
	if _, _, err := LoadOpenCTI(env, ""); err == nil || strings.Contains(err.Error(), "pl4tform-pw") {
		t.Errorf("error %v: want a refusal that does not show the password", err)
	}
}

func TestOpenCTISSLVerifyTakesABooleanOrACABundle(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		value  string
		verify bool
		ca     string
		bad    bool
	}{
		{"true", true, "", false}, {"false", false, "", false}, {ca, true, ca, false}, {"/no/such/ca.pem", false, "", true},
	} {
		c, _, err := ParseOpenCTI(with(requiredEnv(), "OPENCTI_SSL_VERIFY", tc.value), nil, "")
		if tc.bad {
			if err == nil || !strings.Contains(err.Error(), "OPENCTI_SSL_VERIFY") {
				t.Errorf("%s: error %v, want one naming OPENCTI_SSL_VERIFY", tc.value, err)
			}
			continue
		}
		if err != nil || c.SSLVerify != tc.verify || c.SSLCAFile != tc.ca {
			t.Errorf("%s: verify %v, CA %q, error %v", tc.value, c != nil && c.SSLVerify, func() string {
				if c == nil {
					return ""
				}
				return c.SSLCAFile
			}(), err)
		}
	}
}
