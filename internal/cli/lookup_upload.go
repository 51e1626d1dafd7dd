package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/vtconnector/vtconnector/internal/engine"
	"github.com/vtconnector/vtconnector/internal/store"
	"github.com/vtconnector/vtconnector/internal/worker"
)

// kindLookupUpload is the queue kind of `lookup --upload` files.
const kindLookupUpload = "lookup.upload"

// uploadEngine is the part of the engine lookup's uploads use.
type uploadEngine interface {
	Upload(ctx context.Context, u engine.Upload) (engine.Submission, error)
	Collect(ctx context.Context, s *engine.Submission, co engine.CallOptions) (engine.Collected, error)
}

// uploadQueue runs `lookup --upload` on the same durable queue worker as
// the daemons: a file is queued, a worker uploads it and collects its
// analysis (parking it in the queue between polls), and the lookup that
// asked is told the report. With --db the queue is that database, so an
// interrupted run resumes its analyses instead of uploading again;
// without it, a temporary SQLite file holds them for the run.
type uploadQueue struct {
	eng    uploadEngine
	st     *store.Store
	pool   *worker.Pool
	mode   engine.Mode
	cancel context.CancelFunc
	done   chan struct{}
	tmpDir string

	mu      sync.Mutex
	waiters map[string]chan uploadDone
}

type uploadPayload struct {
	Path       string             `json:"path"`
	SHA256     string             `json:"sha256"`
	Submission *engine.Submission `json:"submission,omitempty"`
}

type uploadDone struct {
	res engine.Result
	err error
}

func newUploadQueue(ctx context.Context, p *engineParts, mode engine.Mode, log *slog.Logger) (*uploadQueue, error) {
	u := &uploadQueue{eng: p.Engine, st: p.Store, mode: mode, waiters: map[string]chan uploadDone{}, done: make(chan struct{})}
	if u.st == nil {
		dir, err := os.MkdirTemp("", "vtconnector-lookup-*")
		if err != nil {
			return nil, fmt.Errorf("upload queue: %w", err)
		}
		st, err := store.Open(ctx, filepath.Join(dir, "uploads.db"), store.WithLogger(log))
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("upload queue: %w", err)
		}
		u.st, u.tmpDir = st, dir
	}
	host, _ := os.Hostname()
	u.pool = worker.New(u.st, worker.Config{Name: "upload", Owner: fmt.Sprintf("%s/lookup/%d", host, os.Getpid()),
		Kinds: []string{kindLookupUpload}, Workers: 2, Idle: time.Second, Log: log}, u.handle)
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	u.cancel = cancel
	go func() { defer close(u.done); _ = u.pool.Run(rctx) }()
	return u, nil
}

// close stops the workers (handing back what they hold) and removes the
// temporary queue.
func (u *uploadQueue) close() {
	u.cancel()
	<-u.done
	if u.tmpDir != "" {
		u.st.Close()
		os.RemoveAll(u.tmpDir)
	}
}

// upload queues the file and waits for its report.
func (u *uploadQueue) upload(ctx context.Context, path, sha string, co engine.CallOptions) (engine.Result, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return engine.Result{}, err
	}
	key := string(u.mode) + ":" + sha
	ch := make(chan uploadDone, 1)
	u.mu.Lock()
	u.waiters[key] = ch
	u.mu.Unlock()
	defer func() {
		u.mu.Lock()
		delete(u.waiters, key)
		u.mu.Unlock()
	}()
	payload, _ := json.Marshal(uploadPayload{Path: abs, SHA256: sha})
	added, err := u.st.Enqueue(ctx, store.NewItem{Kind: kindLookupUpload, Key: key, Payload: payload, Priority: 1})
	if err != nil {
		return engine.Result{}, fmt.Errorf("queue the upload of %s: %w", path, err)
	}
	if !added {
		// Queued by an earlier run: finished (look it up afresh), or still
		// open (our workers take it over when its lease allows).
		it, ok, err := u.st.GetItem(ctx, kindLookupUpload, key)
		if err != nil {
			return engine.Result{}, err
		}
		if ok && (it.State == store.StateDone || it.State == store.StateNotFound || it.State == store.StateFailed) {
			if _, err := u.st.Requeue(ctx, it.State, kindLookupUpload); err != nil {
				return engine.Result{}, err
			}
		}
	}
	u.pool.Wake()
	select {
	case <-ctx.Done():
		return engine.Result{}, ctx.Err()
	case d := <-ch:
		return d.res, d.err
	}
}

func (u *uploadQueue) tell(key string, d uploadDone) {
	u.mu.Lock()
	ch := u.waiters[key]
	u.mu.Unlock()
	if ch != nil {
		select {
		case ch <- d:
		default:
		}
	}
}

// handle uploads a queued file, or polls its analysis.
func (u *uploadQueue) handle(ctx context.Context, it store.Item) store.Outcome {
	var p uploadPayload
	if err := json.Unmarshal(it.Payload, &p); err != nil {
		return store.Permanent(fmt.Errorf("unreadable upload item %q", it.Key))
	}
	co := engine.CallOptions{Priority: engine.Interactive}
	fail := func(err error) store.Outcome {
		if ctx.Err() != nil {
			return store.HandBack()
		}
		// The person at the terminal is told now and nobody waits for a
		// retry, so the item ends here (a later run queues it again).
		u.tell(it.Key, uploadDone{err: err})
		return store.Permanent(err)
	}
	if p.Submission == nil {
		sub, err := u.eng.Upload(ctx, engine.Upload{Path: p.Path, Hash: p.SHA256, Mode: u.mode, CallOptions: co})
		if err != nil {
			return fail(fmt.Errorf("upload %s: %w", p.Path, err))
		}
		p.Submission = &sub
		b, _ := json.Marshal(p)
		return store.PendingAnalysis(time.Now(), b)
	}
	col, err := u.eng.Collect(ctx, p.Submission, co)
	if err != nil {
		return fail(fmt.Errorf("analysis of %s: %w", p.Path, err))
	}
	if !col.Done {
		b, _ := json.Marshal(p)
		return store.PendingAnalysis(col.NextPoll, b)
	}
	if col.GaveUp && !col.Result.Found {
		err := fmt.Errorf("analysis %s of %s not finished within --upload-wait, and VirusTotal has no report yet", p.Submission.Analysis, p.Path)
		u.tell(it.Key, uploadDone{err: err})
		return store.Permanent(err)
	}
	u.tell(it.Key, uploadDone{res: col.Result})
	return store.Done(nil)
}
