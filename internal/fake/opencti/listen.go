package opencti

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/vtconnector/vtconnector/internal/httpserver"
)

const (
	defaultTriggerInterval = 30 * time.Second
	// scanInterval is how often ListenAndServe looks for connectors and
	// entities it has not enriched yet.
	scanInterval = time.Second
)

// ListenAndServe runs a platform configured by cfg on addr until ctx ends,
// then shuts it down gracefully. It is what `vtconnector simulate opencti`
// runs. It adds a few sample entities (an IPv4 address, a domain, a
// hostname, a URL, a file, an artifact with an uploaded file and an
// indicator, with various TLP markings) and enriches each with every active
// INTERNAL_ENRICHMENT connector whose scope covers it: at once when the
// connector appears, then again every cfg.TriggerInterval once the previous
// enrichment completed. It logs the GraphQL URL to give connectors
// (base_url) and what it does.
func ListenAndServe(ctx context.Context, addr string, cfg Config, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	interval := cfg.TriggerInterval
	if interval <= 0 {
		interval = defaultTriggerInterval
	}
	p, err := New(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer func() {
		if err := p.Close(); err != nil {
			log.Warn("close the platform", "error", err)
		}
	}()
	ids := p.addSamples()
	log.Info("sample entities added", "count", len(ids))

	srv := httpserver.New(httpserver.Config{Name: "opencti simulator", Addr: addr, OnListen: func(url string) {
		log.Info("opencti simulator listening",
			"base_url", url, "graphql", url+"/graphql", "version", p.version,
			"trigger_interval", interval, "amqp_host", p.public.Host, "amqp_port", p.public.Port)
	}}, p, log)
	served := make(chan error, 1)
	go func() { served <- srv.Run(ctx) }()
	t := &trigger{p: p, log: log, interval: interval, last: map[[2]string]enrichment{}}
	tick := time.NewTicker(scanInterval)
	defer tick.Stop()
	for {
		select {
		case err := <-served:
			if err != nil {
				return fmt.Errorf("fakeocti: %w", err)
			}
			log.Info("opencti simulator stopped", "works", len(p.Works()), "objects", len(p.Objects()))
			return nil
		case <-tick.C:
			if ctx.Err() == nil { // not while shutting down
				t.scan(ctx)
			}
		}
	}
}

type enrichment struct {
	workID string
	at     time.Time
}

// trigger decides which (connector, entity) pairs to enrich.
type trigger struct {
	p        *Platform
	log      *slog.Logger
	interval time.Duration
	last     map[[2]string]enrichment
}

func (t *trigger) scan(ctx context.Context) {
	p := t.p
	now := p.now()
	entities := p.Entities()
	for _, c := range p.Connectors() {
		if c.Type != "INTERNAL_ENRICHMENT" || !c.Active {
			continue
		}
		for _, id := range entities {
			p.mu.Lock()
			e := p.entities[id]
			typ := ""
			if e != nil {
				typ = e.Type
			}
			p.mu.Unlock()
			if !inScope(c.Scope, typ) {
				continue
			}
			key := [2]string{c.ID, id}
			if prev, ok := t.last[key]; ok {
				w, found := p.Work(prev.workID)
				if now.Sub(prev.at) < t.interval || (found && w.Status != statusComplete) {
					continue
				}
			}
			wid, err := p.Enrich(ctx, c.ID, id)
			if err != nil {
				t.log.Error("enrichment trigger failed", "connector_id", c.ID, "entity_id", id, "error", err)
				continue
			}
			t.last[key] = enrichment{workID: wid, at: now}
		}
	}
}

// addSamples adds the sample entities of ListenAndServe.
func (p *Platform) addSamples() []string {
	score := func(n int) *int { return &n }
	artifact := []byte("vtconnector opencti simulator sample artifact\n")
	samples := []Entity{
		{Type: "IPv4-Addr", Value: "8.8.8.8", Markings: []string{"TLP:CLEAR"}, Score: score(10)},
		{Type: "Domain-Name", Value: "example.com", Markings: []string{"TLP:GREEN"}},
		{Type: "Hostname", Value: "www.example.com", Markings: []string{"TLP:GREEN"}},
		{Type: "Url", Value: "http://example.com/index.html", Markings: []string{"TLP:CLEAR"}},
		{Type: "StixFile", Name: "empty.txt", Hashes: map[string]string{
			hashSHA256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		}, Markings: []string{"TLP:AMBER"}, Labels: []string{"sample"}},
		{Type: "Artifact", MimeType: "text/plain", Markings: []string{"TLP:AMBER"},
			ImportFiles: []ImportFile{{Name: "sample.txt", Data: artifact, MimeType: "text/plain"}}},
		{Type: "Indicator", Pattern: "[ipv4-addr:value = '8.8.8.8']", MainObservableType: "IPv4-Addr", Markings: []string{"TLP:CLEAR"}},
	}
	var ids []string
	for _, e := range samples {
		if id := p.AddEntity(e); id != "" {
			ids = append(ids, id)
			p.log.Debug("sample entity", "entity_type", e.Type, "entity_id", id)
		}
	}
	return ids
}
