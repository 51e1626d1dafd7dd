package opencti

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// The API listen protocol's other half (§5.5, WLH): for a connector that
// registered a listen_callback_uri the worker consumes its listen queue and
// posts each message there with the connector user's token; a status
// other than 202 (or no answer) requeues the message after a pause.

// relayRetry is the pause before a failed callback's message is requeued.
var relayRetry = 200 * time.Millisecond

// ensureRelay starts relaying connector id's listen queue to uri with
// token, unless it runs already.
func (p *Platform) ensureRelay(id, uri, token string) error {
	key := "relay:" + id
	p.mu.Lock()
	_, running := p.consumers[key]
	closed := p.closed
	hc := p.relayClient
	p.mu.Unlock()
	if running || closed {
		return nil
	}
	ch, deliveries, err := p.consume(p.listenQueue(id))
	if err != nil {
		return err
	}
	c := &consumer{ch: ch}
	p.mu.Lock()
	p.consumers[key] = c
	p.wg.Add(1)
	p.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer p.wg.Done()
		defer cancel()
		for d := range deliveries {
			p.relay(ctx, hc, uri, token, d)
		}
		p.mu.Lock()
		if p.consumers[key] == c {
			delete(p.consumers, key)
		}
		p.mu.Unlock()
		c.stop()
	}()
	return nil
}

func (p *Platform) relay(ctx context.Context, hc *http.Client, uri, token string, d amqp.Delivery) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, uri, bytes.NewReader(d.Body))
	if err == nil {
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("User-Agent", "pycti/"+p.version)
		var resp *http.Response
		if resp, err = hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusAccepted {
				_ = d.Ack(false)
				p.mu.Lock()
				p.callbacks++
				p.notifyLocked()
				p.mu.Unlock()
				return
			}
			err = fmt.Errorf("HTTP %d", resp.StatusCode)
		}
	}
	p.log.Warn("callback failed; message requeued", "uri", uri, "error", err)
	// The worker waits 10-30 s before requeueing; the double a moment.
	t := time.NewTimer(relayRetry)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	_ = d.Nack(false, true)
}

// SetRelayClient replaces the HTTP client the worker posts callbacks with
// (e.g. one trusting a test certificate).
func (p *Platform) SetRelayClient(hc *http.Client) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.relayClient = hc
}

// Callbacks returns how many messages the worker posted to connectors'
// callbacks and got a 202 for.
func (p *Platform) Callbacks() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.callbacks
}
