package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/vtconnector/vtconnector/internal/carbonblack"
	fakecb "github.com/vtconnector/vtconnector/internal/fake/carbonblack"
	fakeocti "github.com/vtconnector/vtconnector/internal/fake/opencti"
	fakevt "github.com/vtconnector/vtconnector/internal/fake/vt"
	"github.com/vtconnector/vtconnector/internal/httpserver"
	"github.com/vtconnector/vtconnector/internal/opencti"
)

type demoFlags struct {
	duration time.Duration
	rate     int
	amqpURL  string
	dir      string
}

func newDemoCmd(e *env) *cobra.Command {
	f := &demoFlags{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run both connectors against the built-in simulators (no key, no servers needed)",
		Long: `Start the VirusTotal, Carbon Black and OpenCTI simulators in this process, and
the Carbon Black and OpenCTI connectors on the embedded defaults (SQLite in a
temporary directory). Binaries keep appearing on the simulated Carbon Black
server and enrichment requests keep arriving from the simulated OpenCTI
platform; the demo prints where to look: the feed, the status pages, the
metrics. The OpenCTI part needs RabbitMQ: it uses one at --amqp when it
answers, otherwise it says how to start one and runs the rest.

Ctrl-C stops everything cleanly; --duration stops after a while.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDemo(cmd.Context(), e, f) },
	}
	fl := cmd.Flags()
	fl.DurationVar(&f.duration, "duration", 0, "stop after this long (default: run until Ctrl-C)")
	fl.IntVar(&f.rate, "rate", 600, "requests per minute the simulated VirusTotal key allows")
	fl.StringVar(&f.amqpURL, "amqp", "amqp://guest:guest@127.0.0.1:5672/", "RabbitMQ for the OpenCTI part")
	fl.StringVar(&f.dir, "dir", "", "directory for the databases and logs (default: a new temporary directory, removed at the end)")
	return cmd
}

func listenLocal() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

func runDemo(ctx context.Context, e *env, f *demoFlags) error {
	if f.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.duration)
		defer cancel()
	}
	dir := f.dir
	if dir == "" {
		d, err := os.MkdirTemp("", "vtconnector-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	out := e.stderr
	simLog := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelWarn}))
	g, gctx := errgroup.WithContext(ctx)
	serve := func(name string, ln net.Listener, h http.Handler) {
		srv := httpserver.New(httpserver.Config{Name: name, Listener: ln}, h, simLog)
		g.Go(func() error { return srv.Run(gctx) })
	}

	// VirusTotal simulator.
	vtLn, err := listenLocal()
	if err != nil {
		return err
	}
	vtSim := fakevt.New(fakevt.Config{QuotaPerMinute: f.rate, Latency: 40 * time.Millisecond, AnalysisDelay: 5 * time.Second, Seed: 1})
	serve("virustotal simulator", vtLn, vtSim)
	vtURL := "http://" + vtLn.Addr().String() + "/api/v3"

	// Carbon Black simulator with binaries appearing over time.
	cbLn, err := listenLocal()
	if err != nil {
		return err
	}
	cbSim := fakecb.New(fakecb.Config{Token: "demo-cb-token"})
	cbSim.AddSyntheticBinaries(40, time.Now().Add(-2*time.Hour).UTC(), 3*time.Minute)
	serve("carbon black simulator", cbLn, cbSim)
	g.Go(func() error {
		t := time.NewTicker(4 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-gctx.Done():
				return nil
			case <-t.C:
				cbSim.AddSyntheticBinaries(2, time.Now().UTC(), time.Second)
			}
		}
	})

	// The Carbon Black connector.
	feedLn, err := listenLocal()
	if err != nil {
		return err
	}
	feedPort := feedLn.Addr().(*net.TCPAddr).Port
	feedLn.Close()
	conf := filepath.Join(dir, "connector.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`[bridge]
carbonblack_server_url=http://%s
carbonblack_server_token=demo-cb-token
virustotal_api_token=demo-vt-key
virustotal_url=%s
virustotal_requests_per_minute=%d
virustotal_requests_per_day=0
virustotal_requests_per_month=0
listener_address=127.0.0.1
listener_port=%d
feed_host=127.0.0.1
database_url=%s
log_file=%s
sleep_between_batches=2
virustotal_quick_scan_threads=4
`, cbLn.Addr(), vtURL, f.rate, feedPort, filepath.Join(dir, "carbonblack.db"), filepath.Join(dir, "carbonblack.log"))), 0o600); err != nil {
		return err
	}
	cbReady := make(chan struct{})
	var cbCode atomic.Int32
	g.Go(func() error {
		ce := &env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: out, getenv: e.getenv,
			cbReady:      func(string) { close(cbReady) },
			analysisPoll: 10 * time.Second,
			cbTune:       &carbonblack.Tuning{SyncEvery: 10 * time.Second, Idle: 2 * time.Second, Debounce: 500 * time.Millisecond, Recheck: time.Hour, RetryEvery: 5 * time.Second}}
		cbCode.Store(int32(run(gctx, []string{"carbonblack", "--config", conf}, ce)))
		return nil
	})

	// The OpenCTI part, when RabbitMQ answers.
	var octi *fakeocti.Platform
	octiNote := ""
	if c, err := amqp.DialConfig(f.amqpURL, amqp.Config{Dial: amqp.DefaultDial(2 * time.Second)}); err != nil {
		octiNote = fmt.Sprintf("OpenCTI part skipped: RabbitMQ does not answer at %s (%v).\n  Start one (Debian: apt-get install rabbitmq-server && rabbitmq-server -detached) and run the demo again.", redactURL(f.amqpURL), err)
	} else {
		c.Close()
		octi, err = fakeocti.New(gctx, fakeocti.Config{AMQPURL: f.amqpURL, Token: "demo-octi-token", Prefix: fmt.Sprintf("demo%d", os.Getpid())}, slog.New(slog.DiscardHandler))
		if err != nil {
			return fmt.Errorf("demo: OpenCTI simulator: %w", err)
		}
		defer octi.Close()
		pLn, err := listenLocal()
		if err != nil {
			return err
		}
		serve("opencti simulator", pLn, octi)
		connectorID := "4d2f3c1e-9a7b-4c5d-8e6f-0a1b2c3d4e5f"
		stLn, err := listenLocal()
		if err != nil {
			return err
		}
		octiStatus := stLn.Addr().String()
		stLn.Close()
		octiEnv := map[string]string{
			"OPENCTI_URL": "http://" + pLn.Addr().String(), "OPENCTI_TOKEN": "demo-octi-token", "CONNECTOR_ID": connectorID,
			"CONNECTOR_LOG_LEVEL": "info", "OPENCTI_JSON_LOGGING": "false",
			"CONNECTOR_SCOPE":  "StixFile,Artifact,IPv4-Addr,Domain-Name,Url,Hostname,Indicator",
			"VIRUSTOTAL_TOKEN": "demo-vt-key", "VIRUSTOTAL_URL": vtURL,
			"VIRUSTOTAL_REQUESTS_PER_MINUTE": fmt.Sprint(f.rate), "VIRUSTOTAL_REQUESTS_PER_DAY": "0", "VIRUSTOTAL_REQUESTS_PER_MONTH": "0",
			"VTCONNECTOR_DATABASE_URL": filepath.Join(dir, "opencti.db"), "VTCONNECTOR_HTTP_ADDR": octiStatus,
		}
		logf, err := os.Create(filepath.Join(dir, "opencti.log"))
		if err != nil {
			return err
		}
		defer logf.Close()
		g.Go(func() error {
			oe := &env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: logf, getenv: e.getenv, environ: octiEnv,
				octiTune: &opencti.Tuning{PingEvery: 40 * time.Second, PollEvery: 3 * time.Second, WorkPingEvery: 5 * time.Minute, RetryMax: 10 * time.Second}}
			run(gctx, []string{"opencti"}, oe)
			return nil
		})
		g.Go(func() error { demoTrigger(gctx, octi, connectorID); return nil })
		octiNote = fmt.Sprintf("OpenCTI (simulated)         http://%s/graphql   (enrichment requests every 3 s)\n  OpenCTI connector status    http://%s/status\n  OpenCTI connector metrics   http://%s/metrics", pLn.Addr(), octiStatus, octiStatus)
	}

	select {
	case <-gctx.Done():
	case <-cbReady:
	case <-time.After(30 * time.Second):
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", feedPort)
	fmt.Fprintf(out, `
vtconnector demo — everything runs in this process; files in %s

  VirusTotal (simulated)      %s
  Carbon Black (simulated)    http://%s   (new binaries every 4 s)
  Carbon Black feed           %s/feed.json
  Verdicts, page by page      %s/binaries.html
  Carbon Black status page    %s/status
  Carbon Black metrics        %s/metrics
  %s

Press Ctrl-C to stop.

`, dir, vtURL, cbLn.Addr(), base, base, base, base, octiNote)

	g.Go(func() error {
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-gctx.Done():
				return nil
			case <-t.C:
				fmt.Fprintln(out, demoProgress(vtSim, cbSim, octi))
			}
		}
	})
	<-gctx.Done()
	_ = g.Wait()
	fmt.Fprintln(out, "\n"+demoProgress(vtSim, cbSim, octi))
	fmt.Fprintln(out, "demo stopped")
	if c := cbCode.Load(); c != 0 && ctx.Err() == nil {
		return fmt.Errorf("demo: the Carbon Black connector exited with status %d (see %s)", c, filepath.Join(dir, "carbonblack.log"))
	}
	return nil
}

func redactURL(s string) string {
	if i := strings.Index(s, "@"); i > 0 {
		if j := strings.Index(s, "://"); j > 0 && j < i {
			return s[:j+3] + "…" + s[i:]
		}
	}
	return s
}

func demoProgress(vtSim *fakevt.Server, cbSim *fakecb.Server, octi *fakeocti.Platform) string {
	st := vtSim.Stats()
	var reports int
	for _, fd := range cbSim.Feeds() {
		reports = len(fd.Reports)
	}
	line := fmt.Sprintf("[%s] VirusTotal requests %d (429s %d) · Cb feed reports synced %d",
		time.Now().Format("15:04:05"), st.Requests, st.QuotaExceeded, reports)
	if octi != nil {
		done, failed := 0, 0
		for _, w := range octi.Works() {
			if w.Status == "complete" {
				if len(w.Errors) > 0 {
					failed++
				} else {
					done++
				}
			}
		}
		line += fmt.Sprintf(" · OpenCTI enrichments done %d (failed %d)", done, failed)
	}
	return line
}

// demoTrigger keeps asking the connector to enrich sample observables.
func demoTrigger(ctx context.Context, p *fakeocti.Platform, connectorID string) {
	samples := []fakeocti.Entity{
		{Type: "IPv4-Addr", Value: "8.8.8.8"},
		{Type: "IPv4-Addr", Value: "203.0.113.77", Markings: []string{"TLP:GREEN"}},
		{Type: "Domain-Name", Value: "malware-traffic.example.net"},
		{Type: "Hostname", Value: "update.example-cdn.net"},
		{Type: "Url", Value: "http://soclosebutyetqq.com/69.exe"},
		{Type: "StixFile", Hashes: map[string]string{"SHA-256": "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"}},
		{Type: "IPv4-Addr", Value: "192.0.2.1", Markings: []string{"TLP:RED"}},
	}
	var ids []string
	for _, s := range samples {
		if id := p.AddEntity(s); id != "" {
			ids = append(ids, id)
		}
	}
	registered := func() bool {
		for _, c := range p.Connectors() {
			if c.ID == connectorID && c.Consuming {
				return true
			}
		}
		return false
	}
	t := time.NewTicker(3 * time.Second)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if len(ids) == 0 || !registered() {
			continue
		}
		_, _ = p.Enrich(ctx, connectorID, ids[i%len(ids)])
	}
}
