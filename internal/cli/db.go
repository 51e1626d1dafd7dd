package cli

import (
	"fmt"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vtconnector/vtconnector/internal/store"
)

func newDBCmd(e *env) *cobra.Command {
	var dsn string
	cmd := &cobra.Command{
		Use:   "db",
		Short: "Administer vtconnector's database (cache, work queue, quota)",
		Long: `Administer the database that vtconnector's daemons and "lookup --db" use:
an SQLite file (a path or sqlite://PATH) or a PostgreSQL URL (postgres://...).
Leave the password out of a URL given here (every user of the host can read
the process list): the PostgreSQL driver takes it from PGPASSWORD or ~/.pgpass.`,
	}
	cmd.PersistentFlags().StringVar(&dsn, "db", "", "database: an SQLite path or a postgres:// URL (required)")
	open := func(cmd *cobra.Command) (*store.Store, error) {
		if dsn == "" {
			return nil, usagef("--db is required")
		}
		log, err := newLogger(cmd, e.stderr)
		if err != nil {
			return nil, err
		}
		st, err := store.Open(cmd.Context(), dsn, store.WithLogger(log))
		if err != nil {
			return nil, err
		}
		return st, nil
	}
	migrate := &cobra.Command{
		Use:   "migrate",
		Short: "Create the schema or bring it up to date (every command does this too)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := open(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			v, err := st.SchemaVersion(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%s database at schema version %d\n", st.Dialect(), v)
			return nil
		},
	}
	stats := &cobra.Command{
		Use:   "stats",
		Short: "Show the work queue by kind and state, and the cache",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := open(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			qs, err := st.Stats(cmd.Context())
			if err != nil {
				return err
			}
			cs, err := st.CacheStats(cmd.Context())
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "QUEUE KIND\tSTATE\tITEMS")
			counts := append([]store.QueueCount(nil), qs.Counts...)
			sort.Slice(counts, func(i, j int) bool {
				if counts[i].Kind != counts[j].Kind {
					return counts[i].Kind < counts[j].Kind
				}
				return counts[i].State < counts[j].State
			})
			for _, c := range counts {
				fmt.Fprintf(w, "%s\t%s\t%d\n", c.Kind, c.State, c.Count)
			}
			if len(counts) == 0 {
				fmt.Fprintln(w, "(empty)\t\t")
			}
			_ = w.Flush()
			fmt.Fprintf(e.stdout, "\nopen items: %d", qs.Open())
			if qs.Open() > 0 {
				fmt.Fprintf(e.stdout, ", oldest waiting %s", qs.OldestOpenAge.Round(time.Second))
			}
			fmt.Fprintln(e.stdout)
			if qs.Pause.Paused {
				fmt.Fprintf(e.stdout, "QUEUE PAUSED since %s: %s\n", qs.Pause.Since.UTC().Format(time.RFC3339), qs.Pause.Reason)
			}
			fmt.Fprintf(e.stdout, "cache: %d objects (%d found, %d not found)\n", cs.Entries, cs.Found, cs.NotFound)
			return nil
		},
	}
	var state, kind string
	requeue := &cobra.Command{
		Use:   "requeue",
		Short: "Put finished or failed work items back in the queue (and resume a paused queue)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch state {
			case "", store.StateDone, store.StateNotFound, store.StateFailed:
			default:
				return usagef("--state %q: want done, not_found or failed (or empty for all three)", state)
			}
			st, err := open(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			n, err := st.Requeue(cmd.Context(), state, kind)
			if err != nil {
				return err
			}
			if err := st.Resume(cmd.Context()); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%d items queued again\n", n)
			return nil
		},
	}
	requeue.Flags().StringVar(&state, "state", "", "only items in this state: done, not_found or failed")
	requeue.Flags().StringVar(&kind, "kind", "", "only items of this kind, e.g. cb.binary")
	var olderThan time.Duration
	purge := &cobra.Command{
		Use:   "purge-cache",
		Short: "Delete cached VirusTotal objects (all, or those older than --older-than)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if olderThan < 0 {
				return usagef("--older-than must not be negative")
			}
			st, err := open(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			n, err := st.PurgeCache(cmd.Context(), time.Now().Add(-olderThan))
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%d cached objects deleted\n", n)
			return nil
		},
	}
	purge.Flags().DurationVar(&olderThan, "older-than", 0, "only objects fetched longer ago than this (e.g. 720h)")
	cmd.AddCommand(migrate, stats, requeue, purge, newDBCopyCmd(e))
	return cmd
}
