package opencti

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// shared is the shared directory of specs and real OpenCTI samples, read in
// place (it lives in /work/shared, outside the repository).
const shared = "../../../../shared"

const testToken = "octi-test-token-3b9e1f"

// sharedFile returns the path of a shared file, skipping the (fidelity)
// test when it is absent.
func sharedFile(t *testing.T, rel string) string {
	t.Helper()
	p := filepath.Join(shared, rel)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("fidelity test: ../shared/%s absent (%v); it lives outside the repository", rel, err)
	}
	return p
}

// relaySchemaPath is the platform's real relay schema, used when present.
const relaySchemaPath = shared + "/spec/opencti-relay.schema.graphql"

// schemaIfPresent returns the real relay schema's path, or "" when it is
// absent: the double then only parses documents, and the behaviour tests
// still run. Validation against the schema is checked by fidelity tests
// (requireSchema).
func schemaIfPresent() string {
	if _, err := os.Stat(relaySchemaPath); err != nil {
		return ""
	}
	return relaySchemaPath
}

// requireSchema skips a fidelity test that checks documents against the
// platform's real schema when it is absent.
func requireSchema(t *testing.T) {
	t.Helper()
	if schemaIfPresent() == "" {
		t.Skipf("fidelity test: ../shared/spec/opencti-relay.schema.graphql absent (looked at %s); it lives outside the repository", relaySchemaPath)
	}
}

func readShared(t *testing.T, rel string) []byte {
	t.Helper()
	raw, err := os.ReadFile(sharedFile(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// amqpURL is the RabbitMQ the tests use.
func amqpURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("VTC_TEST_AMQP_URL")
	if u == "" {
		t.Skip("VTC_TEST_AMQP_URL not set")
	}
	return u
}

func randomSuffix() string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// tlogHandler sends log records to the test log.
type tlogHandler struct {
	t     *testing.T
	attrs []slog.Attr
}

func (h tlogHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h tlogHandler) WithGroup(string) slog.Handler            { return h }
func (h tlogHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return tlogHandler{t: h.t, attrs: append(append([]slog.Attr{}, h.attrs...), a...)}
}

func (h tlogHandler) Handle(_ context.Context, r slog.Record) error {
	var b bytes.Buffer
	b.WriteString(r.Level.String() + " " + r.Message)
	for _, a := range h.attrs {
		b.WriteString(" " + a.String())
	}
	r.Attrs(func(a slog.Attr) bool { b.WriteString(" " + a.String()); return true })
	h.t.Log(b.String())
	return nil
}

// newPlatform starts a platform on the test RabbitMQ with a unique prefix,
// the real relay schema when present and the test token, and deletes its exchanges
// and queues when the test ends.
func newPlatform(t *testing.T, change func(*Config)) *Platform {
	t.Helper()
	cfg := Config{
		AMQPURL: amqpURL(t),
		Token:   testToken,
		Prefix:  "vtctest-" + randomSuffix(),
		Schema:  schemaIfPresent(),
	}
	if change != nil {
		change(&cfg)
	}
	p, err := New(t.Context(), cfg, slog.New(tlogHandler{t: t}))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		deleteTopology(t, p)
	})
	return p
}

// deleteTopology deletes the queues and exchanges a test platform declared.
func deleteTopology(t *testing.T, p *Platform) {
	t.Helper()
	ids := []string{}
	for _, c := range p.Connectors() {
		ids = append(ids, c.ID)
	}
	deleteNames(t, p.cfg.AMQPURL, p.cfg.Prefix, ids)
}

// deleteNames deletes the exchanges of a platform with this prefix, its
// internal queues and the queues of the connectors ids.
func deleteNames(t *testing.T, url, prefix string, ids []string) {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Errorf("cleanup: dial: %v", err)
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Errorf("cleanup: channel: %v", err)
		return
	}
	defer ch.Close()
	pre := prefix + "_"
	for _, id := range append([]string{tooLargeBundleID}, ids...) {
		for _, q := range []string{pre + "listen_" + id, pre + "push_" + id} {
			if _, err := ch.QueueDelete(q, false, false, false); err != nil {
				t.Errorf("cleanup: delete queue %s: %v", q, err)
				return
			}
		}
	}
	for _, ex := range []string{pre + connectorExchange, pre + workerExchange} {
		if err := ch.ExchangeDelete(ex, false, false); err != nil {
			t.Errorf("cleanup: delete exchange %s: %v", ex, err)
			return
		}
	}
}

// gqlResult is a decoded GraphQL answer.
type gqlResult struct {
	Status int
	Raw    []byte
	Data   json.RawMessage `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Path       []any          `json:"path"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
	HasData bool
}

func (r gqlResult) codes() []string {
	var out []string
	for _, e := range r.Errors {
		c, _ := e.Extensions["code"].(string)
		out = append(out, c)
	}
	return out
}

// gql posts a GraphQL request through ServeHTTP, as pycti sends it.
func gql(t *testing.T, h http.Handler, token, query string, vars map[string]any) gqlResult {
	t.Helper()
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "pycti/6.8.10")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := gqlResult{Status: rec.Code, Raw: rec.Body.Bytes()}
	if err := json.Unmarshal(res.Raw, &res); err != nil {
		t.Fatalf("decode answer %s: %v", res.Raw, err)
	}
	var keys map[string]json.RawMessage
	_ = json.Unmarshal(res.Raw, &keys)
	_, res.HasData = keys["data"]
	return res
}

// mustGQL posts a request that must succeed and decodes its data into out.
func mustGQL(t *testing.T, h http.Handler, query string, vars map[string]any, out any) {
	t.Helper()
	res := gql(t, h, testToken, query, vars)
	if res.Status != http.StatusOK || len(res.Errors) > 0 {
		t.Fatalf("GraphQL request failed: %d %s", res.Status, res.Raw)
	}
	if out != nil {
		if err := json.Unmarshal(res.Data, out); err != nil {
			t.Fatalf("decode data %s: %v", res.Data, err)
		}
	}
}

// The documents pycti 6.8.10 sends (AC register/ping, AW work calls).
const (
	registerQuery = `
    mutation RegisterConnector($input: RegisterConnectorInput) {
        registerConnector(input: $input) {
            id
            connector_state
            config {
                connection {
                    host
                    vhost
                    use_ssl
                    port
                    user
                    pass
                }
                listen
                listen_routing
                listen_exchange
                push
                push_routing
                push_exchange
            }
            connector_user_id
        }
    }`
	pingQuery = `
    mutation PingConnector($id: ID!, $state: String, $connectorInfo: ConnectorInfoInput) {
        pingConnector(id: $id, state: $state, connectorInfo: $connectorInfo) {
            id
            connector_state
            connector_info {
                run_and_terminate
                buffering
                queue_threshold
                queue_messages_size
                next_run_datetime
                last_run_datetime
            }
        }
    }`
	toReceivedQuery = `
    mutation workToReceived($id: ID!, $message: String) {
        workEdit(id: $id) {
            toReceived (message: $message)
        }
    }`
	toProcessedQuery = `
    mutation workToProcessed($id: ID!, $message: String, $inError: Boolean) {
        workEdit(id: $id) {
            toProcessed (message: $message, inError: $inError)
        }
    }`
	addExpectationsQuery = `
    mutation addExpectations($id: ID!, $expectations: Int) {
        workEdit(id: $id) {
            addExpectations(expectations: $expectations)
        }
    }`
	reportExpectationQuery = `
    mutation reportExpectation($id: ID!, $error: WorkErrorInput) {
        workEdit(id: $id) {
            reportExpectation(error: $error)
        }
    }`
	workAddQuery = `
    mutation workAdd($connectorId: String!, $friendlyName: String) {
        workAdd(connectorId: $connectorId, friendlyName: $friendlyName) {
            id
        }
    }`
)

// registerInput is the input pycti 6.8.10 builds for an enrichment
// connector (C to_input).
func registerInput(id string, scope ...string) map[string]any {
	return map[string]any{
		"id": id, "name": "VirusTotal", "type": "INTERNAL_ENRICHMENT", "scope": scope,
		"auto": false, "auto_update": false, "enrichment_resolution": "stix_bundle",
		"only_contextual": false, "playbook_compatible": true, "listen_callback_uri": nil,
	}
}

// register registers a connector through GraphQL and returns its id.
func register(t *testing.T, p *Platform, scope ...string) string {
	t.Helper()
	id := uuidV4()
	mustGQL(t, p, registerQuery, map[string]any{"input": registerInput(id, scope...)}, nil)
	return id
}

// testConn is a connector-side RabbitMQ connection.
func testConn(t *testing.T, p *Platform) *amqp.Channel {
	t.Helper()
	conn, err := amqp.Dial(p.cfg.AMQPURL)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("channel: %v", err)
	}
	return ch
}

// getMessage waits for one message on a queue.
func getMessage(t *testing.T, ch *amqp.Channel, queue string) amqp.Delivery {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		d, ok, err := ch.Get(queue, true)
		if err != nil {
			t.Fatalf("get from %s: %v", queue, err)
		}
		if ok {
			return d
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no message on %s", queue)
	return amqp.Delivery{}
}

// pushBundles publishes bundles on a connector's push queue the way pycti's
// send_stix2_bundle does (§7.3): one message per bundle, persistent,
// content_encoding utf-8, the QUEUE_BUNDLE envelope.
func pushBundles(t *testing.T, p *Platform, ch *amqp.Channel, connectorID, workID string, bundles ...map[string]any) {
	t.Helper()
	for i, b := range bundles {
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		env := map[string]any{
			"bundle_type": "QUEUE_BUNDLE", "applicant_id": userIDForToken(testToken), "action_sequence": i + 1,
			"entities_types": []any{}, "content": base64.StdEncoding.EncodeToString(raw), "update": false,
			"draft_id": nil,
		}
		if workID != "" {
			env["work_id"] = workID
		}
		body, _ := json.Marshal(env)
		err = ch.PublishWithContext(t.Context(), p.workerExchange(), p.pushRouting(connectorID), false, false, amqp.Publishing{
			DeliveryMode: amqp.Persistent, ContentEncoding: "utf-8", Body: body,
		})
		if err != nil {
			t.Fatalf("publish bundle %d: %v", i, err)
		}
	}
}

// waitWork waits until cond holds for a work.
func waitWork(t *testing.T, p *Platform, id string, what string, cond func(WorkState) bool) WorkState {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for {
		p.mu.Lock()
		var st WorkState
		w, ok := p.works[id]
		if ok {
			st = w.state()
		}
		changed := p.changed
		p.mu.Unlock()
		if ok && cond(st) {
			return st
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("work %s: timed out waiting for %s; state %+v", id, what, st)
		}
	}
}

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
