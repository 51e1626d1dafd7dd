package config

import (
	"testing"
	"time"
)

func TestParseRescanWindow(t *testing.T) {
	const day = 24 * time.Hour
	tests := []struct {
		name    string
		in      string
		want    time.Duration
		minutes bool
		err     string
	}{
		{name: "empty is disabled", in: "", want: 0},
		{name: "NEVER is disabled", in: "NEVER", want: 0},
		{name: "NEVER anywhere, any case, is disabled", in: "not never ever", want: 0},
		{name: "days as in the README", in: "365D", want: 365 * day},
		{name: "lower-case unit", in: "365d", want: 365 * day},
		{name: "seconds (undocumented but accepted by the original)", in: "90S", want: 90 * time.Second},
		{name: "M is minutes", in: "30M", want: 30 * time.Minute, minutes: true},
		{name: "m is minutes too", in: "30m", want: 30 * time.Minute, minutes: true},
		{name: "hours", in: "12H", want: 12 * time.Hour},
		{name: "weeks", in: "2W", want: 14 * day},
		{name: "spaces around and inside", in: "  7 D  ", want: 7 * day},
		{name: "explicit plus sign", in: "+1D", want: day},
		{name: "Go duration", in: "36h", want: 36 * time.Hour},
		{name: "compound Go duration", in: "1h30m", want: 90 * time.Minute},
		{name: "fractional Go duration", in: "1.5h", want: 90 * time.Minute},
		{name: "unknown unit", in: "12X", err: "unit must be one of S, M, H, D, W (or NEVER, or a Go duration like 36h)"},
		{name: "years are not a unit", in: "1Y", err: "unit must be one of S, M, H, D, W (or NEVER, or a Go duration like 36h)"},
		{name: "bare integer", in: "365", err: "missing unit: unit must be one of S, M, H, D, W (or NEVER, or a Go duration like 36h)"},
		{name: "garbage", in: "soon", err: "unit must be one of S, M, H, D, W (or NEVER, or a Go duration like 36h)"},
		{name: "negative", in: "-1D", err: "must be positive (a zero or negative window would ask VirusTotal to rescan on every lookup); use NEVER to disable rescans"},
		{name: "zero", in: "0D", err: "must be positive (a zero or negative window would ask VirusTotal to rescan on every lookup); use NEVER to disable rescans"},
		{name: "negative Go duration", in: "-5h", err: "must be positive (a zero or negative window would ask VirusTotal to rescan on every lookup); use NEVER to disable rescans"},
		{name: "overflow", in: "99999999999W", err: "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, minutes, err := parseRescanWindow(tt.in)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("parseRescanWindow(%q) error = %v, want %q", tt.in, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseRescanWindow(%q): %v", tt.in, err)
			}
			if got != tt.want || minutes != tt.minutes {
				t.Errorf("parseRescanWindow(%q) = %v, minutes %v; want %v, %v", tt.in, got, minutes, tt.want, tt.minutes)
			}
		})
	}
}

func TestRescanWindowOverflowIsRefused(t *testing.T) {
	for _, s := range []string{"-9223372036854775807S", "-1H", "-0W", "9223372036854775807W"} {
		if d, _, err := parseRescanWindow(s); err == nil {
			t.Errorf("parseRescanWindow(%q) = %s, want an error", s, d)
		}
	}
}
