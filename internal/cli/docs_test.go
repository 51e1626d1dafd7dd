package cli

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/vtconnector/vtconnector/internal/config"
)

// TestEveryFlagIsDocumented keeps docs/CONFIGURATION.md complete.
func TestEveryFlagIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/CONFIGURATION.md")
	if err != nil {
		t.Fatal(err)
	}
	root := newRoot(&env{getenv: os.Getenv})
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if f.Name == "help" || f.Name == "version" {
				return
			}
			if !strings.Contains(string(doc), " --"+f.Name+"`") && !strings.Contains(string(doc), "`--"+f.Name+"`") {
				t.Errorf("%s: flag --%s is not in docs/CONFIGURATION.md", c.CommandPath(), f.Name)
			}
		})
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
}

// TestEveryConfigKeyIsDocumented keeps the connector.conf table complete.
func TestEveryConfigKeyIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/CONFIGURATION.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range config.CarbonBlackOptions() {
		if !strings.Contains(string(doc), "| `"+o.INI+"` |") {
			t.Errorf("connector.conf key %s is not in docs/CONFIGURATION.md", o.INI)
		}
	}
}

// TestShippedExampleParses keeps packaging/connector.conf.example valid
// once its two secrets are filled in.
func TestShippedExampleParses(t *testing.T) {
	b, err := os.ReadFile("../../packaging/connector.conf.example")
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "carbonblack_server_token=\n", "carbonblack_server_token=t\n", 1)
	s = strings.Replace(s, "virustotal_api_token=\n", "virustotal_api_token=k\n", 1)
	cfg, _, err := config.ParseCarbonBlack([]byte(s), "connector.conf.example")
	if err != nil {
		t.Fatalf("the shipped example does not parse: %v", err)
	}
	if cfg.FeedURL() != "http://127.0.0.1:4000/feed.json" || cfg.UploadsEnabled() {
		t.Errorf("example: feed URL %s, uploads %v; want the original's port 4000 and no uploads", cfg.FeedURL(), cfg.UploadsEnabled())
	}
}

// ignoredKeys are the original's keys vtconnector reads and ignores with a
// warning: the example names them in a comment only.
var ignoredKeys = map[string]bool{
	"use_streaming": true, "carbonblack_streaming_host": true, "carbonblack_streaming_username": true,
	"carbonblack_streaming_password": true, "legacy_feed_directory": true,
}

// TestShippedExampleShowsEveryKeyAndItsDefault keeps the annotated example
// that the packages install complete and true: every key is in it, and a
// commented key shows its default (uncommenting it changes no setting; where
// the value came from is not compared) unless its comment says "e.g.".
func TestShippedExampleShowsEveryKeyAndItsDefault(t *testing.T) {
	b, err := os.ReadFile("../../packaging/connector.conf.example")
	if err != nil {
		t.Fatal(err)
	}
	example := strings.Replace(string(b), "carbonblack_server_token=\n", "carbonblack_server_token=t\n", 1)
	example = strings.Replace(example, "virustotal_api_token=\n", "virustotal_api_token=k\n", 1)
	parse := func(text string) *config.CarbonBlack {
		t.Helper()
		cfg, _, err := config.ParseCarbonBlack([]byte(text), "connector.conf.example")
		if err != nil {
			t.Fatalf("the shipped example does not parse: %v", err)
		}
		return cfg
	}
	base := parse(example)
	known := map[string]bool{}
	for _, o := range config.CarbonBlackOptions() {
		known[o.INI] = true
		if !ignoredKeys[o.INI] && !strings.Contains(example, "\n"+o.INI+"=") && !strings.Contains(example, "\n;"+o.INI+"=") {
			t.Errorf("connector.conf key %s is not in packaging/connector.conf.example", o.INI)
		}
	}
	isKey := func(l string) bool {
		k, _, ok := strings.Cut(strings.TrimPrefix(l, ";"), "=")
		return ok && known[k]
	}
	commentedKey := func(l string) bool { return strings.HasPrefix(l, ";") && isKey(l) }
	lines := strings.Split(example, "\n")
	checked := map[string]bool{}
	for i, l := range lines {
		if !commentedKey(l) {
			continue
		}
		// The run of commented keys this one is in, then the comment above it.
		run := i
		for run > 0 && commentedKey(lines[run-1]) {
			run--
		}
		comment := run
		for comment > 0 && strings.HasPrefix(lines[comment-1], ";") && !isKey(lines[comment-1]) {
			comment--
		}
		if strings.Contains(strings.Join(lines[comment:run], "\n"), "e.g.") {
			continue
		}
		uncommented := slices.Clone(lines)
		uncommented[i] = l[1:]
		if diff := cmp.Diff(base, parse(strings.Join(uncommented, "\n")), cmpopts.IgnoreUnexported(config.CarbonBlack{})); diff != "" {
			t.Errorf("example line %d %q: not the default (-default +with it):\n%s", i+1, l, diff)
		}
		checked[l[1:strings.Index(l, "=")]] = true
	}
	for _, k := range []string{"database_url", "legacy_database", "virustotal_upload_mode", "virustotal_upload_file_types",
		"virustotal_upload_unsigned_only", "virustotal_analysis_wait", "rescan_window", "log_file"} {
		if !checked[k] {
			t.Errorf("the example does not show %s's default", k)
		}
	}
}

// TestEveryOpenCTIVariableIsDocumented keeps the OpenCTI table complete.
func TestEveryOpenCTIVariableIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/CONFIGURATION.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range config.OpenCTIOptions() {
		if !strings.Contains(string(doc), "| `"+o.Env+"` |") {
			t.Errorf("OpenCTI variable %s is not in docs/CONFIGURATION.md", o.Env)
		}
	}
}
