package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Upload settings shared by the fronts: where uploads go, which files may
// go, and how long their analyses are waited for.

// uploadModes are the values of virustotal_upload_mode / VIRUSTOTAL_UPLOAD_MODE.
var uploadModes = []string{"public", "private"}

// uploadFileTypes are the content types an upload policy can allow.
var uploadFileTypes = []string{"pe", "elf", "macho", "any"}

// DefaultAnalysisWait is every front's default analysis wait: how long a
// submitted file's or URL's analysis is waited for before the report
// VirusTotal has is taken as it is.
const DefaultAnalysisWait = 2 * time.Hour

// parseFileTypes reads a comma- or space-separated list of file types.
func parseFileTypes(s string) ([]string, error) {
	var out []string
	for _, t := range strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		if !slices.Contains(uploadFileTypes, t) {
			return nil, fmt.Errorf("file type %q: want a list of %s", t, strings.Join(uploadFileTypes, ", "))
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty list: want one or more of %s", strings.Join(uploadFileTypes, ", "))
	}
	return out, nil
}

func fileTypesField[T any](o Option, p func(*T) *[]string) field[T] {
	return field[T]{
		Option: o,
		set: func(c *T, in *input) error {
			v, err := parseFileTypes(in.text)
			if err == nil {
				*p(c) = v
			}
			return err
		},
		get: func(c *T) string { return strings.Join(*p(c), ",") },
	}
}

// parseAnalysisWait reads an analysis wait: rescan_window's forms
// (<int><S|M|H|D|W> or a Go duration), at least a minute; NEVER and 0
// are refused (a wait must end).
func parseAnalysisWait(s string) (time.Duration, error) {
	if strings.Contains(strings.ToUpper(s), "NEVER") {
		return 0, errors.New("an analysis wait must end: give a duration such as 2H or 90m")
	}
	d, _, err := parseRescanWindow(s)
	if err != nil {
		return 0, err
	}
	if d < time.Minute {
		return 0, fmt.Errorf("%s is too short: at least 1 minute", d)
	}
	return d, nil
}

func analysisWaitField[T any](o Option, p func(*T) *time.Duration) field[T] {
	return field[T]{
		Option: o,
		set: func(c *T, in *input) error {
			d, err := parseAnalysisWait(in.text)
			if err == nil {
				*p(c) = d
			}
			return err
		},
		get: func(c *T) string { return (*p(c)).String() },
	}
}
