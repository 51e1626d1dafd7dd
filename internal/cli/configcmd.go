package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newConfigCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Check configuration files"}
	var cbPath, octiYAML string
	var octi bool
	check := &cobra.Command{
		Use:   "check",
		Short: "Validate a configuration without starting anything; print it with secrets redacted",
		Long: `Validate a configuration and print every setting with where it came from,
secrets shown as [redacted]. Every problem is reported at once; the exit
status is 2 when there is any.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if octi {
				cfg, err := loadOpenCTI(e, octiYAML)
				if err != nil {
					return err
				}
				w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "VARIABLE\tVALUE\tFROM\tSTATUS")
				for _, s := range cfg.Redacted() {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", s.Key, s.Value, s.Origin, s.Status)
				}
				_ = w.Flush()
				fmt.Fprintf(e.stdout, "\nOpenCTI configuration: OK (connector %s, platform %s)\n", cfg.ConnectorID, cfg.URL)
				return nil
			}
			if cbPath == "" {
				return usagef("say what to check: --carbonblack FILE, or --opencti [--config config.yml]")
			}
			cfg, err := loadCarbonBlack(e, cbPath)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "KEY\tVALUE\tFROM")
			for _, s := range cfg.Redacted() {
				fmt.Fprintf(w, "%s\t%s\t%s\n", s.Key, s.Value, s.Origin)
			}
			_ = w.Flush()
			fmt.Fprintf(e.stdout, "\n%s: OK (feed URL %s)\n", cbPath, cfg.FeedURL())
			return nil
		},
	}
	check.Flags().StringVar(&cbPath, "carbonblack", "", "a Carbon Black connector.conf")
	check.Flags().BoolVar(&octi, "opencti", false, "the OpenCTI connector's configuration (environment and --config config.yml)")
	check.Flags().StringVar(&octiYAML, "config", "", "with --opencti: the config.yml to read")
	cmd.AddCommand(check)
	return cmd
}
