// Package opencti is vtconnector's OpenCTI front: a native
// internal-enrichment connector that speaks the platform's own protocol
// (GraphQL for registration, pings and work tracking; RabbitMQ for the
// enrichment messages and the bundles it pushes), as pycti does, so that a
// real OpenCTI 6.x platform accepts it exactly like the Python VirusTotal
// connector.
//
// graphql.go talks to the platform, amqp.go to RabbitMQ, split.go cuts
// bundles the way pycti does, connector.go runs the loop, and enrich.go,
// note.go and score.go turn a VirusTotal report into STIX 2.1 objects
// without any I/O. Lookups go through internal/engine (quota, cache,
// de-duplication); the package never calls VirusTotal on its own.
//
// It must not import the other fronts or internal/cli.
package opencti
