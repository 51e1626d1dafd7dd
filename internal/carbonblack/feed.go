package carbonblack

// The feed follows the Carbon Black feed format of carbonblack/cbfeeds
// (README "Feed Structure" and the validator cbfeeds/feed.py): a document
// {"feedinfo": {...}, "reports": [...]}.

// FeedInfo is the feedinfo object of a Carbon Black feed.
type FeedInfo struct {
	Name        string `json:"name"`
	DisplayName string `json:"display_name"`
	ProviderURL string `json:"provider_url"`
	Summary     string `json:"summary"`
	TechData    string `json:"tech_data"`
	Category    string `json:"category,omitempty"`
	// Icon and IconSmall are base64 PNG, GIF or JPEG images (recommended
	// 370×97 and 100×100).
	Icon           string   `json:"icon,omitempty"`
	IconSmall      string   `json:"icon_small,omitempty"`
	ProviderRating *float64 `json:"provider_rating,omitempty"`
	Version        *float64 `json:"version,omitempty"`
}

// Report is one report of a Carbon Black feed.
type Report struct {
	ID string `json:"id"`
	// Timestamp is when the report last changed, in Unix seconds: Carbon
	// Black's incremental sync only picks up reports whose timestamp moved.
	Timestamp   int64    `json:"timestamp"`
	Link        string   `json:"link"`
	Title       string   `json:"title"`
	Description string   `json:"description,omitempty"`
	Score       int      `json:"score"`
	IOCs        IOCs     `json:"iocs"`
	Tags        []string `json:"tags,omitempty"`
}

// IOCs are the indicators of a report; a match on any of them tags the
// activity with the report.
type IOCs struct {
	MD5    []string  `json:"md5,omitempty"`
	SHA256 []string  `json:"sha256,omitempty"` // Cb Response 7.0+
	IPv4   []string  `json:"ipv4,omitempty"`
	IPv6   []string  `json:"ipv6,omitempty"` // 6.1+
	DNS    []string  `json:"dns,omitempty"`
	JA3    []string  `json:"ja3,omitempty"`  // 7.3+
	JA3S   []string  `json:"ja3s,omitempty"` // 7.3+
	Query  *QueryIOC `json:"query,omitempty"`
}

// QueryIOC is a process ("events") or binary ("modules") search; it must
// be the only IOC of its report.
type QueryIOC struct {
	IndexType   string   `json:"index_type"`
	SearchQuery []string `json:"search_query"`
}

// Feed is a whole feed document.
type Feed struct {
	FeedInfo FeedInfo `json:"feedinfo"`
	Reports  []Report `json:"reports"`
}
