package opencti

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Topology names (§3.2, RMQ connectorConfig); each is behind p.prefix.
const (
	connectorExchange = "amqp.connector.exchange"
	workerExchange    = "amqp.worker.exchange"
	// queueType is the platform's rabbitmq:queue_type default.
	queueType = "classic"
	// tooLargeBundleID is the id of the platform's internal dead-letter
	// "connector" (RMQ CONNECTOR_QUEUE_BUNDLES_TOO_LARGE).
	tooLargeBundleID = "too-large-bundle"
	publishTimeout   = 10 * time.Second
)

func (p *Platform) connectorExchange() string    { return p.prefix + connectorExchange }
func (p *Platform) workerExchange() string       { return p.prefix + workerExchange }
func (p *Platform) listenQueue(id string) string { return p.prefix + "listen_" + id }
func (p *Platform) pushQueue(id string) string   { return p.prefix + "push_" + id }
func (p *Platform) listenRouting(id string) string {
	return p.prefix + "listen_routing_" + id
}
func (p *Platform) pushRouting(id string) string { return p.prefix + "push_routing_" + id }

// connection returns the admin connection, dialling it again when it was
// lost. p.amqpMu must be held.
func (p *Platform) connectionLocked() (*amqp.Connection, error) {
	if p.conn != nil && !p.conn.IsClosed() {
		return p.conn, nil
	}
	conn, err := amqp.DialConfig(p.cfg.AMQPURL, amqp.Config{
		Heartbeat:  10 * time.Second,
		Properties: amqp.Table{"connection_name": "fake opencti platform"},
	})
	if err != nil {
		return nil, fmt.Errorf("dial rabbitmq: %w", err)
	}
	p.conn = conn
	p.pub = nil
	return conn, nil
}

// channel opens a fresh channel on the admin connection. The platform opens
// one per operation too: a failed declare closes its channel.
func (p *Platform) channel() (*amqp.Channel, error) {
	p.amqpMu.Lock()
	defer p.amqpMu.Unlock()
	conn, err := p.connectionLocked()
	if err != nil {
		return nil, err
	}
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("open channel: %w", err)
	}
	return ch, nil
}

func (p *Platform) closeAMQP() error {
	p.amqpMu.Lock()
	defer p.amqpMu.Unlock()
	var errs []error
	if p.pub != nil && !p.pub.IsClosed() {
		if err := p.pub.Close(); err != nil && !errors.Is(err, amqp.ErrClosed) {
			errs = append(errs, err)
		}
	}
	if p.conn != nil && !p.conn.IsClosed() {
		if err := p.conn.Close(); err != nil && !errors.Is(err, amqp.ErrClosed) {
			errs = append(errs, err)
		}
	}
	p.pub, p.conn = nil, nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("fakeocti: close rabbitmq: %w", err)
	}
	return nil
}

// declareTopology is the platform's registerConnectorQueues (§3.3): both
// exchanges (direct, durable), the listen and push queues (durable, with the
// name/config/x-queue-type arguments) and their bindings.
func (p *Platform) declareTopology(id, name, typ string, scope []string) error {
	ch, err := p.channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	for _, ex := range []string{p.connectorExchange(), p.workerExchange()} {
		if err := ch.ExchangeDeclare(ex, amqp.ExchangeDirect, true, false, false, false, nil); err != nil {
			return fmt.Errorf("declare exchange %s: %w", ex, err)
		}
	}
	cfg := amqp.Table{"id": id, "type": typ}
	if scope != nil {
		list := make([]any, len(scope))
		for i, s := range scope {
			list[i] = s
		}
		cfg["scope"] = list
	}
	args := amqp.Table{"name": name, "config": cfg, "x-queue-type": queueType}
	queues := []struct{ queue, exchange, key string }{
		{p.listenQueue(id), p.connectorExchange(), p.listenRouting(id)},
		{p.pushQueue(id), p.workerExchange(), p.pushRouting(id)},
	}
	for _, q := range queues {
		if _, err := ch.QueueDeclare(q.queue, true, false, false, false, args); err != nil {
			return fmt.Errorf("declare queue %s: %w", q.queue, err)
		}
		if err := ch.QueueBind(q.queue, q.key, q.exchange, false, nil); err != nil {
			return fmt.Errorf("bind queue %s to %s with %s: %w", q.queue, q.exchange, q.key, err)
		}
	}
	return nil
}

// declareInternalQueues declares what the platform declares at start-up
// that connectors rely on: the exchanges and the dead-letter "connector"
// too-large-bundle, the target of config.dead_letter_routing.
func (p *Platform) declareInternalQueues(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return p.declareTopology(tooLargeBundleID, "Bundle too large for ingestion", "internal", []string{"dead letter"})
}

// publish sends one persistent message with publisher confirms, the way the
// platform's send does (deliveryMode 2, no content type).
func (p *Platform) publish(ctx context.Context, exchange, key string, body []byte) error {
	p.amqpMu.Lock()
	defer p.amqpMu.Unlock()
	if p.pub == nil || p.pub.IsClosed() {
		conn, err := p.connectionLocked()
		if err != nil {
			return err
		}
		ch, err := conn.Channel()
		if err != nil {
			return fmt.Errorf("open publish channel: %w", err)
		}
		if err := ch.Confirm(false); err != nil {
			ch.Close()
			return fmt.Errorf("confirm mode: %w", err)
		}
		p.pub = ch
	}
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	dc, err := p.pub.PublishWithDeferredConfirmWithContext(ctx, exchange, key, false, false, amqp.Publishing{
		DeliveryMode: amqp.Persistent,
		Body:         body,
	})
	if err != nil {
		return fmt.Errorf("publish to %s/%s: %w", exchange, key, err)
	}
	ok, err := dc.WaitContext(ctx)
	if err != nil {
		return fmt.Errorf("publish to %s/%s: wait for confirm: %w", exchange, key, err)
	}
	if !ok {
		if p.pub.IsClosed() {
			return fmt.Errorf("publish to %s/%s: the broker closed the channel (does the exchange exist?)", exchange, key)
		}
		return fmt.Errorf("publish to %s/%s: broker nacked the message", exchange, key)
	}
	return nil
}

// queueMessages returns the number of ready messages in a queue (a passive
// declare), as connector_queue_details.messages_number.
func (p *Platform) queueMessages(queue string) (int, error) {
	ch, err := p.channel()
	if err != nil {
		return 0, err
	}
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		return 0, fmt.Errorf("inspect queue %s: %w", queue, err)
	}
	return q.Messages, nil
}

// purgeQueues empties the listen and push queues of a connector (the
// platform does it through the management API on a state reset).
func (p *Platform) purgeQueues(id string) error {
	ch, err := p.channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	for _, q := range []string{p.listenQueue(id), p.pushQueue(id)} {
		if _, err := ch.QueuePurge(q, false); err != nil {
			return fmt.Errorf("purge queue %s: %w", q, err)
		}
	}
	return nil
}

// deleteQueues deletes the listen and push queues of a connector
// (unregisterConnector).
func (p *Platform) deleteQueues(id string) error {
	ch, err := p.channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	for _, q := range []string{p.listenQueue(id), p.pushQueue(id)} {
		if _, err := ch.QueueDelete(q, false, false, false); err != nil {
			return fmt.Errorf("delete queue %s: %w", q, err)
		}
	}
	return nil
}

// consumer is the worker's consumption of one push queue.
type consumer struct {
	ch   *amqp.Channel
	once sync.Once
}

func (c *consumer) stop() {
	c.once.Do(func() { _ = c.ch.Close() })
}

// ensureConsumer starts the worker on the push queue of connector id unless
// it already runs (the platform's workers consume every connector's push
// queue, listed by connectorsForWorker).
func (p *Platform) ensureConsumer(id string) error {
	p.mu.Lock()
	_, running := p.consumers[id]
	closed := p.closed
	p.mu.Unlock()
	if running || closed {
		return nil
	}
	ch, deliveries, err := p.consume(p.pushQueue(id))
	if err != nil {
		return err
	}
	c := &consumer{ch: ch}
	p.mu.Lock()
	if _, running := p.consumers[id]; running || p.closed {
		p.mu.Unlock()
		c.stop()
		return nil
	}
	p.consumers[id] = c
	p.wg.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		for d := range deliveries {
			p.handlePush(id, d)
		}
		p.mu.Lock()
		if p.consumers[id] == c {
			delete(p.consumers, id)
		}
		closed := p.closed
		p.mu.Unlock()
		c.stop()
		if !closed {
			p.log.Warn("worker stopped consuming a push queue", "queue", p.pushQueue(id))
		}
	}()
	p.log.Debug("worker consuming", "queue", p.pushQueue(id))
	return nil
}

// stopConsumer stops the worker on a connector's push queue.
func (p *Platform) stopConsumer(id string) {
	p.mu.Lock()
	c := p.consumers[id]
	delete(p.consumers, id)
	p.mu.Unlock()
	if c != nil {
		c.stop()
	}
}

// consume opens a channel that takes one unacknowledged message at a time
// from queue.
func (p *Platform) consume(queue string) (*amqp.Channel, <-chan amqp.Delivery, error) {
	ch, err := p.channel()
	if err != nil {
		return nil, nil, err
	}
	if err := ch.Qos(1, 0, false); err != nil {
		ch.Close()
		return nil, nil, fmt.Errorf("set prefetch on %s: %w", queue, err)
	}
	deliveries, err := ch.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		ch.Close()
		return nil, nil, fmt.Errorf("consume %s: %w", queue, err)
	}
	return ch, deliveries, nil
}
