package worker

import (
	"context"
	"errors"
	"time"

	"github.com/vtconnector/vtconnector/internal/engine"
	"github.com/vtconnector/vtconnector/internal/store"
	"github.com/vtconnector/vtconnector/internal/vt"
)

// Outcome maps an error met while working an item to what happens to the
// item next. Fronts check their own platform's errors first and hand the
// rest to it:
//   - no quota before the caller's maximum wait: parked until the quota frees;
//   - VirusTotal refused the key: the queue pauses (every item would fail alike);
//   - the upload policy refused, or VirusTotal refused the request for
//     good (bad request, missing privilege, too large): the item fails;
//   - the work was cut short by a shutdown: handed back, uncounted;
//   - anything else (network, 5xx, deadlines, a busy database): retried
//     with backoff, however many times it takes.
func Outcome(ctx context.Context, err error) store.Outcome {
	var qe *engine.QuotaExhaustedError
	switch {
	case err == nil:
		return store.Done(nil)
	case ctx.Err() != nil:
		return store.HandBack()
	case errors.As(err, &qe):
		return store.RateLimited(qe.ResetAt)
	case errors.Is(err, vt.ErrAuth):
		return store.AuthError(err)
	case errors.Is(err, engine.ErrUploadRefused),
		errors.Is(err, vt.ErrBadRequest), errors.Is(err, vt.ErrForbidden), errors.Is(err, vt.ErrTooLarge):
		return store.Permanent(err)
	case errors.Is(err, vt.ErrNotAvailableYet):
		return store.RateLimited(time.Now().Add(time.Minute))
	default:
		return store.Transient(err)
	}
}
