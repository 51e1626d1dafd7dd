package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// exampleConf is the original connector's connector.conf.example as the
// reference describes it (§2 and §9): listener_port=4000,
// listener_address=0.0.0.0, feed_host=127.0.0.1, an empty Cb token, the
// PASSWORD placeholder, the v2 virustotal_url, days_rescan=365 without
// rescan_window, commented-out thread and upload lines, and the
// binary_filter_query example.
const exampleConf = `[bridge]

;
; core configuration options
;

;
; listener_port
; port to listen for incoming feed requests
;
listener_port=4000

;
; listener_address
; ipv4 address to listen; defaults to 127.0.0.1
; 0.0.0.0 binds to all interfaces
;
listener_address=0.0.0.0

;
; feed_host
; the IP address of this machine for Cb to contact with feed requests
;
feed_host=127.0.0.1

;
; Carbon Black Enterprise Server options
;
carbonblack_server_url=https://127.0.0.1/
carbonblack_server_token=
carbonblack_server_sslverify=0

;
; VirusTotal options
;
virustotal_api_token=PASSWORD
virustotal_url=https://www.virustotal.com/vtapi/v2/file/

;
; number of threads doing hash lookups, and of threads allowed to upload
;
;virustotal_quick_scan_threads=2
;virustotal_deep_scan_threads=0

;
; WARNING: uploads full binaries to VirusTotal
;
;submit_full_binaries=1

;
; re-analyse binaries whose analysis is older than this many days
;
days_rescan=365

;
; extra Carbon Black binary search terms
;
binary_filter_query=is_executable_image:true -(digsig_publisher:"Microsoft Corporation" and digsig_result:"Signed")

;
; import reports of old versions
;
;legacy_feed_directory=/usr/share/cb/integrations/virustotal/feeds
`

const (
	testCbToken = "cb-token-9f8e7d6c5b4a"
	testVTKey   = "vt-key-0123456789abcdef"
)

// filledExample is the example with the two credentials set, as the
// README tells the operator to do.
func filledExample() string {
	s := strings.Replace(exampleConf, "carbonblack_server_token=\n", "carbonblack_server_token="+testCbToken+"\n", 1)
	return strings.Replace(s, "virustotal_api_token=PASSWORD", "virustotal_api_token="+testVTKey, 1)
}

func messages(ws []Warning) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.Message
	}
	return out
}

func errLines(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

func TestCarbonBlackExampleAsShippedIsRejected(t *testing.T) {
	c, warns, err := ParseCarbonBlack([]byte(exampleConf), "connector.conf")
	if c != nil {
		t.Errorf("config = %+v, want nil", c)
	}
	wantErrs := []string{
		`connector.conf: carbonblack_server_token: required`,
		`connector.conf: virustotal_api_token: still the sample configuration's placeholder PASSWORD`,
	}
	if diff := cmp.Diff(wantErrs, errLines(err)); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	wantWarns := []string{
		`connector.conf: virustotal_url "https://www.virustotal.com/vtapi/v2/file/": a VirusTotal API v2 URL; vtconnector speaks API v3 and uses https://www.virustotal.com/api/v3`,
		`connector.conf: listener_address 0.0.0.0: the feed server accepts connections on every interface without authentication (the original default); use 127.0.0.1 when Carbon Black runs on this host, or set feed_username and feed_password`,
	}
	if diff := cmp.Diff(wantWarns, messages(warns)); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}

func TestCarbonBlackExampleWithCredentials(t *testing.T) {
	c, warns, err := ParseCarbonBlack([]byte(filledExample()), "connector.conf")
	if err != nil {
		t.Fatal(err)
	}
	want := &CarbonBlack{
		Source:                      "connector.conf",
		ServerURL:                   "https://127.0.0.1",
		ServerToken:                 testCbToken,
		ServerSSLVerify:             false,
		ServerTimeout:               120 * time.Second,
		BinaryFilterQuery:           `is_executable_image:true -(digsig_publisher:"Microsoft Corporation" and digsig_result:"Signed")`,
		MaxBinarySize:               10485760,
		PollPageSize:                100,
		SleepBetweenBatches:         30 * time.Second,
		BackfillSleepBetweenBatches: 30 * time.Second,
		DaysRescan:                  365,
		VTAPIToken:                  testVTKey,
		VTURL:                       "https://www.virustotal.com/api/v3",
		VTTimeout:                   60 * time.Second,
		RequestsPerMinute:           4,
		RequestsPerDay:              500,
		RequestsPerMonth:            15500,
		QuickScanThreads:            2,
		DeepScanThreads:             0,
		SubmitFullBinaries:          false,
		RescanWindow:                0,
		UploadMode:                  "public",
		UploadFileTypes:             []string{"pe", "elf", "macho"},
		AnalysisWait:                2 * time.Hour,
		ListenerPort:                4000,
		ListenerAddress:             "0.0.0.0",
		FeedHost:                    "127.0.0.1",
		RegisterFeed:                true,
		FeedMinPositives:            1,
		DatabaseURL:                 "/var/lib/vtconnector/carbonblack.db",
		LegacyDatabase:              "/usr/share/cb/integrations/virustotal/db/sqlite.db",
		LogFile:                     "/var/log/cb/integrations/virustotal/virustotal.log",
		LogLevel:                    slog.LevelInfo,
	}
	if diff := cmp.Diff(want, c, cmpopts.IgnoreUnexported(CarbonBlack{})); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if len(warns) != 2 {
		t.Errorf("warnings = %q, want the v2 URL and listener_address ones", messages(warns))
	}
	derived := map[string]string{
		"FeedURL":     c.FeedURL(),
		"FeedBaseURL": c.FeedBaseURL(),
		"LinkBaseURL": c.LinkBaseURL(),
		"ListenAddr":  c.ListenAddr(),
	}
	wantDerived := map[string]string{
		"FeedURL":     "http://127.0.0.1:4000/feed.json",
		"FeedBaseURL": "http://127.0.0.1:4000",
		"LinkBaseURL": "http://127.0.0.1:4000",
		"ListenAddr":  "0.0.0.0:4000",
	}
	if diff := cmp.Diff(wantDerived, derived); diff != "" {
		t.Errorf("derived values (-want +got):\n%s", diff)
	}
	if c.UploadsEnabled() || c.TLS() || c.FeedAuth() {
		t.Errorf("UploadsEnabled, TLS, FeedAuth = %v, %v, %v; want all false", c.UploadsEnabled(), c.TLS(), c.FeedAuth())
	}
}

func TestCarbonBlackRedactedDump(t *testing.T) {
	c, _, err := ParseCarbonBlack([]byte(filledExample()+"feed_username=cb\nfeed_password=feedpw-77\n"), "connector.conf")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range c.Redacted() {
		got = append(got, fmt.Sprintf("%s=%s (%s)", s.Key, s.Value, s.Origin))
	}
	want := []string{
		"carbonblack_server_url=https://127.0.0.1 (connector.conf)",
		"carbonblack_server_token=[redacted] (connector.conf)",
		"carbonblack_server_sslverify=false (connector.conf)",
		"carbonblack_server_ca_file= (default)",
		"cb_timeout=2m0s (default)",
		`binary_filter_query=is_executable_image:true -(digsig_publisher:"Microsoft Corporation" and digsig_result:"Signed") (connector.conf)`,
		"max_binary_size=10485760 (default)",
		"poll_page_size=100 (default)",
		"sleep_between_batches=30s (default)",
		"backfill_sleep_between_batches=30s (default)",
		"days_rescan=365 (connector.conf)",
		"virustotal_api_token=[redacted] (connector.conf)",
		"virustotal_url=https://www.virustotal.com/api/v3 (connector.conf)",
		"virustotal_timeout=1m0s (default)",
		"virustotal_requests_per_minute=4 (default)",
		"virustotal_requests_per_day=500 (default)",
		"virustotal_requests_per_month=15500 (default)",
		"virustotal_quick_scan_threads=2 (default)",
		"virustotal_deep_scan_threads=0 (default)",
		"submit_full_binaries=false (default)",
		"rescan_window=NEVER (default)",
		"virustotal_upload_mode=public (default)",
		"virustotal_upload_file_types=pe,elf,macho (default)",
		"virustotal_upload_unsigned_only=false (default)",
		"virustotal_analysis_wait=2h0m0s (default)",
		"listener_port=4000 (connector.conf)",
		"listener_address=0.0.0.0 (connector.conf)",
		"feed_host=127.0.0.1 (connector.conf)",
		"link_host_url=http://127.0.0.1:4000 (default)",
		"cert_file= (default)",
		"key_file= (default)",
		"feed_username=cb (connector.conf)",
		"feed_password=[redacted] (connector.conf)",
		"register_feed=true (default)",
		"feed_validate_server_cert=false (default)",
		"feed_use_proxy=false (default)",
		"feed_min_positives=1 (default)",
		"feed_include_sha256=false (default)",
		"listener_public_pages=false (default)",
		"database_url=/var/lib/vtconnector/carbonblack.db (default)",
		"legacy_database=/usr/share/cb/integrations/virustotal/db/sqlite.db (default)",
		"log_file=/var/log/cb/integrations/virustotal/virustotal.log (default)",
		"log_level=info (default)",
		"debug=0 (default)",
		"legacy_feed_directory= (default)",
		"use_streaming=false (default)",
		"carbonblack_streaming_host= (default)",
		"carbonblack_streaming_username= (default)",
		"carbonblack_streaming_password= (default)",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Redacted() (-want +got):\n%s", diff)
	}
}

const minimalConf = `[bridge]
carbonblack_server_url=https://cb.example.com
carbonblack_server_token=tok
virustotal_api_token=vtkey
`

func TestCarbonBlackReportsEveryProblemAtOnce(t *testing.T) {
	conf := `[bridge]
carbonblack_server_url=ftp://cb.example.com
carbonblack_server_sslverify=maybe
cb_timeout=0
virustotal_api_token=
listener_port=70000
listener_address=0.0.0.0:8080
feed_host=https://feed.example.com
link_host_url=cb.example.com
cert_file=/etc/cb/feed.pem
feed_password=hunter2-feed
virustotal_quick_scan_threads=-1
virustotal_deep_scan_threads=two
submit_full_binaries=maybe
rescan_window=12X
days_rescan=-5
sleep_between_batches=soon
max_binary_size=700000000
poll_page_size=0
virustotal_url=www.virustotal.com/api/v3
virustotal_requests_per_minute=-4
feed_min_positives=0
log_level=verbose
debug=maybe
database_url=mysql://vtc:dbpass-31@db/vtc
use_streaming=sometimes
`
	c, _, err := ParseCarbonBlack([]byte(conf), "connector.conf")
	if c != nil {
		t.Errorf("config = %+v, want nil", c)
	}
	want := []string{
		`connector.conf: carbonblack_server_url "ftp://cb.example.com": scheme must be http or https`,
		`connector.conf: carbonblack_server_token: required`,
		`connector.conf: carbonblack_server_sslverify "maybe": not a boolean (use true/false, yes/no, on/off or 1/0)`,
		`connector.conf: cb_timeout "0": must be at least 1s`,
		`connector.conf: max_binary_size "700000000": must be between 1 and 650000000`,
		`connector.conf: poll_page_size "0": must be between 1 and 10000`,
		`connector.conf: sleep_between_batches "soon": not a number of seconds or a Go duration like 90s`,
		`connector.conf: days_rescan "-5": must be between 0 and 36500`,
		`connector.conf: virustotal_api_token: required`,
		`connector.conf: virustotal_url "www.virustotal.com/api/v3": must start with http:// or https://`,
		`connector.conf: virustotal_requests_per_minute "-4": must not be negative`,
		`connector.conf: virustotal_quick_scan_threads "-1": must be between 0 and 256`,
		`connector.conf: virustotal_deep_scan_threads "two": not an integer`,
		`connector.conf: submit_full_binaries "maybe": not a boolean (use true or 1 to enable uploads, false or 0 to disable them)`,
		`connector.conf: rescan_window "12X": unit must be one of S, M, H, D, W (or NEVER, or a Go duration like 36h)`,
		`connector.conf: listener_port "70000": must be between 1 and 65535`,
		`connector.conf: listener_address "0.0.0.0:8080": must be a host name or IP address (no scheme, port or path)`,
		`connector.conf: feed_host "https://feed.example.com": must be a host name or IP address (no scheme, port or path)`,
		`connector.conf: link_host_url "cb.example.com": must start with http:// or https://`,
		`connector.conf: feed_min_positives "0": must be between 1 and 1000`,
		`connector.conf: database_url "mysql://vtc:[redacted]@db/vtc": unsupported scheme "mysql": use a file path, sqlite://PATH, file:PATH or postgres://USER:PASSWORD@HOST/DB`,
		`connector.conf: log_level "verbose": must be one of debug, info, warn, error`,
		`connector.conf: debug "maybe": not an integer (use 1 or 0)`,
		`connector.conf: use_streaming "sometimes": not a boolean (use true/false, yes/no, on/off or 1/0)`,
		`connector.conf: cert_file and key_file: set both or neither (only cert_file is set)`,
		`connector.conf: feed_username and feed_password: set both or neither (only feed_password is set)`,
	}
	if diff := cmp.Diff(want, errLines(err)); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}

func TestCarbonBlackStructuralErrors(t *testing.T) {
	tests := []struct {
		name, conf, want string
	}{
		{"missing bridge section", "[Bridge]\nlistener_port=1\n", "connector.conf: section [bridge] is missing (found [Bridge]; section names are case-sensitive)"},
		{"empty file", "", "connector.conf: section [bridge] is missing"},
		{"not INI", "[bridge\nlistener_port=1\n", "connector.conf: not a valid INI file: "},
		{"both thread counts zero", minimalConf + "virustotal_quick_scan_threads=0\n",
			"connector.conf: virustotal_quick_scan_threads and virustotal_deep_scan_threads are both 0: nothing would be looked up"},
		{"only key_file", minimalConf + "key_file=/k.pem\n", "connector.conf: cert_file and key_file: set both or neither (only key_file is set)"},
		{"only feed_username", minimalConf + "feed_username=cb\n", "connector.conf: feed_username and feed_password: set both or neither (only feed_username is set)"},
		{"all required keys empty", "[bridge]\ncarbonblack_server_url=\n", "connector.conf: carbonblack_server_url: required\nconnector.conf: carbonblack_server_token: required\nconnector.conf: virustotal_api_token: required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ParseCarbonBlack([]byte(tt.conf), "connector.conf")
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestCarbonBlackWarnings(t *testing.T) {
	conf := `[bridge]
carbonblack_server_url=https://cb.example.com/
carbonblack_server_token=tok
virustotal_api_token=vtkey
listener_address=127.0.0.1
days_rescan=0
submit_full_binaries=yes
virustotal_deep_scan_threads=1
rescan_window=90M
log_level=warning
debug=true
legacy_feed_directory=/usr/share/cb/integrations/virustotal/feeds
use_streaming=0
carbonblack_streaming_password=stream-pw-55
virustotal_quick_scan_thread=4
colour=blue

[extra]
x=1
`
	c, warns, err := ParseCarbonBlack([]byte(conf), "connector.conf")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`connector.conf: section [extra] is not used (only [bridge] is); ignored`,
		`connector.conf: days_rescan "0": 0 means never re-analyse (the original re-analysed every binary continuously)`,
		`connector.conf: submit_full_binaries "yes": only true or 1 enable uploads (as in the original connector); uploads stay disabled`,
		`connector.conf: rescan_window "90M": M means minutes, not months (1h30m0s)`,
		`connector.conf: debug "true": the original connector expects 1 or 0 and would not start; read as 1`,
		`connector.conf: legacy_feed_directory is not supported (the one-time import of old JSON reports was dropped); ignored`,
		`connector.conf: use_streaming is unused (the original ignored it too); ignored`,
		`connector.conf: carbonblack_streaming_password is unused (the original ignored it too); ignored`,
		`connector.conf: unknown key "colour" in [bridge]; ignored`,
		`connector.conf: unknown key "virustotal_quick_scan_thread" in [bridge]; ignored (did you mean virustotal_quick_scan_threads?)`,
		`connector.conf: virustotal_deep_scan_threads=1 but submit_full_binaries is off: no binary will be uploaded to VirusTotal (as in the original)`,
		`connector.conf: debug=1 is overridden by log_level=warn`,
	}
	if diff := cmp.Diff(want, messages(warns)); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	if c.SubmitFullBinaries || c.UploadsEnabled() {
		t.Error("submit_full_binaries=yes enabled uploads; the original treats yes as false")
	}
	if c.RescanWindow != 90*time.Minute || c.DaysRescan != 0 || !c.Debug || c.LogLevel != slog.LevelWarn {
		t.Errorf("RescanWindow, DaysRescan, Debug, LogLevel = %v, %v, %v, %v", c.RescanWindow, c.DaysRescan, c.Debug, c.LogLevel)
	}
}

func TestCarbonBlackUploadsNeedBothSwitches(t *testing.T) {
	tests := []struct {
		conf    string
		uploads bool
		warning string
	}{
		{"submit_full_binaries=1\nvirustotal_deep_scan_threads=2\n", true,
			"connector.conf: submit_full_binaries=1 and virustotal_deep_scan_threads=2: binaries unknown to VirusTotal will be uploaded, and VirusTotal's community can download them"},
		{"submit_full_binaries=TRUE\nvirustotal_deep_scan_threads=1\n", true,
			"connector.conf: submit_full_binaries=1 and virustotal_deep_scan_threads=1: binaries unknown to VirusTotal will be uploaded, and VirusTotal's community can download them"},
		{"submit_full_binaries=1\n", false, ""},
		{"submit_full_binaries=on\nvirustotal_deep_scan_threads=1\n", false,
			"connector.conf: virustotal_deep_scan_threads=1 but submit_full_binaries is off: no binary will be uploaded to VirusTotal (as in the original)"},
	}
	for _, tt := range tests {
		c, warns, err := ParseCarbonBlack([]byte(minimalConf+"listener_address=127.0.0.1\n"+tt.conf), "connector.conf")
		if err != nil {
			t.Fatal(err)
		}
		if c.UploadsEnabled() != tt.uploads {
			t.Errorf("%q: UploadsEnabled() = %v, want %v", tt.conf, c.UploadsEnabled(), tt.uploads)
		}
		if tt.warning != "" && !strings.Contains(strings.Join(messages(warns), "\n"), tt.warning) {
			t.Errorf("%q: warnings %q lack %q", tt.conf, messages(warns), tt.warning)
		}
	}
}

func TestCarbonBlackDerivedURLs(t *testing.T) {
	tests := []struct {
		name, extra           string
		feedURL, listen, link string
	}{
		{"defaults", "", "http://127.0.0.1:8080/feed.json", "0.0.0.0:8080", "http://127.0.0.1:8080"},
		{"TLS when cert and key are set", "cert_file=/c.pem\nkey_file=/k.pem\nfeed_host=cbfeed.example.com\nlistener_port=4443\n",
			"https://cbfeed.example.com:4443/feed.json", "0.0.0.0:4443", "https://cbfeed.example.com:4443"},
		{"IPv6 feed host", "feed_host=fd00::5\nlistener_address=::1\n", "http://[fd00::5]:8080/feed.json", "[::1]:8080", "http://[fd00::5]:8080"},
		{"link_host_url for a reverse proxy", "link_host_url=https://proxy.example.com/vt/\n",
			"http://127.0.0.1:8080/feed.json", "0.0.0.0:8080", "https://proxy.example.com/vt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := ParseCarbonBlack([]byte(minimalConf+tt.extra), "connector.conf")
			if err != nil {
				t.Fatal(err)
			}
			got := []string{c.FeedURL(), c.ListenAddr(), c.LinkBaseURL()}
			if diff := cmp.Diff([]string{tt.feedURL, tt.listen, tt.link}, got); diff != "" {
				t.Errorf("FeedURL, ListenAddr, LinkBaseURL (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCarbonBlackParsingQuirks(t *testing.T) {
	tests := []struct {
		name  string
		extra string
		check func(*CarbonBlack) bool
	}{
		{"keys are case-insensitive", "LISTENER_PORT=4001\n", func(c *CarbonBlack) bool { return c.ListenerPort == 4001 }},
		{"colon delimiter", "listener_port: 4002\n", func(c *CarbonBlack) bool { return c.ListenerPort == 4002 }},
		{"inline ; comment after a space (Python 2)", "listener_port=4003 ; the feed port\n", func(c *CarbonBlack) bool { return c.ListenerPort == 4003 }},
		{"; without a space is data", "binary_filter_query=a;b\n", func(c *CarbonBlack) bool { return c.BinaryFilterQuery == "a;b" }},
		{"# is data", "binary_filter_query=md5:abc #x\n", func(c *CarbonBlack) bool { return c.BinaryFilterQuery == "md5:abc #x" }},
		{"quotes are kept", `binary_filter_query="x y"` + "\n", func(c *CarbonBlack) bool { return c.BinaryFilterQuery == `"x y"` }},
		{`"" is empty`, `binary_filter_query=""` + "\n", func(c *CarbonBlack) bool { return c.BinaryFilterQuery == "" }},
		{"empty value means default", "listener_port=\n", func(c *CarbonBlack) bool { return c.ListenerPort == 8080 }},
		{"booleans in any case", "carbonblack_server_sslverify=On\nfeed_include_sha256=YES\n", func(c *CarbonBlack) bool { return c.ServerSSLVerify && c.FeedIncludeSHA256 }},
		{"seconds or Go durations", "sleep_between_batches=2m\nbackfill_sleep_between_batches=0\n",
			func(c *CarbonBlack) bool {
				return c.SleepBetweenBatches == 2*time.Minute && c.BackfillSleepBetweenBatches == 0
			}},
		{"backfill follows sleep_between_batches", "sleep_between_batches=1200\n",
			func(c *CarbonBlack) bool { return c.BackfillSleepBetweenBatches == 1200*time.Second }},
		{"[DEFAULT] keys apply, as in Python", "[DEFAULT]\nfeed_host=10.0.0.9\n", func(c *CarbonBlack) bool { return c.FeedHost == "10.0.0.9" }},
		{"debug=1 makes the default log level debug", "debug=1\n", func(c *CarbonBlack) bool { return c.LogLevel == slog.LevelDebug }},
		{"postgres database", "database_url=postgres://vtc:pw@db/vtc\n", func(c *CarbonBlack) bool { return c.DatabaseURL.Reveal() == "postgres://vtc:pw@db/vtc" }},
		{"log to stderr", "log_file=-\n", func(c *CarbonBlack) bool { return c.LogFile == "-" }},
		{"own v3 URL", "virustotal_url=http://127.0.0.1:8990/api/v3/\n", func(c *CarbonBlack) bool { return c.VTURL == "http://127.0.0.1:8990/api/v3" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := ParseCarbonBlack([]byte(minimalConf+tt.extra), "connector.conf")
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Errorf("unexpected config: %+v", c)
			}
		})
	}
}

func TestCarbonBlackSecretsNeverPrinted(t *testing.T) {
	secrets := []string{"cbtok-SECRET-1", "vtkey-SECRET-2", "feedpw-SECRET-3", "streampw-SECRET-4", "dbpw-SECRET-5"}
	conf := fmt.Sprintf(`[bridge]
carbonblack_server_url=https://cb.example.com
carbonblack_server_token=%s
virustotal_api_token=%s
feed_username=cb
feed_password=%s
carbonblack_streaming_password=%s
database_url=postgres://vtc:%s@db/vtc
`, secrets[0], secrets[1], secrets[2], secrets[3], secrets[4])
	c, warns, err := ParseCarbonBlack([]byte(conf), "connector.conf")
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	outputs := []string{fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprintf("%v", *c), string(js), fmt.Sprint(messages(warns))}
	for _, s := range c.Redacted() {
		outputs = append(outputs, s.Value)
	}
	// The same secrets next to mistakes elsewhere: errors must not quote them.
	bad := strings.Replace(conf, "carbonblack_server_url=https://cb.example.com", "carbonblack_server_url=nope\nfeed_username=\nlistener_port=x", 1)
	bad = strings.Replace(bad, "database_url=postgres://", "database_url=mysql://", 1)
	_, badWarns, badErr := ParseCarbonBlack([]byte(bad), "connector.conf")
	if badErr == nil {
		t.Fatal("no error for a bad configuration")
	}
	outputs = append(outputs, badErr.Error(), fmt.Sprint(messages(badWarns)))
	for _, out := range outputs {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("secret %q printed in %q", s, out)
			}
		}
	}
	if c.ServerToken.Reveal() != secrets[0] || c.VTAPIToken.Reveal() != secrets[1] || c.FeedPassword.Reveal() != secrets[2] {
		t.Error("Reveal does not return the configured secrets")
	}
}

func TestLoadCarbonBlack(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "connector.conf")
	if err := os.WriteFile(path, []byte(minimalConf+"rescan_window=1Q\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := LoadCarbonBlack(path)
	want := path + `: rescan_window "1Q": unit must be one of S, M, H, D, W (or NEVER, or a Go duration like 36h)`
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %q", err, want)
	}

	if err := os.WriteFile(path, []byte(minimalConf), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _, err := LoadCarbonBlack(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Source != path {
		t.Errorf("Source = %q, want %q", c.Source, path)
	}

	_, _, err = LoadCarbonBlack(filepath.Join(dir, "missing.conf"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: error = %v, want fs.ErrNotExist", err)
	}
}

// TestCarbonBlackSeedReadme is a fidelity test: it parses the rescan
// example of the original connector's README (../shared/seeds) inside a
// [bridge] section.
func TestCarbonBlackSeedReadme(t *testing.T) {
	data, err := os.ReadFile("../../../shared/seeds/000_31a08a7ab2390138.txt")
	if errors.Is(err, fs.ErrNotExist) {
		t.Skip("fidelity test: ../shared/seeds/000_31a08a7ab2390138.txt absent (the original connector's README); it lives outside the repository")
	}
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(data), "```")
	var rescan string
	for i := 1; i < len(blocks); i += 2 {
		if strings.Contains(blocks[i], "rescan_window=") {
			rescan = blocks[i]
		}
	}
	if rescan == "" {
		t.Fatal("the README has no rescan_window example")
	}
	c, _, err := ParseCarbonBlack([]byte(minimalConf+rescan), "README")
	if err != nil {
		t.Fatal(err)
	}
	if c.RescanWindow != 365*24*time.Hour {
		t.Errorf("RescanWindow = %v, want 365 days", c.RescanWindow)
	}
}

func TestMalformedLineIsNamedNotQuoted(t *testing.T) {
	const secret = "tok3n-never-shown"
	_, _, err := ParseCarbonBlack([]byte("[bridge]\nlistener_port=4000\ncarbonblack_server_token "+secret+"\n"), "connector.conf")
	if err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("error = %v; want line 3 named and the line's text (a token) not shown", err)
	}
}
