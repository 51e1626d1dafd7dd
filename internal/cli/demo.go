package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	fakevt "github.com/vtconnector/vtconnector/internal/fake/vt"
)

// demoQueries mix every kind of query, a few unknown objects and one
// invalid line, so the demo shows each kind of answer.
var demoQueries = []string{
	"44d88612fea8a8f36de82e1278abb02f",
	"275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f",
	"3395856ce81f2b7382dee72602f798b642f14140",
	"8.8.8.8",
	"2001:4860:4860::8888",
	"example.com",
	"malware-traffic.example.net",
	"http://soclosebutyetqq.com/69.exe",
	"00000000000000000000000000000000",
	"not a query!",
}

func newDemoCmd(e *env) *cobra.Command {
	var rate int
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run vtconnector against the built-in VirusTotal simulator (no key, no servers needed)",
		Long: `Start the VirusTotal simulator in-process and look up a mix of hashes, IP
addresses, domains and URLs through the full engine (cache, de-duplication,
quota pacing), printing the results as a table.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return fmt.Errorf("demo: listen: %w", err)
			}
			sim := fakevt.New(fakevt.Config{QuotaPerMinute: rate, AnalysisDelay: time.Second, Seed: 1})
			srv := &http.Server{Handler: sim, ReadHeaderTimeout: 5 * time.Second}
			go func() { _ = srv.Serve(ln) }()
			defer func() {
				sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				defer cancel()
				_ = srv.Shutdown(sctx)
			}()
			base := "http://" + ln.Addr().String() + "/api/v3"
			fmt.Fprintf(e.stderr, "VirusTotal simulator: %s (%d requests/minute per key)\n\n", base, rate)
			args := append([]string{"lookup", "--apikey", "demo-key", "--vt-url", base, "--format", "table",
				"--rate", fmt.Sprint(rate), "--daily", "0", "--monthly", "0", "--progress", "never"}, demoQueries...)
			code := run(ctx, args, e)
			st := sim.Stats()
			fmt.Fprintf(e.stderr, "\nThe simulator answered %d requests (%d refused for quota).\n", st.Requests, st.QuotaExceeded)
			if code != ExitOK && code != ExitFailure {
				return errors.New("demo: lookup failed")
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&rate, "rate", 600, "requests per minute the simulated key allows")
	return cmd
}
