// Package httpserver is vtconnector's one HTTP server runner: the feed
// server, the status pages, the demo and the simulators all serve through
// it, so they share the same timeouts, graceful shutdown, panic recovery
// and logging.
//
// A [Server] listens on an address (or serves a listener it is given),
// optionally over TLS, and runs until its context ends (Run(ctx) error, the
// project's lifecycle shape); then it stops accepting connections and gives
// the requests in flight a bounded grace period before closing them. Every
// request goes through a recovery that logs a handler's panic, answers 500
// and keeps the server serving. The http.Server's own error log goes to
// the injected *slog.Logger.
//
// It imports no vtconnector package, so that the simulators under
// internal/fake can use it and stay ignorant of the connector.
package httpserver
