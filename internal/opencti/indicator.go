package opencti

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vtconnector/vtconnector/internal/stix"
	"github.com/vtconnector/vtconnector/internal/vt"
)

// autoIndicator creates the Indicator of an observable whose malicious
// count reaches the threshold (§5.5), with an escaped pattern (§10.10) and
// valid_until in minutes (§10.9). Not in Indicator mode.
func (b *builder) autoIndicator(p IndicatorPolicy) {
	if b.indMode || p.CreatePositives <= 0 || b.a.LastAnalysisStats == nil || b.a.LastAnalysisStats.Malicious < p.CreatePositives {
		return
	}
	var pattern string
	switch b.obs.Type {
	case TypeStixFile, TypeArtifact:
		sha256 := strings.ToLower(b.a.SHA256)
		if sha256 == "" || !vt.IsHash(sha256) || len(sha256) != 64 {
			lk, _ := LookupFor(b.obs)
			sha256 = lk.ID
		}
		algo := map[int]string{64: stix.HashSHA256, 40: stix.HashSHA1, 32: stix.HashMD5}[len(sha256)]
		pattern = stix.FileHashPattern(algo, sha256)
	case TypeIPv4Addr:
		pattern = stix.IPv4Pattern(b.obs.Value())
	case TypeDomainName, TypeHostname:
		// The original uses the domain-name pattern for hostnames too.
		pattern = stix.DomainNamePattern(b.obs.Value())
	case TypeURL:
		pattern = stix.URLPattern(b.obs.Value())
	}
	ind := stix.NewIndicator(pattern, stix.PatternTypeSTIX, b.in.Now)
	ind.Name = b.obs.Value()
	ind.Description = fmt.Sprintf("Created by VirusTotal connector as the positive count was >= %d", p.CreatePositives)
	if p.ValidMinutes > 0 {
		ind.ValidUntil = stix.NewTimestamp(b.in.Now.Add(time.Duration(p.ValidMinutes) * time.Minute))
	} else {
		b.warn("indicator valid minutes is %d: valid_until left out", p.ValidMinutes)
	}
	ind.CreatedByRef = b.author
	if b.extRef != nil {
		ind.ExternalReferences = []stix.ExternalReference{*b.extRef}
	}
	ind.ObjectMarkingRefs = slices.Clone(b.markings)
	ind.MainObservableType = b.obs.Type
	ind.Detection = new(p.Detect)
	ind.Score = b.scorePtr()
	b.add(ind)
	b.add(b.relationship(stix.RelBasedOn, ind.ID, b.obs.ID))
}
