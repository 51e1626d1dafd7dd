package cli

import (
	"os"
	"strings"
	"testing"

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
