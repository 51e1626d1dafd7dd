package opencti

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/vtconnector/vtconnector/internal/stix"
)

// baseURLHandler captures the base_url the simulator logs, and passes
// every record to the test log.
type baseURLHandler struct {
	tlogHandler
	got chan string
}

func (h baseURLHandler) Handle(ctx context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "base_url" {
			select {
			case h.got <- a.Value.String():
			default:
			}
		}
		return true
	})
	return h.tlogHandler.Handle(ctx, r)
}

func (h baseURLHandler) WithAttrs([]slog.Attr) slog.Handler { return h }

func TestListenAndServe(t *testing.T) {
	url := amqpURL(t)
	prefix := "vtctest-" + randomSuffix()
	cid := uuidV4()
	cfg := Config{AMQPURL: url, Token: testToken, Prefix: prefix, Schema: schemaIfPresent(),
		TriggerInterval: time.Hour}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	logs := baseURLHandler{tlogHandler: tlogHandler{t: t}, got: make(chan string, 1)}
	done := make(chan error, 1)
	go func() { done <- ListenAndServe(ctx, "127.0.0.1:0", cfg, slog.New(logs)) }()
	t.Cleanup(func() { deleteNames(t, url, prefix, []string{cid}) })

	var base string
	select {
	case base = <-logs.got:
	case err := <-done:
		t.Fatalf("ListenAndServe returned early: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no base_url logged")
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	post := func(query string, vars map[string]any) string {
		body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/graphql", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST /graphql: %d %s", resp.StatusCode, raw)
		}
		return string(raw)
	}
	if got := post(`{ about { version } }`, nil); got != `{"data":{"about":{"version":"`+DefaultVersion+`"}}}` {
		t.Errorf("about: %s", got)
	}
	if got := post(registerQuery, map[string]any{"input": registerInput(cid, "IPv4-Addr")}); strings.Contains(got, "errors") {
		t.Fatalf("register: %s", got)
	}

	// The simulator enriches the sample IPv4 address with the new connector.
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	d := getMessage(t, ch, prefix+"_listen_"+cid)
	var msg struct{ Event map[string]any }
	if err := json.Unmarshal(d.Body, &msg); err != nil {
		t.Fatal(err)
	}
	if msg.Event["entity_id"] != stix.IPv4AddrID("8.8.8.8") || msg.Event["entity_type"] != "IPv4-Addr" {
		t.Errorf("enrichment event %v", msg.Event)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("graceful shutdown returned %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("simulator did not stop after its context ended")
	}
	if err := ListenAndServe(t.Context(), "127.0.0.1:0", Config{}, nil); err == nil {
		t.Error("no AMQP URL: no error")
	}
}
