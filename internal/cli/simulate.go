package cli

import (
	"github.com/spf13/cobra"

	fakecb "github.com/vtconnector/vtconnector/internal/fake/carbonblack"
	fakeocti "github.com/vtconnector/vtconnector/internal/fake/opencti"
	fakevt "github.com/vtconnector/vtconnector/internal/fake/vt"
)

func newSimulateCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "simulate",
		Short: "Run a simulator of an external service (for tests and demos)",
	}
	cmd.AddCommand(newSimulateVTCmd(e), newSimulateCbCmd(e), newSimulateOpenCTICmd(e))
	return cmd
}

func newSimulateCbCmd(e *env) *cobra.Command {
	var (
		addr     string
		cfg      fakecb.Config
		binaries int
	)
	cmd := &cobra.Command{
		Use:   "carbonblack",
		Short: "Serve a simulated Carbon Black EDR (Cb Response) server at http://ADDR",
		Long: `Serve a simulated Carbon Black EDR server: /api/info, binary search (the query
subset the connector sends), zip downloads, and feeds whose synchronisation
fetches the feed and tags the binaries it lists. It starts with --binaries
binaries and adds a few more every few seconds.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(cmd, e.stderr)
			if err != nil {
				return err
			}
			if cfg.FaultRate < 0 || cfg.FaultRate > 1 {
				return usagef("--fault-rate %v: want a fraction between 0 and 1", cfg.FaultRate)
			}
			if binaries < 0 {
				return usagef("--binaries %d: must not be negative", binaries)
			}
			return fakecb.ListenAndServe(cmd.Context(), addr, cfg, log, binaries)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&addr, "addr", "127.0.0.1:8991", "address to listen on")
	fl.StringVar(&cfg.Token, "token", "", "required X-Auth-Token (default: any non-empty token)")
	fl.IntVar(&binaries, "binaries", 50, "binaries present at start")
	fl.DurationVar(&cfg.Latency, "latency", 0, "delay added to every answer")
	fl.Float64Var(&cfg.FaultRate, "fault-rate", 0, "fraction of API requests answered 500/503")
	fl.Int64Var(&cfg.Seed, "seed", 0, "seed of the synthetic binaries and faults")
	return cmd
}

func newSimulateVTCmd(e *env) *cobra.Command {
	var (
		addr        string
		cfg         fakevt.Config
		keys        []string
		privateKeys []string
	)
	cmd := &cobra.Command{
		Use:   "vt",
		Short: "Serve a simulated VirusTotal API v3 at http://ADDR/api/v3",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(cmd, e.stderr)
			if err != nil {
				return err
			}
			for _, r := range []struct {
				flag string
				v    float64
			}{{"--fault-rate", cfg.FaultRate}, {"--bare-429-rate", cfg.Bare429Rate}, {"--malformed-rate", cfg.MalformedRate}, {"--slow-rate", cfg.SlowRate}} {
				if r.v < 0 || r.v > 1 {
					return usagef("%s %v: want a fraction between 0 and 1", r.flag, r.v)
				}
			}
			if sum := cfg.FaultRate + cfg.Bare429Rate + cfg.MalformedRate + cfg.SlowRate; sum > 1 {
				return usagef("the fault rates add up to %v: want at most 1", sum)
			}
			if cfg.QuotaPerMinute < 0 || cfg.QuotaPerDay < 0 || cfg.QuotaPerMonth < 0 {
				return usagef("quotas must not be negative")
			}
			cfg.Keys, cfg.PrivateKeys = keys, privateKeys
			return fakevt.ListenAndServe(cmd.Context(), addr, cfg, log)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&addr, "addr", "127.0.0.1:8990", "address to listen on")
	fl.IntVar(&cfg.QuotaPerMinute, "quota-per-minute", 0, "requests per minute per key before 429 (0 = unlimited)")
	fl.IntVar(&cfg.QuotaPerDay, "quota-per-day", 0, "requests per UTC day per key before 429 (0 = unlimited)")
	fl.DurationVar(&cfg.Latency, "latency", 0, "delay added to every answer")
	fl.IntVar(&cfg.QuotaPerMonth, "quota-per-month", 0, "requests per UTC month per key before 429 (0 = unlimited)")
	fl.Float64Var(&cfg.FaultRate, "fault-rate", 0, "fraction of requests answered 503 TransientError")
	fl.Float64Var(&cfg.Bare429Rate, "bare-429-rate", 0, "fraction of requests answered 429 with an empty body, counted as another tool's use of the key")
	fl.Float64Var(&cfg.MalformedRate, "malformed-rate", 0, "fraction of requests answered 200 with a truncated or non-JSON body")
	fl.Float64Var(&cfg.SlowRate, "slow-rate", 0, "fraction of requests answered --slow-delay late")
	fl.DurationVar(&cfg.SlowDelay, "slow-delay", 0, "delay of a slow answer (default 5s)")
	fl.DurationVar(&cfg.AnalysisDelay, "analysis-delay", 0, "time an upload's analysis takes (default 2s)")
	fl.StringSliceVar(&keys, "key", nil, "accepted API keys (default: any non-empty key)")
	fl.StringSliceVar(&privateKeys, "private-keys", nil, "API keys licensed for Private Scanning (/private/...; default: every key)")
	fl.Int64Var(&cfg.Seed, "seed", 0, "seed of the synthetic objects")
	return cmd
}

func newSimulateOpenCTICmd(e *env) *cobra.Command {
	var (
		addr string
		cfg  fakeocti.Config
	)
	cmd := &cobra.Command{
		Use:   "opencti",
		Short: "Serve a simulated OpenCTI platform (GraphQL at http://ADDR/graphql, queues on a real RabbitMQ)",
		Long: `Serve a simulated OpenCTI 6.x platform for the enrichment connector: the
GraphQL operations of the connector protocol, the platform's queue topology on
a real RabbitMQ (--amqp), a worker that imports pushed bundles and checks their
ids and references, and a trigger that asks every registered connector to
enrich a few sample observables periodically.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(cmd, e.stderr)
			if err != nil {
				return err
			}
			if cfg.AMQPURL == "" {
				return usagef("--amqp is required (e.g. amqp://guest:guest@127.0.0.1:5672/)")
			}
			return fakeocti.ListenAndServe(cmd.Context(), addr, cfg, log)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&addr, "addr", "127.0.0.1:8992", "address to listen on")
	fl.StringVar(&cfg.AMQPURL, "amqp", "amqp://guest:guest@127.0.0.1:5672/", "RabbitMQ URL")
	fl.StringVar(&cfg.Token, "token", "", "accepted API token(s), comma-separated (default: any)")
	fl.StringVar(&cfg.Version, "platform-version", "", "about.version to report (default "+fakeocti.DefaultVersion+")")
	fl.StringVar(&cfg.Schema, "schema", "", "GraphQL schema (SDL) to validate every request against")
	fl.DurationVar(&cfg.TriggerInterval, "trigger-interval", 0, "how often sample enrichments are triggered (default 30s)")
	return cmd
}
