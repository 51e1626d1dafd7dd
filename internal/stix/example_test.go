package stix_test

import (
	"fmt"
	"time"

	"github.com/vtconnector/vtconnector/internal/stix"
)

// An indicator based on an enriched IPv4 address, marked like its source,
// in a bundle.
func Example() {
	now := time.Date(2024, time.May, 1, 10, 20, 30, 0, time.UTC)
	author := stix.NewIdentity("VirusTotal", stix.IdentityClassOrganization, now)

	source := []stix.Marking{{DefinitionType: "TLP", Definition: "TLP:AMBER"}}
	if !stix.TLPAllowed(source, stix.TLPAmber) {
		return
	}
	level, _ := stix.EntityTLP(source)

	ip := stix.NewIPv4Addr("1.2.3.4")
	ind := stix.NewIndicator(stix.IPv4Pattern(ip.Value), stix.PatternTypeSTIX, now)
	ind.CreatedByRef = author.ID
	ind.ObjectMarkingRefs = []string{level.MarkingID()}
	ind.Score = new(80)
	rel := stix.NewRelationship(stix.RelBasedOn, ind.ID, ip.ID, now)

	b := stix.NewBundle(author, ip, ind, rel)
	for _, o := range b.Objects {
		fmt.Println(o.ObjectID())
	}
	fmt.Println(ind.Pattern)
	// Output:
	// identity--173c879a-bfb3-5dee-9f1f-3fffd76a8756
	// ipv4-addr--0198f97b-e65d-5025-87e5-58bc39d4bdb4
	// indicator--274128a4-2ad4-50b5-ae7b-b0dea1fa9861
	// relationship--a787645d-9c70-51d7-b74a-91f3c0a88d3f
	// [ipv4-addr:value = '1.2.3.4']
}
