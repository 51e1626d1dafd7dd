package cli

import (
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vtconnector/vtconnector/internal/redact"
	"github.com/vtconnector/vtconnector/internal/store"
)

const dbCopyLong = `Copy everything vtconnector keeps (cached VirusTotal objects, the work queue with
its states, attempts and leases, the Carbon Black verdicts, cursors, the quota
ledger and the queue's pause) from one database to another: SQLite to PostgreSQL
when one instance becomes several, PostgreSQL to SQLite, or between two of the
same kind. Both are first brought to this vtconnector's schema.

The source is read as one snapshot and never written to (apart from that
migration). The rows are streamed in batches, so memory stays the same for a
thousand rows or ten million, and written in one transaction on the target:
either everything is copied or nothing is. At the end every table's rows are
counted in both databases and must agree, or nothing is committed.

The target must be empty (a new file, database or schema) unless --overwrite,
which first deletes everything in it.

Stop every instance that uses the source first: what they do after the snapshot
would not be in the copy. A stopping instance hands its leased items back to the
queue; an item still leased by an unexpired lease means an instance is running
(or was killed), so the copy refuses it. Then either stop that instance, or wait
for the lease to expire (the error says when), or pass --release-leases: the
leased items are copied as queued, ready at once and without counting an
attempt, so the target's workers take them up again (the source keeps its
leases). Passwords in the DSNs are never shown.`

func newDBCopyCmd(e *env) *cobra.Command {
	var (
		from, to                 string
		overwrite, releaseLeases bool
		batchRows                int
	)
	cmd := &cobra.Command{
		Use:   "copy --from DSN --to DSN",
		Short: "Copy the whole database to another one (e.g. SQLite to PostgreSQL)",
		Long:  dbCopyLong,
		Example: `  # the password from PGPASSWORD or ~/.pgpass, not the command line (the process list)
  PGPASSWORD=... vtconnector db copy --from /var/lib/vtconnector/vtconnector.db \
    --to 'postgres://vtc@db.example.org/vtconnector?sslmode=verify-full'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if db, _ := cmd.Flags().GetString("db"); db != "" {
				return usagef("db copy takes --from and --to, not --db")
			}
			if from == "" || to == "" {
				return usagef("--from and --to are both required")
			}
			if batchRows < 1 || batchRows > 10_000 {
				return usagef("--batch-rows %d: want 1 to 10000", batchRows)
			}
			log, err := newLogger(cmd, e.stderr)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			secrets := append(redact.Passwords(from), redact.Passwords(to)...)
			src, err := store.Open(ctx, from, store.WithLogger(log))
			if err != nil {
				return fmt.Errorf("source: %w", redact.Error(err, secrets...))
			}
			defer src.Close()
			dst, err := store.Open(ctx, to, store.WithLogger(log))
			if err != nil {
				return fmt.Errorf("target: %w", redact.Error(err, secrets...))
			}
			defer dst.Close()
			last := time.Now() // the first progress line after 5 s
			progress := func(table string, rows int64, done bool) {
				if !done && time.Since(last) < 5*time.Second {
					return
				}
				last = time.Now()
				if !done {
					fmt.Fprintf(e.stderr, "copying %s: %d rows so far\n", table, rows)
				}
			}
			started := time.Now()
			rep, err := store.Copy(ctx, src, dst, store.CopyOptions{
				Overwrite: overwrite, ReleaseLeases: releaseLeases, BatchRows: batchRows, Progress: progress,
			})
			var live *store.LiveLeasesError
			switch {
			case errors.As(err, &live):
				return fmt.Errorf("%w; or pass --release-leases to copy them as queued", redact.Error(err, secrets...))
			case errors.Is(err, store.ErrTargetNotEmpty):
				return fmt.Errorf("%w (--overwrite deletes everything in it first)", redact.Error(err, secrets...))
			case err != nil:
				return redact.Error(err, secrets...)
			}
			w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(w, "TABLE\tSOURCE ROWS\tTARGET ROWS\t")
			var total int64
			for _, c := range rep.Tables {
				fmt.Fprintf(w, "%s\t%d\t%d\t\n", c.Table, c.Source, c.Target)
				total += c.Target
			}
			_ = w.Flush()
			fmt.Fprintf(e.stdout, "copied %d rows from %s (%s) to %s (%s) in %s; counts agree\n", total,
				redact.DSN(from), src.Dialect(), redact.DSN(to), dst.Dialect(), time.Since(started).Round(time.Millisecond))
			if rep.LeasesReleased > 0 {
				fmt.Fprintf(e.stdout, "%d leased items were copied as queued (--release-leases)\n", rep.LeasesReleased)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "source database: an SQLite path or a postgres:// URL (required)")
	f.StringVar(&to, "to", "", "target database: an SQLite path or a postgres:// URL; must be empty unless --overwrite (required)")
	f.BoolVar(&overwrite, "overwrite", false, "delete everything in the target first (its data is lost)")
	f.BoolVar(&releaseLeases, "release-leases", false, "copy items leased by a running or killed instance as queued instead of refusing")
	f.IntVar(&batchRows, "batch-rows", 500, "rows per INSERT statement")
	return cmd
}
