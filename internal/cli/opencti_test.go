package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	fakeocti "github.com/vtconnector/vtconnector/internal/fake/opencti"
	fakevt "github.com/vtconnector/vtconnector/internal/fake/vt"
	"github.com/vtconnector/vtconnector/internal/opencti"
)

const relaySchema = "../../../shared/spec/opencti-relay.schema.graphql"

// octiWorld is an OpenCTI platform double on the real RabbitMQ, a
// VirusTotal simulator and the environment of a connector using both.
type octiWorld struct {
	platform *fakeocti.Platform
	vt       *fakevt.Server
	vtCfg    fakevt.Config
	env      map[string]string
	id       string
	dir      string
}

func newOctiWorld(t testing.TB, vtCfg fakevt.Config, extra map[string]string) *octiWorld {
	t.Helper()
	return newOctiWorldWith(t, nil, vtCfg, extra)
}

// newOctiWorldWith is newOctiWorld with a hook that may change the
// platform double's configuration first (e.g. the RabbitMQ address it
// gives connectors at registration, Config.AMQPPublic).
func newOctiWorldWith(t testing.TB, platformCfg func(*fakeocti.Config), vtCfg fakevt.Config, extra map[string]string) *octiWorld {
	t.Helper()
	amqpURL := os.Getenv("VTC_TEST_AMQP_URL")
	if amqpURL == "" {
		t.Skip("VTC_TEST_AMQP_URL not set")
	}
	// The platform double validates the connector's documents against the
	// real schema when it is there; without it, it only parses them (the
	// opencti package's fidelity test checks them against the schema).
	schema := relaySchema
	if _, err := os.Stat(relaySchema); err != nil {
		schema = ""
	}
	pcfg := fakeocti.Config{AMQPURL: amqpURL, Token: "octi-token", Prefix: fmt.Sprintf("t%08x", rand.Uint32()), Schema: schema}
	if platformCfg != nil {
		platformCfg(&pcfg)
	}
	p, err := fakeocti.New(context.Background(), pcfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	pts := httptest.NewServer(p)
	t.Cleanup(pts.Close)
	w := &octiWorld{platform: p, vt: fakevt.New(vtCfg), vtCfg: vtCfg, dir: t.TempDir()}
	vts := httptest.NewServer(w.vt)
	t.Cleanup(vts.Close)
	w.id = fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", rand.Uint32(), rand.Uint32()&0xffff, rand.Uint32()&0xfff, rand.Uint32()&0xfff, rand.Uint64()&0xffffffffffff)
	w.env = map[string]string{
		"OPENCTI_URL": pts.URL, "OPENCTI_TOKEN": "octi-token", "CONNECTOR_ID": w.id,
		"CONNECTOR_NAME": "VirusTotal", "CONNECTOR_LOG_LEVEL": "info", "OPENCTI_JSON_LOGGING": "false",
		"VIRUSTOTAL_TOKEN": "vt-key", "VIRUSTOTAL_URL": vts.URL + "/api/v3",
		"VIRUSTOTAL_REQUESTS_PER_MINUTE": "0", "VIRUSTOTAL_REQUESTS_PER_DAY": "0", "VIRUSTOTAL_REQUESTS_PER_MONTH": "0",
		"VTCONNECTOR_DATABASE_URL": filepath.Join(w.dir, "octi.db"), "VTCONNECTOR_CONCURRENCY": "4",
		"VTCONNECTOR_HTTP_ADDR": "off", "VIRUSTOTAL_FILE_IMPORT_YARA": "true",
	}
	for k, v := range extra {
		w.env[k] = v
	}
	return w
}

var octiFast = &opencti.Tuning{PingEvery: time.Second, PollEvery: 200 * time.Millisecond, WorkPingEvery: time.Minute, RetryMax: time.Second}

func (w *octiWorld) start(t testing.TB) (stop func() int, logs *bytes.Buffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &lockedWriter{w: &errb}, getenv: func(string) string { return "" },
		environ: w.env, octiTune: octiFast, analysisPoll: fastPoll}
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"opencti"}, e) }()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("connector log:\n%s", lastLines(errb.String(), 40))
		}
	})
	waitFor(t, 20*time.Second, "the connector to register and consume", func() bool {
		for _, c := range w.platform.Connectors() {
			if c.ID == w.id && c.Consuming {
				return true
			}
		}
		return false
	})
	return func() int {
		cancel()
		select {
		case code := <-done:
			return code
		case <-time.After(30 * time.Second):
			t.Fatal("the connector did not stop within 30 s")
			return -1
		}
	}, &errb
}

func (w *octiWorld) enrich(t *testing.T, entityID string) fakeocti.WorkState {
	t.Helper()
	work, err := w.platform.Enrich(context.Background(), w.id, entityID)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := w.platform.WaitWork(ctx, work, "complete")
	if err != nil {
		ws, _ := w.platform.Work(work)
		t.Fatalf("work %s of %s: %v (state %+v)", work, entityID, err, ws)
	}
	return st
}

// objectsOfType returns the imported objects of a STIX type.
func (w *octiWorld) objectsOfType(typ string) []map[string]any {
	var out []map[string]any
	for id, raw := range w.platform.Objects() {
		if strings.HasPrefix(id, typ+"--") {
			var m map[string]any
			_ = json.Unmarshal(raw, &m)
			out = append(out, m)
		}
	}
	return out
}

func TestOpenCTIEnrichesEveryEntityType(t *testing.T) {
	w := newOctiWorld(t, fakevt.Config{Seed: 4, UnknownPercent: -1}, nil)
	stop, _ := w.start(t)
	defer stop()
	entities := map[string]fakeocti.Entity{
		"StixFile":    {Type: "StixFile", Hashes: map[string]string{"SHA-256": strings.Repeat("ab", 32)}, Markings: []string{"TLP:GREEN"}},
		"IPv4-Addr":   {Type: "IPv4-Addr", Value: "203.0.113.7", Markings: []string{"TLP:AMBER"}},
		"Domain-Name": {Type: "Domain-Name", Value: "malware-traffic.example.net"},
		"Hostname":    {Type: "Hostname", Value: "c2.malware-traffic.example.net"},
		"Url":         {Type: "Url", Value: "http://soclosebutyetqq.com/69.exe"},
	}
	for name, ent := range entities {
		t.Run(name, func(t *testing.T) {
			id := w.platform.AddEntity(ent)
			if id == "" {
				t.Fatalf("the platform refused the entity %+v", ent)
			}
			st := w.enrich(t, id)
			if len(st.Errors) > 0 {
				t.Fatalf("work errors: %+v", st.Errors)
			}
			if st.Expected == 0 || st.Processed != st.Expected {
				t.Errorf("work %+v: want expectations announced and all processed", st)
			}
			if len(st.Messages) == 0 || !strings.Contains(st.Messages[len(st.Messages)-1].Message, "stix bundle(s) for worker import") {
				t.Errorf("work messages %+v", st.Messages)
			}
			var entity map[string]any
			if err := json.Unmarshal(w.platform.Objects()[id], &entity); err != nil {
				t.Fatalf("the enriched entity was not pushed back: %v", err)
			}
			// Every created object carries the entity's markings.
			marks, _ := entity["object_marking_refs"].([]any)
			for oid, raw := range w.platform.Objects() {
				var o map[string]any
				_ = json.Unmarshal(raw, &o)
				refs, _ := o["object_refs"].([]any)
				src, _ := o["source_ref"].(string)
				related := src == id
				for _, r := range refs {
					related = related || r == id
				}
				if related && len(marks) > 0 && fmt.Sprint(o["object_marking_refs"]) != fmt.Sprint(marks) {
					t.Errorf("%s derived from %s has markings %v, want %v", oid, id, o["object_marking_refs"], marks)
				}
			}
		})
	}
	if n := len(w.objectsOfType("note")); n < len(entities) {
		t.Errorf("%d notes for %d entities", n, len(entities))
	}
	for _, d := range w.platform.Documents() {
		if len(d.ValidationErrors) > 0 {
			t.Errorf("GraphQL document %s failed validation against the platform schema: %v", d.Name, d.ValidationErrors)
		}
	}
}

func TestOpenCTIReEnrichmentAddsNoDuplicateNote(t *testing.T) {
	w := newOctiWorld(t, fakevt.Config{Seed: 4, UnknownPercent: -1}, nil)
	stop, _ := w.start(t)
	defer stop()
	id := w.platform.AddEntity(fakeocti.Entity{Type: "IPv4-Addr", Value: "198.51.100.23"})
	w.enrich(t, id)
	notes := len(w.objectsOfType("note"))
	w.enrich(t, id)
	w.enrich(t, id)
	if n := len(w.objectsOfType("note")); n != notes || n == 0 {
		t.Errorf("%d notes after three enrichments, %d after the first: re-enrichment must update the note", n, notes)
	}
}

func TestOpenCTITLPAndScopeAreEnforced(t *testing.T) {
	w := newOctiWorld(t, fakevt.Config{Seed: 4, UnknownPercent: -1}, map[string]string{"VIRUSTOTAL_MAX_TLP": "TLP:GREEN"})
	stop, _ := w.start(t)
	defer stop()
	before := w.vt.Stats().APIRequests()
	red := w.platform.AddEntity(fakeocti.Entity{Type: "IPv4-Addr", Value: "192.0.2.99", Markings: []string{"TLP:RED"}})
	st := w.enrich(t, red)
	if len(st.Errors) == 0 || !strings.Contains(st.Errors[0].Message, "TLP") {
		t.Errorf("TLP:RED over a TLP:GREEN maximum: work %+v; want a TLP error", st)
	}
	// A TLP:RED marking created on the platform has an id no connector
	// knows: it is read from the platform, and blocks.
	orgRed := w.platform.AddMarking(fakeocti.Marking{DefinitionType: "TLP", Definition: "TLP:RED", Order: 4})
	custom := w.platform.AddEntity(fakeocti.Entity{Type: "IPv4-Addr", Value: "192.0.2.100", Markings: []string{orgRed}})
	st = w.enrich(t, custom)
	if len(st.Errors) == 0 || !strings.Contains(st.Errors[0].Message, "TLP:RED") || !strings.Contains(st.Errors[0].Message, orgRed) {
		t.Errorf("a platform-created TLP:RED: work %+v; want a TLP error naming the marking", st)
	}
	// A marking the platform does not know blocks too (fail closed).
	unknown := w.platform.AddEntity(fakeocti.Entity{Type: "IPv4-Addr", Value: "192.0.2.101", Markings: []string{"marking-definition--00000000-0000-4000-8000-000000000000"}})
	st = w.enrich(t, unknown)
	if len(st.Errors) == 0 || !strings.Contains(st.Errors[0].Message, "could not be resolved") {
		t.Errorf("an unresolvable marking: work %+v; want it blocked", st)
	}
	if n := w.vt.Stats().APIRequests() - before; n != 0 {
		t.Errorf("%d VirusTotal requests for blocked entities, want 0", n)
	}
	for _, d := range w.platform.Documents() {
		if len(d.ValidationErrors) > 0 {
			t.Errorf("GraphQL document %s failed validation against the platform schema: %v", d.Name, d.ValidationErrors)
		}
	}
}

// TestOpenCTIPoisonMessagesDoNotStopTheConnector: garbage, a message that
// is not an enrichment request and one whose entity cannot be read are
// acknowledged (their works reported failed) and the connector goes on.
func TestOpenCTIPoisonMessagesDoNotStopTheConnector(t *testing.T) {
	w := newOctiWorld(t, fakevt.Config{Seed: 4, UnknownPercent: -1}, nil)
	stop, _ := w.start(t)
	defer stop()
	bad := w.platform.AddEntity(fakeocti.Entity{Type: "IPv4-Addr", Value: "198.51.100.200"})
	badWork, err := w.platform.AddWork(w.id, bad)
	if err != nil {
		t.Fatal(err)
	}
	badWork2, err := w.platform.AddWork(w.id, bad)
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{
		"\x00\xff not JSON at all",
		`{"internal":{"work_id":null},"event":{}}`,
		`{"internal":{"work_id":"` + badWork + `","applicant_id":null},"event":{"entity_id":"` + bad + `","entity_type":"IPv4-Addr","stix_entity":"{\"type\":\"ipv4-addr\""}}`,
		`{"internal":{"work_id":"` + badWork2 + `","applicant_id":null},"event":{"entity_id":"` + bad + `","entity_type":"IPv4-Addr","stix_entity":"[1,2,3]"}}`,
	} {
		if err := w.platform.PublishRaw(context.Background(), w.id, []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	good := w.platform.AddEntity(fakeocti.Entity{Type: "IPv4-Addr", Value: "198.51.100.201"})
	if st := w.enrich(t, good); len(st.Errors) > 0 {
		t.Errorf("the good request after poison ones: %+v", st.Errors)
	}
	waitFor(t, 20*time.Second, "the poisoned works reported failed", func() bool {
		st, _ := w.platform.Work(badWork)
		st2, _ := w.platform.Work(badWork2)
		return len(st.Errors) > 0 && len(st2.Errors) > 0
	})
	if ready, unacked, ok := listenQueueDepth(t, w.id); ok && (ready != 0 || unacked != 0) {
		t.Errorf("listen queue holds %d ready and %d unacknowledged messages: poison is redelivered", ready, unacked)
	}
}

// closeConnectorConnections closes the connector's RabbitMQ connections
// from the broker's side, as a network failure or a broker restart would.
func closeConnectorConnections(t *testing.T) int {
	t.Helper()
	out, err := exec.Command("rabbitmqctl", "-q", "list_connections", "pid", "client_properties").CombinedOutput()
	if err != nil {
		t.Skipf("rabbitmqctl unavailable: %v: %s", err, out)
	}
	n := 0
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.Contains(line, `"connection_name","vtconnector"`) {
			continue
		}
		name := strings.SplitN(line, "\t", 2)[0]
		if err := exec.Command("rabbitmqctl", "-q", "close_connection", name, "test: connection drop").Run(); err == nil {
			n++
		}
	}
	return n
}

// TestOpenCTIParksQuotaWaitsLongerThanTheDeliveryBound: requests that
// would wait for quota longer than VTCONNECTOR_DELIVERY_TIMEOUT are parked
// in the database and their messages acknowledged; a dropped connection and
// a restart lose none of them and process none twice.
func TestOpenCTIParksQuotaWaitsLongerThanTheDeliveryBound(t *testing.T) {
	// The day's budget allows 3 lookups: later requests are parked.
	w := newOctiWorld(t, fakevt.Config{Seed: 6, UnknownPercent: -1}, map[string]string{"VIRUSTOTAL_REQUESTS_PER_DAY": "3",
		"VIRUSTOTAL_FILE_IMPORT_YARA": "false", "VTCONNECTOR_DELIVERY_TIMEOUT": "1s"})
	stop, _ := w.start(t)
	var works []string
	for i := range 5 {
		id := w.platform.AddEntity(fakeocti.Entity{Type: "IPv4-Addr", Value: fmt.Sprintf("198.51.100.%d", 40+i)})
		work, err := w.platform.Enrich(context.Background(), w.id, id)
		if err != nil {
			t.Fatal(err)
		}
		works = append(works, work)
	}
	count := func(ok func(fakeocti.WorkState) bool) int {
		n := 0
		for _, id := range works {
			if st, found := w.platform.Work(id); found && ok(st) {
				n++
			}
		}
		return n
	}
	complete := func() int { return count(func(st fakeocti.WorkState) bool { return st.Status == "complete" }) }
	waiting := func() int {
		return count(func(st fakeocti.WorkState) bool {
			for _, m := range st.Messages {
				if strings.Contains(m.Message, "Waiting for VirusTotal quota") {
					return st.Status != "complete"
				}
			}
			return false
		})
	}
	waitFor(t, 20*time.Second, "3 enrichments within the day's budget and 2 parked for quota", func() bool {
		return complete() == 3 && waiting() == 2
	})
	if n := w.vt.Stats().APIRequests(); n != 3 {
		t.Fatalf("%d VirusTotal requests on a budget of 3 a day", n)
	}
	// Every message was acknowledged: none is held while the quota is spent.
	if ready, unacked, ok := listenQueueDepth(t, w.id); ok && (ready != 0 || unacked != 0) {
		t.Errorf("listen queue holds %d ready and %d unacknowledged messages, want none", ready, unacked)
	}
	// The connection drops while 2 requests are parked: nothing is lost.
	if n := closeConnectorConnections(t); n == 0 {
		t.Fatal("no connector connection found to close")
	}
	waitFor(t, 20*time.Second, "the connector to reconnect and consume again", func() bool {
		out, _ := exec.Command("rabbitmqctl", "-q", "list_connections", "client_properties").Output()
		for _, c := range w.platform.Connectors() {
			if c.ID == w.id && c.Consuming && strings.Contains(string(out), `"connection_name","vtconnector"`) {
				return true
			}
		}
		return false
	})
	if code := stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	// A restart with a new budget finishes the parked requests, once each.
	w.env["VIRUSTOTAL_REQUESTS_PER_DAY"] = "10"
	stop, _ = w.start(t)
	defer stop()
	waitFor(t, 30*time.Second, "the 2 parked enrichments after the restart", func() bool { return complete() == 5 })
	for _, id := range works {
		st, _ := w.platform.Work(id)
		if len(st.Errors) > 0 {
			t.Errorf("work %s errors: %+v", id, st.Errors)
		}
	}
	if n := w.vt.Stats().APIRequests(); n != 5 {
		t.Errorf("%d VirusTotal requests for 5 entities: a request was processed twice or lost", n)
	}
	if n := len(w.objectsOfType("note")); n != 5 {
		t.Errorf("%d notes for 5 entities", n)
	}
}

// listenQueueDepth returns the ready and unacknowledged messages of the
// connector's listen queue (rabbitmqctl); ok is false when rabbitmqctl is
// not there.
func listenQueueDepth(t *testing.T, connectorID string) (ready, unacked int, ok bool) {
	t.Helper()
	out, err := exec.Command("rabbitmqctl", "-q", "list_queues", "name", "messages_ready", "messages_unacknowledged").CombinedOutput()
	if err != nil {
		t.Logf("rabbitmqctl unavailable: %v", err)
		return 0, 0, false
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && strings.HasSuffix(f[0], "listen_"+connectorID) {
			fmt.Sscan(f[1], &ready)
			fmt.Sscan(f[2], &unacked)
			return ready, unacked, true
		}
	}
	t.Errorf("no listen queue for %s in rabbitmqctl's list", connectorID)
	return 0, 0, false
}

// scrape returns the metrics the connector serves at addr, or "" when it
// does not answer.
func scrape(addr string) string {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// lockedWriter serialises writes of concurrent loggers.
type lockedWriter struct {
	mu chanMutex
	w  *bytes.Buffer
}

type chanMutex struct{ c chan struct{} }

func (w *lockedWriter) Write(p []byte) (int, error) {
	if w.mu.c == nil {
		w.mu.c = make(chan struct{}, 1)
	}
	w.mu.c <- struct{}{}
	defer func() { <-w.mu.c }()
	return w.w.Write(p)
}

func TestOpenCTIUploadsUnseenArtifactsAndURLs(t *testing.T) {
	for _, mode := range []string{"public", "private"} {
		t.Run(mode, func(t *testing.T) {
			w := newOctiWorld(t, fakevt.Config{Seed: 7, UnknownPercent: 100, AnalysisDelay: 300 * time.Millisecond},
				map[string]string{"VIRUSTOTAL_UPLOAD_MODE": mode})
			stop, _ := w.start(t)
			defer stop()
			fileUpload, urlScan := "POST /files", "POST /urls"
			if mode == "private" {
				fileUpload, urlScan = "POST /private/files", "POST /private/urls"
			}
			art := w.platform.AddEntity(fakeocti.Entity{Type: "Artifact", ImportFiles: []fakeocti.ImportFile{{Name: "sample.bin", Data: []byte("an artifact nobody has seen before 7f3a")}}})
			st := w.enrich(t, art)
			if len(st.Errors) > 0 {
				t.Fatalf("artifact work errors: %+v", st.Errors)
			}
			if n := w.vt.Stats().ByEndpoint[fileUpload]; n != 1 {
				t.Errorf("%d uploads (%s), want 1 (endpoints %v)", n, fileUpload, w.vt.Stats().ByEndpoint)
			}
			u := w.platform.AddEntity(fakeocti.Entity{Type: "Url", Value: "http://never-seen.example.org/path?x='1'"})
			st = w.enrich(t, u)
			if len(st.Errors) > 0 {
				t.Fatalf("URL work errors: %+v", st.Errors)
			}
			if n := w.vt.Stats().ByEndpoint[urlScan]; n != 1 {
				t.Errorf("%d URL submissions (%s), want 1", n, urlScan)
			}
			// The enriched objects came back with the new verdicts.
			for _, id := range []string{art, u} {
				if _, ok := w.platform.Objects()[id]; !ok {
					t.Errorf("%s was not pushed back after its analysis", id)
				}
			}
			if mode != "private" {
				return
			}
			for ep, n := range w.vt.Stats().ByEndpoint {
				switch ep {
				case "POST /files", "GET /files/upload_url", "POST /urls", "POST /urls/{id}/analyse", "POST /files/{id}/analyse", "GET /analyses/{id}":
					t.Errorf("private mode sent %d requests to the public endpoint %s", n, ep)
				}
			}
			private := 0
			for _, n := range w.objectsOfType("note") {
				if c, _ := n["content"].(string); strings.Contains(c, "private analysis") {
					private++
				}
			}
			if private != 2 {
				t.Errorf("%d notes say the report is private, want 2 (artifact and URL)", private)
			}
		})
	}
}

func TestOpenCTIEnrichesIndicators(t *testing.T) {
	w := newOctiWorld(t, fakevt.Config{Seed: 4, UnknownPercent: -1}, map[string]string{"CONNECTOR_SCOPE": "StixFile,Artifact,IPv4-Addr,Domain-Name,Url,Hostname,Indicator"})
	stop, _ := w.start(t)
	defer stop()
	ind := w.platform.AddEntity(fakeocti.Entity{Type: "Indicator", Pattern: "[ipv4-addr:value = '203.0.113.50'] OR [domain-name:value = 'bad.example.com']", PatternType: "stix", MainObservableType: "IPv4-Addr"})
	if ind == "" {
		t.Fatal("indicator refused")
	}
	st := w.enrich(t, ind)
	if len(st.Errors) > 0 {
		t.Fatalf("work errors: %+v", st.Errors)
	}
	if got := w.vt.Stats().ByEndpoint; got["GET /ip_addresses/{ip}"] != 1 || got["GET /domains/{domain}"] != 1 {
		t.Errorf("lookups %v: want one per observable of the pattern", got)
	}
}

func TestOpenCTIConfigCheck(t *testing.T) {
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" },
		environ: map[string]string{"OPENCTI_URL": "http://octi:8080", "OPENCTI_TOKEN": "secret-token-1", "CONNECTOR_ID": "8c0d9b2e-2b9a-4e61-9a0e-3f1a6c5d7e8f", "VIRUSTOTAL_TOKEN": "vt-secret-2"}}
	if code := run(context.Background(), []string{"config", "check", "--opencti"}, e); code != 0 {
		t.Fatalf("exit %d\n%s", code, errb.String())
	}
	if s := out.String() + errb.String(); strings.Contains(s, "secret-token-1") || strings.Contains(s, "vt-secret-2") || !strings.Contains(s, "OK") {
		t.Errorf("config check output leaks a secret or is not OK:\n%s", s)
	}
	for _, want := range []string{"STATUS", "refused when true", "new (vtconnector)", "as pycti"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("config check does not show each setting's status (%q missing):\n%s", want, out.String())
		}
	}
	out.Reset()
	errb.Reset()
	e.environ = map[string]string{"OPENCTI_URL": "ftp://x", "CONNECTOR_ID": "not-a-uuid", "VIRUSTOTAL_MAX_TLP": "TLP:PURPLE"}
	if code := run(context.Background(), []string{"config", "check", "--opencti"}, e); code != 2 {
		t.Errorf("bad config: exit %d, want 2", code)
	}
	for _, v := range []string{"OPENCTI_URL", "OPENCTI_TOKEN", "CONNECTOR_ID", "VIRUSTOTAL_TOKEN", "VIRUSTOTAL_MAX_TLP"} {
		if !strings.Contains(errb.String(), v) {
			t.Errorf("the errors do not name %s:\n%s", v, errb.String())
		}
	}
}

func TestOpenCTIPushThroughTheAPI(t *testing.T) {
	w := newOctiWorld(t, fakevt.Config{Seed: 4, UnknownPercent: -1}, map[string]string{"CONNECTOR_QUEUE_PROTOCOL": "api"})
	stop, _ := w.start(t)
	defer stop()
	id := w.platform.AddEntity(fakeocti.Entity{Type: "Domain-Name", Value: "api-push.example.com"})
	st := w.enrich(t, id)
	if len(st.Errors) > 0 {
		t.Fatalf("work errors: %+v", st.Errors)
	}
	pushed := false
	for _, d := range w.platform.Documents() {
		pushed = pushed || strings.Contains(d.Query, "stixBundlePush")
	}
	if !pushed {
		t.Error("no stixBundlePush mutation was sent")
	}
	// Through the API the platform splits and imports after the work may
	// already be complete (it had no expectations yet): wait for the import.
	waitFor(t, 10*time.Second, "the enriched entity imported", func() bool {
		_, ok := w.platform.Objects()[id]
		return ok
	})
}

func TestOpenCTIServesStatusAndMetrics(t *testing.T) {
	port := freePort(t)
	w := newOctiWorld(t, fakevt.Config{Seed: 4, UnknownPercent: -1}, map[string]string{"VTCONNECTOR_HTTP_ADDR": fmt.Sprintf("127.0.0.1:%d", port)})
	stop, _ := w.start(t)
	defer stop()
	id := w.platform.AddEntity(fakeocti.Entity{Type: "IPv4-Addr", Value: "198.51.100.99"})
	w.enrich(t, id)
	// The enrichment is counted when its handler returns, just after it
	// reported the work complete to the platform.
	var metrics string
	waitFor(t, 10*time.Second, "the enrichment in /metrics", func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		metrics = string(b)
		return strings.Contains(metrics, `vtconnector_enrichments_total{front="opencti",outcome="ok",type="IPv4-Addr"} 1`)
	})
	if strings.Contains(metrics, `outcome="error"`) {
		t.Errorf("/metrics counts an enrichment in error:\n%s", grepLines(metrics, "enrichments_total"))
	}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/status", port))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `id="quota"`) || strings.Contains(string(b), "octi-token") {
		t.Errorf("/status: %d, or a section is missing, or the token shows", resp.StatusCode)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestOpenCTIPlaybookStep: the connector registers as playbook compatible
// and answers playbook steps with playbookStepExecution, the bundle
// enriched, or unchanged when the entity is not sent to VirusTotal.
func TestOpenCTIPlaybookStep(t *testing.T) {
	w := newOctiWorld(t, fakevt.Config{Seed: 4, UnknownPercent: -1}, map[string]string{"VIRUSTOTAL_MAX_TLP": "TLP:GREEN"})
	stop, _ := w.start(t)
	defer stop()
	for _, c := range w.platform.Connectors() {
		if c.ID == w.id && !c.PlaybookCompatible {
			t.Fatal("the connector did not register playbook_compatible=true")
		}
	}
	earlier := map[string]any{"type": "domain-name", "spec_version": "2.1", "id": "domain-name--bedb4899-d24b-5401-bc86-8f6b4cc18ec7", "value": "example.com"}
	step := func(entityID string) (prev, next []map[string]any) {
		t.Helper()
		exec, err := w.platform.RunPlaybookStep(context.Background(), w.id, entityID, earlier)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		run, err := w.platform.WaitPlaybookStep(ctx, exec)
		if err != nil {
			t.Fatal(err)
		}
		var p, n struct {
			Objects []map[string]any `json:"objects"`
		}
		if err := json.Unmarshal([]byte(run.PreviousBundle), &p); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(run.Bundle), &n); err != nil {
			t.Fatal(err)
		}
		return p.Objects, n.Objects
	}
	types := func(objs []map[string]any) map[string]int {
		m := map[string]int{}
		for _, o := range objs {
			m[o["type"].(string)]++
		}
		return m
	}
	ip := w.platform.AddEntity(fakeocti.Entity{Type: "IPv4-Addr", Value: "203.0.113.77", Markings: []string{"TLP:GREEN"}})
	prev, next := step(ip)
	if got := types(next); got["note"] == 0 || got["domain-name"] != 1 || got["ipv4-addr"] != 1 {
		t.Errorf("enriched step: new bundle holds %v; want the incoming objects and a note", got)
	}
	if len(prev) != 3 {
		t.Errorf("previous bundle has %d objects, want the 3 sent", len(prev))
	}
	red := w.platform.AddEntity(fakeocti.Entity{Type: "IPv4-Addr", Value: "203.0.113.78", Markings: []string{"TLP:RED"}})
	prev, next = step(red)
	if fmt.Sprint(types(prev)) != fmt.Sprint(types(next)) || len(next) != len(prev) {
		t.Errorf("a TLP-blocked step changed the bundle: %v -> %v", types(prev), types(next))
	}
	for _, d := range w.platform.Documents() {
		if len(d.ValidationErrors) > 0 {
			t.Errorf("GraphQL document %s failed validation against the platform schema: %v", d.Name, d.ValidationErrors)
		}
	}
}

// TestOpenCTIGrantsTheEntitysOrganisationsToEveryObject: organisation
// sharing is carried onto every object the enrichment creates, as pycti
// does.
func TestOpenCTIGrantsTheEntitysOrganisationsToEveryObject(t *testing.T) {
	w := newOctiWorld(t, fakevt.Config{Seed: 4, UnknownPercent: -1}, map[string]string{"VIRUSTOTAL_IP_ADD_RELATIONSHIPS": "true"})
	stop, _ := w.start(t)
	defer stop()
	org := w.platform.AddOrganization("Filigran")
	id := w.platform.AddEntity(fakeocti.Entity{Type: "IPv4-Addr", Value: "203.0.113.7", GrantedRefs: []string{org}})
	if st := w.enrich(t, id); len(st.Errors) > 0 {
		t.Fatalf("work errors: %+v", st.Errors)
	}
	objects := w.platform.Objects()
	if len(objects) < 3 {
		t.Fatalf("%d objects imported, want the entity and what the enrichment created", len(objects))
	}
	for oid, raw := range objects {
		if strings.HasPrefix(oid, "marking-definition--") || oid == org {
			continue
		}
		var o struct {
			Granted    []string `json:"x_opencti_granted_refs"`
			Extensions map[string]struct {
				Granted []string `json:"granted_refs"`
			} `json:"extensions"`
		}
		if err := json.Unmarshal(raw, &o); err != nil {
			t.Fatal(err)
		}
		granted := append(o.Granted, o.Extensions["extension-definition--ea279b3e-5c71-4632-ac08-831c66a786ba"].Granted...)
		if !slices.Contains(granted, org) {
			t.Errorf("%s is not shared with %s: %s", oid, org, raw)
		}
	}
}

// TestOpenCTIListensThroughTheAPIProtocol: with CONNECTOR_LISTEN_PROTOCOL=API
// the connector registers listen_callback_uri and the platform's worker
// posts requests to it, over TLS when configured; the bearer token is
// checked and the request size bounded.
func TestOpenCTIListensThroughTheAPIProtocol(t *testing.T) {
	for _, withTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", withTLS), func(t *testing.T) {
			port := freePort(t)
			scheme := "http"
			extra := map[string]string{"CONNECTOR_LISTEN_PROTOCOL": "API", "CONNECTOR_LISTEN_PROTOCOL_API_PORT": fmt.Sprint(port),
				"CONNECTOR_LISTEN_PROTOCOL_API_PATH": "/vt/callback"}
			var client *http.Client = http.DefaultClient
			if withTLS {
				scheme = "https"
				certPEM, keyPEM, pool := selfSigned(t)
				extra["CONNECTOR_LISTEN_PROTOCOL_API_SSL"] = "true"
				extra["LISTEN_PROTOCOL_API_SSL_CERT"] = certPEM
				extra["LISTEN_PROTOCOL_API_SSL_KEY"] = keyPEM
				client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
			}
			extra["CONNECTOR_LISTEN_PROTOCOL_API_URI"] = fmt.Sprintf("%s://127.0.0.1:%d", scheme, port)
			w := newOctiWorld(t, fakevt.Config{Seed: 4, UnknownPercent: -1}, extra)
			w.platform.SetRelayClient(client)
			stop, _ := w.start(t)
			defer stop()
			callback := fmt.Sprintf("%s://127.0.0.1:%d/vt/callback", scheme, port)
			for _, c := range w.platform.Connectors() {
				if c.ID == w.id && c.ListenCallbackURI != callback {
					t.Errorf("listen_callback_uri %q, want %q", c.ListenCallbackURI, callback)
				}
			}
			id := w.platform.AddEntity(fakeocti.Entity{Type: "IPv4-Addr", Value: "198.51.100.150"})
			if st := w.enrich(t, id); len(st.Errors) > 0 || st.Processed != st.Expected || st.Expected == 0 {
				t.Fatalf("work %+v", st)
			}
			if n := w.platform.Callbacks(); n != 1 {
				t.Errorf("%d callbacks, want 1", n)
			}
			post := func(token string, body []byte) int {
				req, _ := http.NewRequest(http.MethodPost, callback, bytes.NewReader(body))
				if token != "" {
					req.Header.Set("Authorization", "Bearer "+token)
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp.StatusCode
			}
			if code := post("", []byte(`{}`)); code != http.StatusUnauthorized {
				t.Errorf("no token: HTTP %d, want 401", code)
			}
			if code := post("another-token", []byte(`{}`)); code != http.StatusUnauthorized {
				t.Errorf("wrong token: HTTP %d, want 401", code)
			}
			if code := post("octi-token", []byte(`{not json`)); code != http.StatusBadRequest {
				t.Errorf("bad JSON: HTTP %d, want 400", code)
			}
			if code := post("octi-token", bytes.Repeat([]byte(" "), opencti.MaxCallbackBody+1)); code != http.StatusRequestEntityTooLarge {
				t.Errorf("oversized: HTTP %d, want 413", code)
			}
		})
	}
}

// selfSigned makes a certificate for 127.0.0.1 and its key, as PEM, and a
// pool that trusts it.
func selfSigned(t *testing.T) (certPEM, keyPEM string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vtconnector test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(crand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})), pool
}

// TestOpenCTIPassesMutualTLSSettingsToTheBroker: MQ_USE_SSL_CA, _CERT and
// _KEY reach the RabbitMQ connection: the connector verifies the broker
// with the CA and presents its client certificate (a TLS listener stands
// for a broker that requires one).
func TestOpenCTIPassesMutualTLSSettingsToTheBroker(t *testing.T) {
	certPEM, keyPEM, pool := selfSigned(t)
	kp, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{kp}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	presented := make(chan string, 10)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			tc := conn.(*tls.Conn)
			if tc.Handshake() == nil && len(tc.ConnectionState().PeerCertificates) > 0 {
				presented <- tc.ConnectionState().PeerCertificates[0].Subject.CommonName
			}
			conn.Close()
		}
	}()
	w := newOctiWorld(t, fakevt.Config{Seed: 4, UnknownPercent: -1}, map[string]string{
		"MQ_USE_SSL": "true", "MQ_HOST": "127.0.0.1", "MQ_PORT": strings.TrimPrefix(ln.Addr().String(), "127.0.0.1:"),
		"MQ_USE_SSL_CA": certPEM, "MQ_USE_SSL_CERT": certPEM, "MQ_USE_SSL_KEY": keyPEM, "MQ_USE_SSL_REJECT_UNAUTHORIZED": "true"})
	stop, _ := w.start(t)
	defer stop()
	select {
	case cn := <-presented:
		if cn != "vtconnector test" {
			t.Errorf("client certificate %q", cn)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the connector never completed a mutual-TLS handshake with the broker")
	}
}

// TestOpenCTIDeferredResolutionReadsTheEntity: with
// CONNECTOR_ENRICHMENT_RESOLUTION=deferred the platform sends only ids; the
// entity is read from the platform, as pycti does.
func TestOpenCTIDeferredResolutionReadsTheEntity(t *testing.T) {
	w := newOctiWorld(t, fakevt.Config{Seed: 4, UnknownPercent: -1}, map[string]string{"CONNECTOR_ENRICHMENT_RESOLUTION": "deferred"})
	stop, _ := w.start(t)
	defer stop()
	id := w.platform.AddEntity(fakeocti.Entity{Type: "Domain-Name", Value: "deferred.example.com"})
	if st := w.enrich(t, id); len(st.Errors) > 0 || st.Expected == 0 {
		t.Fatalf("work %+v", st)
	}
	if _, ok := w.platform.Objects()[id]; !ok {
		t.Error("the entity was not enriched")
	}
}

// TestOpenCTISendToQueueFalseSendsNothing: CONNECTOR_SEND_TO_QUEUE=false
// sends no bundle and no work mutation, as pycti.
func TestOpenCTISendToQueueFalseSendsNothing(t *testing.T) {
	w := newOctiWorld(t, fakevt.Config{Seed: 4, UnknownPercent: -1}, map[string]string{"CONNECTOR_SEND_TO_QUEUE": "false", "VTCONNECTOR_CONCURRENCY": "1"})
	stop, _ := w.start(t)
	id := w.platform.AddEntity(fakeocti.Entity{Type: "IPv4-Addr", Value: "198.51.100.210"})
	if _, err := w.platform.Enrich(context.Background(), w.id, id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the lookup", func() bool { return w.vt.Stats().APIRequests() == 1 })
	// One request at a time: the first is finished when the second is looked up.
	id2 := w.platform.AddEntity(fakeocti.Entity{Type: "IPv4-Addr", Value: "198.51.100.211"})
	if _, err := w.platform.Enrich(context.Background(), w.id, id2); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the second lookup", func() bool { return w.vt.Stats().APIRequests() == 2 })
	stop()
	for _, d := range w.platform.Documents() {
		if strings.Contains(d.Query, "workEdit") && !strings.Contains(d.Query, "ping") || strings.Contains(d.Query, "stixBundlePush") {
			t.Errorf("document sent with CONNECTOR_SEND_TO_QUEUE=false: %s", d.Query)
		}
	}
	if n := len(w.platform.Objects()); n != 0 {
		t.Errorf("%d objects imported, want none", n)
	}
}
