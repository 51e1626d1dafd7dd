package opencti

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"golang.org/x/sync/errgroup"

	"github.com/vtconnector/vtconnector/internal/config"
	"github.com/vtconnector/vtconnector/internal/engine"
	"github.com/vtconnector/vtconnector/internal/obs"
	"github.com/vtconnector/vtconnector/internal/stix"
	"github.com/vtconnector/vtconnector/internal/store"
	"github.com/vtconnector/vtconnector/internal/vt"
)

// KindPending is the store queue kind of enrichments waiting for a
// VirusTotal analysis (an uploaded artifact, a submitted URL).
const KindPending = "octi.analysis"

// Deps are the parts the connector runs on.
type Deps struct {
	Platform *Platform
	Engine   *engine.Engine
	VT       *vt.Client
	Store    *store.Store
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
	pub   *publisher

	yaraMu sync.Mutex
	yara   map[string]*vt.Object
}

// Run registers the connector and processes enrichment requests until ctx
// ends. Errors that retrying cannot fix (a refused token) end it; a
// platform or broker outage is waited out.
func Run(ctx context.Context, cfg *config.OpenCTI, d Deps) error {
	c := &Connector{cfg: cfg, d: d, log: d.Log, yara: map[string]*vt.Object{}}
	c.t = Tuning{PingEvery: 40 * time.Second, PollEvery: 30 * time.Second, WorkPingEvery: 5 * time.Minute, RetryMax: time.Minute}
	if d.Tune != nil {
		c.t = *d.Tune
	}
	tlp, err := stix.ParseTLP(cfg.MaxTLP)
	if err != nil {
		return fmt.Errorf("opencti: VIRUSTOTAL_MAX_TLP: %w", err)
	}
	c.maxTLP = tlp
	c.author = VTIdentity(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC))
	c.opts = Options{
		ReplaceWithLowerScore: cfg.ReplaceWithLowerScore, IncludeAttributesInNote: cfg.IncludeAttributesInNote,
		FileCreateNoteFullReport: cfg.FileCreateNoteFullReport, FileImportYARA: cfg.FileImportYARA,
		FileIndicator: policy(cfg.FileIndicator), IPIndicator: policy(cfg.IPIndicator),
		DomainIndicator: policy(cfg.DomainIndicator), URLIndicator: policy(cfg.URLIndicator),
		IPAddRelationships: cfg.IPAddRelationships, DomainAddRelationships: cfg.DomainAddRelationships,
	}
	if err := c.register(ctx); err != nil {
		return err
	}
	if n, err := d.Store.ReleaseLeases(ctx, d.Owner+"/"); err == nil && n > 0 {
		c.log.Warn("took back analyses left in flight by a previous run", "items", n)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { c.pingLoop(gctx); return nil })
	g.Go(func() error { c.consumeLoop(gctx); return nil })
	g.Go(func() error { c.pendingLoop(gctx); return nil })
	err = g.Wait()
	c.pubMu.Lock()
	if c.pub != nil {
		c.pub.close()
	}
	c.pubMu.Unlock()
	return err
}

func policy(p config.IndicatorPolicy) IndicatorPolicy {
	return IndicatorPolicy{CreatePositives: p.CreatePositives, ValidMinutes: p.ValidMinutes, Detect: p.Detect}
}

// retry runs fn until it succeeds, ctx ends, or it fails with an auth
// error; waits grow from 1 s to RetryMax.
func (c *Connector) retry(ctx context.Context, what string, fn func() error) error {
	wait := time.Second
	for {
		err := fn()
		if c.d.Obs != nil && ctx.Err() == nil {
			switch {
			case err == nil:
				c.d.Obs.Resolve(obs.ProblemPlatformUnreachable)
			case errors.Is(err, ErrPlatformAuth), errors.Is(err, ErrPlatformUnavailable):
				c.d.Obs.Problem(obs.ProblemPlatformUnreachable, what+": "+err.Error())
			}
		}
		if err == nil || errors.Is(err, ErrPlatformAuth) || ctx.Err() != nil {
			return err
		}
		c.log.Warn(what+" failed; retrying", "error", err, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(wait*2, c.t.RetryMax)
	}
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
		AutoUpdate: c.cfg.AutoUpdate, EnrichmentResolution: c.cfg.EnrichmentResolution, PlaybookCompatible: false}
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
		VerifyTLS: c.cfg.MQ.SSLRejectUnauthorized, URL: c.d.BrokerURL}
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

func (c *Connector) pingLoop(ctx context.Context) {
	for {
		if _, err := c.d.Platform.Ping(ctx, c.cfg.ConnectorID, "null", c.version); err != nil && ctx.Err() == nil {
			c.log.Warn("ping failed", "error", err)
		}
		t := time.NewTimer(c.t.PingEvery)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// consumeLoop consumes the listen queue, reconnecting with backoff when
// the connection drops. Each message is acknowledged only after its work
// was reported, so a crash or a dropped connection means a redelivery,
// never a lost request.
func (c *Connector) consumeLoop(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	wait := time.Second
	for ctx.Err() == nil {
		conn, err := c.broker.dial()
		if err != nil {
			c.log.Error("RabbitMQ unreachable; retrying", "error", err, "retry_in", wait)
			if sleep(ctx, wait) != nil {
				return
			}
			wait = min(wait*2, 30*time.Second)
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
			if sleep(ctx, wait) != nil {
				return
			}
			wait = min(wait*2, 30*time.Second)
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
				wg.Go(func() { c.handle(ctx, dl) })
			}
		}
		_ = conn.Close()
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// message is the platform's enrichment request.
type message struct {
	Internal struct {
		WorkID      *string `json:"work_id"`
		ApplicantID *string `json:"applicant_id"`
		DraftID     *string `json:"draft_id"`
	} `json:"internal"`
	Event struct {
		EntityID   string          `json:"entity_id"`
		EntityType string          `json:"entity_type"`
		StixEntity json.RawMessage `json:"stix_entity"`
	} `json:"event"`
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

func (c *Connector) handle(ctx context.Context, dl amqp.Delivery) {
	var m message
	if err := json.Unmarshal(dl.Body, &m); err != nil || m.Event.EntityID == "" {
		c.log.Error("enrichment message unreadable; dropped", "error", err, "bytes", len(dl.Body))
		if m.workID() != "" {
			_ = c.report(ctx, m.workID(), "vtconnector: the enrichment message is not valid: "+errText(err), true)
		}
		_ = dl.Ack(false)
		return
	}
	stop := c.keepWorkAlive(ctx, m.workID())
	began := time.Now()
	result, err := c.process(ctx, &m, dl.Body, false)
	stop()
	if c.d.Obs != nil && ctx.Err() == nil {
		outcome := "ok"
		switch {
		case errors.Is(err, errDeferred):
			outcome = "deferred"
		case errors.Is(err, vt.ErrAuth):
			outcome = "error"
			c.d.Obs.Problem(obs.ProblemVTAuth, "VirusTotal rejected the API key (VIRUSTOTAL_TOKEN)")
		case err != nil:
			outcome = "error"
		}
		c.d.Obs.Enrichment(m.Event.EntityType, outcome, time.Since(began))
	}
	if ctx.Err() != nil {
		return // not acknowledged: redelivered to the next instance
	}
	if !errors.Is(err, errDeferred) {
		msg, inError := result, false
		if err != nil {
			msg, inError = err.Error(), true
			c.log.Warn("enrichment failed", "entity", m.Event.EntityID, "type", m.Event.EntityType, "error", err)
		}
		if rerr := c.report(ctx, m.workID(), msg, inError); rerr != nil {
			return // not acknowledged: the platform will see it again
		}
	}
	if err := dl.Ack(false); err != nil {
		c.log.Warn("acknowledgement failed; the message will be redelivered", "error", err)
	}
}

func errText(err error) string {
	if err == nil {
		return "no entity_id"
	}
	return err.Error()
}

// report ends a work, retrying while the platform is unreachable.
func (c *Connector) report(ctx context.Context, workID, msg string, inError bool) error {
	if workID == "" {
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

// process runs one enrichment; collected is true when a pending analysis
// finished (no new upload then).
func (c *Connector) process(ctx context.Context, m *message, raw []byte, collected bool) (string, error) {
	workID := m.workID()
	if workID != "" && !collected {
		if err := c.retry(ctx, "acknowledging the work", func() error {
			return c.d.Platform.WorkToReceived(ctx, workID, "Connector ready to process the operation")
		}); err != nil {
			return "", err
		}
	}
	stixEntity := m.Event.StixEntity
	var s string
	if json.Unmarshal(stixEntity, &s) == nil { // double-encoded, as the platform sends it
		stixEntity = []byte(s)
	}
	if !inScope(c.cfg.Scope, m.Event.EntityType) {
		return "", fmt.Errorf("%s is not in the connector's scope (%s)", m.Event.EntityType, strings.Join(c.cfg.Scope, ","))
	}
	ent, err := ParseEntity(m.Event.EntityID, m.Event.EntityType, stixEntity)
	if err != nil {
		return "", err
	}
	if !stix.TLPAllowed(stix.MarkingRefs(ent.Markings()), c.maxTLP) {
		return "", errors.New("Do not send any data, TLP of the observable is greater than MAX TLP")
	}
	var objects []json.RawMessage
	if ent.Type == TypeIndicator {
		objects, err = c.enrichIndicator(ctx, ent)
	} else {
		objects, err = c.enrichObservable(ctx, ent, m, raw, collected)
	}
	if err != nil {
		return "", err
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

func (c *Connector) lookup(ctx context.Context, lk Lookup, fresh bool) (engine.Result, error) {
	req := engine.Request{Kind: lk.Kind, ID: lk.ID, CallOptions: engine.CallOptions{Priority: engine.Interactive}}
	if fresh {
		req.MaxAge = -1
	}
	return c.d.Engine.Lookup(ctx, req)
}

func (c *Connector) enrichObservable(ctx context.Context, ent Entity, m *message, raw []byte, collected bool) ([]json.RawMessage, error) {
	lk, err := LookupFor(ent)
	if err != nil {
		return nil, err
	}
	res, err := c.lookup(ctx, lk, collected)
	if err != nil {
		return nil, err
	}
	if !res.Found {
		if !collected {
			switch {
			case ent.Type == TypeArtifact && c.cfg.FileUploadUnseenArtifacts:
				return nil, c.startAnalysis(ctx, ent, m, raw, "file")
			case ent.Type == TypeURL && c.cfg.URLUploadUnseen:
				return nil, c.startAnalysis(ctx, ent, m, raw, "url")
			}
		}
		return nil, fmt.Errorf("%s %q not found on VirusTotal", kindName(lk.Kind), lk.ID)
	}
	out, err := Build(Input{Entity: ent, Report: res.Object, Rulesets: c.rulesets(ctx, res.Object), Author: c.author, Now: time.Now().UTC(), Opts: c.opts})
	if err != nil {
		return nil, err
	}
	for _, w := range out.Warnings {
		c.log.Info("enrichment note", "entity", ent.ID, "warning", w)
	}
	return out.Objects, nil
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
	cur := ind
	var objects []json.RawMessage
	seen := map[string]int{}
	for _, o := range obs {
		lk, err := LookupFor(o)
		if err != nil {
			return nil, err
		}
		res, err := c.lookup(ctx, lk, false)
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

// rulesets fetches the crowdsourced YARA rulesets a file matched (each
// a paced request), caching the ones found.
func (c *Connector) rulesets(ctx context.Context, o *vt.Object) map[string]*vt.Object {
	if !c.opts.FileImportYARA || o == nil || len(o.Attributes.CrowdsourcedYARA) == 0 {
		return nil
	}
	out := map[string]*vt.Object{}
	for _, y := range o.Attributes.CrowdsourcedYARA {
		if y.RulesetID == "" {
			continue
		}
		c.yaraMu.Lock()
		rs := c.yara[y.RulesetID]
		c.yaraMu.Unlock()
		if rs == nil {
			err := c.d.Engine.Do(ctx, engine.CallOptions{Priority: engine.Interactive, Endpoint: "GET /yara_rulesets/{id}"}, func(ctx context.Context) error {
				var err error
				rs, err = c.d.VT.YARARuleset(ctx, y.RulesetID)
				return err
			})
			if err != nil {
				c.log.Warn("YARA ruleset not fetched; its rules are skipped this time", "ruleset", y.RulesetID, "error", err)
				continue
			}
			c.yaraMu.Lock()
			c.yara[y.RulesetID] = rs
			c.yaraMu.Unlock()
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
	if workID != "" {
		if err := c.retry(ctx, "announcing expectations", func() error {
			return c.d.Platform.WorkAddExpectations(ctx, workID, len(parts))
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

// pendingPayload is a KindPending item: the original message and the
// analysis to wait for.
type pendingPayload struct {
	Message  json.RawMessage `json:"message"`
	Analysis string          `json:"analysis"`
	Since    time.Time       `json:"since"`
}

// startAnalysis uploads an unseen artifact (or submits an unseen URL),
// parks the request in the store and lets the pending loop finish it, so
// that waiting for VirusTotal blocks no other message.
func (c *Connector) startAnalysis(ctx context.Context, ent Entity, m *message, raw []byte, kind string) error {
	var id string
	switch kind {
	case "file":
		files, err := c.d.Platform.ArtifactFiles(ctx, ent.ID)
		if err != nil {
			return err
		}
		if len(files) == 0 {
			return errors.New("the artifact is unknown to VirusTotal and has no file attached to upload")
		}
		f, err := os.CreateTemp("", "vtc-artifact-*")
		if err != nil {
			return err
		}
		defer os.Remove(f.Name())
		_, err = c.d.Platform.DownloadFile(ctx, files[0].ID, f, vt.MaxUpload)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("[VirusTotal] Error fetching artifact from OpenCTI: %w", err)
		}
		err = c.d.Engine.Do(ctx, engine.CallOptions{Priority: engine.Interactive, Endpoint: "POST /files"}, func(ctx context.Context) error {
			var err error
			id, err = c.d.VT.UploadFile(ctx, f.Name())
			return err
		})
		if err != nil {
			return fmt.Errorf("[VirusTotal] Error uploading artifact to VirusTotal: %w", err)
		}
	case "url":
		err := c.d.Engine.Do(ctx, engine.CallOptions{Priority: engine.Interactive, Endpoint: "POST /urls"}, func(ctx context.Context) error {
			var err error
			id, err = c.d.VT.SubmitURL(ctx, ent.Value())
			return err
		})
		if err != nil {
			return fmt.Errorf("[VirusTotal] Error submitting the URL to VirusTotal: %w", err)
		}
	}
	payload, _ := json.Marshal(pendingPayload{Message: raw, Analysis: id, Since: time.Now().UTC()})
	key := m.workID()
	if key == "" {
		key = ent.ID + "@" + id
	}
	if _, err := c.d.Store.Enqueue(ctx, store.NewItem{Kind: KindPending, Key: key, Payload: payload, NotBefore: time.Now().Add(c.t.PollEvery)}); err != nil {
		return fmt.Errorf("park the analysis: %w", err)
	}
	if m.workID() != "" {
		_ = c.d.Platform.WorkToReceived(ctx, m.workID(), fmt.Sprintf("Not known to VirusTotal: submitted for analysis (%s); the enrichment completes when the analysis does.", id))
	}
	c.log.Info("submitted to VirusTotal; waiting for the analysis", "entity", ent.ID, "analysis", id)
	return errDeferred
}

// pendingLoop collects finished analyses and completes their enrichment.
func (c *Connector) pendingLoop(ctx context.Context) {
	owner := c.d.Owner + "/pending"
	for ctx.Err() == nil {
		items, err := c.d.Store.Claim(ctx, owner, []string{KindPending}, 1, 5*time.Minute)
		if err != nil || len(items) == 0 {
			if err != nil && ctx.Err() == nil {
				c.log.Warn("claiming pending analyses failed", "error", err)
			}
			_ = sleep(ctx, min(c.t.PollEvery, 5*time.Second))
			continue
		}
		it := items[0]
		out := c.collect(ctx, it)
		if ctx.Err() != nil {
			out = store.RateLimited(time.Now())
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		if err := c.d.Store.Complete(cctx, it.ID, owner, out); err != nil {
			c.log.Warn("recording a pending analysis failed", "error", err)
		}
		cancel()
	}
}

func (c *Connector) collect(ctx context.Context, it store.Item) store.Outcome {
	var p pendingPayload
	var m message
	if err := json.Unmarshal(it.Payload, &p); err != nil || json.Unmarshal(p.Message, &m) != nil {
		return store.Permanent(errors.New("unreadable pending analysis"))
	}
	var a *vt.Analysis
	err := c.d.Engine.Do(ctx, engine.CallOptions{Priority: engine.Interactive, Endpoint: "GET /analyses/{id}"}, func(ctx context.Context) error {
		var err error
		a, err = c.d.VT.Analysis(ctx, p.Analysis)
		return err
	})
	switch {
	case err != nil && !errors.Is(err, vt.ErrNotFound):
		if ctx.Err() != nil {
			return store.RateLimited(time.Now())
		}
		return store.Transient(err)
	case err == nil && !a.Completed() && time.Since(p.Since) < 2*time.Hour:
		return store.PendingAnalysis(time.Now().Add(c.t.PollEvery), it.Payload)
	}
	result, perr := c.process(ctx, &m, p.Message, true)
	if ctx.Err() != nil {
		return store.RateLimited(time.Now())
	}
	msg, inError := result, false
	if perr != nil {
		msg, inError = perr.Error(), true
	}
	if err := c.report(ctx, m.workID(), msg, inError); err != nil {
		return store.Transient(err)
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
