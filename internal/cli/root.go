// Package cli holds vtconnector's commands and the wiring of the concrete
// parts: it is the only package that knows them all (VirusTotal client,
// engine, store, fronts, simulators). Nothing imports it but main.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vtconnector/vtconnector/internal/carbonblack"
	"github.com/vtconnector/vtconnector/internal/opencti"
)

// Version is set at build time with -ldflags "-X ...cli.Version=v1.2.3".
var Version = "dev"

// Exit statuses.
const (
	ExitOK      = 0
	ExitFailure = 1 // the command ran but some of its work failed
	ExitUsage   = 2 // bad flags, arguments or configuration
)

// usageError marks errors that deserve exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// exitError carries a chosen exit status for a failure already reported.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// env holds the process's streams and environment, so that commands are
// testable without touching the real ones.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// transport, when set, carries every HTTP request the commands make
	// (tests route them to in-process simulators).
	transport http.RoundTripper
	// cbReady and cbTune hook into the Carbon Black connector (tests, demo).
	cbReady func(addr string)
	cbTune  *carbonblack.Tuning
	// environ replaces the process environment (OpenCTI configuration);
	// brokerURL and octiTune hook into the OpenCTI connector (tests, demo).
	environ   map[string]string
	brokerURL string
	octiTune  *opencti.Tuning
	// analysisPoll, when set, spaces the polls of submitted analyses
	// (tests and the demo shorten it).
	analysisPoll time.Duration
}

// httpClient is the client every VirusTotal conversation uses. Its
// transport keeps as many idle connections as queries can be in flight
// (the default keeps two, so that 16 concurrent lookups would dial a new
// connection for most requests).
func (e *env) httpClient() *http.Client {
	if e.transport != nil {
		return &http.Client{Transport: e.transport}
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = maxConcurrency
	return &http.Client{Transport: t}
}

// maxConcurrency is the most requests any command has in flight at once
// (lookup --concurrency, the connectors' threads).
const maxConcurrency = 256

// Main runs the command line args and returns the exit status.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return run(ctx, args, &env{stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv})
}

func run(ctx context.Context, args []string, e *env) int {
	root := newRoot(e)
	root.SetArgs(args)
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var ex exitError
	if errors.As(err, &ex) {
		return ex.code
	}
	fmt.Fprintln(e.stderr, "vtconnector:", err)
	var ue usageError
	if errors.As(err, &ue) || isCobraUsage(err) {
		return ExitUsage
	}
	return ExitFailure
}

// stopAsked tells whether err only says that the stop asked for by a
// signal cut the daemon's work short. A stop while the daemon is still
// starting (opening its database, reaching its platform, registering)
// is the stop the operator asked for, not a failure: stopAsked logs it
// at info, and the daemon exits with status 0.
func stopAsked(ctx context.Context, log *slog.Logger, front string, err error) bool {
	if ctx.Err() == nil || !errors.Is(err, context.Canceled) {
		return false
	}
	log.Info("vtconnector "+front+" stopped before it was ready", "cut_short", err)
	return true
}

// isCobraUsage recognises cobra's own flag and argument errors, which it
// returns as plain errors.
func isCobraUsage(err error) bool {
	s := err.Error()
	for _, p := range []string{"unknown flag", "unknown shorthand", "flag needs an argument", "invalid argument", "unknown command", "accepts ", "requires at least", "bad flag syntax"} {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

func newRoot(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:           "vtconnector",
		Short:         "VirusTotal verdicts for Carbon Black EDR, OpenCTI and the terminal",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version(),
	}
	root.PersistentFlags().String("log-level", "info", "log level: debug, info, warn, error")
	root.AddCommand(newDemoCmd(e), newLookupCmd(e), newCarbonBlackCmd(e), newOpenCTICmd(e), newConfigCmd(e), newDBCmd(e), newSimulateCmd(e), newVersionCmd(e))
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	return root
}

func newVersionCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			fmt.Fprintln(e.stdout, "vtconnector", version())
			return nil
		},
	}
}

func version() string {
	v := Version
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
	}
	return v
}

// newLogger builds the stderr logger of a command from --log-level.
func newLogger(cmd *cobra.Command, w io.Writer) (*slog.Logger, error) {
	lvl, _ := cmd.Flags().GetString("log-level")
	var l slog.Level
	if err := l.UnmarshalText([]byte(lvl)); err != nil {
		return nil, usagef("--log-level %q: want debug, info, warn or error", lvl)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}
