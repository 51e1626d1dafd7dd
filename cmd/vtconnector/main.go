// Command vtconnector brings VirusTotal verdicts into Carbon Black EDR and
// OpenCTI, and answers ad-hoc lookups at the terminal. All the work is in
// internal/cli; main only wires signals and the exit status.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/vtconnector/vtconnector/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
