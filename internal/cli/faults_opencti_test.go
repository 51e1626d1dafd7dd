//go:build faults

package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	fakeocti "github.com/vtconnector/vtconnector/internal/fake/opencti"
	fakevt "github.com/vtconnector/vtconnector/internal/fake/vt"
	"github.com/vtconnector/vtconnector/internal/opencti"
	"github.com/vtconnector/vtconnector/internal/vt"
)

// octiReq is one enrichment request of a scenario: the platform's work
// and the entity it asks about.
type octiReq struct {
	work   string
	entity octiEntity
}

// octiEntity is an entity seeded on the platform.
type octiEntity struct {
	id, typ, value string
}

// octiLoad seeds entities on the platform and asks the connector to
// enrich them, as users clicking "enrich" would; a few entities are
// enriched again (the original's users got a new note each time).
type octiLoad struct {
	w    *octiWorld
	tag  string
	mu   sync.Mutex
	ents []octiEntity
	reqs []octiReq
}

func newOctiLoad(w *octiWorld) *octiLoad {
	return &octiLoad{w: w, tag: fmt.Sprintf("%06x", rand.Uint32()&0xffffff)}
}

// send seeds n new entities (IPv4 addresses, domains and files, in turn)
// and asks for their enrichment, then asks again for one earlier entity
// in five.
func (l *octiLoad) send(t *testing.T, n int) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for range n {
		i := len(l.ents)
		var e fakeocti.Entity
		switch i % 3 {
		case 0:
			e = fakeocti.Entity{Type: "IPv4-Addr", Value: fmt.Sprintf("198.18.%d.%d", i/250, i%250+1)}
		case 1:
			e = fakeocti.Entity{Type: "Domain-Name", Value: fmt.Sprintf("faults-%d-%s.example.org", i, l.tag)}
		default:
			sum := sha256.Sum256([]byte(l.tag + strconv.Itoa(i)))
			e = fakeocti.Entity{Type: "StixFile", Hashes: map[string]string{"SHA-256": hex.EncodeToString(sum[:])}}
		}
		id := l.w.platform.AddEntity(e)
		if id == "" {
			t.Fatalf("the platform refused the entity %+v", e)
		}
		value := e.Value
		if value == "" {
			value = e.Hashes["SHA-256"]
		}
		ent := octiEntity{id: id, typ: e.Type, value: value}
		l.ents = append(l.ents, ent)
		l.enrichLocked(t, ent)
		if i%5 == 4 {
			l.enrichLocked(t, l.ents[rand.IntN(len(l.ents))])
		}
	}
}

func (l *octiLoad) enrichLocked(t *testing.T, e octiEntity) {
	t.Helper()
	work, err := l.w.platform.Enrich(context.Background(), l.w.id, e.id)
	if err != nil {
		t.Fatalf("enrich %s: %v", e.id, err)
	}
	l.reqs = append(l.reqs, octiReq{work: work, entity: e})
}

func (l *octiLoad) requests() ([]octiReq, []octiEntity) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]octiReq(nil), l.reqs...), append([]octiEntity(nil), l.ents...)
}

// octiTruth is what VirusTotal knows of an entity: not found, or found
// with a score (hasScore false when no score can be computed).
type octiTruth struct {
	found, hasScore bool
	score           int
}

// oracle asks a fresh simulator with the world's seed what VirusTotal
// knows of each entity, without the faults.
func (l *octiLoad) oracle(t *testing.T) map[string]octiTruth {
	t.Helper()
	sim := fakevt.New(fakevt.Config{Seed: l.w.vtCfg.Seed, UnknownPercent: l.w.vtCfg.UnknownPercent})
	c, err := vt.New("oracle", vt.WithBaseURL(simBase), vt.WithHTTPClient(&http.Client{Transport: handlerTransport{sim}}))
	if err != nil {
		t.Fatal(err)
	}
	_, ents := l.requests()
	out := map[string]octiTruth{}
	for _, e := range ents {
		var o *vt.Object
		switch e.typ {
		case "IPv4-Addr":
			o, err = c.IPAddress(context.Background(), e.value)
		case "Domain-Name":
			o, err = c.Domain(context.Background(), e.value)
		default:
			o, err = c.File(context.Background(), e.value)
		}
		switch {
		case errors.Is(err, vt.ErrNotFound):
			out[e.id] = octiTruth{}
		case err != nil:
			t.Fatalf("oracle %s %s: %v", e.typ, e.value, err)
		default:
			tr := octiTruth{found: true}
			if o.Attributes.LastAnalysisStats != nil {
				tr.score, tr.hasScore = opencti.ScoreFromStats(*o.Attributes.LastAnalysisStats)
			}
			out[e.id] = tr
		}
	}
	return out
}

// octiBooks accounts for every enrichment request: its work complete with
// exactly one outcome reported (toProcessed once), every bundle announced
// imported; found on VirusTotal: no error, the entity pushed back with
// VirusTotal's score and its notes once each (one per kind: the abstract
// names it); unknown to VirusTotal: the work in error saying so. Nothing
// else on the platform: no work the scenario did not ask for.
func (l *octiLoad) books(truth map[string]octiTruth) books {
	reqs, ents := l.requests()
	b := books{Items: len(reqs)}
	objects := l.w.platform.Objects()
	// Notes by entity and abstract.
	notes := map[string]map[string]int{}
	for id, raw := range objects {
		if !strings.HasPrefix(id, "note--") {
			continue
		}
		var n struct {
			Abstract   string   `json:"abstract"`
			ObjectRefs []string `json:"object_refs"`
		}
		if json.Unmarshal(raw, &n) != nil {
			b.wrong("note %s is not JSON", id)
			continue
		}
		for _, r := range n.ObjectRefs {
			if notes[r] == nil {
				notes[r] = map[string]int{}
			}
			notes[r][n.Abstract]++
		}
	}
	asked := map[string]bool{}
	okByEntity := map[string]int{}
	for _, r := range reqs {
		asked[r.work] = true
		ws, found := l.w.platform.Work(r.work)
		tr := truth[r.entity.id]
		switch {
		case !found:
			b.lost("work %s of %s vanished from the platform", r.work, r.entity.id)
			continue
		case ws.Status != "complete":
			b.lost("work %s (%s %s) still %s: %d of %d bundles imported, %d outcome(s) reported, last message %q",
				r.work, r.entity.typ, r.entity.value, ws.Status, ws.Processed, ws.Expected, ws.ToProcessed, lastMessage(ws))
			continue
		case ws.ToProcessed > 1:
			b.dup("work %s (%s) reported %d times", r.work, r.entity.id, ws.ToProcessed)
		}
		switch {
		case !tr.found:
			if len(ws.Errors) == 0 || !strings.Contains(ws.Errors[0].Message, "not found on VirusTotal") {
				b.wrong("work %s: %s %s is unknown to VirusTotal, the work says %q (errors %v)", r.work, r.entity.typ, r.entity.value, lastMessage(ws), ws.Errors)
			}
		case len(ws.Errors) > 0:
			b.wrong("work %s (%s %s) failed: %s", r.work, r.entity.typ, r.entity.value, ws.Errors[0].Message)
		default:
			okByEntity[r.entity.id]++
		}
	}
	for _, e := range ents {
		tr := truth[e.id]
		if !tr.found || okByEntity[e.id] == 0 {
			if len(notes[e.id]) > 0 && !tr.found {
				b.wrong("%s is unknown to VirusTotal but has notes %v", e.id, notes[e.id])
			}
			continue
		}
		raw, ok := objects[e.id]
		if !ok {
			b.lost("%s %s: work complete but the entity was never pushed back", e.typ, e.value)
			continue
		}
		if tr.hasScore {
			ent, err := opencti.ParseEntity(e.id, e.typ, raw)
			score, has := ent.Score()
			if err != nil || !has || score != tr.score {
				b.wrong("%s %s: score %d (set %v, %v) on the platform, VirusTotal's is %d", e.typ, e.value, score, has, err, tr.score)
			}
		}
		if len(notes[e.id]) == 0 {
			b.lost("%s %s: enriched without a note", e.typ, e.value)
		}
		for abstract, n := range notes[e.id] {
			if n > 1 {
				b.dup("%s %s: %d notes %q", e.typ, e.value, n, abstract)
			}
		}
	}
	for _, ws := range l.w.platform.Works() {
		if ws.ConnectorID == l.w.id && !asked[ws.ID] {
			b.dup("work %s (%s) that nobody asked for", ws.ID, ws.Name)
		}
	}
	return b
}

func lastMessage(ws fakeocti.WorkState) string {
	if len(ws.Messages) == 0 {
		return ""
	}
	return ws.Messages[len(ws.Messages)-1].Message
}

// settle waits up to d for the books of an OpenCTI scenario to balance.
func (l *octiLoad) settle(t *testing.T, d time.Duration) (books, time.Duration) {
	t.Helper()
	truth := l.oracle(t)
	b, took := settle(d, func() books { return l.books(truth) })
	l.tell(t, truth)
	return b, took
}

// tell logs the shape of the run: outcomes, re-sent bundles (the same
// objects imported again for one request: harmless upserts, but work).
func (l *octiLoad) tell(t *testing.T, truth map[string]octiTruth) {
	t.Helper()
	reqs, ents := l.requests()
	unknown := 0
	for _, e := range ents {
		if !truth[e.id].found {
			unknown++
		}
	}
	resent, failed := 0, 0
	for _, r := range reqs {
		ws, _ := l.w.platform.Work(r.work)
		if len(ws.Bundles) > ws.Expected || ws.Expected > 0 && ws.Processed > ws.Expected {
			resent++
		}
		if len(ws.Errors) > 0 {
			failed++
		}
	}
	t.Logf("%d requests for %d entities (%d unknown to VirusTotal): %d works in error, %d works with bundles sent again",
		len(reqs), len(ents), unknown, failed, resent)
}

// waitRegistered waits until the connector consumes (it registered; the
// platform's worker consumes its push queue).
func (w *octiWorld) waitRegistered(t *testing.T) {
	t.Helper()
	waitFor(t, 30*time.Second, "the connector to register", func() bool {
		for _, c := range w.platform.Connectors() {
			if c.ID == w.id && c.Consuming {
				return true
			}
		}
		return false
	})
}

// open counts the requests whose work is not complete yet.
func (l *octiLoad) open() int {
	reqs, _ := l.requests()
	n := 0
	for _, r := range reqs {
		if ws, ok := l.w.platform.Work(r.work); !ok || ws.Status != "complete" {
			n++
		}
	}
	return n
}

// octiProgressed waits until n works of the scenario are complete, so
// that a fault lands on a connector in the middle of its work.
func (l *octiLoad) progressed(t *testing.T, n int) {
	t.Helper()
	waitFor(t, 60*time.Second, fmt.Sprintf("%d complete works", n), func() bool {
		reqs, _ := l.requests()
		done := 0
		for _, r := range reqs {
			if ws, ok := l.w.platform.Work(r.work); ok && ws.Status == "complete" {
				done++
			}
		}
		return done >= n
	})
}

func (w *octiWorld) environ() []string {
	var out []string
	for k, v := range w.env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// faultOctiSIGKILL kills the OpenCTI connector at random moments while
// enrichment requests keep arriving, restarting it each time.
func faultOctiSIGKILL(t *testing.T, m faultMode, f *figure) {
	began := time.Now()
	kills, perRound := pick(m, 20, 6), pick(m, 12, 9)
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 11))
	f.Faults = fmt.Sprintf("%d SIGKILLs at random moments (0.2–1.5 s apart), restarts, requests arriving (seed %d)", kills, seed)
	// Slow answers, so that a kill lands in the middle of a round's work.
	w := newOctiWorld(t, fakevt.Config{Seed: 41, UnknownPercent: 10, Latency: 120 * time.Millisecond}, map[string]string{"VTCONNECTOR_CONCURRENCY": "2"})
	l := newOctiLoad(w)
	env := w.environ()
	busy := 0
	for i := range kills {
		c := childEnv(t, env, "opencti")
		if i == 0 {
			w.waitRegistered(t)
		}
		l.send(t, perRound)
		// The random moment of the kill: this injects the fault, it asserts nothing.
		time.Sleep(200*time.Millisecond + time.Duration(rng.Int64N(int64(1300*time.Millisecond))))
		if l.open() > 0 {
			busy++
		}
		if err := c.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = c.Wait()
	}
	t.Logf("%d of %d kills landed with requests unfinished", busy, kills)
	last := childEnv(t, env, "opencti")
	b, took := l.settle(t, pick(m, 3*time.Minute, time.Minute))
	stopGracefully(t, last)
	f.close(t, b, took, began)
}

// faultOctiVTErrors answers one VirusTotal request in five with a 503, a
// few too late for the client's timeout, and throws 429 storms at the
// connector while requests arrive.
func faultOctiVTErrors(t *testing.T, m faultMode, f *figure) {
	began := time.Now()
	n, storms, stormLen := pick(m, 180, 45), pick(m, 5, 2), pick(m, 10*time.Second, time.Second)
	f.Faults = fmt.Sprintf("20%% 503s, 5%% answers after the 2 s client timeout, %d 429 storms of %s", storms, stormLen)
	cfg := fakevt.Config{Seed: 42, UnknownPercent: 10, FaultRate: 0.2, SlowRate: 0.05, SlowDelay: 3 * time.Second}
	w := newOctiWorld(t, cfg, map[string]string{"VIRUSTOTAL_TIMEOUT": "2"})
	front := newVTFront(t, w.vt)
	w.env["VIRUSTOTAL_URL"] = front.url()
	l := newOctiLoad(w)
	start, _ := w.start(t)
	stop := stopOnce(t, start)
	// Requests arrive in waves, the storms between them.
	waves := storms + 1
	for i := range waves {
		l.send(t, n/waves)
		if i < storms {
			front.storms(1, stormLen, pick(m, 5*time.Second, 500*time.Millisecond))
		}
	}
	// After the storms the engine paces VirusTotal at the rate it learned
	// from them and raises it step by step (the key may be shared): the
	// long form's backlog takes minutes to drain.
	b, took := l.settle(t, pick(m, 10*time.Minute, 90*time.Second))
	vs := w.vt.Stats()
	t.Logf("VirusTotal: %d requests, %d 503s, %d slow; %d refused by storms", vs.Requests, vs.Faults, vs.Slow, front.storms429.Load())
	if code := stop(); code != 0 {
		t.Errorf("exit status %d", code)
	}
	f.close(t, b, took, began)
}

// faultOctiRabbitMQ puts a proxy between the connector and RabbitMQ (the
// platform gives the proxy's address at registration, as the real one
// gives its own rabbitmq settings) that cuts, refuses and stalls the
// connector's connections while requests arrive.
func faultOctiRabbitMQ(t *testing.T, m faultMode, f *figure) {
	began := time.Now()
	nf := pick(m, netFaults{cuts: 10, gap: 4 * time.Second, refuse: 30 * time.Second, stallFor: 30 * time.Second},
		netFaults{cuts: 2, gap: time.Second, refuse: 3 * time.Second, stallFor: 3 * time.Second})
	f.Faults = "RabbitMQ: " + nf.String()
	amqpURL := os.Getenv("VTC_TEST_AMQP_URL")
	if amqpURL == "" {
		f.NotRun = "VTC_TEST_AMQP_URL not set"
		t.Skip(f.NotRun)
	}
	_, p := throughProxy(t, amqpURL)
	host, port, err := net.SplitHostPort(p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	portN, _ := strconv.Atoi(port)
	w := newOctiWorldWith(t, func(c *fakeocti.Config) {
		c.AMQPPublic.Host, c.AMQPPublic.Port = host, portN
	}, fakevt.Config{Seed: 43, UnknownPercent: 10, Latency: 10 * time.Millisecond}, nil)
	l := newOctiLoad(w)
	start, _ := w.start(t)
	stop := stopOnce(t, start)
	l.send(t, 15)
	l.progressed(t, 3)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 13))
	nf.inject(t, p, rng, func() { l.send(t, 6) })
	b, took := l.settle(t, pick(m, 3*time.Minute, time.Minute))
	if code := stop(); code != 0 {
		t.Errorf("exit status %d", code)
	}
	f.close(t, b, took, began)
}

// faultOctiPostgres runs the OpenCTI connector on PostgreSQL through a
// proxy that cuts, refuses and stalls its connections while requests
// arrive.
func faultOctiPostgres(t *testing.T, m faultMode, f *figure) {
	began := time.Now()
	nf := pick(m, netFaults{cuts: 10, gap: 4 * time.Second, refuse: 30 * time.Second, stallFor: 30 * time.Second},
		netFaults{cuts: 2, gap: time.Second, refuse: 3 * time.Second, stallFor: 3 * time.Second})
	f.Faults = "PostgreSQL: " + nf.String()
	dsn := postgresSchema(t, f)
	proxied, p := throughProxy(t, dsn)
	w := newOctiWorld(t, fakevt.Config{Seed: 44, UnknownPercent: 10, Latency: 10 * time.Millisecond},
		map[string]string{"VTCONNECTOR_DATABASE_URL": proxied})
	l := newOctiLoad(w)
	start, _ := w.start(t)
	stop := stopOnce(t, start)
	l.send(t, 15)
	l.progressed(t, 3)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 15))
	nf.inject(t, p, rng, func() { l.send(t, 6) })
	// A claim whose answer a cut loses leaves its item leased until the
	// lease (5 min) expires: the long form waits longer than that.
	b, took := l.settle(t, pick(m, 6*time.Minute, time.Minute))
	if code := stop(); code != 0 {
		t.Errorf("exit status %d", code)
	}
	f.close(t, b, took, began)
}
