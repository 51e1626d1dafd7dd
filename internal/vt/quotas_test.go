package vt

import (
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestOverallQuotasDecoding(t *testing.T) {
	tests := []struct {
		name    string
		fixture string
		want    Quotas
		daily   Quota // Effective, zero when absent
		monthly Quota
	}{
		{
			name:    "group allowance binds when its remainder is smaller",
			fixture: "overall_quotas_group.json",
			want: Quotas{
				Hourly:  QuotaPair{User: &Quota{Allowed: 60_000_000_000}, Group: &Quota{Allowed: 3_300_000, Used: 653, InheritedFrom: "acme"}},
				Daily:   QuotaPair{User: &Quota{Allowed: 1_000_000_000, Used: 17}, Group: &Quota{Allowed: 20_000, Used: 19_990, InheritedFrom: "acme"}},
				Monthly: QuotaPair{User: &Quota{Allowed: 450_000, Used: 137}, Group: &Quota{Allowed: 2_000_000_000, Used: 142_176, InheritedFrom: "acme"}},
			},
			daily:   Quota{Allowed: 20_000, Used: 19_990, InheritedFrom: "acme"},
			monthly: Quota{Allowed: 450_000, Used: 137},
		},
		{
			name:    "public key: user allowances only",
			fixture: "overall_quotas_public.json",
			want: Quotas{
				Hourly:  QuotaPair{User: &Quota{Allowed: 240, Used: 3}},
				Daily:   QuotaPair{User: &Quota{Allowed: 500, Used: 42}},
				Monthly: QuotaPair{User: &Quota{Allowed: 1_000_000_000, Used: 310}},
			},
			daily:   Quota{Allowed: 500, Used: 42},
			monthly: Quota{Allowed: 1_000_000_000, Used: 310},
		},
		{
			name:    "strings, floats, nulls and junk are tolerated",
			fixture: "overall_quotas_odd.json",
			want:    Quotas{Daily: QuotaPair{User: &Quota{Allowed: 750, Used: 12}}},
			daily:   Quota{Allowed: 750, Used: 12},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, err := os.ReadFile("testdata/" + tt.fixture)
			if err != nil {
				t.Fatal(err)
			}
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				if want := "/api/v3/users/" + testKey + "/overall_quotas"; r.URL.Path != want {
					t.Errorf("path %q, want %q", r.URL.Path, want)
				}
				if r.Header.Get("x-apikey") != testKey {
					t.Errorf("x-apikey header missing")
				}
				_, _ = w.Write(body)
			})
			got, err := newTestClient(t, srv).OverallQuotas(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, *got); diff != "" {
				t.Errorf("quotas (-want +got):\n%s", diff)
			}
			d, _ := got.Daily.Effective()
			if d != tt.daily {
				t.Errorf("effective daily %+v, want %+v", d, tt.daily)
			}
			m, _ := got.Monthly.Effective()
			if m != tt.monthly {
				t.Errorf("effective monthly %+v, want %+v", m, tt.monthly)
			}
		})
	}
}

func TestQuotaPairEffective(t *testing.T) {
	tests := []struct {
		name string
		p    QuotaPair
		want Quota
		ok   bool
	}{
		{"neither", QuotaPair{}, Quota{}, false},
		{"zero allowances count as absent", QuotaPair{User: &Quota{}, Group: &Quota{Used: 5}}, Quota{}, false},
		{"user only", QuotaPair{User: &Quota{Allowed: 10, Used: 1}}, Quota{Allowed: 10, Used: 1}, true},
		{"group only", QuotaPair{Group: &Quota{Allowed: 10, Used: 1}}, Quota{Allowed: 10, Used: 1}, true},
		{"user tighter", QuotaPair{User: &Quota{Allowed: 10, Used: 8}, Group: &Quota{Allowed: 100, Used: 50}}, Quota{Allowed: 10, Used: 8}, true},
		{"group tighter", QuotaPair{User: &Quota{Allowed: 100}, Group: &Quota{Allowed: 100, Used: 99}}, Quota{Allowed: 100, Used: 99}, true},
		{"equal remainders: smaller allowance", QuotaPair{User: &Quota{Allowed: 20, Used: 10}, Group: &Quota{Allowed: 15, Used: 5}}, Quota{Allowed: 15, Used: 5}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.p.Effective()
			if got != tt.want || ok != tt.ok {
				t.Errorf("Effective() = %+v, %v; want %+v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
	if !(Quota{Allowed: 5, Used: 5}).Spent() || (Quota{Allowed: 5, Used: 4}).Spent() || (Quota{}).Spent() {
		t.Error("Spent is wrong")
	}
}

func TestOverallQuotasErrorsNeverNameTheKey(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   error
	}{
		{"403 for a key without the privilege", 403, `{"error":{"code":"ForbiddenError","message":"no"}}`, ErrForbidden},
		{"401 wrong key", 401, `{"error":{"code":"WrongCredentialsError","message":"Wrong API key"}}`, ErrAuth},
		{"200 with a truncated body", 200, `{"data":{"api_requests_daily":{"us`, ErrTransient},
		{"200 without data", 200, `{"data":null}`, ErrTransient},
		{"bare 429", 429, ``, ErrQuota},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			})
			_, err := newTestClient(t, srv).OverallQuotas(t.Context())
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			if strings.Contains(err.Error(), testKey) {
				t.Errorf("error names the key: %v", err)
			}
		})
	}
	t.Run("network failure", func(t *testing.T) {
		srv := newServer(t, func(http.ResponseWriter, *http.Request) {})
		c := newTestClient(t, srv)
		srv.Close()
		_, err := c.OverallQuotas(t.Context())
		if !errors.Is(err, ErrTransient) {
			t.Fatalf("error %v, want transient", err)
		}
		if strings.Contains(err.Error(), testKey) {
			t.Errorf("error names the key: %v", err)
		}
	})
}
