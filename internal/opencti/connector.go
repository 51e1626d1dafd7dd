package opencti

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"golang.org/x/sync/errgroup"

	"github.com/vtconnector/vtconnector/internal/config"
	"github.com/vtconnector/vtconnector/internal/engine"
	"github.com/vtconnector/vtconnector/internal/obs"
	"github.com/vtconnector/vtconnector/internal/retry"
	"github.com/vtconnector/vtconnector/internal/stix"
	"github.com/vtconnector/vtconnector/internal/store"
	"github.com/vtconnector/vtconnector/internal/vt"
	"github.com/vtconnector/vtconnector/internal/worker"
)

// MaxIndicatorObservables bounds the lookups one Indicator costs: a pattern
// naming thousands of observables must not drain the key's quota.
const MaxIndicatorObservables = 25

// KindPending is the store queue kind of enrichments waiting for a
// VirusTotal analysis (an uploaded artifact, a submitted URL).
const KindPending = "octi.analysis"

// platform is the part of the OpenCTI platform's API the connector uses
// (*Platform; a fake in unit tests).
type platform interface {
	Version(ctx context.Context) (string, error)
	Register(ctx context.Context, in RegisterInput, version string) (*Registration, error)
	Ping(ctx context.Context, id, state, version string) (*string, error)
	WorkToReceived(ctx context.Context, workID, message string) error
	WorkToProcessed(ctx context.Context, workID, message string, inError bool) error
	WorkAddExpectations(ctx context.Context, workID string, n int) error
	WorkPing(ctx context.Context, workID string) error
	WorkProgress(ctx context.Context, workID string) (WorkProgress, error)
	PushBundle(ctx context.Context, connectorID string, bundle []byte, workID string) error
	ArtifactFiles(ctx context.Context, id string) ([]ImportFile, error)
	MarkingDefinition(ctx context.Context, id string) (*stix.Marking, error)
	PlaybookStepExecution(ctx context.Context, s PlaybookStep) error
	EntityStix(ctx context.Context, id string) ([]byte, error)
	DownloadFile(ctx context.Context, fileID string, w io.Writer, max int64) (int64, error)
}

// verdictSource is the part of the engine the connector asks: every
// VirusTotal conversation goes through it, paced by its quota scheduler.
type verdictSource interface {
	Lookup(ctx context.Context, r engine.Request) (engine.Result, error)
	Upload(ctx context.Context, u engine.Upload) (engine.Submission, error)
	SubmitURL(ctx context.Context, rawURL string, mode engine.Mode, f engine.UploadFacts, co engine.CallOptions) (engine.Submission, error)
	Collect(ctx context.Context, s *engine.Submission, co engine.CallOptions) (engine.Collected, error)
	YARARuleset(ctx context.Context, id string, co engine.CallOptions) (*vt.Object, error)
	URLServingIP(ctx context.Context, urlID string, co engine.CallOptions) (string, error)
}

// workStore is the part of the store the connector parks work in.
type workStore interface {
	worker.Queue
	Enqueue(ctx context.Context, it store.NewItem) (bool, error)
	ReleaseLeases(ctx context.Context, ownerPrefix string) (int64, error)
}

// Deps are the parts the connector runs on.
type Deps struct {
	Platform platform
	Engine   verdictSource
	Store    workStore
	Log      *slog.Logger
	// BrokerURL, when set, replaces the RabbitMQ address the platform
	// returns (tests; MQ_* settings are applied otherwise).
	BrokerURL string
	Tune      *Tuning
	// Owner names this connector in work leases (stable across restarts).
	Owner string
	// Obs, when set, counts enrichments and shows problems on the status page.
	Obs *obs.Observer
}

// Tuning overrides fixed intervals (tests).
type Tuning struct {
	PingEvery, PollEvery, WorkPingEvery, RetryMax time.Duration
}

// bundlePublisher publishes split bundles on the push queue (*publisher;
// a fake in unit tests).
type bundlePublisher interface {
	publish(ctx context.Context, body []byte) error
	close()
}

// Connector is a running OpenCTI enrichment connector.
type Connector struct {
	cfg     *config.OpenCTI
	d       Deps
	log     *slog.Logger
	t       Tuning
	version string
	reg     *Registration
	broker  Broker
	author  stix.Identity
	maxTLP  stix.TLP
	opts    Options

	pubMu sync.Mutex
	pub   bundlePublisher

	brokerTLS *tls.Config // MQ_USE_SSL_CA/CERT/KEY/PASSPHRASE

	pending  *worker.Pool // collects parked analyses
	messages *worker.Pool // works parked requests

	progressUnread sync.Once // warned that works cannot be read

	deliveriesMu sync.Mutex
	deliveries   map[string]int // messages handed back to RabbitMQ, by body hash
}

// Run registers the connector and processes enrichment requests until ctx
// ends. Errors that retrying cannot fix (a refused token) end it; a
// platform or broker outage is waited out.
func Run(ctx context.Context, cfg *config.OpenCTI, d Deps) error {
	c := newConnector(cfg, d)
	tlp, err := stix.ParseTLP(cfg.MaxTLP)
	if err != nil {
		return fmt.Errorf("opencti: VIRUSTOTAL_MAX_TLP: %w", err)
	}
	c.maxTLP = tlp
	if c.brokerTLS, err = BrokerTLS(cfg.MQ); err != nil {
		return err
	}
	var callback net.Listener
	if cfg.ListenProtocol == "API" {
		if callback, err = c.listenCallback(); err != nil {
			return err
		}
		defer callback.Close()
	}
	if err := c.register(ctx); err != nil {
		return err
	}
	if n, err := d.Store.ReleaseLeases(ctx, d.Owner+"/"); err == nil && n > 0 {
		c.log.Warn("took back analyses left in flight by a previous run", "items", n)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { c.pingLoop(gctx); return nil })
	if callback != nil {
		g.Go(func() error { return c.serveCallback(gctx, callback) })
	} else {
		g.Go(func() error { c.consumeLoop(gctx); return nil })
	}
	g.Go(func() error { return c.pending.Run(gctx) })
	g.Go(func() error { return c.messages.Run(gctx) })
	err = g.Wait()
	c.pubMu.Lock()
	if c.pub != nil {
		c.pub.close()
	}
	c.pubMu.Unlock()
	return err
}

// newConnector prepares a connector; Run registers and starts it.
func newConnector(cfg *config.OpenCTI, d Deps) *Connector {
	c := &Connector{cfg: cfg, d: d, log: d.Log}
	c.t = Tuning{PingEvery: 40 * time.Second, PollEvery: 30 * time.Second, WorkPingEvery: 5 * time.Minute, RetryMax: time.Minute}
	if d.Tune != nil {
		c.t = *d.Tune
	}
	c.maxTLP, _ = stix.ParseTLP(cfg.MaxTLP)
	c.author = VTIdentity(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC))
	c.opts = Options{
		ReplaceWithLowerScore: cfg.ReplaceWithLowerScore, IncludeAttributesInNote: cfg.IncludeAttributesInNote,
		FileCreateNoteFullReport: cfg.FileCreateNoteFullReport, FileImportYARA: cfg.FileImportYARA,
		FileIndicator: policy(cfg.FileIndicator), IPIndicator: policy(cfg.IPIndicator),
		DomainIndicator: policy(cfg.DomainIndicator), URLIndicator: policy(cfg.URLIndicator),
		IPAddRelationships: cfg.IPAddRelationships, DomainAddRelationships: cfg.DomainAddRelationships,
	}
	c.pending = worker.New(d.Store, worker.Config{Name: "pending", Owner: d.Owner, Kinds: []string{KindPending},
		Lease: 5 * time.Minute, Idle: min(c.t.PollEvery, 5*time.Second), Log: d.Log}, c.collect)
	c.messages = worker.New(d.Store, worker.Config{Name: "requests", Owner: d.Owner, Kinds: []string{KindMessage},
		Workers: max(cfg.Concurrency, 1), Lease: 5 * time.Minute, Idle: min(c.t.PollEvery, 5*time.Second), Log: d.Log}, c.work)
	c.deliveries = map[string]int{}
	return c
}

func policy(p config.IndicatorPolicy) IndicatorPolicy {
	return IndicatorPolicy{CreatePositives: p.CreatePositives, ValidMinutes: p.ValidMinutes, Detect: p.Detect}
}

// retry runs fn until it succeeds, ctx ends, or it fails with an auth
// error; waits grow from 1 s to RetryMax. Platform trouble shows on the
// status page while it lasts.
func (c *Connector) retry(ctx context.Context, what string, fn func() error) error {
	return retry.Until(ctx, retry.Backoff{First: time.Second, Max: c.t.RetryMax},
		func() error {
			err := fn()
			if c.d.Obs != nil && ctx.Err() == nil {
				switch {
				case err == nil:
					c.d.Obs.Resolve(obs.ProblemPlatformUnreachable)
				case errors.Is(err, ErrPlatformAuth), errors.Is(err, ErrPlatformUnavailable):
					c.d.Obs.Problem(obs.ProblemPlatformUnreachable, what+": "+err.Error())
				}
			}
			return err
		},
		func(err error) bool { return errors.Is(err, ErrPlatformAuth) },
		func(err error, wait time.Duration) {
			c.log.Warn(what+" failed; retrying", "error", err, "retry_in", wait)
		})
}

func (c *Connector) register(ctx context.Context) error {
	err := c.retry(ctx, "reaching the OpenCTI platform", func() error {
		v, err := c.d.Platform.Version(ctx)
		c.version = v
		return err
	})
	if err != nil {
		return fmt.Errorf("opencti: %w (check OPENCTI_URL and OPENCTI_TOKEN)", err)
	}
	c.log.Info("OpenCTI platform reached", "version", c.version)
	in := RegisterInput{ID: c.cfg.ConnectorID, Name: c.cfg.ConnectorName, Scope: c.cfg.Scope, Auto: c.cfg.Auto,
		AutoUpdate: c.cfg.AutoUpdate, EnrichmentResolution: c.cfg.EnrichmentResolution, PlaybookCompatible: true, OnlyContextual: c.cfg.OnlyContextual,
		ListenCallbackURI: c.callbackURI()}
	err = c.retry(ctx, "registering the connector", func() error {
		r, err := c.d.Platform.Register(ctx, in, c.version)
		c.reg = r
		return err
	})
	if err != nil {
		return fmt.Errorf("opencti: register: %w", err)
	}
	cn := c.reg.Config.Connection
	c.broker = Broker{Host: cn.Host, Port: cn.Port, VHost: cn.VHost, User: cn.User, Pass: cn.Pass, UseSSL: cn.UseSSL,
		VerifyTLS: c.cfg.MQ.SSLRejectUnauthorized, TLS: c.brokerTLS, URL: c.d.BrokerURL}
	mq := c.cfg.MQ
	if mq.Host != "" {
		c.broker.Host = mq.Host
	}
	if mq.Port != 0 {
		c.broker.Port = mq.Port
	}
	if mq.VHost != "" {
		c.broker.VHost = mq.VHost
	}
	if mq.UseSSL != nil {
		c.broker.UseSSL = *mq.UseSSL
	}
	if mq.User != "" {
		c.broker.User = mq.User
	}
	if mq.Pass.Reveal() != "" {
		c.broker.Pass = mq.Pass.Reveal()
	}
	c.pub = &publisher{broker: c.broker, exchange: c.reg.Config.PushExchange, routing: c.reg.Config.PushRouting}
	c.log.Info("connector registered", "id", c.reg.ID, "listen", c.reg.Config.Listen, "broker", c.broker.Redacted())
	return nil
}

// brokerBackoff spaces reconnections to RabbitMQ.
var brokerBackoff = retry.Backoff{First: time.Second, Max: 30 * time.Second}

func (c *Connector) pingLoop(ctx context.Context) {
	for {
		if _, err := c.d.Platform.Ping(ctx, c.cfg.ConnectorID, "null", c.version); err != nil && ctx.Err() == nil {
			c.log.Warn("ping failed", "error", err)
		}
		if retry.Sleep(ctx, c.t.PingEvery) != nil {
			return
		}
	}
}

// consumeLoop consumes the listen queue, reconnecting with backoff when
// the connection drops. Each message is acknowledged once its request is
// parked in the store (see receive), so a crash or a dropped connection
// before that means a redelivery, never a lost request, and no delivery
// stays open longer than VTCONNECTOR_DELIVERY_TIMEOUT.
func (c *Connector) consumeLoop(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	wait := time.Second
	for ctx.Err() == nil {
		conn, err := c.broker.dial()
		if err != nil {
			c.log.Error("RabbitMQ unreachable; retrying", "error", err, "retry_in", wait)
			if retry.Sleep(ctx, wait) != nil {
				return
			}
			wait = brokerBackoff.Next(wait)
			continue
		}
		ch, err := conn.Channel()
		if err == nil {
			err = ch.Qos(max(c.cfg.Concurrency, 1), 0, false)
		}
		var deliveries <-chan amqp.Delivery
		if err == nil {
			deliveries, err = ch.ConsumeWithContext(ctx, c.reg.Config.Listen, "", false, false, false, false, nil)
		}
		if err != nil {
			c.log.Error("consuming the listen queue failed; retrying", "queue", c.reg.Config.Listen, "error", err)
			conn.Close()
			if retry.Sleep(ctx, wait) != nil {
				return
			}
			wait = brokerBackoff.Next(wait)
			continue
		}
		wait = time.Second
		c.log.Info("listening for enrichment requests", "queue", c.reg.Config.Listen, "concurrency", c.cfg.Concurrency)
		closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	loop:
		for {
			select {
			case <-ctx.Done():
				break loop
			case e := <-closed:
				c.log.Warn("RabbitMQ connection lost; reconnecting (unacknowledged messages will be redelivered)", "error", e)
				break loop
			case dl, ok := <-deliveries:
				if !ok {
					break loop
				}
				wg.Go(func() { c.deliver(ctx, dl) })
			}
		}
		_ = conn.Close()
	}
}

// deliver parks one delivery and acknowledges it, or hands it back to
// RabbitMQ when it could not be parked; a message handed back
// MaxDeliveries times (or one that panics) is acknowledged and logged,
// never redelivered for ever.
func (c *Connector) deliver(ctx context.Context, dl amqp.Delivery) {
	sum := sha256.Sum256(dl.Body)
	key := hex.EncodeToString(sum[:])
	ack := func() bool {
		defer func() {
			if r := recover(); r != nil {
				c.log.Error("receiving a message panicked; it is dropped", "panic", fmt.Sprint(r), "bytes", len(dl.Body))
			}
		}()
		return c.receive(ctx, dl.Body)
	}()
	if !ack && ctx.Err() == nil {
		c.deliveriesMu.Lock()
		c.deliveries[key]++
		n := c.deliveries[key]
		c.deliveriesMu.Unlock()
		if n < MaxDeliveries {
			if err := dl.Nack(false, true); err != nil {
				c.log.Warn("handing a message back failed; RabbitMQ redelivers it when the channel closes", "error", err)
			}
			return
		}
		c.log.Error("message could not be parked after several deliveries; dropped", "deliveries", n, "body", clip(string(dl.Body), 500))
		if c.d.Obs != nil {
			c.d.Obs.Problem(obs.ProblemPlatformUnreachable, fmt.Sprintf("an enrichment request was dropped after %d deliveries: the database did not take it", n))
		}
	}
	if ctx.Err() != nil && !ack {
		return // not acknowledged: redelivered to the next instance
	}
	c.deliveriesMu.Lock()
	delete(c.deliveries, key)
	c.deliveriesMu.Unlock()
	if err := dl.Ack(false); err != nil {
		c.log.Warn("acknowledgement failed; the message will be redelivered (and recognised)", "error", err)
	}
}

// message is the platform's enrichment request, or a playbook step.
type message struct {
	Internal struct {
		WorkID      *string       `json:"work_id"`
		ApplicantID *string       `json:"applicant_id"`
		DraftID     *string       `json:"draft_id"`
		Playbook    *playbookStep `json:"playbook"`
	} `json:"internal"`
	Event struct {
		EntityID    string          `json:"entity_id"`
		EntityType  string          `json:"entity_type"`
		StixEntity  json.RawMessage `json:"stix_entity"`
		StixObjects json.RawMessage `json:"stix_objects"`
		// Bundle is a playbook step's data: a STIX bundle, as an object.
		Bundle json.RawMessage `json:"bundle"`
	} `json:"event"`

	// received is when the message arrived (not on the wire).
	received time.Time
	// progress is what the platform knew of the work when its processing
	// began (not on the wire).
	progress WorkProgress
}

// playbookStep is internal.playbook of a playbook step's message.
type playbookStep struct {
	EventID        string `json:"event_id"`
	ExecutionID    string `json:"execution_id"`
	PlaybookID     string `json:"playbook_id"`
	DataInstanceID string `json:"data_instance_id"`
	StepID         string `json:"step_id"`
	PreviousStepID string `json:"previous_step_id"`
}

func (m *message) workID() string {
	if m.Internal.WorkID == nil {
		return ""
	}
	return *m.Internal.WorkID
}

// errDeferred: the enrichment waits for a VirusTotal analysis; its work
// is reported when the analysis is collected.
var errDeferred = errors.New("waiting for a VirusTotal analysis")

// received marks a work in progress with a message. Like every work
// mutation but ping, it is not sent with CONNECTOR_SEND_TO_QUEUE=false,
// as pycti.
func (c *Connector) received(ctx context.Context, workID, msg string) error {
	if workID == "" || !c.cfg.SendToQueue {
		return nil
	}
	return c.d.Platform.WorkToReceived(ctx, workID, msg)
}

// report ends a work, retrying while the platform is unreachable.
func (c *Connector) report(ctx context.Context, workID, msg string, inError bool) error {
	if workID == "" || !c.cfg.SendToQueue {
		return nil
	}
	return c.retry(ctx, "reporting the work", func() error {
		return c.d.Platform.WorkToProcessed(ctx, workID, msg, inError)
	})
}

func (c *Connector) keepWorkAlive(ctx context.Context, workID string) func() {
	if workID == "" {
		return func() {}
	}
	wctx, cancel := context.WithCancel(ctx)
	go func() {
		t := time.NewTicker(c.t.WorkPingEvery)
		defer t.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case <-t.C:
				_ = c.d.Platform.WorkPing(wctx, workID)
			}
		}
	}()
	return cancel
}

// process runs one enrichment. collected, when not nil, is the report a
// parked analysis produced (no lookup nor new submission then).
func (c *Connector) process(ctx context.Context, m *message, raw []byte, collected *engine.Result) (string, error) {
	workID := m.workID()
	if workID != "" && c.cfg.SendToQueue {
		// Read first: toReceived would put a completed work back in
		// progress.
		wp, err := c.workProgress(ctx, workID)
		if err != nil {
			return "", err
		}
		if wp.Reported {
			c.log.Info("the work was already reported by a run that stopped before it could record it; not processed again", "work", workID, "entity", m.Event.EntityID)
			return "", errAlreadyReported
		}
		m.progress = wp
	}
	if workID != "" && collected == nil {
		if err := c.retry(ctx, "acknowledging the work", func() error {
			return c.received(ctx, workID, "Connector ready to process the operation")
		}); err != nil {
			return "", err
		}
	}
	stixEntity := m.Event.StixEntity
	var s string
	if json.Unmarshal(stixEntity, &s) == nil { // double-encoded, as the platform sends it
		stixEntity = []byte(s)
	}
	if m.Internal.Playbook != nil {
		raw, typ, err := m.playbookEntity()
		if err != nil {
			return "", err
		}
		stixEntity, m.Event.EntityType = raw, typ
	} else if t := bytes.TrimSpace(stixEntity); len(t) == 0 || string(t) == "null" {
		// CONNECTOR_ENRICHMENT_RESOLUTION=deferred: only ids are sent; the
		// entity is read from the platform, as pycti does.
		raw, err := c.d.Platform.EntityStix(ctx, m.Event.EntityID)
		if err != nil {
			return "", fmt.Errorf("read the entity %s from the platform: %w", m.Event.EntityID, err)
		}
		stixEntity = raw
	}
	if !inScope(c.cfg.Scope, m.Event.EntityType) {
		return "", fmt.Errorf("%s is not in the connector's scope (%s)", m.Event.EntityType, strings.Join(c.cfg.Scope, ","))
	}
	ent, err := ParseEntity(m.Event.EntityID, m.Event.EntityType, stixEntity)
	if err != nil {
		return "", err
	}
	markings, err := c.resolveMarkings(ctx, ent.Markings(), m.objects())
	if err != nil {
		return "", err
	}
	if err := stix.CheckTLP(markings, c.maxTLP); err != nil {
		return "", err
	}
	var objects []json.RawMessage
	if ent.Type == TypeIndicator {
		objects, err = c.enrichIndicator(ctx, ent)
	} else {
		objects, err = c.enrichObservable(ctx, ent, markings, m, raw, collected)
	}
	if err != nil {
		return "", err
	}
	objects = grant(objects, grantedRefs(stixEntity))
	if m.Internal.Playbook != nil {
		return c.answerPlaybook(ctx, m, objects)
	}
	return c.send(ctx, objects, m)
}

func inScope(scope []string, t string) bool {
	for _, s := range scope {
		if strings.EqualFold(strings.TrimSpace(s), t) {
			return true
		}
	}
	return false
}

func (c *Connector) lookup(ctx context.Context, lk Lookup) (engine.Result, error) {
	return c.d.Engine.Lookup(ctx, engine.Request{Kind: lk.Kind, ID: lk.ID, CallOptions: c.co()})
}

// co are the options of every VirusTotal call: a call that would wait
// longer than the delivery bound for quota fails at once with an
// *engine.QuotaExhaustedError, and its request is parked instead.
func (c *Connector) co() engine.CallOptions {
	return engine.CallOptions{Priority: engine.Interactive, MaxWait: c.cfg.DeliveryTimeout}
}

func (c *Connector) enrichObservable(ctx context.Context, ent Entity, markings []stix.Marking, m *message, raw []byte, collected *engine.Result) ([]json.RawMessage, error) {
	lk, err := LookupFor(ent)
	if err != nil {
		return nil, err
	}
	var res engine.Result
	if collected != nil {
		res = *collected
	} else if res, err = c.lookup(ctx, lk); err != nil {
		return nil, err
	}
	if !res.Found {
		if collected == nil {
			switch {
			case ent.Type == TypeArtifact && c.cfg.FileUploadUnseenArtifacts:
				return nil, c.startAnalysis(ctx, ent, markings, m, raw, vt.KindFile)
			case ent.Type == TypeURL && c.cfg.URLUploadUnseen:
				return nil, c.startAnalysis(ctx, ent, markings, m, raw, vt.KindURL)
			}
		}
		return nil, fmt.Errorf("%s %q not found on VirusTotal", kindName(lk.Kind), lk.ID)
	}
	out, err := Build(Input{Entity: ent, Report: res.Object, Rulesets: c.rulesets(ctx, res.Object), Author: c.author, Now: time.Now().UTC(), Opts: c.opts,
		ServingIP: c.servingIP(ctx, ent, res.Object)})
	if err != nil {
		return nil, err
	}
	for _, w := range out.Warnings {
		c.log.Info("enrichment note", "entity", ent.ID, "warning", w)
	}
	return out.Objects, nil
}

// servingIP is the "Serving IP Address" of a URL's attributes note: one
// more paced request (cached), asked only when the note shows it — the
// original asked it for every URL, shown or not.
func (c *Connector) servingIP(ctx context.Context, ent Entity, o *vt.Object) string {
	if ent.Type != TypeURL || !c.opts.IncludeAttributesInNote || o == nil || o.Private || o.ID == "" {
		return ""
	}
	ip, err := c.d.Engine.URLServingIP(ctx, o.ID, c.co())
	if err != nil {
		c.log.Warn("the URL's serving IP address was not read; the note says N/A", "url", ent.Value(), "error", err)
		return ""
	}
	return ip
}

func kindName(k vt.Kind) string {
	switch k {
	case vt.KindFile:
		return "File"
	case vt.KindIP:
		return "IP address"
	case vt.KindDomain:
		return "Domain"
	}
	return "URL"
}

func (c *Connector) enrichIndicator(ctx context.Context, ind Entity) ([]json.RawMessage, error) {
	obs, err := IndicatorObservables(ind)
	if err != nil {
		return nil, err
	}
	if len(obs) > MaxIndicatorObservables {
		c.log.Warn("indicator names more observables than are looked up; the rest are skipped",
			"indicator", ind.ID, "observables", len(obs), "max", MaxIndicatorObservables)
		obs = obs[:MaxIndicatorObservables]
	}
	cur := ind
	var objects []json.RawMessage
	seen := map[string]int{}
	for _, o := range obs {
		lk, err := LookupFor(o)
		if err != nil {
			return nil, err
		}
		res, err := c.lookup(ctx, lk)
		if err != nil {
			return nil, err
		}
		if !res.Found {
			c.log.Info("indicator observable unknown to VirusTotal", "indicator", ind.ID, "observable", lk.ID)
			continue
		}
		out, err := Build(Input{Entity: o, Report: res.Object, Rulesets: c.rulesets(ctx, res.Object), Indicator: &cur, Author: c.author, Now: time.Now().UTC(), Opts: c.opts})
		if err != nil {
			return nil, err
		}
		if len(out.Objects) > 0 {
			if next, err := ParseEntity(ind.ID, ind.Type, out.Objects[0]); err == nil {
				cur = next
			}
		}
		for _, raw := range out.Objects {
			var head struct {
				ID string `json:"id"`
			}
			_ = json.Unmarshal(raw, &head)
			if i, ok := seen[head.ID]; ok {
				objects[i] = raw // the latest version wins (the Indicator accumulates)
				continue
			}
			seen[head.ID] = len(objects)
			objects = append(objects, raw)
		}
	}
	if len(objects) == 0 {
		return nil, errors.New("none of the indicator's observables is known to VirusTotal")
	}
	return objects, nil
}

// rulesets fetches the crowdsourced YARA rulesets a file matched, through
// the engine (cached, paced).
func (c *Connector) rulesets(ctx context.Context, o *vt.Object) map[string]*vt.Object {
	if !c.opts.FileImportYARA || o == nil || len(o.Attributes.CrowdsourcedYARA) == 0 {
		return nil
	}
	out := map[string]*vt.Object{}
	for _, y := range o.Attributes.CrowdsourcedYARA {
		if y.RulesetID == "" || out[y.RulesetID] != nil {
			continue
		}
		rs, err := c.d.Engine.YARARuleset(ctx, y.RulesetID, c.co())
		if err != nil {
			c.log.Warn("YARA ruleset not fetched; its rules are skipped this time", "ruleset", y.RulesetID, "error", err)
			continue
		}
		out[y.RulesetID] = rs
	}
	return out
}

// send splits the objects and pushes them as pycti does, announcing the
// expectations first; it returns the work message.
func (c *Connector) send(ctx context.Context, objects []json.RawMessage, m *message) (string, error) {
	workID := m.workID()
	bundleID := "bundle--" + uuid4()
	if !c.cfg.SendToQueue {
		c.log.Info("bundle not sent (CONNECTOR_SEND_TO_QUEUE=false)", "entity", m.Event.EntityID, "objects", len(objects))
		return fmt.Sprintf("%d object(s) not sent: CONNECTOR_SEND_TO_QUEUE=false", len(objects)), nil
	}
	wp := m.progress
	if c.cfg.QueueProtocol == "api" {
		b, err := json.Marshal(map[string]any{"type": "bundle", "id": bundleID, "spec_version": "2.1", "objects": objects})
		if err != nil {
			return "", err
		}
		if err := c.retry(ctx, "pushing the bundle", func() error {
			return c.d.Platform.PushBundle(ctx, c.cfg.ConnectorID, b, workID)
		}); err != nil {
			return "", err
		}
		return "Sent 1 stix bundle(s) for worker import", nil
	}
	parts, err := splitObjects(bundleID, objects)
	if err != nil {
		return "", err
	}
	// A request sent before, by a connector that stopped before it could
	// record it, already announced bundles: announcing them again would
	// leave the work waiting for ever for bundles nobody sends. Only the
	// difference is announced; when everything announced was imported,
	// nothing is sent again.
	announce := len(parts)
	if wp.Expected > 0 {
		if wp.Processed >= wp.Expected {
			c.log.Info("the work's bundles were all sent and imported before the connector stopped; only its end is reported", "work", workID, "bundles", wp.Expected)
			return fmt.Sprintf("Sent %d stix bundle(s) for worker import", wp.Expected), nil
		}
		announce = max(len(parts)-wp.Expected, 0)
		c.log.Info("the work was partly sent before the connector stopped; sending it again, announcing only the bundles not announced yet",
			"work", workID, "announced", wp.Expected, "imported", wp.Processed, "bundles", len(parts))
	}
	if workID != "" && announce > 0 {
		if err := c.retry(ctx, "announcing expectations", func() error {
			return c.d.Platform.WorkAddExpectations(ctx, workID, announce)
		}); err != nil {
			return "", err
		}
	}
	applicant := c.reg.ConnectorUserID
	if m.Internal.ApplicantID != nil && *m.Internal.ApplicantID != "" {
		applicant = *m.Internal.ApplicantID
	}
	c.pubMu.Lock()
	defer c.pubMu.Unlock()
	for i, p := range parts {
		body, err := envelope(p, i+1, applicant, workID, m.Internal.DraftID)
		if err != nil {
			return "", err
		}
		if err := c.retry(ctx, "publishing a bundle", func() error { return c.pub.publish(ctx, body) }); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("Sent %d stix bundle(s) for worker import", len(parts)), nil
}

// errAlreadyReported: the request's work was reported by an earlier run
// that stopped before it could record it; nothing more is sent.
var errAlreadyReported = errors.New("the work was already reported")

// workProgress reads what the platform knows of a work before its
// bundles are sent, so that a request processed again after a crash
// neither leaves its work waiting for bundles announced twice nor reports
// it twice. A platform that cannot answer (an error other than being
// unreachable: refused, unknown to an older platform) gets the bundles
// announced as if sent for the first time, as pycti does.
func (c *Connector) workProgress(ctx context.Context, workID string) (WorkProgress, error) {
	var wp WorkProgress
	if workID == "" {
		return wp, nil
	}
	err := c.retry(ctx, "reading the work's progress", func() error {
		var err error
		wp, err = c.d.Platform.WorkProgress(ctx, workID)
		if err != nil && !errors.Is(err, ErrPlatformUnavailable) {
			c.progressUnread.Do(func() {
				c.log.Warn("the platform does not let the connector read its works: a request processed again after a crash may leave its work in progress", "work", workID, "error", err)
			})
			wp = WorkProgress{}
			return nil
		}
		return err
	})
	return wp, err
}

// pendingPayload is a KindPending item: the original message and the
// submission to collect.
type pendingPayload struct {
	Message    json.RawMessage    `json:"message"`
	Submission *engine.Submission `json:"submission,omitempty"`
	// Received is when the request arrived.
	Received time.Time `json:"received,omitzero"`

	// Analysis and Since are how earlier versions recorded a public
	// analysis; upgrade turns them into a Submission.
	Analysis string    `json:"analysis,omitempty"`
	Since    time.Time `json:"since,omitzero"`
}

func (p *pendingPayload) upgrade(ent Entity) {
	if p.Submission != nil || p.Analysis == "" {
		return
	}
	s := &engine.Submission{Analysis: p.Analysis, Mode: engine.Public, Kind: vt.KindURL, Subject: ent.Value(), Since: p.Since}
	if ent.Type == TypeArtifact {
		if lk, err := LookupFor(ent); err == nil {
			s.Kind, s.Subject = vt.KindFile, lk.ID
		}
	}
	p.Submission = s
}

// startAnalysis uploads an unseen artifact (or submits an unseen URL)
// through the engine's upload policy, parks the request in the store and
// lets the pending pool finish it, so that waiting for VirusTotal blocks
// no other message.
func (c *Connector) startAnalysis(ctx context.Context, ent Entity, markings []stix.Marking, m *message, raw []byte, kind vt.Kind) error {
	mode := engine.Mode(c.cfg.UploadMode)
	var facts engine.UploadFacts
	if t, ok := stix.EntityTLP(markings); ok {
		facts.TLP = &t
	}
	var sub engine.Submission
	switch kind {
	case vt.KindFile:
		files, err := c.d.Platform.ArtifactFiles(ctx, ent.ID)
		if err != nil {
			return err
		}
		if len(files) == 0 {
			return errors.New("the artifact is unknown to VirusTotal and has no file attached to upload")
		}
		dir, err := os.MkdirTemp("", "vtc-artifact-*")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		f, err := os.Create(filepath.Join(dir, uploadName(files[0].Name)))
		if err != nil {
			return err
		}
		_, err = c.d.Platform.DownloadFile(ctx, files[0].ID, f, vt.MaxUpload)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("[VirusTotal] Error fetching artifact from OpenCTI: %w", err)
		}
		lk, _ := LookupFor(ent)
		sub, err = c.d.Engine.Upload(ctx, engine.Upload{Path: f.Name(), Hash: lk.ID, Mode: mode, Facts: facts, CallOptions: c.co()})
		if err != nil {
			return fmt.Errorf("[VirusTotal] Error uploading artifact to VirusTotal: %w", err)
		}
	case vt.KindURL:
		var err error
		sub, err = c.d.Engine.SubmitURL(ctx, ent.Value(), mode, facts, c.co())
		if err != nil {
			return fmt.Errorf("[VirusTotal] Error submitting the URL to VirusTotal: %w", err)
		}
	}
	payload, _ := json.Marshal(pendingPayload{Message: raw, Submission: &sub, Received: m.received})
	key := m.workID()
	if key == "" {
		key = ent.ID + "@" + sub.Analysis
	}
	if _, err := c.d.Store.Enqueue(ctx, store.NewItem{Kind: KindPending, Key: key, Payload: payload, NotBefore: time.Now().Add(c.t.PollEvery)}); err != nil {
		return fmt.Errorf("park the analysis: %w", err)
	}
	c.pending.Wake()
	if m.workID() != "" {
		_ = c.received(ctx, m.workID(), fmt.Sprintf("Not known to VirusTotal: submitted for %s analysis (%s); the enrichment completes when the analysis does.", sub.Mode, sub.Analysis))
	}
	c.log.Info("submitted to VirusTotal; waiting for the analysis", "entity", ent.ID, "mode", sub.Mode, "analysis", sub.Analysis)
	return errDeferred
}

// uploadName is the name an artifact is uploaded under: its own, made
// safe for a file system.
func uploadName(name string) string {
	name = filepath.Base(strings.ReplaceAll(name, "\\", "/"))
	if name == "." || name == "/" || name == ".." || name == "" {
		return "artifact"
	}
	return name
}

// collect polls a parked analysis and, once it finished, completes the
// enrichment with its report and reports the work.
func (c *Connector) collect(ctx context.Context, it store.Item) store.Outcome {
	var p pendingPayload
	var m message
	if err := json.Unmarshal(it.Payload, &p); err != nil || json.Unmarshal(p.Message, &m) != nil {
		return store.Permanent(errors.New("unreadable pending analysis"))
	}
	if p.Submission == nil {
		stixEntity := m.Event.StixEntity
		var s string
		if json.Unmarshal(stixEntity, &s) == nil {
			stixEntity = []byte(s)
		}
		ent, err := ParseEntity(m.Event.EntityID, m.Event.EntityType, stixEntity)
		if err != nil {
			return store.Permanent(fmt.Errorf("pending analysis of an unreadable entity: %w", err))
		}
		p.upgrade(ent)
		if p.Submission == nil {
			return store.Permanent(errors.New("pending analysis without a submission"))
		}
	}
	col, err := c.d.Engine.Collect(ctx, p.Submission, c.co())
	if err != nil {
		return worker.Outcome(ctx, err)
	}
	if !col.Done {
		b, _ := json.Marshal(p)
		return store.PendingAnalysis(col.NextPoll, b)
	}
	m.received = p.Received
	result, perr := c.process(ctx, &m, p.Message, &col.Result)
	if ctx.Err() != nil {
		return store.HandBack()
	}
	if errors.Is(perr, errAlreadyReported) {
		return store.Done(nil)
	}
	if err := c.finish(ctx, &m, result, perr); err != nil {
		return worker.Outcome(ctx, err)
	}
	return store.Done(nil)
}

// uuid4 is a random (version 4) UUID.
func uuid4() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
