package carbonblack

import (
	_ "embed"
	"encoding/base64"
)

// The feed's icons: a blue rounded square with a white chevron (100×100),
// and the same mark followed by "VIRUSTOTAL" in a 5×7 pixel font (370×97,
// the size the feed format recommends). The feedinfo carries them as
// base64 PNG.
var (
	//go:embed icons/virustotal-370x97.png
	iconPNG []byte
	//go:embed icons/virustotal-100x100.png
	iconSmallPNG []byte
)

// DefaultFeedInfo returns the feedinfo of the VirusTotal feed. Its name
// is the original connector's, so that an existing feed registration and
// the alliance_score_virustotalconnector fields carry over.
func DefaultFeedInfo() FeedInfo {
	return FeedInfo{
		Name:        FeedName,
		DisplayName: "VirusTotal",
		ProviderURL: "https://www.virustotal.com/",
		Summary: "vtconnector looks up the binaries your Carbon Black server collects on VirusTotal, " +
			"which scans files with about seventy antivirus engines, and reports the binaries that " +
			"the engines detect as malicious.",
		TechData: "vtconnector queries VirusTotal with a VirusTotal API key of your own. By default only " +
			"hashes (MD5, SHA-256) are sent to VirusTotal; binaries are uploaded only when full-binary " +
			"submission is enabled in the connector's configuration, and uploaded files are shared " +
			"with VirusTotal and its community. No data is shared with Carbon Black.",
		Category:  "Connectors",
		Icon:      base64.StdEncoding.EncodeToString(iconPNG),
		IconSmall: base64.StdEncoding.EncodeToString(iconSmallPNG),
	}
}
