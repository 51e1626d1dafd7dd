package opencti

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/vtconnector/vtconnector/internal/config"
	"github.com/vtconnector/vtconnector/internal/redact"
)

// Broker is how the connector reaches RabbitMQ: the address the platform
// returned at registration, possibly overridden by the MQ_* settings.
type Broker struct {
	Host, VHost, User, Pass string
	Port                    int
	UseSSL                  bool
	// VerifyTLS checks the broker's certificate (MQ_USE_SSL_REJECT_UNAUTHORIZED).
	VerifyTLS bool
	// TLS, when set, is the TLS configuration used when UseSSL: CA
	// certificates and client certificate (MQ_USE_SSL_CA, _CERT, _KEY,
	// _PASSPHRASE); VerifyTLS still decides the verification.
	TLS *tls.Config
	// URL, when set, is used as is (tests, and an explicit override).
	URL string
}

func (b Broker) url() string {
	if b.URL != "" {
		return b.URL
	}
	scheme := "amqp"
	if b.UseSSL {
		scheme = "amqps"
	}
	u := url.URL{Scheme: scheme, User: url.UserPassword(b.User, b.Pass), Host: b.Host + ":" + strconv.Itoa(b.Port), Path: "/" + b.VHost}
	if b.VHost == "/" || b.VHost == "" {
		u.Path = "/"
	}
	return u.String()
}

// Redacted is the broker's address without its password, for logs.
func (b Broker) Redacted() string { return redact.Secrets(redact.DSN(b.url()), b.Pass) }

func (b Broker) dial() (*amqp.Connection, error) {
	cfg := amqp.Config{Heartbeat: 10 * time.Second, Locale: "en_US", Properties: amqp.Table{"connection_name": "vtconnector"}}
	if b.UseSSL {
		tc := &tls.Config{}
		if b.TLS != nil {
			tc = b.TLS.Clone()
		}
		tc.InsecureSkipVerify = !b.VerifyTLS //nolint:gosec // MQ_USE_SSL_REJECT_UNAUTHORIZED=false, pycti's default
		if tc.ServerName == "" {
			tc.ServerName = b.Host
		}
		cfg.TLSClientConfig = tc
	}
	c, err := amqp.DialConfig(b.url(), cfg)
	if err != nil {
		// The library may quote the URL it was given, password included.
		return nil, fmt.Errorf("opencti: connect to RabbitMQ %s: %w", b.Redacted(), redact.Error(err, b.Pass))
	}
	return c, nil
}

// publisher publishes split bundles on the push exchange with publisher
// confirms, reconnecting when the connection drops.
type publisher struct {
	broker   Broker
	exchange string
	routing  string
	conn     *amqp.Connection
	ch       *amqp.Channel
}

func (p *publisher) ensure() error {
	if p.ch != nil && !p.ch.IsClosed() && p.conn != nil && !p.conn.IsClosed() {
		return nil
	}
	p.close()
	conn, err := p.broker.dial()
	if err != nil {
		return err
	}
	ch, err := conn.Channel()
	if err != nil {
		conn.Close()
		return fmt.Errorf("opencti: open a channel: %w", err)
	}
	if err := ch.Confirm(false); err != nil {
		conn.Close()
		return fmt.Errorf("opencti: confirm mode: %w", err)
	}
	p.conn, p.ch = conn, ch
	return nil
}

func (p *publisher) close() {
	if p.conn != nil {
		_ = p.conn.Close()
	}
	p.conn, p.ch = nil, nil
}

// publish sends one message and waits for the broker's confirmation; a
// nack, a dropped connection or a missing confirmation is an error.
func (p *publisher) publish(ctx context.Context, body []byte) error {
	if err := p.ensure(); err != nil {
		return err
	}
	conf, err := p.ch.PublishWithDeferredConfirmWithContext(ctx, p.exchange, p.routing, false, false, amqp.Publishing{
		DeliveryMode: amqp.Persistent, ContentEncoding: "utf-8", Body: body,
	})
	if err != nil {
		p.close()
		return fmt.Errorf("opencti: publish to %s: %w", p.exchange, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ok, err := conf.WaitContext(wctx)
	if err != nil {
		p.close()
		return fmt.Errorf("opencti: publish to %s: no confirmation: %w", p.exchange, err)
	}
	if !ok {
		return errors.New("opencti: publish: the broker refused the message (nack)")
	}
	return nil
}

// BrokerTLS builds the TLS configuration of the RabbitMQ connection from
// the MQ_USE_SSL_* settings, as pycti's create_mq_ssl_context: CA
// certificates to trust, and a client certificate for mutual TLS. Each is
// PEM text or a file path. It returns nil when none is set.
func BrokerTLS(mq config.MQ) (*tls.Config, error) {
	if mq.SSLCA == "" && mq.SSLCert == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if mq.SSLCA != "" {
		pool, err := certPool("MQ_USE_SSL_CA", mq.SSLCA)
		if err != nil {
			return nil, err
		}
		tc.RootCAs = pool
	}
	if mq.SSLCert != "" {
		key := mq.SSLKey.Reveal()
		if key == "" {
			key = mq.SSLCert // pycti: the key may be in the certificate's file
		}
		kp, err := keyPair("MQ_USE_SSL_CERT/KEY", mq.SSLCert, key, mq.SSLPassphrase.Reveal())
		if err != nil {
			return nil, err
		}
		tc.Certificates = []tls.Certificate{kp}
	}
	return tc, nil
}
