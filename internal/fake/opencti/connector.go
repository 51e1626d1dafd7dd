package opencti

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// GraphQL resolvers of connectors (§3, §4).

// connector is a registered connector (the platform's Connector entity).
type connector struct {
	id, name, typ        string
	scope                []string
	input                map[string]any
	auto, autoUpdate     *bool
	onlyContextual       *bool
	enrichmentResolution *string
	playbookCompatible   bool
	listenCallbackURI    *string
	userID               string
	state                *string
	stateReset           bool
	info                 map[string]any
	registrations        int
	createdAt, updatedAt time.Time
	lastPing             time.Time
	pings                int
}

// active is the 6.x liveness rule (REPO completeConnector).
func (c *connector) active(now time.Time) bool { return now.Sub(c.updatedAt) < 5*time.Minute }

func (x *execution) registerConnector(args map[string]any) (any, error) {
	p := x.p
	input, _ := args["input"].(map[string]any)
	if input == nil {
		return nil, unknownError("Cannot destructure the registerConnector input: it is null")
	}
	id, _ := argString(input, "id")
	name, _ := argString(input, "name")
	typ, _ := argString(input, "type")
	scope, hasScope := argStrings(input, "scope")
	if id == "" {
		return nil, functionalError("Connector id is required", nil)
	}
	if !hasScope {
		scope = nil
	}
	if err := p.declareTopology(id, name, typ, scope); err != nil {
		return nil, unknownError("RabbitMQ: " + err.Error())
	}
	p.mu.Lock()
	now := p.now()
	c := p.connectors[id]
	if c == nil {
		c = &connector{id: id, createdAt: now}
		p.connectors[id] = c
		p.connOrder = append(p.connOrder, id)
	}
	c.name, c.typ, c.scope, c.input = name, typ, scope, cloneMap(input)
	c.auto, c.autoUpdate, c.onlyContextual = optBool(input, "auto"), optBool(input, "auto_update"), optBool(input, "only_contextual")
	c.enrichmentResolution = optString(input, "enrichment_resolution")
	c.playbookCompatible, _ = argBool(input, "playbook_compatible")
	c.listenCallbackURI = optString(input, "listen_callback_uri")
	c.userID = x.userID
	c.updatedAt = now
	c.registrations++
	obj := p.connectorObjectLocked(c)
	p.notifyLocked()
	p.mu.Unlock()
	p.log.Info("connector registered", "connector_id", id, "name", name, "type", typ, "scope", strings.Join(scope, ","))
	if err := p.ensureConsumer(id); err != nil {
		p.log.Error("worker cannot consume the push queue", "connector_id", id, "error", err)
	}
	if uri, ok := argString(input, "listen_callback_uri"); ok && uri != "" {
		if err := p.ensureRelay(id, uri, x.token); err != nil {
			p.log.Error("worker cannot relay the listen queue", "connector_id", id, "error", err)
		}
	}
	return obj, nil
}

func (x *execution) pingConnector(args map[string]any) (any, error) {
	p := x.p
	id, _ := argString(args, "id")
	p.mu.Lock()
	c := p.connectors[id]
	if c == nil {
		p.mu.Unlock()
		return nil, functionalError("No connector found with the specified ID", map[string]any{"id": id})
	}
	name, typ, scope := c.name, c.typ, slices.Clone(c.scope)
	p.mu.Unlock()
	// Every ping re-declares the queues (CONN pingConnector).
	if err := p.declareTopology(id, name, typ, scope); err != nil {
		return nil, unknownError("RabbitMQ: " + err.Error())
	}
	if err := p.ensureConsumer(id); err != nil {
		p.log.Error("worker cannot consume the push queue", "connector_id", id, "error", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	c = p.connectors[id]
	if c == nil {
		return nil, functionalError("No connector found with the specified ID", map[string]any{"id": id})
	}
	now := p.now()
	c.pings++
	c.lastPing = now
	if c.stateReset {
		c.stateReset = false
	} else {
		c.updatedAt = now
		c.state = optString(args, "state")
		if info, ok := args["connectorInfo"].(map[string]any); ok {
			c.info = cloneMap(info)
		}
	}
	p.notifyLocked()
	return p.connectorObjectLocked(c), nil
}

func (x *execution) resetStateConnector(args map[string]any) (any, error) {
	id, _ := argString(args, "id")
	if err := x.p.ResetConnectorState(id); err != nil {
		return nil, functionalError("No connector found with the specified ID", map[string]any{"id": id})
	}
	x.p.mu.Lock()
	defer x.p.mu.Unlock()
	return x.p.connectorObjectLocked(x.p.connectors[id]), nil
}

// ResetConnectorState does what the platform's "reset state" button does
// (resetStateConnector): connector_state becomes "" and the next ping only
// clears the reset flag, so that the connector adopts the empty state; both
// queues are purged.
func (p *Platform) ResetConnectorState(id string) error {
	p.mu.Lock()
	c := p.connectors[id]
	if c == nil {
		p.mu.Unlock()
		return fmt.Errorf("fakeocti: reset state of %s: %w", id, ErrUnknownConnector)
	}
	empty := ""
	c.state = &empty
	c.stateReset = true
	p.notifyLocked()
	p.mu.Unlock()
	if err := p.purgeQueues(id); err != nil {
		return fmt.Errorf("fakeocti: reset state of %s: %w", id, err)
	}
	return nil
}

func (x *execution) deleteConnector(args map[string]any) (any, error) {
	p := x.p
	id, _ := argString(args, "id")
	p.mu.Lock()
	if p.connectors[id] == nil {
		p.mu.Unlock()
		return nil, functionalError("Cannot delete the connector, Connector cannot be found.", map[string]any{"connectorId": id})
	}
	p.mu.Unlock()
	p.stopConsumer(id)
	if err := p.deleteQueues(id); err != nil {
		return nil, unknownError("RabbitMQ: " + err.Error())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.connectors, id)
	p.connOrder = slices.DeleteFunc(p.connOrder, func(s string) bool { return s == id })
	for wid, w := range p.works {
		if w.ConnectorID == id {
			delete(p.works, wid)
		}
	}
	p.notifyLocked()
	p.log.Info("connector deleted", "connector_id", id)
	return id, nil
}

func (x *execution) connector(args map[string]any) (any, error) {
	id, _ := argString(args, "id")
	x.p.mu.Lock()
	defer x.p.mu.Unlock()
	c := x.p.connectors[id]
	if c == nil {
		return nil, nil
	}
	return x.p.connectorObjectLocked(c), nil
}

func (x *execution) connectors(map[string]any) (any, error) {
	x.p.mu.Lock()
	defer x.p.mu.Unlock()
	out := make([]any, 0, len(x.p.connOrder))
	for _, id := range x.p.connOrder {
		out = append(out, x.p.connectorObjectLocked(x.p.connectors[id]))
	}
	return out, nil
}

// connectorObjectLocked is the GraphQL Connector. p.mu must be held.
func (p *Platform) connectorObjectLocked(c *connector) gqlObject {
	now := p.now()
	boolOrNil := func(b *bool) any {
		if b == nil {
			return nil
		}
		return *b
	}
	strOrNil := func(s *string) any {
		if s == nil {
			return nil
		}
		return *s
	}
	id := c.id
	conn := p.public
	config := gqlObject{typename: "ConnectorConfig", fields: map[string]any{
		"connection": gqlObject{typename: "RabbitMQConnection", fields: map[string]any{
			"host": conn.Host, "vhost": conn.VHost, "use_ssl": conn.UseSSL, "port": conn.Port,
			"user": conn.User, "pass": conn.Pass,
		}},
		"s3": gqlObject{typename: "S3Connection", fields: map[string]any{
			"endpoint": "localhost", "port": 9000, "use_ssl": false, "bucket_name": "opencti-bucket",
			"bucket_region": "us-east-1", "access_key": "ChangeMe", "secret_key": "ChangeMe",
		}},
		"listen":              p.listenQueue(id),
		"listen_routing":      p.listenRouting(id),
		"listen_exchange":     p.connectorExchange(),
		"listen_callback_uri": strOrNil(c.listenCallbackURI),
		"push":                p.pushQueue(id),
		"push_routing":        p.pushRouting(id),
		"push_exchange":       p.workerExchange(),
		"dead_letter_routing": p.listenRouting(tooLargeBundleID),
	}}
	var info any
	if c.info != nil {
		fields := map[string]any{}
		for k, v := range c.info {
			fields[k] = v
		}
		info = gqlObject{typename: "ConnectorInfo", fields: fields}
	}
	scope := make([]any, len(c.scope))
	for i, s := range c.scope {
		scope[i] = s
	}
	return gqlObject{typename: "Connector", fields: map[string]any{
		"id":                        id,
		"standard_id":               "connector--" + uuidV5(openctiNamespace, id),
		"entity_type":               "Connector",
		"parent_types":              []any{"Basic-Object", "Internal-Object"},
		"name":                      c.name,
		"title":                     c.name,
		"active":                    c.active(now),
		"auto":                      boolOrNil(c.auto),
		"auto_update":               boolOrNil(c.autoUpdate),
		"enrichment_resolution":     strOrNil(c.enrichmentResolution),
		"only_contextual":           boolOrNil(c.onlyContextual),
		"playbook_compatible":       c.playbookCompatible,
		"connector_type":            c.typ,
		"connector_scope":           scope,
		"connector_state":           strOrNil(c.state),
		"connector_state_reset":     c.stateReset,
		"connector_user_id":         c.userID,
		"connector_info":            info,
		"connector_priority_group":  "DEFAULT",
		"connector_queue_details":   p.queueDetailsField(id),
		"updated_at":                dateTime(c.updatedAt),
		"created_at":                dateTime(c.createdAt),
		"config":                    config,
		"is_managed":                false,
		"built_in":                  false,
		"works":                     p.worksField(id),
		"connector_trigger_filters": nil,
	}}
}

func (p *Platform) queueDetailsField(id string) fieldFunc {
	return func(map[string]any) (any, error) {
		n, err := p.queueMessages(p.pushQueue(id))
		if err != nil {
			// The platform answers zeros when the management API fails.
			p.log.Warn("connector queue details", "connector_id", id, "error", err)
		}
		return gqlObject{typename: "ConnectorQueueDetails", fields: map[string]any{
			"messages_number": float64(n), "messages_size": float64(0),
		}}, nil
	}
}

func (p *Platform) worksField(connectorID string) fieldFunc {
	return func(args map[string]any) (any, error) {
		status, _ := argString(args, "status")
		p.mu.Lock()
		defer p.mu.Unlock()
		out := []any{}
		for _, wid := range slices.Backward(p.workOrder) {
			w := p.works[wid]
			if w == nil || w.ConnectorID != connectorID || (status != "" && w.Status != status) {
				continue
			}
			out = append(out, p.workObjectLocked(w))
		}
		return out, nil
	}
}
