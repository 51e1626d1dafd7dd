package vt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Lean is the lookup side of a Client (File, IPAddress, Domain, URLByID)
// for callers that read only an object's summary. It decodes the answer
// in one pass into the few attributes a summary shows, skipping the rest
// (per-engine results, names, YARA matches…), which is most of the cost
// of a lookup. Obtain it with Client.Lean.
type Lean struct {
	c       *Client
	keepRaw bool
}

// Lean returns the summary-decoding lookups of c. The objects they return
// have Type, ID, Self and only these attributes: LastAnalysisStats, MD5,
// SHA1, SHA256, MeaningfulName, and PopularThreat's SuggestedThreatLabel.
// With keepRaw, Raw holds the whole "data" member as received (for a
// durable cache, at the price of a second pass); without it Raw is nil.
func (c *Client) Lean(keepRaw bool) *Lean { return &Lean{c: c, keepRaw: keepRaw} }

// File is Client.File, decoded lean.
func (l *Lean) File(ctx context.Context, hash string) (*Object, error) {
	path, err := filePath(hash)
	if err != nil {
		return nil, err
	}
	return l.get(ctx, path)
}

// IPAddress is Client.IPAddress, decoded lean.
func (l *Lean) IPAddress(ctx context.Context, ip string) (*Object, error) {
	path, err := ipPath(ip)
	if err != nil {
		return nil, err
	}
	return l.get(ctx, path)
}

// Domain is Client.Domain, decoded lean.
func (l *Lean) Domain(ctx context.Context, domain string) (*Object, error) {
	path, err := domainPath(domain)
	if err != nil {
		return nil, err
	}
	return l.get(ctx, path)
}

// URLByID is Client.URLByID, decoded lean.
func (l *Lean) URLByID(ctx context.Context, id string) (*Object, error) {
	path, err := urlPath(id)
	if err != nil {
		return nil, err
	}
	return l.get(ctx, path)
}

// leanObject is the part of an object a summary reads.
type leanObject struct {
	Type  string `json:"type"`
	ID    string `json:"id"`
	Links struct {
		Self string `json:"self"`
	} `json:"links"`
	Attributes struct {
		LastAnalysisStats *Stats `json:"last_analysis_stats"`
		MD5               string `json:"md5"`
		SHA1              string `json:"sha1"`
		SHA256            string `json:"sha256"`
		MeaningfulName    string `json:"meaningful_name"`
		PopularThreat     *struct {
			SuggestedThreatLabel string `json:"suggested_threat_label"`
		} `json:"popular_threat_classification"`
	} `json:"attributes"`
}

func (l *Lean) get(ctx context.Context, path string) (*Object, error) {
	body, err := l.c.do(ctx, http.MethodGet, path, l.c.endpoint(path, nil), nil, "", -1, true)
	if err != nil {
		return nil, err
	}
	var (
		lo  leanObject
		raw json.RawMessage
	)
	if l.keepRaw {
		if raw, _, err = decodeEnvelope(http.MethodGet, path, body); err != nil {
			return nil, err
		}
		if err := tolerant(json.Unmarshal(raw, &lo)); err != nil {
			return nil, fmt.Errorf("vt: GET %s: %w: %w", path, ErrTransient, err)
		}
	} else {
		env := struct {
			Data *leanObject `json:"data"`
		}{Data: &lo}
		if err := tolerant(json.Unmarshal(body, &env)); err != nil {
			return nil, fmt.Errorf("vt: GET %s: %w: answer is not JSON: %w", path, ErrTransient, err)
		}
		if env.Data == nil {
			return nil, fmt.Errorf("vt: GET %s: %w: answer has no data", path, ErrTransient)
		}
	}
	if lo.ID == "" {
		return nil, fmt.Errorf("vt: GET %s: %w: %w", path, ErrTransient, errors.New("vt: decode object: missing id"))
	}
	o := &Object{Type: lo.Type, ID: lo.ID, Self: lo.Links.Self, Raw: raw, Private: strings.HasPrefix(lo.Type, "private_")}
	a := &o.Attributes
	la := &lo.Attributes
	a.LastAnalysisStats, a.MD5, a.SHA1, a.SHA256, a.MeaningfulName = la.LastAnalysisStats, la.MD5, la.SHA1, la.SHA256, la.MeaningfulName
	if la.PopularThreat != nil {
		a.PopularThreat = &ThreatClassification{SuggestedThreatLabel: la.PopularThreat.SuggestedThreatLabel}
	}
	return o, nil
}
