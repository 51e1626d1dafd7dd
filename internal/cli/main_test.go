package cli

import (
	"context"
	"encoding/json"
	"os"
	"os/signal"
	"syscall"
	"testing"
)

// TestMain lets tests run the command line in a child process (the test
// binary itself), so that a test can SIGKILL a running connector.
func TestMain(m *testing.M) {
	if base := os.Getenv(bareClientEnv); base != "" {
		code := bareClientMain(base)
		writePeakRSS()
		os.Exit(code)
	}
	if args := os.Getenv("VTC_CLI_CHILD_ARGS"); args != "" {
		var argv []string
		if err := json.Unmarshal([]byte(args), &argv); err != nil {
			os.Exit(99)
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		if ready := os.Getenv(childReadyEnv); ready != "" {
			if err := os.WriteFile(ready, nil, 0o600); err != nil {
				os.Exit(98)
			}
		}
		e := &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
		if os.Getenv("VTC_CLI_CHILD_FAST") != "" {
			e.cbTune, e.octiTune, e.analysisPoll = fastTune, octiFast, fastPoll
		}
		stopProfile := childProfile()
		code := run(ctx, argv, e)
		stopProfile()
		stop()
		writePeakRSS()
		os.Exit(code)
	}
	os.Exit(m.Run())
}
