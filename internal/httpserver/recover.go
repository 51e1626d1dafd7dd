package httpserver

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"
)

// recoverPanics serves next, logs each request at debug level, and turns a
// panic of next into a logged error and a 500 answer, so that one bad
// request does not take the server down. When the response has already
// started, it aborts the connection instead, so that the client cannot
// take a truncated answer for a whole one.
func recoverPanics(next http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() { // runs last, also while an abort panics on
			log.Debug("http request", "method", r.Method, "path", r.URL.Path,
				"status", sw.status, "remote", r.RemoteAddr, "duration", time.Since(start))
		}()
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			if p == http.ErrAbortHandler { //nolint:errorlint // the sentinel is panicked, not wrapped
				panic(p)
			}
			log.Error("handler panic", "method", r.Method, "path", r.URL.Path,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			if sw.status != 0 {
				panic(http.ErrAbortHandler)
			}
			clear(w.Header()) // the half-built answer's headers do not describe this one
			http.Error(sw, "500 internal server error", http.StatusInternalServerError)
		}()
		next.ServeHTTP(sw, r)
	})
}

// statusWriter records the status for the log and for panic recovery.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= http.StatusOK {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush sends what is buffered, for handlers that stream (the answer
// has started then).
func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
