package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"gopkg.in/natefinch/lumberjack.v2"

	"github.com/vtconnector/vtconnector/internal/carbonblack"
	"github.com/vtconnector/vtconnector/internal/config"
	"github.com/vtconnector/vtconnector/internal/engine"
)

func newCarbonBlackCmd(e *env) *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "carbonblack",
		Short: "Run the Carbon Black EDR connector (drop-in for the Cb Response VirusTotal connector)",
		Long: `Run the Carbon Black EDR connector: poll the Cb server for new binaries, look
their hashes up on VirusTotal within the key's quota (uploading unknown
binaries only when submit_full_binaries=1 and virustotal_deep_scan_threads>0),
keep the verdicts in the database, serve them as a threat-intelligence feed,
and register and sync that feed on the Cb server.

It reads the original connector's connector.conf ([bridge] section, same
option names and defaults). It runs in the foreground; stop it with SIGTERM
or Ctrl-C: work in flight is finished or handed back to the queue.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCarbonBlack(cmd.Context(), e, path)
		},
	}
	cmd.PersistentFlags().StringVar(&path, "config", config.DefaultCarbonBlackConfigPath, "connector.conf to read")
	cmd.AddCommand(
		newCbImportLegacyCmd(e, &path),
		newCbResetCollectorCmd(e, &path),
		&cobra.Command{
			Use:   "resync",
			Short: "Ask the Carbon Black server to fetch the whole feed again now (a full sync)",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return withCarbonBlack(cmd.Context(), e, path, func(ctx context.Context, cfg *config.CarbonBlack, d carbonblack.Deps) error {
					reg := carbonblack.NewRegistrar(d.Cb, carbonblack.RegistrarConfig{Name: carbonblack.FeedName, FeedURL: cfg.FeedURL()}, d.Log)
					if err := reg.Ensure(ctx); err != nil {
						return err
					}
					if reg.FeedID() == 0 {
						return fmt.Errorf("no feed named %s on %s", carbonblack.FeedName, cfg.ServerURL)
					}
					if err := d.Cb.SyncFeed(ctx, reg.FeedID(), true); err != nil {
						return err
					}
					fmt.Fprintf(e.stdout, "full sync of feed %d requested\n", reg.FeedID())
					return nil
				})
			},
		},
		&cobra.Command{
			Use:   "requeue",
			Short: "Queue every binary for a new VirusTotal look (replaces deleting the database)",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return withCarbonBlack(cmd.Context(), e, path, func(ctx context.Context, _ *config.CarbonBlack, d carbonblack.Deps) error {
					n, err := d.Store.Requeue(ctx, "", carbonblack.KindBinary)
					if err != nil {
						return err
					}
					if err := d.Store.Resume(ctx); err != nil {
						return err
					}
					fmt.Fprintf(e.stdout, "%d binaries queued again; a running connector picks them up\n", n)
					return nil
				})
			},
		},
		&cobra.Command{
			Use:   "export-feed",
			Short: "Print the feed built from the database (the JSON the feed server serves)",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return withCarbonBlack(cmd.Context(), e, path, func(ctx context.Context, cfg *config.CarbonBlack, d carbonblack.Deps) error {
					cache := carbonblack.NewFeedCache()
					pub := carbonblack.NewPublisher(d.Store, cache, carbonblack.DefaultFeedInfo(),
						carbonblack.FeedOptions{MinPositives: cfg.FeedMinPositives, IncludeSHA256: cfg.FeedIncludeSHA256}, nopSync{}, d.Log)
					if err := pub.Refresh(ctx); err != nil {
						return err
					}
					_, err := cache.Current().WriteTo(e.stdout)
					return err
				})
			},
		},
	)
	return cmd
}

// unsetQuotaKeys lists the quota keys connector.conf leaves unset.
func unsetQuotaKeys(cfg *config.CarbonBlack) []string {
	var out []string
	for _, k := range []string{"virustotal_requests_per_minute", "virustotal_requests_per_day", "virustotal_requests_per_month"} {
		if !cfg.IsSet(k) {
			out = append(out, k)
		}
	}
	return out
}

type nopSync struct{}

func (nopSync) MarkDirty(bool) {}

// loadCarbonBlack reads and checks connector.conf, printing its warnings.
func loadCarbonBlack(e *env, path string) (*config.CarbonBlack, error) {
	cfg, warns, err := config.LoadCarbonBlack(path)
	for _, w := range warns {
		fmt.Fprintln(e.stderr, "vtconnector: warning:", w.String())
	}
	if err != nil {
		return nil, usageError{err}
	}
	return cfg, nil
}

// daemonLogger opens the log file (rotated at 10 MiB, 10 files kept, like
// the original) or standard error for "-".
func daemonLogger(e *env, file string, level slog.Level) (*slog.Logger, io.Closer, error) {
	var w io.Writer = e.stderr
	var c io.Closer = io.NopCloser(nil)
	if file != "" && file != "-" {
		if err := os.MkdirAll(filepath.Dir(file), 0o750); err != nil {
			return nil, nil, fmt.Errorf("log_file %s: %w", file, err)
		}
		lj := &lumberjack.Logger{Filename: file, MaxSize: 10, MaxBackups: 10}
		w, c = lj, lj
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})), c, nil
}

// buildCarbonBlack opens what the connector runs on; close releases it.
func buildCarbonBlack(ctx context.Context, e *env, cfg *config.CarbonBlack, log *slog.Logger) (carbonblack.Deps, func(), error) {
	cb, err := carbonblack.NewClientCA(cfg.ServerURL, cfg.ServerToken.Reveal(), cfg.ServerSSLVerify, cfg.ServerCAFile, cfg.ServerTimeout)
	if err != nil {
		return carbonblack.Deps{}, nil, usageError{err}
	}
	if e.transport != nil {
		cb.WithHTTPClient(e.httpClient())
	}
	p, err := buildEngine(ctx, e, engineSpec{
		Front: "carbonblack", Database: cfg.DatabaseURL, DBSetting: "database_url",
		APIKey: cfg.VTAPIToken, VTURL: cfg.VTURL, Timeout: cfg.VTTimeout, UserAgent: "vtconnector/" + Version + " carbonblack",
		Limits: engine.Limits{PerMinute: cfg.RequestsPerMinute, PerDay: cfg.RequestsPerDay, PerMonth: cfg.RequestsPerMonth},
		Learn:  learn(cfg.IsSet, "virustotal_requests_per_minute", "virustotal_requests_per_day", "virustotal_requests_per_month"),
		Uploads: engine.UploadPolicy{MaxSize: min(cfg.MaxBinarySize, config.MaxUploadSize), FileTypes: cfg.UploadFileTypes,
			UnsignedOnly: cfg.UploadUnsignedOnly},
		Analysis: engine.AnalysisPolicy{MaxWait: cfg.AnalysisWait, FirstPoll: e.analysisPoll, MaxInterval: e.analysisPoll},
		Recent:   carbonblack.RecentVerdicts, Log: log,
		// Binaries are looked up by MD5 only: one copy of each report
		// (about 11 KB; three with the SHA-1 and SHA-256 copies).
		OneHashOnly: true,
	})
	if err != nil {
		var ue usageError
		if ctx.Err() == nil && !errors.As(err, &ue) && !strings.HasPrefix(cfg.DatabaseURL.Reveal(), "postgres") {
			// A SQLite file that cannot be opened (a directory the service
			// user cannot write, a damaged file) is fixed by a person, not
			// by a restart: exit 2, one line.
			err = usageError{errors.New(strings.Join(strings.Fields(err.Error()), " "))}
		}
		return carbonblack.Deps{}, nil, err
	}
	host, _ := os.Hostname()
	// A stable name: a restarted connector takes back at once the work its
	// previous incarnation held when it died.
	d := carbonblack.Deps{Store: p.Store, Engine: p.Engine, Cb: cb, Log: log, Owner: host + "/carbonblack", Obs: p.Obs}
	return d, p.Close, nil
}

// withCarbonBlack runs an admin command with the connector's parts, logging to stderr.
func withCarbonBlack(ctx context.Context, e *env, path string, fn func(context.Context, *config.CarbonBlack, carbonblack.Deps) error) error {
	cfg, err := loadCarbonBlack(e, path)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	d, closeFn, err := buildCarbonBlack(ctx, e, cfg, log)
	if err != nil {
		return err
	}
	defer closeFn()
	return fn(ctx, cfg, d)
}

func runCarbonBlack(ctx context.Context, e *env, path string) error {
	cfg, err := loadCarbonBlack(e, path)
	if err != nil {
		return err
	}
	log, closer, err := daemonLogger(e, cfg.LogFile, cfg.LogLevel)
	if err != nil {
		return usageError{err}
	}
	defer closer.Close()
	log.Info("vtconnector carbonblack starting", "version", version(), "config", path,
		"database", cfg.DatabaseURL, "virustotal_url", cfg.VTURL, "quota_per_minute", cfg.RequestsPerMinute,
		"quota_per_day", cfg.RequestsPerDay, "quota_per_month", cfg.RequestsPerMonth)
	d, closeFn, err := buildCarbonBlack(ctx, e, cfg, log)
	if err != nil {
		if stopAsked(ctx, log, "carbonblack", err) {
			return nil
		}
		return err
	}
	defer closeFn()
	d.Ready, d.Tune = e.cbReady, e.cbTune
	if unset := unsetQuotaKeys(cfg); len(unset) > 0 {
		msg := "connector.conf does not set " + strings.Join(unset, ", ") +
			": those budgets are learned from VirusTotal for the key (the free key's 4/min, 500/day, 15,500/month if that fails); set them to your licence's figures to be sure"
		log.Warn(msg)
		if d.Obs != nil {
			d.Obs.Problem("quota_keys_unset", msg)
		}
	}
	if err := carbonblack.Run(ctx, cfg, d); err != nil {
		if stopAsked(ctx, log, "carbonblack", err) {
			return nil
		}
		log.Error("connector stopped", "error", err)
		return err
	}
	log.Info("vtconnector carbonblack stopped")
	return nil
}
