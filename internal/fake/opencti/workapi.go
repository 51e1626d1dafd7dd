package opencti

// GraphQL resolvers of works (§6).

func (x *execution) workAdd(args map[string]any) (any, error) {
	p := x.p
	cid, _ := argString(args, "connectorId")
	name, _ := argString(args, "friendlyName")
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.connectors[cid] == nil {
		return nil, functionalError("No connector found with the specified ID", map[string]any{"id": cid})
	}
	w := p.newWorkLocked(cid, name, x.userID, cid, false)
	return p.workObjectLocked(w), nil
}

func (x *execution) work(args map[string]any) (any, error) {
	id, _ := argString(args, "id")
	x.p.mu.Lock()
	defer x.p.mu.Unlock()
	w := x.p.works[id]
	if w == nil {
		return nil, nil
	}
	return x.p.workObjectLocked(w), nil
}

func (x *execution) isWorkAlive(args map[string]any) (any, error) {
	id, _ := argString(args, "id")
	x.p.mu.Lock()
	defer x.p.mu.Unlock()
	return x.p.works[id] != nil, nil
}

func (x *execution) workDelete(args map[string]any) (any, error) {
	cid, _ := argString(args, "connectorId")
	x.p.mu.Lock()
	defer x.p.mu.Unlock()
	for id, w := range x.p.works {
		if w.ConnectorID == cid {
			delete(x.p.works, id)
		}
	}
	x.p.notifyLocked()
	return true, nil
}

// workEdit returns the WorkEditMutations of a work; each field applies its
// change when it is selected (§6).
func (x *execution) workEdit(args map[string]any) (any, error) {
	p := x.p
	id, _ := argString(args, "id")
	edit := func(apply func(w *work, args map[string]any) error) fieldFunc {
		return func(args map[string]any) (any, error) {
			p.mu.Lock()
			defer p.mu.Unlock()
			w := p.works[id]
			if w == nil {
				return nil, workNotAlive()
			}
			if err := apply(w, args); err != nil {
				return nil, err
			}
			return id, nil
		}
	}
	return gqlObject{typename: "WorkEditMutations", fields: map[string]any{
		"delete": edit(func(w *work, _ map[string]any) error {
			delete(p.works, w.ID)
			p.notifyLocked()
			return nil
		}),
		"ping": edit(func(w *work, _ map[string]any) error {
			w.UpdatedAt = p.now()
			return nil
		}),
		"toReceived": edit(func(w *work, args map[string]any) error {
			msg, _ := argString(args, "message")
			p.workToReceivedLocked(w, msg)
			return nil
		}),
		"toProcessed": edit(func(w *work, args map[string]any) error {
			msg, _ := argString(args, "message")
			inError, _ := argBool(args, "inError")
			p.workToProcessedLocked(w, msg, inError)
			return nil
		}),
		"addExpectations": edit(func(w *work, args map[string]any) error {
			n, _ := argInt(args, "expectations")
			p.workAddExpectationsLocked(w, n)
			return nil
		}),
		"reportExpectation": edit(func(w *work, args map[string]any) error {
			var e *WorkMessage
			if in, ok := args["error"].(map[string]any); ok {
				msg, _ := argString(in, "error")
				src, _ := argString(in, "source")
				e = &WorkMessage{Message: msg, Source: src}
			}
			p.workReportExpectationLocked(w, e)
			return nil
		}),
		"addDraftContext": edit(func(w *work, args map[string]any) error {
			w.DraftContext, _ = argString(args, "draftContext")
			p.notifyLocked()
			return nil
		}),
	}}, nil
}

// workObjectLocked is the GraphQL Work. p.mu must be held.
func (p *Platform) workObjectLocked(w *work) gqlObject {
	msgs := func(list []WorkMessage) []any {
		out := make([]any, len(list))
		for i, m := range list {
			var src any
			if m.Source != "" {
				src = m.Source
			}
			out[i] = gqlObject{typename: "WorkMessage", fields: map[string]any{
				"timestamp": dateTime(m.Timestamp), "message": m.Message, "source": src,
			}}
		}
		return out
	}
	userName := "admin"
	if w.UserID != adminUserID {
		userName = "connector user " + w.UserID[:8]
	}
	cid := w.ConnectorID
	var lastProcessed any
	if w.Processed > 0 {
		lastProcessed = dateTime(w.UpdatedAt)
	}
	return gqlObject{typename: "Work", fields: map[string]any{
		"id":   w.ID,
		"name": w.Name,
		"user": gqlObject{typename: "Creator", fields: map[string]any{
			"id": w.UserID, "name": userName, "entity_type": "User",
			"representative": gqlObject{typename: "Representative", fields: map[string]any{"main": userName}},
		}},
		"connector": fieldFunc(func(map[string]any) (any, error) {
			p.mu.Lock()
			defer p.mu.Unlock()
			if c := p.connectors[cid]; c != nil {
				return p.connectorObjectLocked(c), nil
			}
			return nil, nil
		}),
		"timestamp":        dateTime(w.Timestamp),
		"status":           w.Status,
		"event_source_id":  w.EventSourceID,
		"received_time":    dateTime(w.ReceivedTime),
		"processed_time":   dateTime(w.ProcessedTime),
		"completed_time":   dateTime(w.CompletedTime),
		"completed_number": w.CompletedNumber,
		"messages":         msgs(w.Messages),
		"errors":           msgs(w.Errors),
		"tracking": gqlObject{typename: "WorkTracking", fields: map[string]any{
			"import_expected_number":  w.Expected,
			"import_processed_number": w.Processed,
			"import_last_processed":   lastProcessed,
		}},
		"draft_context": w.DraftContext,
	}}
}
