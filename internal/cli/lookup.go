package cli

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/vtconnector/vtconnector/internal/config"
	"github.com/vtconnector/vtconnector/internal/engine"
	"github.com/vtconnector/vtconnector/internal/vt"
)

type lookupFlags struct {
	apiKey      string
	apiKeyFile  string
	vtURL       string
	rate        int
	daily       int
	monthly     int
	format      string
	concurrency int
	files       []string
	upload      bool
	private     bool
	uploadWait  time.Duration
	maxWait     time.Duration
	maxAge      time.Duration
	timeout     time.Duration
	progress    string
	db          string
}

func newLookupCmd(e *env) *cobra.Command {
	f := &lookupFlags{}
	cmd := &cobra.Command{
		Use:   "lookup [flags] [QUERY ...]",
		Short: "Look up hashes, IP addresses, domains, URLs or files on VirusTotal",
		Long: `Look up each QUERY on VirusTotal and print one result per query, in input order.

A QUERY is an MD5, SHA-1 or SHA-256, an IPv4 or IPv6 address, a domain, or a
URL. With --file PATH a local file is hashed and its hash looked up; it is
uploaded only with --upload. With no QUERY, or "-", queries are read from
standard input, one per line (blank lines and lines starting with # are
skipped).

Requests are paced to the key's budget (--rate, --daily, --monthly; the
defaults are those of a free public key). When the budget runs out for
longer than --max-wait, the remaining queries are reported as not answered,
the results already obtained are still printed, and the exit status is 1.

Exit status: 0 when every query was answered (found or not found), 1 when
some failed, 2 for usage or configuration errors.`,
		Example: `  vtconnector lookup 44d88612fea8a8f36de82e1278abb02f 8.8.8.8 example.com
  cut -d, -f1 hashes.csv | vtconnector lookup --format csv > verdicts.csv
  vtconnector lookup --file ./sample.exe --upload`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLookup(cmd, e, f, args)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.apiKey, "apikey", "", "VirusTotal API key (default $VIRUSTOTAL_TOKEN); it shows in the process list: prefer $VIRUSTOTAL_TOKEN or --apikey-file")
	fl.StringVar(&f.apiKeyFile, "apikey-file", "", `read the VirusTotal API key from the first line of this file ("-": the first line of standard input; the queries follow)`)
	fl.StringVar(&f.vtURL, "vt-url", "", "VirusTotal API base URL (default $VIRUSTOTAL_URL or "+vt.DefaultBaseURL+")")
	fl.IntVar(&f.rate, "rate", engine.PublicKeyLimits.PerMinute, "requests per minute the key allows (0 = unlimited)")
	fl.IntVar(&f.daily, "daily", engine.PublicKeyLimits.PerDay, "requests per UTC day the key allows (0 = unlimited)")
	fl.IntVar(&f.monthly, "monthly", engine.PublicKeyLimits.PerMonth, "requests per UTC month the key allows (0 = unlimited)")
	fl.StringVar(&f.format, "format", "", "output format: table, json or csv (default table on a terminal, json otherwise)")
	fl.IntVar(&f.concurrency, "concurrency", 4, "queries worked on at once")
	fl.StringArrayVar(&f.files, "file", nil, "hash the local file PATH and look it up (repeatable)")
	fl.BoolVar(&f.upload, "upload", false, "upload --file files VirusTotal does not know (they become available to VirusTotal's community)")
	fl.BoolVar(&f.private, "private", false, "with --upload: use VirusTotal Private Scanning (a licence; nothing is shared, sandbox verdicts only, never a public upload)")
	fl.DurationVar(&f.uploadWait, "upload-wait", engine.DefaultAnalysisWait, "how long to wait for the analysis of an uploaded file before taking the report VirusTotal has")
	fl.DurationVar(&f.maxWait, "max-wait", 5*time.Minute, "longest wait for quota before giving up on the remaining queries (0 = wait as long as it takes)")
	fl.DurationVar(&f.maxAge, "max-age", 0, "re-ask VirusTotal for cached results older than this (default 7 days)")
	fl.DurationVar(&f.timeout, "timeout", 60*time.Second, "timeout of one VirusTotal request")
	fl.StringVar(&f.db, "db", "", "cache results and share the quota in this database: an SQLite path or a postgres:// URL (default: in memory, for this run only)")
	fl.StringVar(&f.progress, "progress", "auto", "progress bar on stderr: auto (when stderr is a terminal), always, never")
	return cmd
}

// lookupInput is one query as given.
type lookupInput struct {
	query string // free-form query, or the path with --file
	file  bool
}

// lookupResult is one line of output. The JSON names are part of the
// command's interface.
type lookupResult struct {
	Query      string `json:"query"`
	Type       string `json:"type"`
	ID         string `json:"id"`
	Found      bool   `json:"found"`
	Malicious  int    `json:"malicious"`
	Suspicious int    `json:"suspicious"`
	Harmless   int    `json:"harmless"`
	Undetected int    `json:"undetected"`
	Link       string `json:"link"`
	Error      string `json:"error"`
	Name       string `json:"name,omitempty"`
	Label      string `json:"label,omitempty"`
	Cached     bool   `json:"cached"`
	FetchedAt  string `json:"fetched_at,omitempty"`
	Uploaded   bool   `json:"uploaded,omitempty"`

	err error
}

func runLookup(cmd *cobra.Command, e *env, f *lookupFlags, args []string) error {
	log, err := newLogger(cmd, e.stderr)
	if err != nil {
		return err
	}
	stdin := e.stdin
	var problems []error
	switch {
	case f.apiKeyFile != "" && f.apiKey != "":
		problems = append(problems, errors.New("--apikey and --apikey-file: give one"))
	case f.apiKeyFile == "-":
		br := bufio.NewReader(e.stdin)
		line, err := br.ReadString('\n')
		if err != nil && line == "" {
			problems = append(problems, errors.New("--apikey-file -: standard input has no first line with the key"))
		}
		f.apiKey, stdin = strings.TrimSpace(line), br
	case f.apiKeyFile != "":
		b, err := os.ReadFile(f.apiKeyFile)
		if err != nil {
			problems = append(problems, fmt.Errorf("--apikey-file: %w", err))
		}
		first, _, _ := strings.Cut(string(b), "\n")
		f.apiKey = strings.TrimSpace(first)
	}
	if f.apiKey == "" && f.apiKeyFile == "" {
		f.apiKey = e.getenv("VIRUSTOTAL_TOKEN")
	}
	if f.vtURL == "" {
		f.vtURL = e.getenv("VIRUSTOTAL_URL")
	}
	if f.vtURL == "" {
		f.vtURL = vt.DefaultBaseURL
	}
	if strings.TrimSpace(f.apiKey) == "" && len(problems) == 0 {
		problems = append(problems, errors.New("no VirusTotal API key: set VIRUSTOTAL_TOKEN, or pass --apikey-file (or --apikey)"))
	}
	lim := engine.Limits{PerMinute: f.rate, PerDay: f.daily, PerMonth: f.monthly}
	if err := lim.Validate(); err != nil {
		problems = append(problems, err)
	}
	if f.concurrency < 1 || f.concurrency > 256 {
		problems = append(problems, fmt.Errorf("--concurrency %d: want 1 to 256", f.concurrency))
	}
	switch f.format {
	case "":
		f.format = "json"
		if isTerminal(e.stdout) {
			f.format = "table"
		}
	case "table", "json", "csv":
	default:
		problems = append(problems, fmt.Errorf("--format %q: want table, json or csv", f.format))
	}
	switch f.progress {
	case "auto", "always", "never":
	default:
		problems = append(problems, fmt.Errorf("--progress %q: want auto, always or never", f.progress))
	}
	if f.upload && len(f.files) == 0 {
		problems = append(problems, errors.New("--upload needs --file"))
	}
	if f.private && !f.upload {
		problems = append(problems, errors.New("--private needs --upload"))
	}
	if f.uploadWait < time.Second {
		problems = append(problems, fmt.Errorf("--upload-wait %s: want at least 1s", f.uploadWait))
	}
	if len(problems) > 0 {
		return usageError{errors.Join(problems...)}
	}

	if e.getenv("GOMEMLIMIT") == "" {
		// Hold the heap close to what the lookups need (the cache, the
		// reorder window): the garbage of a million answers is collected
		// before it adds up.
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(lookupMemoryLimit))
	}
	src := newQueries(stdin, args, f.files)
	defer src.close()
	if _, ok := src.peek(cmd.Context()); !ok {
		if err := src.err(); err != nil {
			return usageError{err}
		}
		return usagef("no queries: give them as arguments, on standard input, or with --file")
	}
	mode := engine.Public
	if f.private {
		mode = engine.Private
	}
	switch {
	case f.upload && f.private:
		fmt.Fprintln(e.stderr, "vtconnector: --upload --private sends unknown files to VirusTotal Private Scanning: they are not shared, and the report has sandbox verdicts only.")
	case f.upload:
		fmt.Fprintln(e.stderr, "vtconnector: WARNING: --upload sends unknown files to VirusTotal, where they become available to its community and partners.")
	}
	poll := cmp.Or(e.analysisPoll, 15*time.Second)
	p, err := buildEngine(cmd.Context(), e, engineSpec{
		Front: "lookup", Database: config.DSN(f.db), DBSetting: "--db",
		APIKey: config.Secret(f.apiKey), VTURL: f.vtURL, Timeout: f.timeout, UserAgent: "vtconnector/" + Version,
		Limits: lim, MaxAge: f.maxAge, Log: log, Summaries: true,
		Learn:    learn(cmd.Flags().Changed, "rate", "daily", "monthly"),
		Analysis: engine.AnalysisPolicy{MaxWait: f.uploadWait, FirstPoll: poll, MaxInterval: max(poll, time.Minute)},
	})
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			return usageError{fmt.Errorf("--vt-url: %w", err)}
		}
		return usageError{err}
	}
	defer p.Close()
	lk := &lookuper{eng: p.Engine, f: f, log: log}
	if f.upload {
		uq, err := newUploadQueue(cmd.Context(), p, mode, log)
		if err != nil {
			return err
		}
		defer uq.close()
		lk.uploads = uq
	}

	out, err := newPrinter(f.format, e.stdout)
	if err != nil {
		return err
	}
	var bar *progressbar.ProgressBar
	if f.progress == "always" || f.progress == "auto" && isTerminal(e.stderr) && src.count() != 1 {
		bar = progressbar.NewOptions(src.count(), progressbar.OptionSetWriter(e.stderr),
			progressbar.OptionSetDescription("looking up"), progressbar.OptionShowCount(),
			progressbar.OptionClearOnFinish(), progressbar.OptionThrottle(100*time.Millisecond))
	}
	t := lk.runAll(cmd.Context(), src.next, func(r *lookupResult) {
		if bar != nil {
			_ = bar.Add(1)
		}
	}, out.write, out.flushQuiet)
	if bar != nil {
		_ = bar.Finish()
	}
	if err := out.flush(); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	if err := src.err(); err != nil {
		fmt.Fprintf(e.stderr, "vtconnector: %v; the queries read before were answered.\n", err)
		if t.failed == 0 {
			return exitError{ExitFailure}
		}
	}
	return t.summarize(e.stderr)
}

// lookupMemoryLimit is lookup's soft memory limit (runtime/debug)
// unless GOMEMLIMIT sets one: well above the in-memory cache
// (engine.DefaultMemCacheBytes) and the reorder window.
const lookupMemoryLimit = 48 << 20

// maxListedFailures bounds the failed queries listed at the end (and
// kept in memory until then); their lines in the output carry the error.
const maxListedFailures = 100

// tally counts the results as they are emitted and keeps what the final
// summary needs: a bounded list of failures and the first quota error.
type tally struct {
	total, failed int
	listed        []*lookupResult
	quota         *engine.QuotaExhaustedError
	auth          bool
}

func (t *tally) add(r *lookupResult) {
	t.total++
	if r.err == nil {
		return
	}
	t.failed++
	if len(t.listed) < maxListedFailures {
		t.listed = append(t.listed, r)
	}
	t.auth = t.auth || errors.Is(r.err, vt.ErrAuth)
	var qe *engine.QuotaExhaustedError
	if t.quota == nil && errors.As(r.err, &qe) {
		t.quota = qe
	}
}

// summarize lists the queries that failed and picks the exit status.
func (t *tally) summarize(w io.Writer) error {
	if t.failed == 0 {
		return nil
	}
	fmt.Fprintf(w, "vtconnector: %d of %d queries not answered:\n", t.failed, t.total)
	for _, r := range t.listed {
		fmt.Fprintf(w, "  %s: %s\n", r.Query, r.Error)
	}
	if more := t.failed - len(t.listed); more > 0 {
		fmt.Fprintf(w, "  … and %d more (their results carry the error)\n", more)
	}
	if t.quota != nil {
		fmt.Fprintf(w, "vtconnector: the VirusTotal %s quota is used up until %s; the results obtained so far were printed. Run the unanswered queries again after that.\n",
			t.quota.Window, t.quota.ResetAt.UTC().Format(time.RFC3339))
	}
	if t.auth {
		fmt.Fprintln(w, "vtconnector: VirusTotal rejected the API key (--apikey / VIRUSTOTAL_TOKEN): check it; nothing more was asked.")
		return exitError{ExitUsage}
	}
	return exitError{ExitFailure}
}

// lookupEngine is the part of the engine lookups use.
type lookupEngine interface {
	Lookup(ctx context.Context, r engine.Request) (engine.Result, error)
}

type lookuper struct {
	eng     lookupEngine
	uploads *uploadQueue // nil without --upload
	f       *lookupFlags
	log     *slog.Logger

	fatalMu sync.Mutex
	fatal   error // an error that dooms every later query (bad key)
}

// reorderWindow is how many results, per worker, may wait for an
// earlier one before the reading of queries pauses: it bounds the memory
// held whatever the number of queries.
const reorderWindow = 8

// runAll works through the queries next yields with f.concurrency workers
// and calls emit for each result in input order as soon as it and all
// before it are done. Queries are read only as the reorder window allows;
// idle is called when emit has to wait (a moment to flush output).
func (lk *lookuper) runAll(ctx context.Context, next func(context.Context) (lookupInput, bool), progress, emit func(*lookupResult), idle func()) *tally {
	type job struct {
		in  lookupInput
		out chan *lookupResult
	}
	// order holds each query's result channel in input order; its
	// capacity is the window.
	order := make(chan chan *lookupResult, reorderWindow*lk.f.concurrency)
	jobs := make(chan job)
	var wg sync.WaitGroup
	for range lk.f.concurrency {
		wg.Go(func() {
			for j := range jobs {
				r := lk.one(ctx, j.in)
				progress(r)
				j.out <- r
			}
		})
	}
	go func() {
		defer close(order)
		defer close(jobs)
		for {
			in, ok := next(ctx)
			if !ok {
				return
			}
			out := make(chan *lookupResult, 1)
			order <- out
			select {
			case jobs <- job{in, out}:
			case <-ctx.Done():
				out <- failedResult(in, fmt.Errorf("not asked: %w", ctx.Err()))
			}
		}
	}()
	t := &tally{}
	for out := range order {
		var r *lookupResult
		select {
		case r = <-out:
		default:
			idle()
			r = <-out
		}
		emit(r)
		t.add(r)
	}
	wg.Wait()
	return t
}

func failedResult(in lookupInput, err error) *lookupResult {
	r := &lookupResult{Query: in.query, err: err, Error: err.Error()}
	if in.file {
		r.Type = string(vt.KindFile)
	}
	return r
}

func (lk *lookuper) setFatal(err error) {
	lk.fatalMu.Lock()
	defer lk.fatalMu.Unlock()
	if lk.fatal == nil {
		lk.fatal = err
	}
}

func (lk *lookuper) fatalErr() error {
	lk.fatalMu.Lock()
	defer lk.fatalMu.Unlock()
	return lk.fatal
}

func (lk *lookuper) one(ctx context.Context, in lookupInput) *lookupResult {
	if err := lk.fatalErr(); err != nil {
		return failedResult(in, fmt.Errorf("not asked: %w", err))
	}
	var kind vt.Kind
	var id string
	if in.file {
		h, err := vt.SHA256File(in.query)
		if err != nil {
			return failedResult(in, err)
		}
		kind, id = vt.KindFile, h
	} else {
		k, v, err := vt.ParseQuery(in.query)
		if err != nil {
			return failedResult(in, fmt.Errorf("invalid query: %w", err))
		}
		kind, id = k, v
	}
	co := engine.CallOptions{Priority: engine.Interactive, MaxWait: lk.f.maxWait}
	res, err := lk.eng.Lookup(ctx, engine.Request{Kind: kind, ID: id, CallOptions: co})
	uploaded := false
	if err == nil && in.file && !res.Found && lk.uploads != nil {
		res, err = lk.uploads.upload(ctx, in.query, id, co)
		uploaded = err == nil
	}
	if err != nil {
		if errors.Is(err, vt.ErrAuth) {
			lk.setFatal(err)
		}
		r := failedResult(in, err)
		r.Type = string(kind)
		return r
	}
	r := toResult(in.query, res)
	r.Uploaded = uploaded
	return r
}

func toResult(query string, res engine.Result) *lookupResult {
	r := &lookupResult{Query: query, Type: string(res.Kind), ID: res.ID, Found: res.Found, Cached: res.Cached}
	if !res.FetchedAt.IsZero() {
		r.FetchedAt = res.FetchedAt.UTC().Format(time.RFC3339)
	}
	linkID := res.ID
	if res.Found && res.Object != nil {
		a := &res.Object.Attributes
		if res.Object.ID != "" {
			r.ID = res.Object.ID
			linkID = res.Object.ID
		}
		if s := a.LastAnalysisStats; s != nil {
			r.Malicious, r.Suspicious, r.Harmless, r.Undetected = s.Malicious, s.Suspicious, s.Harmless, s.Undetected
		}
		r.Name = a.MeaningfulName
		if a.PopularThreat != nil {
			r.Label = a.PopularThreat.SuggestedThreatLabel
		}
	}
	if res.Kind == vt.KindURL && !res.Found {
		// The GUI addresses URLs by the SHA-256 VirusTotal computes after
		// canonicalising; without it, a search finds the page.
		r.Link = vt.GUIBaseURL + "/search/" + linkID
	} else {
		r.Link = vt.GUILink(res.Kind, linkID)
	}
	return r
}

func isTerminal(w any) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}
