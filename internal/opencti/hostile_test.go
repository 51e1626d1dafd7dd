package opencti

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/vtconnector/vtconnector/internal/engine"
)

func TestHostileEntityTypesShareOneMetricLabel(t *testing.T) {
	if got := metricEntityType("IPv4-Addr"); got != "IPv4-Addr" {
		t.Errorf("a known type became %q", got)
	}
	for _, typ := range []string{"x-attacker-controlled-1", "", strings.Repeat("A", 10000)} {
		if got := metricEntityType(typ); got != "other" {
			t.Errorf("metricEntityType(%.20q) = %q, want other", typ, got)
		}
	}
}

func TestOversizedMessageIsDroppedUndecoded(t *testing.T) {
	w := newOctiWorld(t, nil)
	w.eng.lookup = func(r engine.Request) (engine.Result, error) { return engine.Result{Kind: r.Kind, ID: r.ID}, nil }
	body := []byte(`{"internal":{"work_id":"w-big"},"event":{"entity_id":"ipv4-addr--1f4f2c8a-6a4b-5d3e-9c2a-1b0c9e8d7f6a","entity_type":"IPv4-Addr","stix_entity":"` +
		strings.Repeat(" ", MaxMessageSize) + `"}}`)
	if !w.handle(t.Context(), body) {
		t.Fatal("an oversized message must be acknowledged (it can never be processed)")
	}
	if len(w.eng.calls) != 0 {
		t.Errorf("an oversized message was processed: %v", w.eng.calls)
	}
	if _, ok, _ := w.st.GetItem(t.Context(), KindMessage, "w-big"); ok {
		t.Errorf("an oversized message was parked")
	}
}

func TestIndicatorLookupsAreCapped(t *testing.T) {
	w := newOctiWorld(t, nil)
	w.eng.lookup = func(r engine.Request) (engine.Result, error) { return engine.Result{Kind: r.Kind, ID: r.ID}, nil }
	var terms []string
	for i := range 300 {
		terms = append(terms, fmt.Sprintf("[ipv4-addr:value = '198.51.%d.%d']", i/250, i%250+1))
	}
	ind, _ := json.Marshal(map[string]any{"type": "indicator", "spec_version": "2.1", "id": "indicator--1f4f2c8a-6a4b-5d3e-9c2a-1b0c9e8d7f6a",
		"pattern": strings.Join(terms, " OR "), "pattern_type": "stix", "name": "many"})
	var entity map[string]any
	_ = json.Unmarshal(ind, &entity)
	w.handle(t.Context(), enrichMessage(t, "w-ind", entity, "Indicator"))
	lookups := 0
	for _, c := range w.eng.calls {
		if strings.HasPrefix(c, "lookup ") {
			lookups++
		}
	}
	if lookups == 0 || lookups > MaxIndicatorObservables {
		t.Errorf("%d lookups for an indicator naming 300 observables, want 1 to %d", lookups, MaxIndicatorObservables)
	}
}

func TestBrokerErrorsNeverShowThePassword(t *testing.T) {
	b := Broker{Host: "no such host.invalid", Port: 5672, User: "u", Pass: "br0ker-s3cret/?#"}
	_, err := b.dial()
	if err == nil {
		t.Fatal("dialled a host that does not exist")
	}
	if strings.Contains(err.Error(), "br0ker-s3cret") || strings.Contains(b.Redacted(), "br0ker-s3cret") {
		t.Errorf("the password shows: %v / %s", err, b.Redacted())
	}
}
