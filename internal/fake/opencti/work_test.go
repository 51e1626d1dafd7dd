package opencti

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const workQuery = `query getWork($id: ID!) {
    work(id: $id) {
        id name user { name } timestamp status event_source_id received_time processed_time completed_time
        tracking { import_expected_number import_processed_number }
        messages { timestamp message sequence source }
        errors { timestamp message sequence source }
    }
}`

type workAnswer struct {
	Work struct {
		ID, Name, Status, Timestamp string
		EventSourceID               string  `json:"event_source_id"`
		ReceivedTime                *string `json:"received_time"`
		ProcessedTime               *string `json:"processed_time"`
		CompletedTime               *string `json:"completed_time"`
		Tracking                    struct {
			Expected  int `json:"import_expected_number"`
			Processed int `json:"import_processed_number"`
		}
		Messages []struct{ Message string }
		Errors   []struct{ Message, Source string }
	} `json:"work"`
}

func TestWorkTrackingStates(t *testing.T) {
	requireSchema(t) // fidelity: the shape of error answers (non-null propagation) comes from the real schema
	now := t0
	p := newPlatform(t, func(c *Config) {
		c.Now = func() time.Time { now = now.Add(time.Second); return now }
	})
	cid := register(t, p, "Url")
	var added struct {
		WorkAdd struct{ ID string } `json:"workAdd"`
	}
	mustGQL(t, p, workAddQuery, map[string]any{"connectorId": cid, "friendlyName": "import"}, &added)
	wid := added.WorkAdd.ID
	read := func() workAnswer {
		var w workAnswer
		mustGQL(t, p, workQuery, map[string]any{"id": wid}, &w)
		return w
	}
	if w := read(); w.Work.Status != statusWait || w.Work.ReceivedTime != nil || w.Work.Name != "import" || w.Work.EventSourceID != cid {
		t.Fatalf("new work %+v", w.Work)
	}
	mustGQL(t, p, toReceivedQuery, map[string]any{"id": wid, "message": "Connector ready to process the operation"}, nil)
	if w := read(); w.Work.Status != statusProgress || w.Work.ReceivedTime == nil {
		t.Fatalf("received work %+v", w.Work)
	}
	mustGQL(t, p, addExpectationsQuery, map[string]any{"id": wid, "expectations": 2}, nil)
	mustGQL(t, p, toProcessedQuery, map[string]any{"id": wid, "message": "Sent 2 stix bundle(s) for worker import"}, nil)
	if w := read(); w.Work.Status != statusProgress || w.Work.ProcessedTime == nil || w.Work.Tracking.Expected != 2 {
		t.Fatalf("processed work with pending expectations %+v", w.Work)
	}
	mustGQL(t, p, reportExpectationQuery, map[string]any{"id": wid, "error": nil}, nil)
	if st, _ := p.Work(wid); st.Status != statusProgress || st.Processed != 1 {
		t.Fatalf("after one expectation %+v", st)
	}
	mustGQL(t, p, reportExpectationQuery, map[string]any{"id": wid, "error": map[string]any{"error": "boom", "source": `{"id":"x"}`}}, nil)
	w := read().Work
	if w.Status != statusComplete || w.CompletedTime == nil || w.Tracking.Processed != 2 {
		t.Fatalf("completed work %+v", w)
	}
	if diff := cmp.Diff([]struct{ Message, Source string }{{"boom", `{"id":"x"}`}}, w.Errors); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	if len(w.Messages) != 2 || w.Messages[1].Message != "Sent 2 stix bundle(s) for worker import" {
		t.Errorf("messages %+v", w.Messages)
	}
	if ts, err := time.Parse(time.RFC3339, w.Timestamp); err != nil || !ts.After(t0) || wid != "work_"+cid+"_"+w.Timestamp {
		t.Errorf("work id %s timestamp %s", wid, w.Timestamp)
	}

	// Nothing expected: toProcessed completes at once; inError goes to errors.
	mustGQL(t, p, workAddQuery, map[string]any{"connectorId": cid, "friendlyName": "empty"}, &added)
	mustGQL(t, p, toProcessedQuery, map[string]any{"id": added.WorkAdd.ID, "message": "TLP too high", "inError": true}, nil)
	st, _ := p.Work(added.WorkAdd.ID)
	if st.Status != statusComplete || len(st.Errors) != 1 || st.Errors[0].Message != "TLP too high" || len(st.Messages) != 0 {
		t.Errorf("work processed in error %+v", st)
	}

	// isWorkAlive, delete, then edits of a dead work.
	var alive struct {
		Alive bool `json:"isWorkAlive"`
	}
	mustGQL(t, p, `query($id: ID!) { isWorkAlive(id: $id) }`, map[string]any{"id": wid}, &alive)
	if !alive.Alive {
		t.Error("isWorkAlive false for a live work")
	}
	mustGQL(t, p, `mutation($id: ID!) { workEdit(id: $id) { ping } }`, map[string]any{"id": wid}, nil)
	mustGQL(t, p, `mutation($id: ID!) { workEdit(id: $id) { delete } }`, map[string]any{"id": wid}, nil)
	mustGQL(t, p, `query($id: ID!) { isWorkAlive(id: $id) }`, map[string]any{"id": wid}, &alive)
	if alive.Alive {
		t.Error("isWorkAlive true after delete")
	}
	res := gql(t, p, testToken, toReceivedQuery, map[string]any{"id": wid, "message": "late"})
	if !slices.Equal(res.codes(), []string{"WORK_NOT_ALIVE"}) || string(res.Data) != `{"workEdit":null}` {
		t.Errorf("edit of a deleted work: %s", res.Raw)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := p.WaitWork(ctx, wid, statusComplete); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitWork of a deleted work: %v", err)
	}
	if st, err := p.WaitWork(t.Context(), added.WorkAdd.ID, statusProgress); err != nil || st.Status != statusComplete {
		t.Errorf("WaitWork for progress of a complete work: %v %v", st.Status, err)
	}

	// The requests were recorded, variables included.
	var names []string
	for _, d := range p.Documents() {
		names = append(names, d.Name)
		if d.Name == "reportExpectation" && !strings.Contains(string(d.Variables), wid) {
			t.Errorf("recorded variables %s", d.Variables)
		}
	}
	for _, want := range []string{"RegisterConnector", "workAdd", "workToReceived", "addExpectations", "workToProcessed", "reportExpectation", "getWork"} {
		if !slices.Contains(names, want) {
			t.Errorf("operation %s not recorded in %v", want, names)
		}
	}
}
