package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/vtconnector/vtconnector/internal/carbonblack"
	"github.com/vtconnector/vtconnector/internal/config"
)

// newCbResetCollectorCmd is `vtconnector carbonblack reset-collector`.
func newCbResetCollectorCmd(e *env, path *string) *cobra.Command {
	var since string
	cmd := &cobra.Command{
		Use:   "reset-collector",
		Short: "Collect binaries again from a point in time (default: from the oldest); stop the connector first",
		Long: `Make the collector walk Carbon Black's binaries again from --since (an
RFC 3339 time such as 2025-01-31T00:00:00Z, or a date 2025-01-31; default:
from the oldest binary), while new binaries keep being polled. Binaries
already looked at are not looked at again (use requeue for that). A running
connector keeps its position in memory: stop it first, start it after.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var from time.Time
			if since != "" {
				t, err := time.Parse(time.RFC3339, since)
				if err != nil {
					t, err = time.Parse("2006-01-02", since)
				}
				if err != nil {
					return usagef("--since %q: want an RFC 3339 time (2025-01-31T00:00:00Z) or a date (2025-01-31)", since)
				}
				from = t
			}
			return withCarbonBlack(cmd.Context(), e, *path, func(ctx context.Context, _ *config.CarbonBlack, d carbonblack.Deps) error {
				if err := carbonblack.ResetCursor(ctx, d.Store, from, time.Now()); err != nil {
					return err
				}
				what := "the oldest binary"
				if !from.IsZero() {
					what = from.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(e.stdout, "the collector will walk the binaries again from %s at the connector's next start\n", what)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "walk again from this time (RFC 3339 or YYYY-MM-DD); default: from the oldest binary")
	return cmd
}
