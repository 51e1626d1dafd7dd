package opencti

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/vektah/gqlparser/v2/ast"
)

// DefaultVersion is the platform version about.version reports by default,
// the pycti release the protocol reference was written from.
const DefaultVersion = "6.8.10"

// Errors callers of the Go API branch on.
var (
	// ErrUnknownConnector is returned for a connector id nobody registered.
	ErrUnknownConnector = errors.New("unknown connector")
	// ErrUnknownEntity is returned for an entity id the platform does not know.
	ErrUnknownEntity = errors.New("unknown entity")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("platform closed")
)

// Config configures a Platform.
type Config struct {
	// AMQPURL is the RabbitMQ the platform side uses (its admin
	// connection), e.g. amqp://guest:guest@127.0.0.1:5672/.
	AMQPURL string
	// AMQPPublic is returned to connectors in registerConnector's
	// config.connection, as the platform returns its own rabbitmq settings.
	// Zero fields are taken from AMQPURL.
	AMQPPublic AMQPConnection
	// Token lists the accepted bearer tokens, separated by commas. Each is
	// the API token of one platform user (the connector's). Empty accepts
	// any non-empty token. Requests with another token get the platform's
	// AUTH_REQUIRED errors.
	Token string
	// Version is about.version, DefaultVersion when empty. It also selects
	// which connector-protocol input fields and arguments the schema accepts
	// (see Config.Schema).
	Version string
	// Prefix is put before every exchange and queue name, as the platform's
	// rabbitmq:queue_prefix setting does ("<Prefix>_amqp.connector.exchange",
	// "<Prefix>_listen_<id>"), so that tests do not collide. Empty keeps the
	// real names.
	Prefix string
	// Schema is the path of the GraphQL schema every incoming document is
	// validated against (tests use the platform's merged relay schema,
	// ../../../../shared/spec/opencti-relay.schema.graphql). Input fields
	// and arguments newer than Version are removed from it first. Empty
	// disables validation: documents are only parsed.
	Schema string
	// Now is the clock, time.Now when nil.
	Now func() time.Time
	// TriggerInterval is how often ListenAndServe enriches the sample
	// entities with every registered enrichment connector (default 30s).
	TriggerInterval time.Duration
}

// AMQPConnection is the RabbitMQ connection block of a connector's config
// (GraphQL type RabbitMQConnection).
type AMQPConnection struct {
	Host   string
	Port   int
	User   string
	Pass   string
	VHost  string
	UseSSL bool
}

// Platform is the OpenCTI platform double. It is an http.Handler for
// /graphql and /storage/get/. All methods are safe for concurrent use.
type Platform struct {
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	version string
	prefix  string
	public  AMQPConnection
	schema  *ast.Schema
	users   map[string]string // token → user id; nil accepts any token

	amqpMu sync.Mutex
	conn   *amqp.Connection
	pub    *amqp.Channel

	wg sync.WaitGroup

	mu           sync.Mutex
	closed       bool
	changed      chan struct{}
	connectors   map[string]*connector
	connOrder    []string
	consumers    map[string]*consumer
	works        map[string]*work
	workOrder    []string
	entities     map[string]*entity // by standard id
	markings     map[string]Marking // markings created on the platform, by standard id
	playbookRuns []PlaybookExecution
	relayClient  *http.Client
	callbacks    int
	entOrder     []string
	internal     map[string]string // internal id → standard id
	files        map[string]*storedFile
	objects      map[string]json.RawMessage
	aliases      map[string]string // accepted non-standard ids → their standard id
	writes       map[string]int
	docs         []RecordedDocument
}

// New connects to RabbitMQ with cfg.AMQPURL, declares the platform's
// exchanges and internal dead-letter queue (§3.3), loads cfg.Schema and
// returns a platform ready to serve. log may be nil.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Platform, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.AMQPURL == "" {
		return nil, errors.New("fakeocti: new: AMQPURL is empty")
	}
	uri, err := amqp.ParseURI(cfg.AMQPURL)
	if err != nil {
		return nil, fmt.Errorf("fakeocti: new: parse AMQPURL: %w", err)
	}
	p := &Platform{
		cfg:         cfg,
		log:         log,
		now:         cfg.Now,
		version:     cfg.Version,
		public:      publicConnection(cfg.AMQPPublic, uri),
		changed:     make(chan struct{}),
		connectors:  map[string]*connector{},
		consumers:   map[string]*consumer{},
		works:       map[string]*work{},
		entities:    map[string]*entity{},
		markings:    map[string]Marking{},
		relayClient: &http.Client{Timeout: 300 * time.Second},
		internal:    map[string]string{},
		files:       map[string]*storedFile{},
		objects:     map[string]json.RawMessage{},
		aliases:     map[string]string{},
		writes:      map[string]int{},
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.version == "" {
		p.version = DefaultVersion
	}
	if _, err := parseVersion(p.version); err != nil {
		return nil, fmt.Errorf("fakeocti: new: version %q: %w", p.version, err)
	}
	if cfg.Prefix != "" {
		p.prefix = cfg.Prefix + "_"
	}
	if cfg.Token != "" {
		p.users = map[string]string{}
		for tok := range strings.SplitSeq(cfg.Token, ",") {
			if tok = strings.TrimSpace(tok); tok != "" {
				p.users[tok] = userIDForToken(tok)
			}
		}
	}
	if cfg.Schema != "" {
		s, err := loadSchema(cfg.Schema, p.version)
		if err != nil {
			return nil, fmt.Errorf("fakeocti: new: %w", err)
		}
		p.schema = s
	}
	if err := p.declareInternalQueues(ctx); err != nil {
		p.closeAMQP()
		return nil, fmt.Errorf("fakeocti: new: %w", err)
	}
	log.Info("opencti platform double ready",
		"version", p.version, "prefix", cfg.Prefix, "schema_validation", p.schema != nil,
		"amqp_host", p.public.Host, "amqp_port", p.public.Port)
	return p, nil
}

func publicConnection(c AMQPConnection, uri amqp.URI) AMQPConnection {
	if c.Host == "" {
		c.Host = uri.Host
	}
	if c.Port == 0 {
		c.Port = uri.Port
	}
	if c.User == "" {
		c.User = uri.Username
	}
	if c.Pass == "" {
		c.Pass = uri.Password
	}
	if c.VHost == "" {
		c.VHost = uri.Vhost
	}
	if !c.UseSSL {
		c.UseSSL = uri.Scheme == "amqps"
	}
	return c
}

// Close stops the worker consumers and closes the RabbitMQ connection. The
// exchanges and queues stay, as they do when the real platform stops.
func (p *Platform) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	cs := slices.Collect(maps.Values(p.consumers))
	p.notifyLocked()
	p.mu.Unlock()
	for _, c := range cs {
		c.stop()
	}
	p.wg.Wait()
	return p.closeAMQP()
}

// notifyLocked wakes WaitWork callers. p.mu must be held.
func (p *Platform) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// ConnectorState is what the platform knows of a registered connector.
type ConnectorState struct {
	ID   string
	Name string
	// Type is the ConnectorType, e.g. INTERNAL_ENRICHMENT.
	Type  string
	Scope []string
	// Input is the last registerConnector input, as received.
	Input map[string]any
	// Auto, AutoUpdate, OnlyContextual are nil when not registered (the
	// platform stores null).
	Auto, AutoUpdate, OnlyContextual *bool
	// EnrichmentResolution is "" when not registered (the platform then
	// sends stix_objects, as for "stix_bundle").
	EnrichmentResolution string
	PlaybookCompatible   bool
	ListenCallbackURI    string
	// UserID is connector_user_id, the user of the token that registered.
	UserID string
	// State is connector_state as last pinged ("" for null; pycti sends the
	// string "null" when it has no state).
	State string
	// StateReset is true between a state reset and the next ping.
	StateReset bool
	// Info is the connectorInfo of the last ping, nil if none was sent.
	Info          map[string]any
	Registrations int
	CreatedAt     time.Time
	// UpdatedAt is the last registration or (not reset) ping.
	UpdatedAt time.Time
	// LastPing is the time of the last pingConnector, zero if none.
	LastPing time.Time
	Pings    int
	// Active is the platform's liveness: updated within the last 5 minutes.
	Active bool
	// Consuming reports whether the worker consumes the push queue.
	Consuming bool
}

// Connectors returns the registered connectors in registration order.
func (p *Platform) Connectors() []ConnectorState {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]ConnectorState, 0, len(p.connOrder))
	now := p.now()
	for _, id := range p.connOrder {
		c := p.connectors[id]
		st := ConnectorState{
			ID: c.id, Name: c.name, Type: c.typ, Scope: slices.Clone(c.scope),
			Input: cloneMap(c.input), Auto: cloneBool(c.auto), AutoUpdate: cloneBool(c.autoUpdate),
			OnlyContextual: cloneBool(c.onlyContextual), PlaybookCompatible: c.playbookCompatible,
			UserID: c.userID, StateReset: c.stateReset, Info: cloneMap(c.info),
			Registrations: c.registrations, CreatedAt: c.createdAt, UpdatedAt: c.updatedAt,
			LastPing: c.lastPing, Pings: c.pings, Active: c.active(now),
		}
		if c.enrichmentResolution != nil {
			st.EnrichmentResolution = *c.enrichmentResolution
		}
		if c.listenCallbackURI != nil {
			st.ListenCallbackURI = *c.listenCallbackURI
		}
		if c.state != nil {
			st.State = *c.state
		}
		_, st.Consuming = p.consumers[id]
		out = append(out, st)
	}
	return out
}

// Objects returns the objects the worker imported, by id; an object
// imported several times (an upsert) is in its last version. Writes tells
// how many times each was written.
func (p *Platform) Objects() map[string]json.RawMessage {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.objects)
}

// Writes returns, per object id, how many times the worker wrote it: more
// than 1 means the same object came in several bundles (re-enrichments, or a
// connector sending duplicates).
func (p *Platform) Writes() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.writes)
}

// Documents returns every GraphQL request received, in order.
func (p *Platform) Documents() []RecordedDocument {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.docs)
}

// Work returns the state of a work.
func (p *Platform) Work(id string) (WorkState, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	w, ok := p.works[id]
	if !ok {
		return WorkState{}, false
	}
	return w.state(), true
}

// Works returns every work, oldest first.
func (p *Platform) Works() []WorkState {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]WorkState, 0, len(p.workOrder))
	for _, id := range p.workOrder {
		if w, ok := p.works[id]; ok {
			out = append(out, w.state())
		}
	}
	return out
}

// WaitWork waits until the work id exists and has reached status ("wait",
// "progress" or "complete"; a later status also satisfies an earlier one)
// and returns its state. It fails when ctx ends first, with the last state
// seen.
func (p *Platform) WaitWork(ctx context.Context, id, status string) (WorkState, error) {
	want, ok := statusRank[status]
	if !ok {
		return WorkState{}, fmt.Errorf("fakeocti: wait work %s: unknown status %q", id, status)
	}
	for {
		p.mu.Lock()
		w, found := p.works[id]
		var st WorkState
		if found {
			st = w.state()
		}
		changed, closed := p.changed, p.closed
		p.mu.Unlock()
		if found && statusRank[st.Status] >= want {
			return st, nil
		}
		if closed {
			return st, fmt.Errorf("fakeocti: wait work %s for %s: %w", id, status, ErrClosed)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return st, fmt.Errorf("fakeocti: wait work %s for %s (status %q): %w", id, status, st.Status, ctx.Err())
		}
	}
}

var statusRank = map[string]int{statusWait: 0, statusProgress: 1, statusComplete: 2}

func cloneMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return maps.Clone(m)
	}
	var out map[string]any
	if json.Unmarshal(raw, &out) != nil {
		return maps.Clone(m)
	}
	return out
}

func cloneBool(b *bool) *bool {
	if b == nil {
		return nil
	}
	v := *b
	return &v
}
