package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/vtconnector/vtconnector/internal/vt"
)

// SubmitAPI is the write side of the VirusTotal client: uploads, URL
// submissions, rescans and their analyses, public and private, and the
// YARA rulesets reports refer to.
type SubmitAPI interface {
	UploadFile(ctx context.Context, path string) (string, error)
	SubmitURL(ctx context.Context, rawURL string) (string, error)
	Reanalyse(ctx context.Context, hash string) (string, error)
	Analysis(ctx context.Context, id string) (*vt.Analysis, error)
	PrivateUploadFile(ctx context.Context, path string) (string, error)
	PrivateSubmitURL(ctx context.Context, rawURL string) (string, error)
	PrivateAnalysis(ctx context.Context, id string) (*vt.Analysis, error)
	PrivateFile(ctx context.Context, sha256 string) (*vt.Object, error)
	PrivateURL(ctx context.Context, id string) (*vt.Object, error)
	YARARuleset(ctx context.Context, id string) (*vt.Object, error)
	URLServingIP(ctx context.Context, id string) (string, error)
}

// Mode is where a submission goes.
type Mode string

// Upload modes.
const (
	// Public: the file or URL joins VirusTotal's corpus, seen by its
	// community and partners; the report has antivirus verdicts.
	Public Mode = "public"
	// Private: VirusTotal's Private Scanning (a licence): nothing is
	// shared, the analysis is ephemeral and has sandbox and tool verdicts
	// but no antivirus verdicts.
	Private Mode = "private"
)

// ParseMode parses "public" or "private" (empty: public).
func ParseMode(s string) (Mode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "public":
		return Public, nil
	case "private":
		return Private, nil
	}
	return "", fmt.Errorf("upload mode %q: want public or private", s)
}

// Submission is an analysis VirusTotal runs for us. It is plain data, so
// that fronts keep it in their queue items and collect it later, in
// another process if need be.
type Submission struct {
	Analysis string    `json:"analysis"`
	Mode     Mode      `json:"mode"`
	Kind     vt.Kind   `json:"kind"`    // file or url
	Subject  string    `json:"subject"` // the file's SHA-256 (or another hash), or the URL
	Since    time.Time `json:"since"`
	Polls    int       `json:"polls,omitempty"`
	Rescan   bool      `json:"rescan,omitempty"`
}

// Upload is a file to submit.
type Upload struct {
	Path  string // the file, streamed from disk
	Hash  string // its hash, when the front knows one (else computed)
	Mode  Mode
	Facts UploadFacts
	CallOptions
}

// Collected is what one poll of a submission found.
type Collected struct {
	// Done: the analysis completed, vanished, or was waited for longer
	// than the analysis policy allows; Result is the report then.
	Done bool
	// GaveUp: Done because the wait ran out, not because it completed.
	GaveUp bool
	// NextPoll is when to poll again, when not Done.
	NextPoll time.Time
	// Result is the fresh report when Done: a public lookup, or for
	// private submissions the private report (Result.Object.Private).
	Result Result
}

func (e *Engine) submitter() (SubmitAPI, error) {
	if e.sub == nil {
		return nil, fmt.Errorf("engine: %w: this engine cannot submit (no client for it)", vt.ErrForbidden)
	}
	return e.sub, nil
}

func (e *Engine) refused(err error) error {
	var re *UploadRefusedError
	if errors.As(err, &re) {
		e.opt.Events.UploadRefused(re.Reason)
	}
	return err
}

// Upload sends a file for analysis, after the upload policy allowed it,
// within the quota, with a deadline that grows with the file's size (a
// stalled upload fails with vt.ErrDeadlineExceeded instead of holding
// its worker). A refused upload is an *UploadRefusedError; nothing was
// sent then. A private upload never falls back to a public one.
func (e *Engine) Upload(ctx context.Context, u Upload) (Submission, error) {
	sub, err := e.submitter()
	if err != nil {
		return Submission{}, err
	}
	if u.Mode == "" {
		u.Mode = Public
	}
	if err := e.opt.Uploads.Check(u.Path, u.Facts); err != nil {
		e.log.Warn("upload refused by the upload policy", "file", u.Path, "hash", u.Hash, "error", err)
		return Submission{}, e.refused(err)
	}
	st, err := os.Stat(u.Path)
	if err != nil {
		return Submission{}, fmt.Errorf("engine: upload: %w", err)
	}
	hash := strings.ToLower(u.Hash)
	if !vt.IsHash(hash) {
		if hash, err = vt.SHA256File(u.Path); err != nil {
			return Submission{}, fmt.Errorf("engine: upload: %w", err)
		}
	}
	co := u.CallOptions
	co.Deadline = UploadDeadline(st.Size(), e.opt.UploadMinRate)
	co.Endpoint = "POST /files"
	send := sub.UploadFile
	if u.Mode == Private {
		co.Endpoint, send = "POST /private/files", sub.PrivateUploadFile
	}
	var id string
	err = e.Do(ctx, co, func(ctx context.Context) error {
		var err error
		id, err = send(ctx, u.Path)
		return err
	})
	if err != nil {
		return Submission{}, fmt.Errorf("engine: %s upload of %s: %w", u.Mode, hash, err)
	}
	e.log.Info("file submitted to VirusTotal", "mode", u.Mode, "hash", hash, "bytes", st.Size(), "analysis", id)
	return Submission{Analysis: id, Mode: u.Mode, Kind: vt.KindFile, Subject: hash, Since: time.Now().UTC()}, nil
}

// SubmitURL asks VirusTotal to analyse a URL (publicly or privately).
func (e *Engine) SubmitURL(ctx context.Context, rawURL string, mode Mode, f UploadFacts, co CallOptions) (Submission, error) {
	sub, err := e.submitter()
	if err != nil {
		return Submission{}, err
	}
	if mode == "" {
		mode = Public
	}
	if p := e.opt.Uploads.MaxTLP; p != nil && f.TLP != nil && *f.TLP > *p {
		err := &UploadRefusedError{Reason: RefusedTLP, Detail: fmt.Sprintf("marked %s, above the upload ceiling %s", *f.TLP, *p)}
		e.log.Warn("URL submission refused by the upload policy", "url", rawURL, "error", err)
		return Submission{}, e.refused(err)
	}
	co.Endpoint = "POST /urls"
	send := sub.SubmitURL
	if mode == Private {
		co.Endpoint, send = "POST /private/urls", sub.PrivateSubmitURL
	}
	var id string
	err = e.Do(ctx, co, func(ctx context.Context) error {
		var err error
		id, err = send(ctx, rawURL)
		return err
	})
	if err != nil {
		return Submission{}, fmt.Errorf("engine: %s URL submission: %w", mode, err)
	}
	return Submission{Analysis: id, Mode: mode, Kind: vt.KindURL, Subject: rawURL, Since: time.Now().UTC()}, nil
}

// Rescan asks VirusTotal to analyse a known file again.
func (e *Engine) Rescan(ctx context.Context, hash string, co CallOptions) (Submission, error) {
	sub, err := e.submitter()
	if err != nil {
		return Submission{}, err
	}
	co.Endpoint = "POST /files/{id}/analyse"
	var id string
	err = e.Do(ctx, co, func(ctx context.Context) error {
		var err error
		id, err = sub.Reanalyse(ctx, hash)
		return err
	})
	if err != nil {
		return Submission{}, fmt.Errorf("engine: rescan of %s: %w", hash, err)
	}
	return Submission{Analysis: id, Mode: Public, Kind: vt.KindFile, Subject: strings.ToLower(hash), Since: time.Now().UTC(), Rescan: true}, nil
}

// Collect polls a submission once, within the quota. Until the analysis
// completes it says when to poll again (the analysis policy spaces the
// polls); once it completed, vanished, or was waited for longer than the
// policy's MaxWait, it returns the report: a fresh public lookup, or the
// private report for private submissions. s.Polls counts the polls.
func (e *Engine) Collect(ctx context.Context, s *Submission, co CallOptions) (Collected, error) {
	sub, err := e.submitter()
	if err != nil {
		return Collected{}, err
	}
	pol := e.opt.Analysis.withDefaults()
	poll, ep := sub.Analysis, "GET /analyses/{id}"
	if s.Mode == Private {
		poll, ep = sub.PrivateAnalysis, "GET /private/analyses/{id}"
	}
	pco := co
	pco.Endpoint = ep
	var a *vt.Analysis
	err = e.Do(ctx, pco, func(ctx context.Context) error {
		var err error
		a, err = poll(ctx, s.Analysis)
		return err
	})
	s.Polls++
	gaveUp := false
	switch {
	case errors.Is(err, vt.ErrNotFound):
		e.log.Info("analysis gone; taking the report as it is", "analysis", s.Analysis, "subject", s.Subject)
	case err != nil:
		return Collected{}, fmt.Errorf("engine: poll analysis %s: %w", s.Analysis, err)
	case !a.Completed():
		if time.Since(s.Since) < pol.MaxWait {
			return Collected{NextPoll: time.Now().Add(pol.interval(s.Polls - 1))}, nil
		}
		e.log.Warn("analysis not finished within the analysis wait; taking the report as it is",
			"analysis", s.Analysis, "subject", s.Subject, "waited", time.Since(s.Since).Round(time.Second), "analysis_wait", pol.MaxWait)
		gaveUp = true
	default:
		if s.Kind == vt.KindFile && a.SHA256 != "" {
			s.Subject = strings.ToLower(a.SHA256)
		}
	}
	res, err := e.report(ctx, s, co)
	if err != nil {
		return Collected{}, err
	}
	return Collected{Done: true, GaveUp: gaveUp, Result: res}, nil
}

// report fetches the report a finished submission produced.
func (e *Engine) report(ctx context.Context, s *Submission, co CallOptions) (Result, error) {
	if s.Mode != Private {
		return e.Lookup(ctx, Request{Kind: s.Kind, ID: s.Subject, CallOptions: co, MaxAge: -1})
	}
	id, get, ep := s.Subject, e.sub.PrivateFile, "GET /private/files/{id}"
	if s.Kind == vt.KindURL {
		id, get, ep = vt.URLID(s.Subject), e.sub.PrivateURL, "GET /private/urls/{id}"
	}
	co.Endpoint = ep
	var o *vt.Object
	err := e.Do(ctx, co, func(ctx context.Context) error {
		var err error
		o, err = get(ctx, id)
		return err
	})
	res := Result{Kind: s.Kind, ID: id, FetchedAt: time.Now()}
	switch {
	case errors.Is(err, vt.ErrNotFound):
		return res, nil
	case err != nil:
		return Result{}, fmt.Errorf("engine: private report of %s: %w", id, err)
	}
	o.Private = true
	res.Found, res.Object = true, o
	return res, nil
}

// yaraKind is the cache kind of YARA rulesets.
const yaraKind vt.Kind = "yara_ruleset"

// YARARuleset returns a crowdsourced YARA ruleset, from the cache when
// there (rulesets change rarely) or VirusTotal, within the quota.
func (e *Engine) YARARuleset(ctx context.Context, id string, co CallOptions) (*vt.Object, error) {
	sub, err := e.submitter()
	if err != nil {
		return nil, err
	}
	if e.cache != nil {
		if ent, ok, err := e.cache.Get(ctx, yaraKind, id); err == nil && ok && ent.Found && time.Since(ent.FetchedAt) < e.opt.MaxAge {
			if ent.Object != nil {
				return ent.Object, nil
			}
			if o, err := vt.DecodeObject(ent.Data); err == nil {
				return o, nil
			}
		}
	}
	co.Endpoint = "GET /yara_rulesets/{id}"
	var o *vt.Object
	v, err, _ := e.sf.Do(string(yaraKind)+":"+id, func() (any, error) {
		err := e.Do(ctx, co, func(ctx context.Context) error {
			var err error
			o, err = sub.YARARuleset(ctx, id)
			return err
		})
		return o, err
	})
	if err != nil {
		return nil, fmt.Errorf("engine: YARA ruleset %s: %w", id, err)
	}
	o = v.(*vt.Object)
	e.store(ctx, Entry{Kind: yaraKind, ID: id, Found: true, Data: o.Raw, FetchedAt: time.Now(), Object: o})
	return o, nil
}

// servingKind is the cache kind of URLs' last serving IP addresses.
const servingKind vt.Kind = "url_serving_ip"

// URLServingIP returns the IP address that last served the URL whose
// VirusTotal id is urlID ("" when none is on record): from the cache when
// fresh, else one paced request.
func (e *Engine) URLServingIP(ctx context.Context, urlID string, co CallOptions) (string, error) {
	sub, err := e.submitter()
	if err != nil {
		return "", err
	}
	if e.cache != nil {
		if ent, ok, err := e.cache.Get(ctx, servingKind, urlID); err == nil && ok && time.Since(ent.FetchedAt) < e.opt.MaxAge {
			var ip string
			if json.Unmarshal(ent.Data, &ip) == nil {
				return ip, nil
			}
		}
	}
	co.Endpoint = "GET /urls/{id}/last_serving_ip_address"
	var ip string
	err = e.Do(ctx, co, func(ctx context.Context) error {
		var err error
		ip, err = sub.URLServingIP(ctx, urlID)
		return err
	})
	if errors.Is(err, vt.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("engine: serving IP of URL %s: %w", urlID, err)
	}
	data, _ := json.Marshal(ip)
	e.store(ctx, Entry{Kind: servingKind, ID: urlID, Found: true, Data: data, FetchedAt: time.Now()})
	return ip, nil
}
