package config

import (
	"errors"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// legacyWindow is the original connector's rescan_window form: an integer
// and one unit letter, spaces allowed around and between them.
var legacyWindow = regexp.MustCompile(`^([+-]?[0-9]+)\s*([A-Za-z])$`)

var bareInteger = regexp.MustCompile(`^[+-]?[0-9]+$`)

const rescanUnits = "unit must be one of S, M, H, D, W (or NEVER, or a Go duration like 36h)"

// parseRescanWindow reads rescan_window. It returns 0 for "disabled"
// (empty, or NEVER anywhere in the value, as the original did), and
// minutes=true when the value used the legacy unit M, which means minutes
// and not months.
//
// Unlike the original, a zero or negative window is an error: there it
// made every lookup ask VirusTotal for a rescan, spending the quota twice
// per binary; NEVER is how to turn rescans off.
func parseRescanWindow(s string) (d time.Duration, minutes bool, err error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.Contains(strings.ToUpper(s), "NEVER") {
		return 0, false, nil
	}
	if m := legacyWindow.FindStringSubmatch(s); m != nil {
		var unit time.Duration
		switch strings.ToUpper(m[2]) {
		case "S":
			unit = time.Second
		case "M":
			unit, minutes = time.Minute, true
		case "H":
			unit = time.Hour
		case "D":
			unit = 24 * time.Hour
		case "W":
			unit = 7 * 24 * time.Hour
		default:
			return 0, false, errors.New(rescanUnits)
		}
		n, err := strconv.ParseInt(m[1], 10, 64)
		if err == nil && n <= 0 {
			return 0, false, errors.New("must be positive (a zero or negative window would ask VirusTotal to rescan on every lookup); use NEVER to disable rescans")
		}
		if err != nil || n > int64(math.MaxInt64/unit) {
			return 0, false, errors.New("too large")
		}
		d = time.Duration(n) * unit
	} else if bareInteger.MatchString(s) {
		return 0, false, errors.New("missing unit: " + rescanUnits)
	} else if d, err = time.ParseDuration(s); err != nil {
		return 0, false, errors.New(rescanUnits)
	}
	if d <= 0 {
		return 0, false, errors.New("must be positive (a zero or negative window would ask VirusTotal to rescan on every lookup); use NEVER to disable rescans")
	}
	return d, minutes, nil
}

func formatRescanWindow(d time.Duration) string {
	if d == 0 {
		return "NEVER"
	}
	return d.String()
}
