package opencti

import (
	"testing"

	"github.com/vtconnector/vtconnector/internal/vt"
)

// vtSet is one source of VirusTotal answers the Build tests run on, with
// the facts of those answers that the tests expect. The synthetic set is
// the project's own (testdata/vt, see testdata/SOURCES.md) and runs
// everywhere; the real set (../shared/testdata/vt) makes the same tests
// fidelity tests, skipped when ../shared is absent.
type vtSet struct {
	name string
	// load reads a VirusTotal answer of the set by file name.
	load func(t *testing.T, name string) *vt.Object
	// stixFileEntity is the StixFile entity, in the shape pycti sends it,
	// that the score test enriches with maliciousFile.
	stixFileEntity func(t *testing.T, sha256 string) Entity
	// goldenPrefix is put before the golden file names of the set.
	goldenPrefix string

	// maliciousFile is a malicious file report with one YARA match whose
	// ruleset is ruleset (id rulesetID, rule yaraRule).
	maliciousFile, ruleset, rulesetID, yaraRule string
	// maliciousScore is its VirusTotal score, maliciousCount its number of
	// malicious verdicts and maliciousLabels the labels of its tags.
	maliciousScore, maliciousCount int
	maliciousLabels                []any
	// fileNoteHead is how its "VirusTotal Report" note starts: the stats
	// table and the first engine rows, in VirusTotal's order (firstEngine
	// before secondEngine, which a sorted map would swap).
	fileNoteHead, firstEngine, secondEngine string
	// lastSubmission and threatLabel are rows of its attributes block.
	lastSubmission, threatLabel string

	// taggedFile is a file report with several tags and names; cleanFile a
	// clean file report, enriched as an Artifact.
	taggedFile, cleanFile string
	// ip and domain are an IP address and a domain report.
	ip, domain string
	// hostname is a domain report without per-engine results, enriched as
	// a Hostname, and the rows its note must hold.
	hostname, hostnameCreation, hostnameCategoryRow, hostnameStatsRow string
	// url is a malicious URL report (at least 10 malicious verdicts).
	url string
}

var syntheticVTSet = vtSet{
	name:           "synthetic",
	load:           loadVTObject,
	stixFileEntity: syntheticStixFileEntity,
	goldenPrefix:   "synthetic_",

	maliciousFile:   "file_malicious_3510b090_dll.json",
	ruleset:         "yara_ruleset_0fa1c2e3d4.json",
	rulesetID:       "0fa1c2e3d4",
	yaraRule:        "synthetic_dll_loader",
	maliciousScore:  73, // round(11 / (0 + 4 + 11) * 100)
	maliciousCount:  11,
	maliciousLabels: []any{"pedll"},
	fileNoteHead: "| Total Analyses | Malicious | Suspicious | Undetected | Harmless | Timeout | Confirmed timeout | Failure | Unsupported |\n" +
		"|----------------|-----------|------------|------------|----------|---------|-------------------|---------|-------------|\n" +
		"| 20 | 11 | 1 | 4 | 0 | 1 | 1 | 0 | 2 |\n" +
		"\n## Last Analysis Results\n\nAny falsy value will be replaced by 'N/A'\n\n" +
		"| Engine name | Engine version | Method | Category | Result |\n" +
		"|-------------|----------------|--------|----------|--------|\n" +
		"| Zephyr AV | 1.0.100 | blacklist | undetected | N/A |\n" +
		"| Maple Scan | 2.1.101 | blacklist | undetected | N/A |\n" +
		"| Ashford Antivirus | 3.2.102 | blacklist | malicious | Trojan.Synthetic.DLL |\n",
	firstEngine:    "Zephyr AV",
	secondEngine:   "Maple Scan",
	lastSubmission: "2023-11-14T22:13:20Z", // 1700000000
	threatLabel:    "trojan.synthetic/fixture",

	taggedFile:          "file_clean_5c4e305c_apk.json",
	cleanFile:           "file_clean_5c4e305c_apk.json",
	ip:                  "ip_198.51.100.23.json",
	domain:              "domain_example.net.json",
	hostname:            "domain_login-portal.example.json",
	hostnameCreation:    "2024-05-31T16:08:37Z", // 1717171717
	hostnameCategoryRow: "| Alderwood AV | Phishing (Alderwood AV) |",
	hostnameStatsRow:    "| 34 | 4 | 1 | 20 | 9 |",
	url:                 "url_malicious_07e0639e.json",
}

var realVTSet = vtSet{
	name:           "real (fidelity)",
	load:           loadRealVTObject,
	stixFileEntity: hybridFileEntity,
	goldenPrefix:   "",

	maliciousFile:   "file_malicious_4bc00f7d.json",
	ruleset:         "yara_ruleset_00888403c4.json",
	rulesetID:       "00888403c4",
	yaraRule:        "win_kerrdown_auto",
	maliciousScore:  72,
	maliciousCount:  47,
	maliciousLabels: []any{"pedll"},
	fileNoteHead: "| Total Analyses | Malicious | Suspicious | Undetected | Harmless | Timeout | Confirmed timeout | Failure | Unsupported |\n" +
		"|----------------|-----------|------------|------------|----------|---------|-------------------|---------|-------------|\n" +
		"| 74 | 47 | 0 | 18 | 0 | 2 | 1 | 0 | 6 |\n" +
		"\n## Last Analysis Results\n\nAny falsy value will be replaced by 'N/A'\n\n" +
		"| Engine name | Engine version | Method | Category | Result |\n" +
		"|-------------|----------------|--------|----------|--------|\n" +
		"| Bkav | 1.3.0.9899 | blacklist | undetected | N/A |\n" +
		"| Lionic | 4.2 | blacklist | undetected | N/A |\n" +
		"| Elastic | 4.0.29 | blacklist | malicious | malicious (high confidence) |\n",
	firstEngine:    "Bkav",
	secondEngine:   "Lionic",
	lastSubmission: "2020-06-25T23:07:31Z",
	threatLabel:    "trojan.dllhijacker/cometer",

	taggedFile:          "file_malicious_6b60666d_win32exe_yara.json",
	cleanFile:           "file_clean_c99dba3b_android_yara.json",
	ip:                  "ip_138.128.150.133.json",
	domain:              "domain_example.com.json",
	hostname:            "domain_loremipsum-services.net.json",
	hostnameCreation:    "2024-10-22T20:05:09Z",
	hostnameCategoryRow: "| alphaMountain.ai | Phishing (alphaMountain.ai) |",
	hostnameStatsRow:    "| 94 | 10 | 0 | 54 | 30 |",
	url:                 "url_malicious_7d83e9f6.json",
}

// forEachVTSet runs f in a subtest per set: "synthetic" always, and
// "real (fidelity)", which skips when ../shared/testdata/vt is absent.
func forEachVTSet(t *testing.T, f func(t *testing.T, s vtSet)) {
	t.Helper()
	for _, s := range []vtSet{syntheticVTSet, realVTSet} {
		t.Run(s.name, func(t *testing.T) {
			if s.name == realVTSet.name {
				enrShared(t, "testdata/vt")
			}
			f(t, s)
		})
	}
}
