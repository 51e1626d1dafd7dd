// Package carbonblack is the Carbon Black EDR (Cb Response) front of
// vtconnector, a drop-in for the original VirusTotal connector: it talks to
// the Cb REST API, collects binaries, has them looked up through the
// engine, and publishes the verdicts as a Carbon Black threat-intelligence
// feed.
//
// The feed part owns the feed format (FeedInfo, Report, BuildReports), a
// validator with the rules of carbonblack/cbfeeds (ValidateFeed,
// ValidateFeedJSON), a cache that keeps the document rendered in chunks
// and re-renders only the chunks a change touches (FeedCache: body, one
// gzip member and strong ETag, swapped atomically as a snapshot) and the
// HTTP server that serves it (Server: /feed.json, /binaries.html,
// /healthz). The server pages verdicts by key through the small
// VerdictLister it declares; it knows nothing of the store.
//
// Files of the feed part: feed.go is the document model, feedinfo.go the
// VirusTotal feedinfo with its icons (embedded from icons/), reports.go
// turns verdicts into reports, validate.go checks a feed's values and
// validatejson.go a serialised document's shape, feedcache.go renders and
// caches the document (crc32combine.go joins its pieces' checksums), and
// server.go serves it.
//
// The package must not import other fronts (opencti, cli) and never calls
// VirusTotal except through the engine and the vt client it is given.
package carbonblack
