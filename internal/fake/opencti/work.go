package opencti

import (
	"encoding/json"
	"slices"
	"time"
)

// Work statuses (GraphQL enum State).
const (
	statusWait     = "wait"
	statusProgress = "progress"
	statusComplete = "complete"
)

// maxWorkErrors is the platform's cap on the errors a work keeps.
const maxWorkErrors = 100

// Error codes of the work errors the worker records (WorkMessage.Code).
const (
	// CodeMissingReference: a *_ref or *_refs value resolves to nothing in
	// the bundle or the platform; the object is not imported (the platform's
	// MISSING_REFERENCE_ERROR after its retries).
	CodeMissingReference = "MISSING_REFERENCE_ERROR"
	// CodeIDMismatch: the id of a type with deterministic ids is not the one
	// its properties give (standardID); the object is still imported.
	CodeIDMismatch = "STANDARD_ID_MISMATCH"
	// CodeInvalidObject: not a JSON object, no type, an id that is not
	// "<type>--<uuid>", or no property to derive its id from; not imported.
	CodeInvalidObject = "INVALID_OBJECT"
)

// WorkMessage is one entry of a work's messages or errors.
type WorkMessage struct {
	Timestamp time.Time
	Message   string
	// Source is the object (JSON) an import error is about, as the worker
	// reports it.
	Source string
	// Code classifies errors the double's worker found (CodeMissingReference,
	// CodeIDMismatch, CodeInvalidObject); "" for messages and for errors the
	// connector reported. The platform has no such field.
	Code string
	// ObjectID is the id of the object an import error is about.
	ObjectID string
}

// PushedBundle is one message the worker consumed for a work.
type PushedBundle struct {
	Received time.Time
	// Envelope is the message body as published (§7.3).
	Envelope json.RawMessage
	// Bundle is the decoded content (the STIX bundle), nil if undecodable.
	Bundle json.RawMessage
	// DeliveryMode and ContentEncoding are the AMQP properties (pycti: 2
	// and "utf-8").
	DeliveryMode    uint8
	ContentEncoding string
	// Objects is the number of objects in the bundle.
	Objects int
	// Split is true when the worker split the bundle and republished its
	// objects one by one instead of importing it.
	Split bool
	// Error is why the worker rejected (nacked) the message, "" if it did
	// not.
	Error string
}

// WorkState is a work as the platform tracks it (§6).
type WorkState struct {
	ID          string
	Name        string
	ConnectorID string
	// UserID is the user the work was created for.
	UserID string
	// EventSourceID is the entity standard id (enrichments) or the connector
	// id.
	EventSourceID string
	// Status is wait, progress or complete.
	Status        string
	Timestamp     time.Time
	UpdatedAt     time.Time
	ReceivedTime  time.Time
	ProcessedTime time.Time
	CompletedTime time.Time
	// CompletedNumber is the processed count when it completed.
	CompletedNumber int
	Messages        []WorkMessage
	Errors          []WorkMessage
	// Expected is import_expected_number; Processed the reported
	// expectations.
	Expected  int
	Processed int
	// ToProcessed counts the toProcessed calls.
	ToProcessed  int
	DraftContext string
	// Bundles are the messages the worker consumed for this work.
	Bundles []PushedBundle
}

type work struct {
	WorkState
	// selfCompleting works (created by stixBundlePush, whose caller never
	// calls toProcessed) complete on the platform's rule alone.
	selfCompleting bool
}

func (w *work) state() WorkState {
	st := w.WorkState
	st.Messages = slices.Clone(st.Messages)
	st.Errors = slices.Clone(st.Errors)
	st.Bundles = slices.Clone(st.Bundles)
	return st
}

// newWorkLocked creates a work (work.js createWork) with the platform's id
// work_<connectorId>_<ISO time>. Two works created in the same millisecond
// (a fixed clock) would collide on the platform; the double moves the second
// one a millisecond later. p.mu must be held.
func (p *Platform) newWorkLocked(connectorID, name, userID, sourceID string, received bool) *work {
	now := p.now().UTC().Truncate(time.Millisecond)
	ts := now
	id := "work_" + connectorID + "_" + formatTimestamp(ts)
	for p.works[id] != nil {
		ts = ts.Add(time.Millisecond)
		id = "work_" + connectorID + "_" + formatTimestamp(ts)
	}
	w := &work{WorkState: WorkState{
		ID: id, Name: name, ConnectorID: connectorID, UserID: userID, EventSourceID: sourceID,
		Status: statusWait, Timestamp: ts, UpdatedAt: now,
	}}
	if received {
		w.Status = statusProgress
		w.ReceivedTime = now
	}
	p.works[id] = w
	p.workOrder = append(p.workOrder, id)
	p.notifyLocked()
	return w
}

// toReceived: status progress, received_time, message.
func (p *Platform) workToReceivedLocked(w *work, message string) {
	now := p.now()
	w.Status = statusProgress
	w.ReceivedTime = now
	w.UpdatedAt = now
	if message != "" {
		w.Messages = append(w.Messages, WorkMessage{Timestamp: now, Message: message})
	}
	p.notifyLocked()
}

// toProcessed: processed_time, the message (in errors when inError), and
// completion when nothing is expected or everything expected was processed.
func (p *Platform) workToProcessedLocked(w *work, message string, inError bool) {
	now := p.now()
	w.ProcessedTime = now
	w.UpdatedAt = now
	w.ToProcessed++
	if message != "" {
		m := WorkMessage{Timestamp: now, Message: message}
		if inError {
			w.Errors = appendError(w.Errors, m)
		} else {
			w.Messages = append(w.Messages, m)
		}
	}
	p.maybeCompleteLocked(w)
	p.notifyLocked()
}

// addExpectations: import_expected_number += n.
func (p *Platform) workAddExpectationsLocked(w *work, n int) {
	w.Expected += n
	w.UpdatedAt = p.now()
	p.notifyLocked()
}

// reportExpectation: one more processed item, and its error if any.
func (p *Platform) workReportExpectationLocked(w *work, e *WorkMessage) {
	now := p.now()
	w.Processed++
	w.UpdatedAt = now
	if e != nil {
		e.Timestamp = now
		w.Errors = appendError(w.Errors, *e)
	}
	p.maybeCompleteLocked(w)
	p.notifyLocked()
}

// maybeCompleteLocked completes a work once toProcessed was called and all
// expectations are reported. The platform completes it as soon as
// processed == expected, even before toProcessed; the double waits for
// toProcessed so that a completed work always carries the connector's final
// message, except for works stixBundlePush created, which nobody
// "processes".
func (p *Platform) maybeCompleteLocked(w *work) {
	if w.Status == statusComplete || w.Processed < w.Expected || (w.ToProcessed == 0 && !w.selfCompleting) {
		return
	}
	w.Status = statusComplete
	w.CompletedTime = p.now()
	w.CompletedNumber = w.Processed
}

func appendError(errs []WorkMessage, m WorkMessage) []WorkMessage {
	if len(errs) >= maxWorkErrors {
		return errs
	}
	return append(errs, m)
}
