// Package carbonblack is a Carbon Black EDR (Cb Response 6.2) server
// simulator for tests and for `vtconnector simulate carbonblack`. Importers
// alias it fakecb.
//
// It owns everything a Carbon Black client can observe over the REST API
// the VirusTotal connector uses, with the paths, field names and value
// formats of real Cb Response answers:
//
//   - GET /api/info: server information (version 6.2.0.171114.1158).
//   - GET /api/v1/binary?q=&rows=&start=&sort=&facet=: binary search, answered
//     as {results, total_results, start, elapsed, terms, highlights, facets}.
//   - GET /api/v1/binary/{md5}/summary: one binary document.
//   - GET /api/v1/binary/{md5}: a zip (streamed) with the members filedata
//     (the bytes the server copied from the endpoint) and metadata (the
//     binary document as JSON).
//   - GET/POST /api/v1/feed, PUT/DELETE /api/v1/feed/{id} and
//     POST /api/v1/feed/{id}/synchronize: threat-intelligence feeds. Creating
//     a feed fetches its feed_url to read the feedinfo; synchronising fetches
//     it again, validates it like carbonblack/cbfeeds, and tags every binary
//     whose md5 or sha256 is an IOC of a report (and every binary a "modules"
//     query IOC matches) with alliance_score_<feed>, alliance_link_<feed>,
//     alliance_data_<feed> and alliance_updated_<feed>, so that the
//     connector's exclusion clause -alliance_score_<feed>:* really excludes
//     processed binaries.
//
// It also owns the X-Auth-Token authentication (401 without it), injected
// latency and transient 500/503 faults (a sequence fixed by Config.Seed),
// and the statistics tests assert on. Error bodies are
// {"reason": ..., "message": ...}.
//
// # Binaries
//
// Documents have the fields and value formats of real ones
// (server_added_timestamp like 2017-02-01T03:52:34.137Z, upper-case md5,
// endpoint "HOST|sensor_id" ...). The server keeps at most the first 25 MiB
// of a file (copied_mod_len); a binary it never copied (copied_mod_len 0)
// has a summary but its download answers 404. The metadata member of a
// download is the binary document.
//
// # Feeds
//
// POST /api/v1/feed fetches feed_url with Config.FeedClient (basic auth when
// username or password is set) and answers 500 when it cannot retrieve a
// valid feed, like the real server; the feed is named after its feedinfo.
// Synchronisation runs inside the request and answers
// {"result": "success"}; a failed fetch or invalid document is recorded in
// [Feed].LastError (the real server synchronises in the background). A
// disabled feed is answered 409. The body {"full_sync": false} asks for an
// incremental sync, which takes only new reports and reports whose
// timestamp changed, and sends If-None-Match with the last ETag; a full sync
// (the default without a body) replaces the reports, so withdrawn reports
// lose their tags. Disabling a feed keeps its tags; deleting it removes
// them. Binaries added after a sync are tagged by its md5 and sha256 IOCs
// at once, by its query IOCs at the next sync.
//
// # Query language
//
// q is parsed by a subset of the Cb/Lucene syntax; anything else is
// answered 400 {"reason": "query_malformed_syntax", "message": ...}, the
// reason cbapi turns into QuerySyntaxError:
//
//   - terms separated by spaces are ANDed; AND/and/&&, OR/or/|| (AND binds
//     tighter), NOT/not/!/- negate, + is ignored, parentheses group;
//   - field:value, field:"quoted phrase", field:* (the field exists),
//     field:(a OR b); * and ? are wildcards in unquoted values;
//   - field:[A TO B] (inclusive) and field:{A TO B} (exclusive), * for an
//     open end, on numeric fields (orig_mod_len, host_count, alliance_score_*
//     ...), on dates (server_added_timestamp, last_seen, ...: 2006-01-02,
//     2006-01-02T15:04:05 with optional fraction and Z; a day as the
//     inclusive upper end, or as a value, means the whole day) and on
//     strings;
//   - a bare 32-hex-digit term matches md5; another bare term matches the
//     default fields (md5, original_filename, observed_filename,
//     internal_name, product_name, company_name, file_desc); * and *:* match
//     everything;
//   - alliance_score_<feed>, alliance_link_<feed>, alliance_data_<feed>,
//     alliance_updated_<feed> and watchlist_<n> are accepted for any name,
//     hostname matches the host part of endpoint; other unknown fields are
//     errors.
//
// String fields compare case-insensitively; observed_filename also matches
// the last path component; descriptive fields (company_name, product_name,
// digsig_publisher ...) also match single words and quoted word sequences.
//
// Results are sorted by sort (default "server_added_timestamp desc", as on
// the real server; several "field asc|desc" may be joined by commas);
// missing values sort last and ties are broken by md5 ascending, so paging is
// deterministic. rows defaults to 10 and is capped at 1000 (maxSearchResultRows
// of the real /api/info).
//
// The package reads the clock only through Config.Now and starts no
// goroutine outside a request (except in [ListenAndServe]), so it works
// inside testing/synctest bubbles when driven through [Server.ServeHTTP].
//
// It must not import any other package of this module but
// internal/httpserver (the server runner, which imports none): it simulates
// the external system and knows nothing about the connector.
package carbonblack
