package cli

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// printer writes lookup results in one of the output formats, one result
// at a time. Output is buffered; the caller flushes it whenever it has to
// wait for the next result (flushQuiet), so that long runs show their
// results as they come without a write per line.
type printer struct {
	format string
	w      *bufio.Writer
	csv    *csv.Writer
	enc    *json.Encoder
	err    error
	rows   int
}

func newPrinter(format string, w io.Writer) (*printer, error) {
	p := &printer{format: format, w: bufio.NewWriterSize(w, 64<<10)}
	switch format {
	case "json":
		p.enc = json.NewEncoder(p.w)
		p.enc.SetEscapeHTML(false)
	case "csv":
		p.csv = csv.NewWriter(p.w)
		p.err = p.csv.Write([]string{"query", "type", "id", "found", "malicious", "suspicious", "harmless", "undetected", "link", "error"})
	case "table":
		_, p.err = fmt.Fprintf(p.w, "%-44s %-10s %-5s %5s %5s %5s %5s  %s\n", "QUERY", "TYPE", "FOUND", "MAL", "SUSP", "HARM", "UNDET", "LINK / ERROR")
	default:
		return nil, usagef("--format %q: want table, json or csv", format)
	}
	return p, nil
}

func (p *printer) write(r *lookupResult) {
	if p.err != nil {
		return
	}
	p.rows++
	switch p.format {
	case "json":
		p.err = p.enc.Encode(r)
	case "csv":
		p.err = p.csv.Write([]string{r.Query, r.Type, r.ID, strconv.FormatBool(r.Found),
			strconv.Itoa(r.Malicious), strconv.Itoa(r.Suspicious), strconv.Itoa(r.Harmless),
			strconv.Itoa(r.Undetected), r.Link, r.Error})
		p.csv.Flush() // into p.w's buffer
		if p.err == nil {
			p.err = p.csv.Error()
		}
	case "table":
		found := "no"
		if r.Found {
			found = "yes"
		}
		tail := r.Link
		if r.Error != "" {
			found, tail = "-", "error: "+r.Error
		}
		_, p.err = fmt.Fprintf(p.w, "%-44s %-10s %-5s %5d %5d %5d %5d  %s\n",
			clip(oneLine(r.Query), 44), r.Type, found, r.Malicious, r.Suspicious, r.Harmless, r.Undetected, oneLine(tail))
	}
}

// flushQuiet writes out what is buffered; an error is kept for flush.
func (p *printer) flushQuiet() {
	if p.err == nil {
		p.err = p.w.Flush()
	}
}

func (p *printer) flush() error {
	if p.err != nil {
		return p.err
	}
	return p.w.Flush()
}

func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

func clip(s string, n int) string {
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}
