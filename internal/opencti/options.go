package opencti

// IndicatorPolicy is when and how an Indicator is created for an enriched
// observable (the <kind>_indicator_create_positives, _valid_minutes and
// _detect settings).
type IndicatorPolicy struct {
	// CreatePositives is the number of malicious verdicts from which an
	// Indicator is created; 0 or less disables it.
	CreatePositives int
	// ValidMinutes is the Indicator's validity: valid_until is Now plus
	// this many minutes (the original adds days, §10.9). 0 or less leaves
	// valid_until out, so the platform's decay rules apply.
	ValidMinutes int
	// Detect is the Indicator's x_opencti_detection.
	Detect bool
}

// Options are the enrichment settings of the OpenCTI configuration (the
// caller maps config.OpenCTI to them).
type Options struct {
	// ReplaceWithLowerScore writes the VirusTotal score even when the
	// entity already has a higher one; when false the higher score is kept
	// and a "VirusTotal Score" note records the VirusTotal one.
	ReplaceWithLowerScore bool
	// IncludeAttributesInNote adds the "Attributes Info" block to notes.
	IncludeAttributesInNote bool
	// FileCreateNoteFullReport adds the "VirusTotal Report" note to files.
	FileCreateNoteFullReport bool
	// FileImportYARA turns the crowdsourced YARA rules that matched a file
	// into YARA Indicators.
	FileImportYARA bool

	FileIndicator, IPIndicator, DomainIndicator, URLIndicator IndicatorPolicy

	// IPAddRelationships adds the autonomous system and country of IPv4
	// addresses; DomainAddRelationships adds the A-record IPv4 addresses
	// of domains and hostnames.
	IPAddRelationships, DomainAddRelationships bool
}
