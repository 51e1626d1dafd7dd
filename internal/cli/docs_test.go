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
