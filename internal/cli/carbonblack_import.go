package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/vtconnector/vtconnector/internal/carbonblack"
	"github.com/vtconnector/vtconnector/internal/config"
)

// newCbImportLegacyCmd is `vtconnector carbonblack import-legacy`: the
// import the connector does at its first start, for a database copied
// from elsewhere (or to run it again: it is idempotent).
func newCbImportLegacyCmd(e *env, path *string) *cobra.Command {
	var from string
	cmd := &cobra.Command{
		Use:   "import-legacy",
		Short: "Import the original connector's sqlite.db: its verdicts published, its pending rows queued",
		Long: `Import the original cb-virustotal-connector's SQLite database (table
binary_data; only read): analysed rows become verdicts (those with a score
above 0 are published with the original's score, title, link and
timestamp, until a lookup of our own replaces them when days_rescan says
so), pending and failed rows are queued. Verdicts vtconnector made itself
are kept. Running it again changes nothing. The connector does the same
at its first start from legacy_database.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withCarbonBlack(cmd.Context(), e, *path, func(ctx context.Context, cfg *config.CarbonBlack, d carbonblack.Deps) error {
				src := from
				if src == "" {
					src = cfg.LegacyDatabase
				}
				if src == "" {
					return usagef("no database to import: give --from FILE (legacy_database is empty)")
				}
				rep, err := carbonblack.ImportLegacy(ctx, d.Store, src, nil)
				if errors.Is(err, carbonblack.ErrNoLegacyDatabase) {
					return usageError{err}
				}
				if err != nil {
					return err
				}
				fmt.Fprintln(e.stdout, rep.Summary())
				fmt.Fprintln(e.stdout, "restart a running connector to publish the imported verdicts")
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the original's sqlite.db (default: legacy_database)")
	return cmd
}
