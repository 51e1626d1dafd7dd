package opencti

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vtconnector/vtconnector/internal/redirect"
	"github.com/vtconnector/vtconnector/internal/stix"
	"github.com/vtconnector/vtconnector/internal/tlsca"
)

// The GraphQL documents the connector sends. They are constants so that a
// test can validate every one of them against the platform's schema.
const (
	aboutQuery = `query About { about { version } }`

	registerMutation = `mutation RegisterConnector($input: RegisterConnectorInput) {
  registerConnector(input: $input) {
    id
    connector_state
    connector_user_id
    config {
      connection { host vhost use_ssl port user pass }
      listen listen_routing listen_exchange
      push push_routing push_exchange
    }
  }
}`

	pingMutation = `mutation PingConnector($id: ID!, $state: String, $connectorInfo: ConnectorInfoInput) {
  pingConnector(id: $id, state: $state, connectorInfo: $connectorInfo) { id connector_state }
}`

	// Platforms older than 6.2.12 know no connectorInfo.
	pingMutationLegacy = `mutation PingConnector($id: ID!, $state: String) {
  pingConnector(id: $id, state: $state) { id connector_state }
}`

	workToReceivedMutation = `mutation WorkToReceived($id: ID!, $message: String) {
  workEdit(id: $id) { toReceived(message: $message) }
}`

	workToProcessedMutation = `mutation WorkToProcessed($id: ID!, $message: String, $inError: Boolean) {
  workEdit(id: $id) { toProcessed(message: $message, inError: $inError) }
}`

	workAddExpectationsMutation = `mutation AddExpectations($id: ID!, $expectations: Int) {
  workEdit(id: $id) { addExpectations(expectations: $expectations) }
}`

	workPingMutation = `mutation PingWork($id: ID!) { workEdit(id: $id) { ping } }`

	workProgressQuery = `query WorkProgress($id: ID!) {
  work(id: $id) { id status processed_time tracking { import_expected_number import_processed_number } }
}`

	bundlePushMutation = `mutation StixBundlePush($connectorId: String!, $bundle: String!, $work_id: String) {
  stixBundlePush(connectorId: $connectorId, bundle: $bundle, work_id: $work_id)
}`

	artifactFilesQuery = `query ArtifactFiles($id: String!) {
  stixCyberObservable(id: $id) {
    id
    importFiles(first: 10) { edges { node { id name size } } }
  }
}`
)

const markingDefinitionQuery = `query MarkingDefinition($id: String!) {
  markingDefinition(id: $id) { standard_id definition_type definition }
}`

const playbookStepExecutionMutation = `mutation PlaybookStepExecution($execution_id: ID!, $event_id: ID!, $execution_start: DateTime!, $data_instance_id: ID!, $playbook_id: ID!, $previous_step_id: ID!, $step_id: ID!, $previous_bundle: String!, $bundle: String!) {
  playbookStepExecution(execution_id: $execution_id, event_id: $event_id, execution_start: $execution_start, data_instance_id: $data_instance_id, playbook_id: $playbook_id, previous_step_id: $previous_step_id, step_id: $step_id, previous_bundle: $previous_bundle, bundle: $bundle)
}`

const entityStixQuery = `query StixCoreObjectToStix($id: String!) {
  stixCoreObject(id: $id) { toStix }
}`

// Documents lists every GraphQL document the connector can send.
var Documents = map[string]string{
	"about": aboutQuery, "register": registerMutation, "ping": pingMutation, "pingLegacy": pingMutationLegacy,
	"toReceived": workToReceivedMutation, "toProcessed": workToProcessedMutation,
	"addExpectations": workAddExpectationsMutation, "workPing": workPingMutation, "workProgress": workProgressQuery,
	"bundlePush": bundlePushMutation, "artifactFiles": artifactFilesQuery,
	"markingDefinition": markingDefinitionQuery, "playbookStepExecution": playbookStepExecutionMutation,
	"entityStix": entityStixQuery,
}

// GraphQLError is an error the platform answered in the errors array.
type GraphQLError struct {
	Name    string // e.g. FUNCTIONAL_ERROR, AUTH_REQUIRED
	Message string
}

func (e *GraphQLError) Error() string {
	if e.Name != "" {
		return "opencti: " + e.Name + ": " + e.Message
	}
	return "opencti: " + e.Message
}

// ErrPlatformAuth: the platform refused the token.
var ErrPlatformAuth = errors.New("the OpenCTI platform refused the token")

// ErrPlatformUnavailable: the platform could not be reached or failed;
// retry later.
var ErrPlatformUnavailable = errors.New("the OpenCTI platform is unavailable")

// Platform is a GraphQL client of the OpenCTI platform.
type Platform struct {
	base    string
	token   string
	hc      *http.Client
	headers map[string]string
}

// NewPlatform returns a client for the platform at baseURL (…/graphql is
// appended). sslVerify false accepts any certificate, pycti's default.
func NewPlatform(baseURL, token string, sslVerify bool, headers map[string]string) *Platform {
	p, _ := NewPlatformCA(baseURL, token, sslVerify, "", headers)
	return p
}

// NewPlatformCA is NewPlatform verifying the platform's certificate
// against the PEM bundle caFile when it is set (OPENCTI_SSL_VERIFY given
// as a path, as pycti allows).
func NewPlatformCA(baseURL, token string, sslVerify bool, caFile string, headers map[string]string) (*Platform, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	switch {
	case caFile != "":
		tc, err := tlsca.Config(caFile)
		if err != nil {
			return nil, fmt.Errorf("opencti: %w", err)
		}
		tr.TLSClientConfig = tc
	case !sslVerify:
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // OPENCTI_SSL_VERIFY=false, pycti's default
	}
	return &Platform{base: strings.TrimRight(baseURL, "/"), token: token, hc: redirect.Guard(&http.Client{Transport: tr, Timeout: 300 * time.Second}, customHeaderNames(headers)...), headers: headers}, nil
}

// WithHTTPClient replaces the HTTP client (tests).
func (p *Platform) WithHTTPClient(hc *http.Client) *Platform {
	p.hc = redirect.Guard(hc, customHeaderNames(p.headers)...)
	return p
}

// customHeaderNames are the configured custom headers (OPENCTI_CUSTOM_HEADERS),
// which may carry credentials of their own: they stay on the platform's host.
func customHeaderNames(h map[string]string) []string {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	return names
}

func (p *Platform) newRequest(ctx context.Context, method, url string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+p.token)
	req.Header.Set("User-Agent", "vtconnector (pycti-compatible)")
	for k, v := range p.headers {
		req.Header.Set(k, v)
	}
	return req, nil
}

// do runs one GraphQL document and decodes its data into out.
func (p *Platform) do(ctx context.Context, name, query string, vars map[string]any, out any) error {
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return fmt.Errorf("opencti: %s: %w", name, err)
	}
	req, err := p.newRequest(ctx, http.MethodPost, p.base+"/graphql", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("opencti: %s: %w", name, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("opencti: %s: %w", name, ctx.Err())
		}
		return fmt.Errorf("opencti: %s: %w: %w", name, ErrPlatformUnavailable, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("opencti: %s: %w: %w", name, ErrPlatformUnavailable, err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("opencti: %s: %w (HTTP %d)", name, ErrPlatformAuth, resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("opencti: %s: %w: HTTP %d: %s", name, ErrPlatformUnavailable, resp.StatusCode, clip(string(data), 200))
	}
	var env struct {
		Data   json.RawMessage `json:"data"`
		Errors []struct {
			Message    string `json:"message"`
			Name       string `json:"name"`
			Extensions struct {
				Code string `json:"code"`
			} `json:"extensions"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return fmt.Errorf("opencti: %s: %w: answer is not JSON", name, ErrPlatformUnavailable)
	}
	if len(env.Errors) > 0 {
		e := env.Errors[0]
		ge := &GraphQLError{Name: e.Name, Message: e.Message}
		if ge.Name == "" {
			ge.Name = e.Extensions.Code
		}
		if ge.Name == "AUTH_REQUIRED" || ge.Name == "UNAUTHENTICATED" || ge.Name == "FORBIDDEN_ACCESS" {
			return fmt.Errorf("opencti: %s: %w: %w", name, ErrPlatformAuth, ge)
		}
		return fmt.Errorf("opencti: %s: %w", name, ge)
	}
	if out != nil {
		if err := json.Unmarshal(env.Data, out); err != nil {
			return fmt.Errorf("opencti: %s: unexpected answer: %w", name, err)
		}
	}
	return nil
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// Version returns the platform's version (about.version).
func (p *Platform) Version(ctx context.Context) (string, error) {
	var out struct {
		About struct {
			Version string `json:"version"`
		} `json:"about"`
	}
	if err := p.do(ctx, "about", aboutQuery, nil, &out); err != nil {
		return "", err
	}
	return out.About.Version, nil
}

// RegisterInput is what the connector registers.
type RegisterInput struct {
	ID, Name             string
	Scope                []string
	Auto, AutoUpdate     bool
	EnrichmentResolution string
	PlaybookCompatible   bool
	OnlyContextual       bool
	// ListenCallbackURI is where the platform's workers post requests
	// (CONNECTOR_LISTEN_PROTOCOL=API); "" for AMQP.
	ListenCallbackURI string
}

// Registration is the platform's answer to registerConnector.
type Registration struct {
	ID              string  `json:"id"`
	ConnectorState  *string `json:"connector_state"`
	ConnectorUserID string  `json:"connector_user_id"`
	Config          struct {
		Connection struct {
			Host   string `json:"host"`
			VHost  string `json:"vhost"`
			UseSSL bool   `json:"use_ssl"`
			Port   int    `json:"port"`
			User   string `json:"user"`
			Pass   string `json:"pass"`
		} `json:"connection"`
		Listen         string `json:"listen"`
		ListenRouting  string `json:"listen_routing"`
		ListenExchange string `json:"listen_exchange"`
		Push           string `json:"push"`
		PushRouting    string `json:"push_routing"`
		PushExchange   string `json:"push_exchange"`
	} `json:"config"`
}

// AtLeast reports whether version (e.g. "6.8.10", "7.260817.0") is at
// least want (e.g. "6.8.9"). Unreadable versions count as new.
func AtLeast(version, want string) bool {
	parse := func(s string) []int {
		var out []int
		for _, part := range strings.Split(strings.TrimPrefix(s, "v"), ".") {
			n, err := strconv.Atoi(strings.TrimFunc(part, func(r rune) bool { return r < '0' || r > '9' }))
			if err != nil {
				return nil
			}
			out = append(out, n)
		}
		return out
	}
	v, w := parse(version), parse(want)
	if v == nil {
		return true
	}
	for i := range w {
		if i >= len(v) {
			return false
		}
		if v[i] != w[i] {
			return v[i] > w[i]
		}
	}
	return true
}

// Register registers the connector, sending only the input fields the
// platform's version knows (an unknown field fails the whole mutation).
func (p *Platform) Register(ctx context.Context, in RegisterInput, version string) (*Registration, error) {
	input := map[string]any{"id": in.ID, "name": in.Name, "type": "INTERNAL_ENRICHMENT", "scope": in.Scope, "auto": in.Auto, "only_contextual": in.OnlyContextual}
	if in.ListenCallbackURI != "" && AtLeast(version, "6.5.7") {
		input["listen_callback_uri"] = in.ListenCallbackURI
	}
	if AtLeast(version, "5.11.0") {
		input["playbook_compatible"] = in.PlaybookCompatible
	}
	if AtLeast(version, "6.8.9") {
		input["auto_update"] = in.AutoUpdate
		input["enrichment_resolution"] = in.EnrichmentResolution
	}
	var out struct {
		RegisterConnector *Registration `json:"registerConnector"`
	}
	if err := p.do(ctx, "registerConnector", registerMutation, map[string]any{"input": input}, &out); err != nil {
		return nil, err
	}
	if out.RegisterConnector == nil || out.RegisterConnector.Config.Listen == "" || out.RegisterConnector.Config.PushRouting == "" {
		return nil, errors.New("opencti: registerConnector: the answer has no queue configuration")
	}
	return out.RegisterConnector, nil
}

// Ping tells the platform the connector is alive and returns the state
// the platform holds.
func (p *Platform) Ping(ctx context.Context, id, state, version string) (*string, error) {
	vars := map[string]any{"id": id, "state": state}
	doc := pingMutationLegacy
	if AtLeast(version, "6.2.12") {
		doc = pingMutation
		vars["connectorInfo"] = map[string]any{"run_and_terminate": false, "buffering": false, "queue_threshold": 500.0, "queue_messages_size": 0.0}
	}
	var out struct {
		PingConnector *struct {
			State *string `json:"connector_state"`
		} `json:"pingConnector"`
	}
	if err := p.do(ctx, "pingConnector", doc, vars, &out); err != nil {
		return nil, err
	}
	if out.PingConnector == nil {
		return nil, nil
	}
	return out.PingConnector.State, nil
}

// WorkToReceived marks a work as being processed.
func (p *Platform) WorkToReceived(ctx context.Context, workID, message string) error {
	return p.do(ctx, "workEdit.toReceived", workToReceivedMutation, map[string]any{"id": workID, "message": message}, nil)
}

// WorkToProcessed ends a work with a message (an error when inError).
func (p *Platform) WorkToProcessed(ctx context.Context, workID, message string, inError bool) error {
	return p.do(ctx, "workEdit.toProcessed", workToProcessedMutation, map[string]any{"id": workID, "message": message, "inError": inError}, nil)
}

// WorkAddExpectations announces n bundles the worker will import.
func (p *Platform) WorkAddExpectations(ctx context.Context, workID string, n int) error {
	return p.do(ctx, "workEdit.addExpectations", workAddExpectationsMutation, map[string]any{"id": workID, "expectations": n}, nil)
}

// WorkPing keeps a long work alive.
func (p *Platform) WorkPing(ctx context.Context, workID string) error {
	return p.do(ctx, "workEdit.ping", workPingMutation, map[string]any{"id": workID}, nil)
}

// WorkProgress is what the platform knows of a work: whether the
// connector already reported its outcome (toProcessed sets
// processed_time) and how many bundles were announced and imported.
type WorkProgress struct {
	// Found is false when the platform has no such work (deleted).
	Found     bool
	Status    string
	Reported  bool
	Expected  int
	Processed int
}

// WorkProgress reads a work's status and expectations (work(id)).
func (p *Platform) WorkProgress(ctx context.Context, workID string) (WorkProgress, error) {
	var out struct {
		Work *struct {
			Status        string  `json:"status"`
			ProcessedTime *string `json:"processed_time"`
			Tracking      *struct {
				Expected  *int `json:"import_expected_number"`
				Processed *int `json:"import_processed_number"`
			} `json:"tracking"`
		} `json:"work"`
	}
	if err := p.do(ctx, "work", workProgressQuery, map[string]any{"id": workID}, &out); err != nil {
		return WorkProgress{}, err
	}
	w := out.Work
	if w == nil {
		return WorkProgress{}, nil
	}
	wp := WorkProgress{Found: true, Status: w.Status, Reported: w.ProcessedTime != nil && *w.ProcessedTime != ""}
	if t := w.Tracking; t != nil {
		if t.Expected != nil {
			wp.Expected = *t.Expected
		}
		if t.Processed != nil {
			wp.Processed = *t.Processed
		}
	}
	return wp, nil
}

// PushBundle sends a whole bundle through the API (CONNECTOR_QUEUE_PROTOCOL=api).
func (p *Platform) PushBundle(ctx context.Context, connectorID string, bundle []byte, workID string) error {
	vars := map[string]any{"connectorId": connectorID, "bundle": string(bundle)}
	if workID != "" {
		vars["work_id"] = workID
	}
	return p.do(ctx, "stixBundlePush", bundlePushMutation, vars, nil)
}

// ImportFile is a file attached to an entity.
type ImportFile struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Size int64  `json:"size"`
}

// ArtifactFiles lists the files attached to an observable (an
// Artifact's content).
func (p *Platform) ArtifactFiles(ctx context.Context, id string) ([]ImportFile, error) {
	var out struct {
		Obs *struct {
			ImportFiles struct {
				Edges []struct {
					Node ImportFile `json:"node"`
				} `json:"edges"`
			} `json:"importFiles"`
		} `json:"stixCyberObservable"`
	}
	if err := p.do(ctx, "stixCyberObservable", artifactFilesQuery, map[string]any{"id": id}, &out); err != nil {
		return nil, err
	}
	if out.Obs == nil {
		return nil, fmt.Errorf("opencti: the entity %s cannot be read (check the connector user's permissions)", id)
	}
	var fs []ImportFile
	for _, e := range out.Obs.ImportFiles.Edges {
		fs = append(fs, e.Node)
	}
	return fs, nil
}

// DownloadFile streams a stored file (GET /storage/get/<id>) to w,
// refusing more than max bytes.
func (p *Platform) DownloadFile(ctx context.Context, fileID string, w io.Writer, max int64) (int64, error) {
	req, err := p.newRequest(ctx, http.MethodGet, p.base+"/storage/get/"+fileID, nil)
	if err != nil {
		return 0, fmt.Errorf("opencti: download %s: %w", fileID, err)
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("opencti: download %s: %w: %w", fileID, ErrPlatformUnavailable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("opencti: download %s: HTTP %d", fileID, resp.StatusCode)
	}
	n, err := io.Copy(w, io.LimitReader(resp.Body, max+1))
	if err != nil {
		return n, fmt.Errorf("opencti: download %s: %w: %w", fileID, ErrPlatformUnavailable, err)
	}
	if n > max {
		return n, fmt.Errorf("opencti: download %s: larger than %d bytes", fileID, max)
	}
	return n, nil
}

// MarkingDefinition reads a marking definition by its id; nil when the
// platform has none (or the connector's user may not see it).
func (p *Platform) MarkingDefinition(ctx context.Context, id string) (*stix.Marking, error) {
	var out struct {
		Marking *stix.Marking `json:"markingDefinition"`
	}
	if err := p.do(ctx, "markingDefinition", markingDefinitionQuery, map[string]any{"id": id}, &out); err != nil {
		return nil, err
	}
	return out.Marking, nil
}

// PlaybookStep is one playbookStepExecution: the step's ids, when its
// message arrived, and the bundles before and after the connector.
type PlaybookStep struct {
	ExecutionID, EventID, DataInstanceID, PlaybookID, PreviousStepID, StepID string
	ExecutionStart                                                           time.Time
	PreviousBundle, Bundle                                                   string
}

// PlaybookStepExecution hands a playbook step's bundle back to the
// platform's playbook engine.
func (p *Platform) PlaybookStepExecution(ctx context.Context, s PlaybookStep) error {
	return p.do(ctx, "playbookStepExecution", playbookStepExecutionMutation, map[string]any{
		"execution_id": s.ExecutionID, "event_id": s.EventID, "execution_start": s.ExecutionStart.Format("2006-01-02T15:04:05.000Z"),
		"data_instance_id": s.DataInstanceID, "playbook_id": s.PlaybookID, "previous_step_id": s.PreviousStepID,
		"step_id": s.StepID, "previous_bundle": s.PreviousBundle, "bundle": s.Bundle,
	}, nil)
}

// EntityStix reads an entity's STIX 2.1 export (what the platform sends as
// stix_entity unless CONNECTOR_ENRICHMENT_RESOLUTION=deferred).
func (p *Platform) EntityStix(ctx context.Context, id string) ([]byte, error) {
	var out struct {
		Object *struct {
			ToStix *string `json:"toStix"`
		} `json:"stixCoreObject"`
	}
	if err := p.do(ctx, "stixCoreObject", entityStixQuery, map[string]any{"id": id}, &out); err != nil {
		return nil, err
	}
	if out.Object == nil || out.Object.ToStix == nil {
		return nil, fmt.Errorf("opencti: Unable to read/access to the entity %s, please check that the connector permission", id)
	}
	return []byte(*out.Object.ToStix), nil
}
