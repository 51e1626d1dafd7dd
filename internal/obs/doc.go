// Package obs owns what a daemon tells the people and the monitoring that
// watch it: the Prometheus metrics served at /metrics, and the human
// status page served at /status (and as JSON at /status.json).
//
// Both fronts' daemons (carbonblack and opencti) build one Observer from
// a Sources value — small functions and interfaces that read the engine,
// the quota ledger and the work queue — and report events to it as they
// happen: VirusTotal requests, OpenCTI enrichments, and problems that
// need a person's attention (a rejected API key, an unreachable Carbon
// Black server or OpenCTI platform).
//
// Metrics live in a private prometheus.Registry per Observer; nothing is
// registered with the global default registry. Values the sources already
// hold (engine counters, quota use, queue depth) are read at scrape time
// by a custom collector, so they never drift from the truth; a source that
// fails or is slow is skipped and logged, and never breaks a scrape.
//
// The status page is rendered server-side from embedded templates: inline
// CSS, an inline SVG chart, no JavaScript and no external assets, so it
// works in a text browser and behind a strict Content-Security-Policy. It
// never shows secrets: it only shows what the sources return, and errors
// from the sources are logged, not shown.
//
// The package may import engine, store and vt for their data types. It
// must not import the fronts (carbonblack, opencti), cli, or anything
// that does; the fronts adapt their own data to Verdict and Sources.
package obs
