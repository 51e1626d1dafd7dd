package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/vtconnector/vtconnector/internal/config"
	"github.com/vtconnector/vtconnector/internal/engine"
	"github.com/vtconnector/vtconnector/internal/httpserver"
	"github.com/vtconnector/vtconnector/internal/opencti"
	"github.com/vtconnector/vtconnector/internal/redact"
	"github.com/vtconnector/vtconnector/internal/stix"
)

func newOpenCTICmd(e *env) *cobra.Command {
	var yamlPath string
	cmd := &cobra.Command{
		Use:   "opencti",
		Short: "Run the OpenCTI enrichment connector (drop-in for the OpenCTI VirusTotal connector)",
		Long: `Run the OpenCTI internal-enrichment connector: register with the platform,
consume enrichment requests from RabbitMQ, look the observables up on
VirusTotal within the key's quota, and push STIX 2.1 bundles back, exactly as
the Python connector does (same environment variables and config.yml keys).

Configuration comes from the environment and, with --config, from a
config.yml (the environment wins).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runOpenCTI(cmd.Context(), e, yamlPath)
		},
	}
	cmd.Flags().StringVar(&yamlPath, "config", "", "config.yml to read (default: none, or ./config.yml when it exists)")
	return cmd
}

func environ(e *env) map[string]string {
	if e.environ != nil {
		return e.environ
	}
	return config.EnvMap(os.Environ())
}

func loadOpenCTI(e *env, yamlPath string) (*config.OpenCTI, error) {
	if yamlPath == "" {
		if _, err := os.Stat("config.yml"); err == nil {
			yamlPath = "config.yml"
		}
	}
	cfg, warns, err := config.LoadOpenCTI(environ(e), yamlPath)
	for _, w := range warns {
		fmt.Fprintln(e.stderr, "vtconnector: warning:", w.String())
	}
	if err != nil {
		return nil, usageError{err}
	}
	return cfg, nil
}

func runOpenCTI(ctx context.Context, e *env, yamlPath string) error {
	cfg, err := loadOpenCTI(e, yamlPath)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	if cfg.JSONLogging {
		log = slog.New(slog.NewJSONHandler(e.stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	}
	log.Info("vtconnector opencti starting", "version", version(), "platform", redact.DSN(cfg.URL), "connector_id", cfg.ConnectorID,
		"database", cfg.DatabaseURL, "virustotal_url", cfg.VTURL, "quota_per_minute", cfg.RequestsPerMinute, "concurrency", cfg.Concurrency)
	if cfg.FileUploadUnseenArtifacts || cfg.URLUploadUnseen {
		if cfg.UploadMode == string(engine.Private) {
			log.Warn("*** uploads are on, private (VIRUSTOTAL_UPLOAD_MODE=private): artifacts and URLs unknown to VirusTotal are sent to VirusTotal Private Scanning (not shared; sandbox verdicts only) ***",
				"upload_max_tlp", cfg.UploadMaxTLP, "upload_max_size", cfg.UploadMaxSize, "upload_file_types", cfg.UploadFileTypes)
		} else {
			log.Warn("*** uploads are on: artifacts and URLs unknown to VirusTotal are sent to it, where its community can see them ***",
				"upload_max_tlp", cfg.UploadMaxTLP, "upload_max_size", cfg.UploadMaxSize, "upload_file_types", cfg.UploadFileTypes)
		}
	}
	maxTLP, err := stix.ParseTLP(cfg.UploadMaxTLP)
	if err != nil {
		return usageError{fmt.Errorf("VIRUSTOTAL_UPLOAD_MAX_TLP: %w", err)}
	}
	p, err := buildEngine(ctx, e, engineSpec{
		Front: "opencti", Database: cfg.DatabaseURL, DBSetting: "VTCONNECTOR_DATABASE_URL",
		APIKey: cfg.VTToken, VTURL: cfg.VTURL, Timeout: cfg.VTTimeout,
		UserAgent: "OpenCTI VirusTotal Connector " + cfg.ConnectorID + " (vtconnector)",
		Limits:    engine.Limits{PerMinute: cfg.RequestsPerMinute, PerDay: cfg.RequestsPerDay, PerMonth: cfg.RequestsPerMonth},
		Learn:     learn(cfg.IsSet, "VIRUSTOTAL_REQUESTS_PER_MINUTE", "VIRUSTOTAL_REQUESTS_PER_DAY", "VIRUSTOTAL_REQUESTS_PER_MONTH"),
		Uploads:   engine.UploadPolicy{MaxSize: cfg.UploadMaxSize, FileTypes: cfg.UploadFileTypes, MaxTLP: &maxTLP},
		Analysis:  engine.AnalysisPolicy{MaxWait: cfg.AnalysisWait, FirstPoll: e.analysisPoll, MaxInterval: e.analysisPoll},
		Log:       log,
	})
	if err != nil {
		if stopAsked(ctx, log, "opencti", err) {
			return nil
		}
		return err
	}
	defer p.Close()
	o := p.Obs
	headers := map[string]string{}
	for _, h := range cfg.CustomHeaders {
		headers[h.Name] = h.Value.Reveal()
	}
	platform, err := opencti.NewPlatformCA(cfg.URL, cfg.Token.Reveal(), cfg.SSLVerify, cfg.SSLCAFile, headers)
	if err != nil {
		return usageError{fmt.Errorf("OPENCTI_SSL_VERIFY: %w", err)}
	}
	if strings.HasPrefix(strings.ToLower(cfg.URL), "https://") && !cfg.SSLVerify {
		msg := "the OpenCTI platform's TLS certificate is NOT verified (OPENCTI_SSL_VERIFY=false, pycti's default): anyone on the path can read OPENCTI_TOKEN; set OPENCTI_SSL_VERIFY=true, or to the path of your CA bundle"
		log.Warn("*** " + msg + " ***")
		o.Note("tls_unverified", msg)
	}
	if cfg.MQ.UseSSL != nil && *cfg.MQ.UseSSL && !cfg.MQ.SSLRejectUnauthorized {
		msg := "the RabbitMQ broker's TLS certificate is NOT verified (MQ_USE_SSL_REJECT_UNAUTHORIZED=false, pycti's default); set it to true, with MQ_USE_SSL_CA for a private CA"
		log.Warn("*** " + msg + " ***")
		o.Note("mq_tls_unverified", msg)
	}
	if e.transport != nil {
		platform.WithHTTPClient(e.httpClient())
	}
	host, _ := os.Hostname()
	d := opencti.Deps{Platform: platform, Engine: p.Engine, Store: p.Store, Log: log,
		Owner: host + "/opencti/" + cfg.ConnectorID, BrokerURL: e.brokerURL, Tune: e.octiTune, Obs: o}
	g, gctx := errgroup.WithContext(ctx)
	if cfg.HTTPAddr != "" {
		mux := http.NewServeMux()
		o.Register(mux)
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
		ln, err := net.Listen("tcp", cfg.HTTPAddr)
		if err != nil {
			return usageError{fmt.Errorf("VTCONNECTOR_HTTP_ADDR %s: %w", cfg.HTTPAddr, err)}
		}
		status := httpserver.New(httpserver.Config{Name: "status server", Listener: ln, OnListen: func(url string) {
			log.Info("status page and metrics", "status", url+"/status", "metrics", url+"/metrics")
		}}, mux, log)
		g.Go(func() error { return status.Run(gctx) })
		g.Go(func() error { return o.Run(gctx) })
	}
	g.Go(func() error { return opencti.Run(gctx, cfg, d) })
	if err := g.Wait(); err != nil {
		if stopAsked(ctx, log, "opencti", err) {
			return nil
		}
		log.Error("connector stopped", "error", err)
		return err
	}
	log.Info("vtconnector opencti stopped")
	return nil
}
