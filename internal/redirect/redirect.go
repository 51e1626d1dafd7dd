// Package redirect keeps credentials on the host they were meant for.
//
// net/http follows redirects and copies the request's headers to the new
// request. It drops Authorization and Cookie when the redirect leaves the
// domain, but not custom headers: VirusTotal's x-apikey or Carbon Black's
// X-Auth-Token would reach whatever host a redirect names. Guard returns a
// client whose redirects strip every credential header as soon as they
// leave the original scheme, host and port, and which refuses to be
// redirected from HTTPS to plain HTTP at all.
//
// It imports nothing of vtconnector's.
package redirect

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// MaxRedirects is how many redirects a guarded client follows.
const MaxRedirects = 10

// alwaysSensitive are stripped off-host whatever the caller names.
var alwaysSensitive = []string{"Authorization", "Proxy-Authorization", "Cookie"}

// Guard returns a shallow copy of hc (nil: a new client) whose redirects
// drop the named credential headers, and the usual sensitive ones, when
// they leave the first request's origin, and never downgrade HTTPS to
// HTTP. hc's own CheckRedirect, if any, still runs after.
func Guard(hc *http.Client, headers ...string) *http.Client {
	c := &http.Client{}
	if hc != nil {
		*c = *hc
	}
	next := c.CheckRedirect
	sensitive := append(append([]string(nil), alwaysSensitive...), headers...)
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= MaxRedirects {
			return fmt.Errorf("stopped after %d redirects", MaxRedirects)
		}
		first := via[0].URL
		if first.Scheme == "https" && req.URL.Scheme != "https" {
			return errors.New("refused a redirect from HTTPS to " + req.URL.Scheme)
		}
		if !sameOrigin(first.Scheme, first.Host, req.URL.Scheme, req.URL.Host) {
			for _, h := range sensitive {
				req.Header.Del(h)
			}
		}
		if next != nil {
			return next(req, via)
		}
		return nil
	}
	return c
}

// sameOrigin compares scheme and host:port, with default ports made
// explicit.
func sameOrigin(s1, h1, s2, h2 string) bool {
	return strings.EqualFold(s1, s2) && strings.EqualFold(withPort(s1, h1), withPort(s2, h2))
}

func withPort(scheme, host string) string {
	if strings.LastIndexByte(host, ':') > strings.LastIndexByte(host, ']') {
		return host
	}
	if scheme == "https" {
		return host + ":443"
	}
	return host + ":80"
}
