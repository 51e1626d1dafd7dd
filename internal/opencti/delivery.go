package opencti

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vtconnector/vtconnector/internal/engine"
	"github.com/vtconnector/vtconnector/internal/obs"
	"github.com/vtconnector/vtconnector/internal/retry"
	"github.com/vtconnector/vtconnector/internal/store"
	"github.com/vtconnector/vtconnector/internal/vt"
	"github.com/vtconnector/vtconnector/internal/worker"
)

// KindMessage is the store queue kind of enrichment requests. Every
// request is parked here before its message is acknowledged, so that no
// message is held longer than it takes to write it down, and the
// connector's pool works it from the store: a quota wait, an outage or a
// restart never keeps a RabbitMQ delivery open.
const KindMessage = "octi.message"

// MaxAttempts is how many times a request that meets VirusTotal or the
// platform down is tried before its work is reported failed; MaxDeliveries
// is how many times a message that cannot even be parked is taken back
// from RabbitMQ before it is dropped (and logged).
const (
	MaxAttempts   = 5
	MaxDeliveries = 5
)

// parkedMessage is a KindMessage item's payload.
type parkedMessage struct {
	Message json.RawMessage `json:"message"`
	// Received is when the message arrived (a playbook step's
	// execution_start).
	Received time.Time `json:"received"`
}

// messageKey names a request in the store, so that a redelivery of the
// same message is recognised: its work, or its playbook step, or (for a
// request with neither) its content within the hour.
func messageKey(m *message, body []byte, now time.Time) string {
	if pb := m.Internal.Playbook; pb != nil {
		return "playbook:" + pb.ExecutionID + "/" + pb.StepID + "/" + pb.DataInstanceID
	}
	if w := m.workID(); w != "" {
		return "work:" + w
	}
	sum := sha256.Sum256(body)
	return "body:" + hex.EncodeToString(sum[:]) + "@" + now.UTC().Truncate(time.Hour).Format(time.RFC3339)
}

// receive parks one request in the store and reports whether its message
// may be acknowledged: it may when the request is parked, was parked
// before (a redelivery), or can never be processed (unreadable; its work,
// if any, is reported failed). It may not when the store could not take
// it within the delivery bound: RabbitMQ then delivers it again.
func (c *Connector) receive(ctx context.Context, body []byte) (ack bool) {
	if len(body) > MaxMessageSize {
		c.log.Error("enrichment message too large; dropped before decoding", "bytes", len(body), "max", MaxMessageSize)
		return true
	}
	m, err := parseMessage(body)
	if err != nil {
		c.log.Error("enrichment message unreadable; dropped", "error", err, "bytes", len(body))
		if m != nil && m.workID() != "" {
			rctx, cancel := context.WithTimeout(ctx, c.cfg.DeliveryTimeout)
			defer cancel()
			_ = c.report(rctx, m.workID(), "vtconnector: the enrichment message is not valid: "+err.Error(), true)
		}
		return true
	}
	now := time.Now()
	key := messageKey(m, body, now)
	payload, err := json.Marshal(parkedMessage{Message: body, Received: now.UTC()})
	if err != nil {
		c.log.Error("enrichment message cannot be parked; dropped", "error", err)
		return true
	}
	pctx, cancel := context.WithTimeout(ctx, c.cfg.DeliveryTimeout)
	defer cancel()
	var added bool
	err = retry.Until(pctx, retry.Backoff{First: 100 * time.Millisecond, Max: 5 * time.Second},
		func() error {
			var err error
			added, err = c.d.Store.Enqueue(pctx, store.NewItem{Kind: KindMessage, Key: key, Payload: payload})
			return err
		}, nil,
		func(err error, wait time.Duration) {
			c.log.Warn("parking an enrichment request failed; retrying", "key", key, "error", err, "retry_in", wait)
		})
	if err != nil {
		if ctx.Err() == nil {
			c.log.Error("enrichment request not parked within the delivery bound; handed back to RabbitMQ", "key", key, "error", err)
		}
		return false
	}
	if !added {
		c.log.Info("request received again (a redelivery); it is already parked or done, not processed twice", "key", key, "entity", m.Event.EntityID)
		return true
	}
	c.messages.Wake()
	return true
}

// MaxMessageSize is the largest enrichment message read (from RabbitMQ or
// the API listen protocol): a larger one is dropped before it is decoded.
const MaxMessageSize = 32 << 20

// metricEntityType is the entity type as a metric label and status-page
// key: one of the types the connector knows, else "other", so that a
// hostile message cannot create unbounded series.
func metricEntityType(t string) string {
	if _, ok := stixTypes[t]; ok {
		return t
	}
	return "other"
}

// parseMessage decodes a request; m is returned, when it could be read at
// all, even with an error (to report its work).
func parseMessage(body []byte) (*message, error) {
	var m message
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	if m.Event.EntityID == "" {
		return &m, errors.New("no event.entity_id")
	}
	if m.Internal.Playbook != nil && len(m.Event.Bundle) == 0 {
		return &m, errors.New("a playbook step without event.bundle")
	}
	return &m, nil
}

// work is the pool's handler of parked requests: it processes one and
// ends its work, or parks it again while VirusTotal's quota is spent or
// VirusTotal or the platform is down. A handler that panics ends the work
// in error: one poison request never stops the others.
func (c *Connector) work(ctx context.Context, it store.Item) (out store.Outcome) {
	var pm parkedMessage
	if err := json.Unmarshal(it.Payload, &pm); err != nil {
		return store.Permanent(fmt.Errorf("unreadable parked request: %w", err))
	}
	m, err := parseMessage(pm.Message)
	if err != nil {
		return store.Permanent(fmt.Errorf("unreadable parked request: %w", err))
	}
	defer func() {
		if r := recover(); r != nil {
			perr := fmt.Errorf("vtconnector: internal error while processing the request: %v", r)
			c.log.Error("processing a request panicked; its work is reported failed", "key", it.Key, "entity", m.Event.EntityID, "panic", fmt.Sprint(r))
			c.finish(ctx, m, "", perr)
			out = store.Permanent(perr)
		}
	}()
	stop := c.keepWorkAlive(ctx, m.workID())
	began := time.Now()
	m.received = pm.Received
	result, err := c.process(ctx, m, pm.Message, nil)
	stop()
	if ctx.Err() != nil {
		return store.HandBack()
	}
	outcome := "ok"
	defer func() {
		if c.d.Obs != nil {
			c.d.Obs.Enrichment(metricEntityType(m.Event.EntityType), outcome, time.Since(began))
		}
	}()
	if errors.Is(err, errDeferred) {
		outcome = "deferred"
		return store.Done(nil)
	}
	if errors.Is(err, errAlreadyReported) {
		return store.Done(nil)
	}
	if err != nil {
		if o, wait := c.parkAgain(err, it.Attempts); wait != "" {
			outcome = "deferred"
			// Said once per wait: a spent quota is re-checked often.
			if again := strings.HasPrefix(it.LastError, "rate limited") && o.String() == "rate limited"; !again {
				_ = c.received(ctx, m.workID(), wait)
				c.log.Info("request parked", "entity", m.Event.EntityID, "reason", err, "outcome", o.String())
			}
			return o
		}
		outcome = "error"
		if errors.Is(err, vt.ErrAuth) && c.d.Obs != nil {
			c.d.Obs.Problem(obs.ProblemVTAuth, "VirusTotal rejected the API key (VIRUSTOTAL_TOKEN)")
		}
		c.log.Warn("enrichment failed", "entity", m.Event.EntityID, "type", m.Event.EntityType, "error", err)
	}
	if rerr := c.finish(ctx, m, result, err); rerr != nil {
		return worker.Outcome(ctx, rerr)
	}
	if err != nil {
		return store.Permanent(err)
	}
	return store.Done(nil)
}

// parkAgain says whether a failed attempt is parked rather than
// reported: quota spent (re-checked every PollEvery until it frees,
// uncounted), or VirusTotal or the platform down (retried with backoff,
// MaxAttempts times). wait is the work's message meanwhile; "" when the
// failure is final.
func (c *Connector) parkAgain(err error, attempts int) (store.Outcome, string) {
	var qe *engine.QuotaExhaustedError
	switch {
	case errors.As(err, &qe):
		at := time.Now().Add(c.t.PollEvery)
		if qe.ResetAt.Before(at) {
			at = qe.ResetAt
		}
		return store.RateLimited(at), fmt.Sprintf("Waiting for VirusTotal quota (%s); the request is parked and resumes when the quota frees.", qe.Error())
	case attempts+1 >= MaxAttempts:
		return store.Outcome{}, ""
	case vt.Retryable(err), errors.Is(err, ErrPlatformUnavailable):
		return store.Transient(err), fmt.Sprintf("Attempt %d of %d failed (%v); the request is parked and retried.", attempts+1, MaxAttempts, err)
	}
	return store.Outcome{}, ""
}

// finish ends a request: the work is reported with the result or the
// error. A playbook step that failed goes on with its bundle unchanged
// (one that succeeded was answered already).
func (c *Connector) finish(ctx context.Context, m *message, result string, err error) error {
	if m.Internal.Playbook != nil {
		if err == nil {
			return nil
		}
		c.log.Info("playbook step not enriched; the bundle goes on unchanged", "entity", m.Event.EntityID, "step", m.Internal.Playbook.StepID, "reason", err)
		_, aerr := c.answerPlaybook(ctx, m, nil)
		return aerr
	}
	msg, inError := result, false
	if err != nil {
		msg, inError = err.Error(), true
	}
	return c.report(ctx, m.workID(), msg, inError)
}
