package opencti

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The API listen protocol (CONNECTOR_LISTEN_PROTOCOL=API, pycti 6.5.7):
// the platform's workers consume the listen queue for the connector and
// post each message to the callback it registered (listen_callback_uri),
// with the connector's own token as bearer. A request is answered 202 once
// parked, like an acknowledged delivery; any other status makes the worker
// requeue the message.

// MaxCallbackBody is the largest request the callback server reads.
const MaxCallbackBody = MaxMessageSize

// callbackHandler serves the callback path.
func (c *Connector) callbackHandler() http.Handler {
	token := []byte(c.cfg.Token.Reveal())
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+c.cfg.ListenAPI.Path, func(w http.ResponseWriter, r *http.Request) {
		items := strings.Fields(r.Header.Get("Authorization"))
		if len(items) != 2 || !strings.EqualFold(items[0], "bearer") || subtle.ConstantTimeCompare([]byte(items[1]), token) != 1 {
			answer(w, http.StatusUnauthorized, "error", "Invalid credentials")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxCallbackBody))
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			answer(w, http.StatusRequestEntityTooLarge, "error", fmt.Sprintf("Payload larger than %d bytes", MaxCallbackBody))
			return
		case err != nil:
			answer(w, http.StatusBadRequest, "error", "Unreadable payload")
			return
		case !json.Valid(body):
			answer(w, http.StatusBadRequest, "error", "Invalid JSON payload")
			return
		}
		if !c.receive(r.Context(), body) {
			answer(w, http.StatusInternalServerError, "error", "Error processing message")
			return
		}
		answer(w, http.StatusAccepted, "message", "Message successfully received")
	})
	return mux
}

func answer(w http.ResponseWriter, status int, key, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{key: msg})
}

// callbackURI is what the connector registers as listen_callback_uri.
func (c *Connector) callbackURI() string {
	if c.cfg.ListenProtocol != "API" {
		return ""
	}
	return strings.TrimRight(c.cfg.ListenAPI.URI, "/") + c.cfg.ListenAPI.Path
}

// listenCallback prepares the callback server's listener (on every
// interface, as pycti) with TLS when configured.
func (c *Connector) listenCallback() (net.Listener, error) {
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(c.cfg.ListenAPI.Port))
	if err != nil {
		return nil, fmt.Errorf("opencti: CONNECTOR_LISTEN_PROTOCOL_API_PORT: %w", err)
	}
	if !c.cfg.ListenAPI.SSL {
		return ln, nil
	}
	kp, err := keyPair("LISTEN_PROTOCOL_API_SSL_CERT/KEY", c.cfg.ListenAPI.SSLCert, c.cfg.ListenAPI.SSLKey.Reveal(), c.cfg.ListenAPI.SSLPassphrase.Reveal())
	if err != nil {
		ln.Close()
		return nil, err
	}
	return tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{kp}, MinVersion: tls.VersionTLS12}), nil
}

// serveCallback serves the callback until ctx ends, then shuts down
// gracefully.
func (c *Connector) serveCallback(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: c.callbackHandler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 2 * time.Minute,
		MaxHeaderBytes: 64 << 10, ErrorLog: nil}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	c.log.Info("listening for enrichment requests on the callback (API listen protocol)", "addr", ln.Addr().String(),
		"path", c.cfg.ListenAPI.Path, "tls", c.cfg.ListenAPI.SSL, "listen_callback_uri", c.callbackURI())
	err := srv.Serve(ln)
	<-done
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("opencti: callback server: %w", err)
}
