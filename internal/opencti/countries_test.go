package opencti

import (
	"strings"
	"testing"

	"github.com/vtconnector/vtconnector/internal/stix"
)

func TestEnrichCountryNames(t *testing.T) {
	if n := len(countryNames); n != 250 {
		t.Errorf("%d country codes, want the 249 of ISO 3166-1 plus XK", n)
	}
	for code, name := range countryNames {
		if len(code) != 2 || strings.ToUpper(code) != code || name == "" {
			t.Errorf("bad entry %q: %q", code, name)
		}
	}
	if countryNames["GB"] != "United Kingdom" || countryNames["US"] != "United States" {
		t.Error("GB or US misnamed")
	}
	// The reference's Location example: GB named by its code.
	if got := stix.LocationID("GB", "Country"); got != "location--1c83dea3-77ca-5dcf-bee7-47bf6d77c685" {
		t.Errorf("LocationID(GB) = %s", got)
	}
}
