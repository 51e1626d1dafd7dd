package vt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
)

// Quota is one allowance: what the key may use and has used in the
// current window (UTC hour, day or natural month).
type Quota struct {
	Allowed, Used int64
	// InheritedFrom names the group the allowance comes from (group
	// allowances only).
	InheritedFrom string
}

// Spent reports whether the allowance is used up.
func (q Quota) Spent() bool { return q.Allowed > 0 && q.Used >= q.Allowed }

// QuotaPair is a window's allowance for the user and for its group; either
// may be absent (nil).
type QuotaPair struct {
	User, Group *Quota
}

// Effective returns the allowance that binds: the tighter (smaller
// remainder, then smaller allowance) of user and group where both are
// set. ok is false when neither reports an allowance.
func (p QuotaPair) Effective() (q Quota, ok bool) {
	u, g := p.User, p.Group
	if u != nil && u.Allowed <= 0 {
		u = nil
	}
	if g != nil && g.Allowed <= 0 {
		g = nil
	}
	switch {
	case u == nil && g == nil:
		return Quota{}, false
	case u == nil:
		return *g, true
	case g == nil:
		return *u, true
	}
	ru, rg := u.Allowed-u.Used, g.Allowed-g.Used
	if rg < ru || rg == ru && g.Allowed < u.Allowed {
		return *g, true
	}
	return *u, true
}

// Quotas is the key's overall quota summary (GET
// /users/{id}/overall_quotas): the user's own allowance and its group's,
// per hour, day and month. VirusTotal has no per-minute figure here.
type Quotas struct {
	Hourly, Daily, Monthly QuotaPair
}

// overallQuotasLabel names the endpoint in errors and logs: the real path
// holds the API key.
const overallQuotasLabel = "users/{apikey}/overall_quotas"

// OverallQuotas reads the allowances and use of the client's own key.
// Decoding is tolerant: a window or a side that is missing, null or not a
// number is left nil. The key never appears in a returned error.
func (c *Client) OverallQuotas(ctx context.Context) (*Quotas, error) {
	target := c.endpoint("users/"+url.PathEscape(c.key)+"/overall_quotas", nil)
	body, err := c.do(ctx, http.MethodGet, overallQuotasLabel, target, nil, "", -1, true)
	if err != nil {
		return nil, redactURL(err, c.endpoint(overallQuotasLabel, nil))
	}
	data, _, err := decodeEnvelope(http.MethodGet, overallQuotasLabel, body)
	if err != nil {
		return nil, err
	}
	q, err := DecodeQuotas(data)
	if err != nil {
		return nil, fmt.Errorf("vt: GET %s: %w: %w", overallQuotasLabel, ErrTransient, err)
	}
	return q, nil
}

// redactURL rebuilds a transport error, whose text quotes the URL (and so
// the key), around the URL label instead, keeping its class.
func redactURL(err error, label string) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	red := &url.Error{Op: ue.Op, URL: label, Err: ue.Err}
	for _, class := range []error{ErrDeadlineExceeded, ErrTransient} {
		if errors.Is(err, class) {
			return fmt.Errorf("vt: GET %s: %w: %w", overallQuotasLabel, class, red)
		}
	}
	return fmt.Errorf("vt: GET %s: %w", overallQuotasLabel, red)
}

// DecodeQuotas decodes the "data" member of an overall_quotas answer.
func DecodeQuotas(data []byte) (*Quotas, error) {
	var raw struct {
		Hourly  rawPair `json:"api_requests_hourly"`
		Daily   rawPair `json:"api_requests_daily"`
		Monthly rawPair `json:"api_requests_monthly"`
	}
	if err := tolerant(json.Unmarshal(data, &raw)); err != nil {
		return nil, fmt.Errorf("decode quotas: %w", err)
	}
	return &Quotas{Hourly: raw.Hourly.pair(), Daily: raw.Daily.pair(), Monthly: raw.Monthly.pair()}, nil
}

type rawPair struct {
	User  json.RawMessage `json:"user"`
	Group json.RawMessage `json:"group"`
}

func (p rawPair) pair() QuotaPair {
	return QuotaPair{User: decodeQuota(p.User), Group: decodeQuota(p.Group)}
}

// decodeQuota reads one allowance; nil when it has no usable allowed.
func decodeQuota(b json.RawMessage) *Quota {
	var raw struct {
		Allowed       json.RawMessage `json:"allowed"`
		Used          json.RawMessage `json:"used"`
		InheritedFrom json.RawMessage `json:"inherited_from"`
	}
	if len(b) == 0 || json.Unmarshal(b, &raw) != nil {
		return nil
	}
	allowed, ok := count(raw.Allowed)
	if !ok {
		return nil
	}
	used, _ := count(raw.Used)
	q := &Quota{Allowed: allowed, Used: used}
	_ = json.Unmarshal(raw.InheritedFrom, &q.InheritedFrom)
	return q
}

// count reads a non-negative integer given as a JSON number (integral or
// not) or a numeric string; false when absent or unreadable.
func count(b json.RawMessage) (int64, bool) {
	b = bytes.TrimSpace(b)
	if len(b) > 1 && b[0] == '"' {
		var s string
		if json.Unmarshal(b, &s) != nil {
			return 0, false
		}
		b = []byte(s)
	}
	if n, err := strconv.ParseInt(string(b), 10, 64); err == nil {
		return n, n >= 0
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(f) || f < 0 {
		return 0, false
	}
	if f >= math.MaxInt64 {
		return math.MaxInt64, true
	}
	return int64(f), true
}
