//go:build tools

package tools

import (
	_ "github.com/VirusTotal/vt-go"
	_ "github.com/google/go-cmp/cmp"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "github.com/spf13/cobra"
	_ "go.uber.org/goleak"
	_ "golang.org/x/sync/singleflight"
	_ "golang.org/x/term"
	_ "modernc.org/sqlite"
	_ "github.com/schollz/progressbar/v3"
	_ "github.com/prometheus/client_golang/prometheus"
)
