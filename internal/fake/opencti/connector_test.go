package opencti

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	amqp "github.com/rabbitmq/amqp091-go"
)

func TestRegisterConnectorDeclaresTopologyAndAnswersPyctiFields(t *testing.T) {
	p := newPlatform(t, nil)
	id := uuidV4()
	var got struct {
		RegisterConnector map[string]any `json:"registerConnector"`
	}
	mustGQL(t, p, registerQuery, map[string]any{"input": registerInput(id, "StixFile", "IPv4-Addr")}, &got)

	pre := p.cfg.Prefix + "_"
	uri, err := amqp.ParseURI(p.cfg.AMQPURL)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"id":              id,
		"connector_state": nil,
		"config": map[string]any{
			"connection": map[string]any{
				"host": uri.Host, "vhost": uri.Vhost, "use_ssl": uri.Scheme == "amqps", "port": float64(uri.Port),
				"user": uri.Username, "pass": uri.Password,
			},
			"listen":          pre + "listen_" + id,
			"listen_routing":  pre + "listen_routing_" + id,
			"listen_exchange": pre + "amqp.connector.exchange",
			"push":            pre + "push_" + id,
			"push_routing":    pre + "push_routing_" + id,
			"push_exchange":   pre + "amqp.worker.exchange",
		},
		"connector_user_id": userIDForToken(testToken),
	}
	if diff := cmp.Diff(want, got.RegisterConnector); diff != "" {
		t.Errorf("registerConnector (-want +got):\n%s", diff)
	}

	// The connector side declares passively what the platform declared.
	ch := testConn(t, p)
	for _, q := range []string{pre + "listen_" + id, pre + "push_" + id} {
		if _, err := ch.QueueDeclarePassive(q, true, false, false, false, nil); err != nil {
			t.Fatalf("passive declare of queue %s: %v", q, err)
		}
	}
	for _, ex := range []string{pre + "amqp.connector.exchange", pre + "amqp.worker.exchange"} {
		if err := ch.ExchangeDeclarePassive(ex, amqp.ExchangeDirect, true, false, false, false, nil); err != nil {
			t.Fatalf("passive declare of exchange %s: %v", ex, err)
		}
	}
	// An active declare with the platform's arguments is equivalent.
	args := amqp.Table{"name": "VirusTotal", "config": amqp.Table{"id": id, "type": "INTERNAL_ENRICHMENT",
		"scope": []any{"StixFile", "IPv4-Addr"}}, "x-queue-type": "classic"}
	if _, err := ch.QueueDeclare(pre+"listen_"+id, true, false, false, false, args); err != nil {
		t.Fatalf("declare with the platform's arguments: %v", err)
	}
	// The listen binding routes listen_routing_<id>.
	if err := ch.PublishWithContext(t.Context(), pre+"amqp.connector.exchange", pre+"listen_routing_"+id, true, false,
		amqp.Publishing{Body: []byte(`{"ping":1}`)}); err != nil {
		t.Fatal(err)
	}
	if d := getMessage(t, ch, pre+"listen_"+id); string(d.Body) != `{"ping":1}` {
		t.Errorf("listen queue got %s", d.Body)
	}

	// Registering again is an upsert.
	in := registerInput(id, "Url")
	in["name"] = "VirusTotal 2"
	mustGQL(t, p, registerQuery, map[string]any{"input": in}, nil)
	cs := p.Connectors()
	if len(cs) != 1 {
		t.Fatalf("%d connectors after two registrations of one id", len(cs))
	}
	c := cs[0]
	if c.Registrations != 2 || c.Name != "VirusTotal 2" || !slices.Equal(c.Scope, []string{"Url"}) ||
		c.EnrichmentResolution != "stix_bundle" || !c.PlaybookCompatible || c.Auto == nil || *c.Auto ||
		c.UserID != userIDForToken(testToken) || !c.Active || !c.Consuming || c.Input["name"] != "VirusTotal 2" {
		t.Errorf("connector state %+v", c)
	}
}

func TestRegisterConnectorFullSelection(t *testing.T) {
	requireSchema(t) // fidelity: the fields each version answers come from the real schema
	p := newPlatform(t, func(c *Config) {
		c.AMQPPublic = AMQPConnection{Host: "rabbitmq", Port: 5671, User: "opencti", Pass: "secret", VHost: "octi", UseSSL: true}
	})
	id := uuidV4()
	const q = `mutation($input: RegisterConnectorInput) { registerConnector(input: $input) {
		__typename id name active auto auto_update enrichment_resolution connector_type connector_scope
		connector_state_reset playbook_compatible connector_queue_details { messages_number }
		config { connection { host port user pass vhost use_ssl } listen_callback_uri dead_letter_routing }
		works { id }
	} }`
	var got struct {
		R map[string]any `json:"registerConnector"`
	}
	mustGQL(t, p, q, map[string]any{"input": registerInput(id, "Domain-Name")}, &got)
	pre := p.cfg.Prefix + "_"
	want := map[string]any{
		"__typename": "Connector", "id": id, "name": "VirusTotal", "active": true, "auto": false, "auto_update": false,
		"enrichment_resolution": "stix_bundle", "connector_type": "INTERNAL_ENRICHMENT",
		"connector_scope": []any{"Domain-Name"}, "connector_state_reset": false, "playbook_compatible": true,
		"connector_queue_details": map[string]any{"messages_number": float64(0)},
		"config": map[string]any{
			"connection": map[string]any{"host": "rabbitmq", "port": float64(5671), "user": "opencti", "pass": "secret",
				"vhost": "octi", "use_ssl": true},
			"listen_callback_uri": nil, "dead_letter_routing": pre + "listen_routing_too-large-bundle",
		},
		"works": []any{},
	}
	if diff := cmp.Diff(want, got.R); diff != "" {
		t.Errorf("registerConnector (-want +got):\n%s", diff)
	}
	// config.s3 does not exist on 6.8.10 (§3.2).
	res := gql(t, p, testToken, `mutation($input: RegisterConnectorInput) { registerConnector(input: $input) { config { s3 { bucket_name } } } }`,
		map[string]any{"input": registerInput(id)})
	if !slices.Equal(res.codes(), []string{codeValidationFailed}) {
		t.Errorf("config.s3 on 6.8.10: %s", res.Raw)
	}
}

func TestPingConnectorRecordsPingsStateAndReset(t *testing.T) {
	p := newPlatform(t, nil)
	id := register(t, p, "IPv4-Addr")
	info := map[string]any{"run_and_terminate": false, "buffering": false, "queue_threshold": 500.0,
		"queue_messages_size": 0.0, "next_run_datetime": nil, "last_run_datetime": nil}
	var got struct {
		Ping map[string]any `json:"pingConnector"`
	}
	mustGQL(t, p, pingQuery, map[string]any{"id": id, "state": `{"last_run": 1}`, "connectorInfo": info}, &got)
	want := map[string]any{"id": id, "connector_state": `{"last_run": 1}`, "connector_info": info}
	if diff := cmp.Diff(want, got.Ping); diff != "" {
		t.Errorf("pingConnector (-want +got):\n%s", diff)
	}
	mustGQL(t, p, pingQuery, map[string]any{"id": id, "state": "null", "connectorInfo": info}, nil)
	c := p.Connectors()[0]
	if c.Pings != 2 || c.State != "null" || c.LastPing.IsZero() || c.Info["queue_threshold"] != 500.0 {
		t.Errorf("after two pings: %+v", c)
	}

	// A reset state is returned once, then overwritten by the next ping.
	if err := p.ResetConnectorState(id); err != nil {
		t.Fatal(err)
	}
	mustGQL(t, p, pingQuery, map[string]any{"id": id, "state": `{"old": true}`, "connectorInfo": info}, &got)
	if got.Ping["connector_state"] != "" {
		t.Errorf("ping after a reset returned state %v, want \"\"", got.Ping["connector_state"])
	}
	mustGQL(t, p, pingQuery, map[string]any{"id": id, "state": `{"new": true}`, "connectorInfo": info}, &got)
	if got.Ping["connector_state"] != `{"new": true}` {
		t.Errorf("second ping after a reset returned state %v", got.Ping["connector_state"])
	}

	res := gql(t, p, testToken, pingQuery, map[string]any{"id": "4b3d6a0e-0000-4000-8000-000000000000", "state": "null", "connectorInfo": info})
	if len(res.Errors) != 1 || res.Errors[0].Message != "No connector found with the specified ID" ||
		res.codes()[0] != "FUNCTIONAL_ERROR" || string(res.Data) != `{"pingConnector":null}` {
		t.Errorf("ping of an unknown connector: %s", res.Raw)
	}
}

func TestAuthentication(t *testing.T) {
	p := newPlatform(t, nil)
	res := gql(t, p, "wrong-token", `query healthCheck { about { version } }`, nil)
	if res.Status != http.StatusOK || !slices.Equal(res.codes(), []string{"AUTH_REQUIRED"}) ||
		res.Errors[0].Message != "You must be logged in to do this." || string(res.Data) != `{"about":null}` {
		t.Errorf("unknown token: %d %s", res.Status, res.Raw)
	}
	res = gql(t, p, "", `{ about { version } }`, nil)
	if !slices.Equal(res.codes(), []string{"AUTH_REQUIRED"}) {
		t.Errorf("no token: %s", res.Raw)
	}
	var about struct {
		About struct{ Version string } `json:"about"`
	}
	mustGQL(t, p, `query healthCheck { about { version } }`, nil, &about)
	if about.About.Version != DefaultVersion {
		t.Errorf("about.version %q", about.About.Version)
	}
	docs := p.Documents()
	if len(docs) != 3 || docs[0].UserID != "" || docs[2].UserID != userIDForToken(testToken) ||
		docs[2].Name != "healthCheck" || !slices.Equal(docs[2].Fields, []string{"about"}) || docs[2].UserAgent != "pycti/6.8.10" {
		t.Errorf("documents %+v", docs)
	}

	req := httptest.NewRequest(http.MethodGet, "/storage/get/import/Artifact/x/y", nil)
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("storage without token: %d", rec.Code)
	}
}

// TestGraphQLValidation is a fidelity test: the platform's answers to
// documents its real schema rejects.
func TestGraphQLValidation(t *testing.T) {
	requireSchema(t)
	p68 := newPlatform(t, nil)
	p67 := newPlatform(t, func(c *Config) { c.Version = "6.7.20" })
	p62 := newPlatform(t, func(c *Config) { c.Version = "6.2.0" })
	id := "d5e2a9b8-6f1c-4e2a-9b3d-7c8e9f0a1b2c"
	tests := []struct {
		name    string
		p       *Platform
		query   string
		vars    map[string]any
		code    string
		message string
	}{
		{"unknown field", p68, `{ about { version nope } }`, nil,
			codeValidationFailed, `Cannot query field "nope" on type "AppInfo".`},
		{"unknown root field", p68, `query q { connectorz { id } }`, nil,
			codeValidationFailed, `Cannot query field "connectorz" on type "Query". Did you mean "connector", "connectors"`},
		{"syntax error", p68, `{ about { version }`, nil, codeParseFailed, `Syntax Error: Expected Name, found <EOF>.`},
		{"auto_update on a 6.7 platform", p67, registerQuery, map[string]any{"input": registerInput(id, "Url")},
			codeBadUserInput, `Field "auto_update" is not defined by type "RegisterConnectorInput".`},
		{"inline input field unknown on 6.7", p67,
			`mutation { registerConnector(input: {id: "x", name: "VT", type: INTERNAL_ENRICHMENT, auto_update: true}) { id } }`, nil,
			codeValidationFailed, `Field "auto_update" is not defined by type "RegisterConnectorInput".`},
		{"connectorInfo on a 6.2 platform", p62, pingQuery, map[string]any{"id": id, "state": "null"},
			codeValidationFailed, `Unknown argument "connectorInfo" on field "Mutation.pingConnector".`},
		{"missing required variable", p68, pingQuery, map[string]any{"state": "null"},
			codeBadUserInput, `Variable "$id" of required type "ID!" was not provided.`},
		{"enum value", p68, registerQuery, map[string]any{"input": map[string]any{"id": id, "name": "VT", "type": "ENRICHMENT"}},
			codeBadUserInput, `Variable "$input" got invalid value "ENRICHMENT" at "input.type"; Value "ENRICHMENT" does not exist in "ConnectorType" enum.`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(tt.p.Documents())
			res := gql(t, tt.p, testToken, tt.query, tt.vars)
			if res.Status != http.StatusOK || res.HasData || len(res.Errors) == 0 {
				t.Fatalf("answer %d %s: want 200, errors and no data", res.Status, res.Raw)
			}
			if res.codes()[0] != tt.code || !strings.Contains(res.Errors[0].Message, tt.message) {
				t.Errorf("error %q (%s), want %s containing %q", res.Errors[0].Message, res.codes()[0], tt.code, tt.message)
			}
			docs := tt.p.Documents()
			if len(docs) != before+1 || len(docs[before].ValidationErrors) == 0 || docs[before].ValidationErrors[0] != res.Errors[0].Message {
				t.Errorf("recorded %+v", docs[before:])
			}
		})
	}
	// The same registration is accepted by 6.8.10.
	mustGQL(t, p68, registerQuery, map[string]any{"input": registerInput(id, "Url")}, nil)
}

func TestGraphQLExecution(t *testing.T) {
	requireSchema(t) // fidelity: field existence and non-null propagation come from the real schema
	p := newPlatform(t, nil)
	id := register(t, p, "IPv4-Addr")
	ip := p.AddEntity(Entity{Type: "IPv4-Addr", Value: "198.51.100.7", Markings: []string{"TLP:GREEN"}})
	// Aliases, fragments on interfaces, __typename and several root fields.
	const q = `query read($id: String!, $cid: String!) {
		obs: stixCyberObservable(id: $id) { __typename ...core ... on IPv4Addr { value } }
		connector(id: $cid) { name }
		missing: stixCoreObject(id: "ipv4-addr--00000000-0000-4000-8000-000000000000") { id }
	}
	fragment core on StixCoreObject { standard_id entity_type objectMarking { definition_type definition } }`
	res := gql(t, p, testToken, q, map[string]any{"id": ip, "cid": id})
	want := `{"obs":{"__typename":"IPv4Addr","standard_id":"` + ip + `","entity_type":"IPv4-Addr",` +
		`"objectMarking":[{"definition_type":"TLP","definition":"TLP:GREEN"}],"value":"198.51.100.7"},` +
		`"connector":{"name":"VirusTotal"},"missing":null}`
	if string(res.Data) != want || len(res.Errors) > 0 {
		t.Errorf("data %s\nwant %s\nerrors %v", res.Data, want, res.Errors)
	}
	// A root field of the schema the double does not implement.
	res = gql(t, p, testToken, `{ me { id } }`, nil)
	if !slices.Equal(res.codes(), []string{"UNSUPPORTED_ERROR"}) || !strings.Contains(res.Errors[0].Message, "Query.me") {
		t.Errorf("unimplemented field: %s", res.Raw)
	}
	var raw json.RawMessage
	mustGQL(t, p, `{ connectors { id config { listen } } }`, nil, &raw)
	if !strings.Contains(string(raw), id) {
		t.Errorf("connectors: %s", raw)
	}
}

func TestWithoutSchemaDocumentsAreOnlyParsed(t *testing.T) {
	p := newPlatform(t, func(c *Config) { c.Schema = "" })
	ip := p.AddEntity(Entity{Type: "IPv4-Addr", Value: "192.0.2.44", Labels: []string{"scanner"}})
	res := gql(t, p, testToken, `query($id: String!) { stixCoreObject(id: $id) { ... on StixCyberObservable { observable_value }
		... on Indicator { pattern } objectLabel { value } } }`, map[string]any{"id": ip})
	if string(res.Data) != `{"stixCoreObject":{"observable_value":"192.0.2.44","objectLabel":[{"value":"scanner"}]}}` {
		t.Errorf("read without schema: %s", res.Raw)
	}
	res = gql(t, p, testToken, `{ nope }`, nil)
	if !slices.Equal(res.codes(), []string{codeValidationFailed}) || res.HasData {
		t.Errorf("unknown root field without schema: %s", res.Raw)
	}
	res = gql(t, p, testToken, ``, nil)
	if res.Status != http.StatusBadRequest || len(p.Documents()) != 3 {
		t.Errorf("empty query: %d %s, %d documents", res.Status, res.Raw, len(p.Documents()))
	}
}
