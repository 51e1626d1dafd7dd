package obs

import (
	"net"
	"net/http"
	"net/http/pprof"
)

// RegisterProfiling serves the Go runtime's profiles (net/http/pprof)
// under /debug/pprof/ on mux, so that a slowdown can be diagnosed on a
// running daemon:
//
//	go tool pprof http://127.0.0.1:9095/debug/pprof/profile?seconds=30
//
// Only clients on the loopback interface are answered (others get 404),
// unless remote is true: a profile shows the program's internals, and
// taking one costs CPU. From another machine, use an SSH tunnel. A reverse
// proxy on the same host makes every client look local: do not forward
// /debug/ through one.
func RegisterProfiling(mux *http.ServeMux, remote bool) {
	guard := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if !remote && !fromLoopback(r) {
				http.NotFound(w, r)
				return
			}
			h(w, r)
		}
	}
	mux.HandleFunc("GET /debug/pprof/", guard(pprof.Index))
	mux.HandleFunc("GET /debug/pprof/cmdline", guard(pprof.Cmdline))
	mux.HandleFunc("GET /debug/pprof/profile", guard(pprof.Profile))
	mux.HandleFunc("GET /debug/pprof/symbol", guard(pprof.Symbol))
	mux.HandleFunc("POST /debug/pprof/symbol", guard(pprof.Symbol))
	mux.HandleFunc("GET /debug/pprof/trace", guard(pprof.Trace))
}

// fromLoopback reports whether the request came from a loopback address.
func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
