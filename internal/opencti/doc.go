// Package opencti is vtconnector's OpenCTI front: a native
// internal-enrichment connector that speaks the platform's own protocol
// (GraphQL for registration, pings and work tracking; RabbitMQ for the
// enrichment messages and the bundles it pushes), as pycti does, so that a
// real OpenCTI 6.x platform accepts it exactly like the Python VirusTotal
// connector.
//
// graphql.go talks to the platform, amqp.go to RabbitMQ (tlsfiles.go reads
// the TLS material of pycti's settings), split.go cuts bundles the way pycti
// does, and connector.go runs the loops. delivery.go parks every request in
// the store before acknowledging it and works it from there (quota waits,
// outages, redeliveries and poison messages never hold or stop a delivery);
// listenapi.go is pycti's API listen protocol (an HTTP callback);
// markings.go resolves every marking for the fail-closed TLP gate;
// playbook.go answers playbook steps; sharing.go carries organisation
// sharing onto the objects sent. The rest turns
// a VirusTotal report into STIX 2.1 objects without any I/O:
//
//   - entity.go is the enriched entity and its accessors, parseentity.go
//     checks and decodes the one the platform sends, lookup.go says what to
//     ask VirusTotal for it, and observables.go reads the observables an
//     Indicator's pattern names (with stix.PatternComparisons);
//   - options.go holds the enrichment settings and build.go the builder
//     (Build), whose steps live beside their subject: entityupdate.go (the
//     score, reference, labels, hashes and names written on the entity),
//     score.go, indicator.go, yara.go with yararule.go (the matched rule
//     cut out of its ruleset), relationships.go (autonomous system,
//     country, resolutions; countries.go is the country name table) and
//     note.go;
//   - jsonvalue.go edits the decoded JSON of entities.
//
// Lookups go through internal/engine (quota, cache, de-duplication); the
// package never calls VirusTotal on its own.
//
// It must not import the other fronts or internal/cli.
package opencti
