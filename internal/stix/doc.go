// Package stix owns vtconnector's minimal STIX 2.1 model and the
// deterministic identifiers OpenCTI expects: the Go types of the objects the
// OpenCTI enrichment emits (Indicator, Note, Relationship, Location,
// Identity, the observables, external references, marking definitions and
// the Bundle that carries them), the UUIDv5 ids that pycti and the OpenCTI
// platform compute for them, STIX pattern builders with correct string
// escaping (pattern.go) and a tolerant reader of the comparisons a pattern
// makes (patternparse.go), and the TLP levels and max-TLP gate of the original VirusTotal
// connector.
//
// Identifiers. A STIX id is "<type>--" followed by a UUIDv5 in the namespace
// 00abedb4-aa42-466c-9c01-fed23315a9b7 over the RFC 8785 (JCS) canonical
// JSON of a small object of "contributing properties". Which properties
// contribute, and how they are normalised, follows the OpenCTI platform
// (opencti-graphql src/schema/identifier.js and the module definitions),
// because the platform computes the standard_id that references are resolved
// against; where pycti's generate_id helpers differ the function says so.
// Using these ids makes re-enrichment upsert instead of duplicate.
//
// Times. Every constructor takes the current time from its caller (nothing
// here reads the clock), and every timestamp is written in the STIX form
// with millisecond precision and a Z suffix, the form the ids hash.
//
// Everything in this package is pure computation: it does no I/O, starts no
// goroutines and must not import any other vtconnector package.
package stix
