// Package opencti is an OpenCTI 6.x platform double for testing the
// vtconnector internal-enrichment connector, and what
// `vtconnector simulate opencti` runs. Importers alias it fakeocti.
//
// It owns the platform side of the connector protocol, on a real RabbitMQ
// broker and over HTTP, following /work/shared/reference/opencti-protocol.md
// (§ numbers below refer to it):
//
//   - POST /graphql (§2): bearer-token authentication (an unknown token
//     gets AUTH_REQUIRED errors, HTTP 200, like the platform), every document
//     parsed with gqlparser and, when Config.Schema is set, validated against
//     that schema (the platform's merged relay schema), with the input fields
//     and arguments the emulated Config.Version does not know removed first.
//     Invalid documents are answered as Apollo Server answers them through
//     the platform's httpResponsePlugin: HTTP 200, no data, errors[] with
//     extensions.code GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED or
//     (variables that do not match their type) BAD_USER_INPUT and graphql-js
//     messages. Every document is recorded ([Platform.Documents]). Root
//     fields are dispatched by name, whatever the operation is called;
//     answers carry exactly the selected fields (aliases, fragments,
//     __typename, non-null propagation).
//   - GET /storage/get/<file id>: the bytes of a file attached to an entity
//     (Entity.ImportFiles), 401 without a valid token.
//   - registerConnector/pingConnector (§3, §4) with the real RabbitMQ
//     topology (§3.3): direct durable exchanges amqp.connector.exchange and
//     amqp.worker.exchange, durable queues listen_<id> and push_<id> with the
//     platform's argument table, bound with listen_routing_<id> and
//     push_routing_<id>, all names behind the optional Config.Prefix as the
//     platform's rabbitmq:queue_prefix (rendered "<prefix>_").
//   - Work tracking (§6): workAdd, work, isWorkAlive and workEdit { toReceived
//     toProcessed addExpectations reportExpectation ping addDraftContext
//     delete }, with the platform's work ids work_<connectorId>_<time>.
//   - The enrichment trigger (§5.2): [Platform.Enrich] (and the GraphQL
//     stixCoreObjectEdit { askEnrichment }) creates a "Manual enrichment" work
//     and publishes the platform's message to the connector's listen queue.
//   - The worker (§7.4): it consumes push_<id> of every registered connector,
//     decodes the pycti envelope (§7.3), splits multi-object bundles like
//     pycti's splitter (§7.2) and republishes the pieces, checks every
//     object (id syntax, *_ref/*_refs resolution, deterministic ids computed
//     by the double itself, §9), upserts it into the knowledge it keeps
//     ([Platform.Objects], [Platform.Writes]) and reports the expectation on
//     the work. stixBundlePush (§7.5) enters the same path.
//   - The API listen protocol (§5.5): for a connector that registered a
//     listen_callback_uri the worker consumes listen_<id> and posts each
//     message there with the registering token; anything but 202 requeues
//     it ([Platform.SetRelayClient], [Platform.Callbacks]).
//   - Playbook steps (§5.2c): [Platform.RunPlaybookStep] sends a
//     playbook-compatible connector internal.playbook and event.bundle;
//     playbookStepExecution records the answer ([Platform.WaitPlaybookStep]).
//   - Markings created on the platform ([Platform.AddMarking]), resolved by
//     markingDefinition(id) and exported in stix_objects; organisations
//     ([Platform.AddOrganization]) entities are shared with
//     (Entity.GrantedRefs, exported as granted_refs).
//
// Where the double deliberately differs from the platform (each is also
// said where it happens): a work completes when processed == expected AND
// toProcessed was called (the platform also completes it when the last
// expectation is reported first; works stixBundlePush creates, which
// nobody "processes", follow the platform's rule); the worker does not retry missing
// references (the connector publishes in dependency order, and one consumer
// per queue processes in order); an object whose id is not the deterministic
// id of its properties is imported under its id but recorded as a work error
// (the platform would silently alias it); Enrich ignores liveness and
// trigger filters.
//
// The Go API is for tests: [Platform.AddEntity] seeds the knowledge,
// [Platform.Enrich] triggers, and [Platform.Work], [Platform.WaitWork],
// [Platform.Connectors], [Platform.Objects], [Platform.Writes] and
// [Platform.Documents] observe what the connector did.
//
// The package reads the clock only through Config.Now. It starts goroutines
// only for RabbitMQ consumers (one per registered connector, and one relay
// per callback, started at its registration) and in [ListenAndServe]; [Platform.Close] stops them all.
//
// It imports no package of this module, internal/stix included, but
// internal/httpserver (the server runner, which imports none): it
// simulates the external system, computes the platform's STIX ids itself
// (so that a bug in the connector's id code cannot hide in the double's
// checks) and knows nothing about the connector.
package opencti
