// Package vt is a VirusTotal API v3 simulator for tests and for
// `vtconnector simulate vt`. Importers alias it fakevt.
//
// It owns everything a VirusTotal client can observe over HTTP under the
// fixed prefix /api/v3/: the JSON envelopes ({"data": ...}, collections with
// meta and links.next, {"error": {"code", "message"}}), the documented error
// codes and statuses, the x-apikey authentication, per-key quotas (a sliding
// 60 s window and a UTC calendar day), injected latency and transient faults,
// and the life cycle of uploads, rescans and URL submissions
// (queued -> in-progress -> completed, computed lazily from timestamps), and
// the same for Private Scanning under /private/ (per key, invisible to the
// public endpoints, reports with sandbox verdicts instead of antivirus
// results; Config.PrivateKeys holds the licensed keys).
//
// Objects nobody has uploaded or loaded are synthesised deterministically from
// their identifier and Config.Seed: the same id always yields the same bytes,
// and a file looked up by its MD5 is the same object later looked up by its
// SHA-256. Real responses can be served verbatim with [Server.LoadTestdata].
//
// The package uses time.Now for every timestamp and starts no goroutines
// outside a request (except in [ListenAndServe]), so it works inside
// testing/synctest bubbles when driven through [Server.ServeHTTP].
//
// It must not import any other package of this module but
// internal/httpserver (the server runner, which imports none): it simulates
// the external system and knows nothing about the connector.
package vt
