package carbonblack

import (
	"path/filepath"
	"testing"
)

// binaryQuery is a query over a binary set and the md5s it selects, in
// md5 order.
type binaryQuery struct {
	q    string
	want []string
}

// binarySet is a directory of binary summary documents (GET
// /api/v1/binary/{md5}/summary bodies) that LoadTestdata loads, with facts
// the tests expect of them. The synthetic set is the project's own
// (testdata/binary_metadata, see testdata/SOURCES.md); the real one
// (../shared/testdata/cb/binary_metadata, Cb Response data of 2015) makes
// the same tests fidelity tests.
type binarySet struct {
	name string
	dir  string // "" for ../shared/testdata/cb/binary_metadata
	// notCopied is a binary whose copied_mod_len is 0; copied one whose
	// bytes the server has, copiedLen of them.
	notCopied, copied string
	copiedLen         int
	queries           []binaryQuery
}

var binarySets = []binarySet{
	{
		name: "synthetic", dir: filepath.Join("testdata", "binary_metadata"),
		notCopied: "1FEFD0EF808FB34C3A57BAF018675756", copied: "3FBB5CDCE872ADD6110C47CEA8E9705D", copiedLen: 81920,
		queries: []binaryQuery{
			{"alliance_score_virustotal:*", []string{"A1EBB5FBFFA7362D3C50978E162AE1FB", "F73FBD3A4AA8C56D06E40D591A7EC628"}},
			{`digsig_publisher:"Contoso Ltd"`, []string{"A1EBB5FBFFA7362D3C50978E162AE1FB", "DE4DE6E4CF94F7B482324893AE4C4E50"}},
			{"server_added_timestamp:[2023-06-01 TO *]", []string{"640065C6925CCA73401400D9572C0ADF", "DE4DE6E4CF94F7B482324893AE4C4E50"}},
			{"observed_filename:updater.exe", []string{"A1EBB5FBFFA7362D3C50978E162AE1FB"}},
			{"copied_mod_len:0", []string{"1FEFD0EF808FB34C3A57BAF018675756", "640065C6925CCA73401400D9572C0ADF"}},
			{"hostname:FIXTURE-WS01 orig_mod_len:[1000000 TO *]", []string{"1FEFD0EF808FB34C3A57BAF018675756"}},
			{"watchlist_3:[2023-05-04T10:00:00.125Z TO 2023-05-04T10:00:00.125Z] -is_executable_image:true alliance_score_virustotal:1", []string{"F73FBD3A4AA8C56D06E40D591A7EC628"}},
			{"watchlist_3:{2023-05-04T10:00:00.125Z TO 2023-05-04T10:00:00.126Z]", nil},
		},
	},
	{
		name:      "real (fidelity)",
		notCopied: "0D3C6E1A7EBD401F46E00EDBD61D1A72", copied: "00695B9C2DB6111064499C529E90C042", copiedLen: 81920,
		queries: []binaryQuery{
			{"alliance_score_virustotal:*", []string{"98FA788238E71D9563D4BF177A4FC22C", "BC9503A901A545FAD807909F8C86B286"}},
			{`digsig_publisher:"Google Inc"`, []string{"98FA788238E71D9563D4BF177A4FC22C", "9CA401B56526181DFDAE2C8DDBC8229D"}},
			{"server_added_timestamp:[2015-07-27 TO *]", []string{"9CA401B56526181DFDAE2C8DDBC8229D", "DE4B36CC27AA307D45EC4FB888DF882D"}},
			{"observed_filename:chrome.exe", []string{"98FA788238E71D9563D4BF177A4FC22C"}},
			{"copied_mod_len:0", []string{"0D3C6E1A7EBD401F46E00EDBD61D1A72", "1AFB56F8A39455ACBAB16A29A45C30AC"}},
			{"hostname:JASON-WIN81-VM orig_mod_len:[1000000 TO *]", []string{"8387AF7783F772EC1D208409080CB5B8"}},
			{"watchlist_3:[2015-07-09T22:00:05.425Z TO 2015-07-09T22:00:05.425Z] -is_executable_image:true alliance_score_virustotal:1", []string{"BC9503A901A545FAD807909F8C86B286"}},
			{"watchlist_3:{2015-07-09T22:00:05.425Z TO 2015-07-09T22:00:05.426Z]", nil},
		},
	},
}

// forEachBinarySet runs f in a subtest per binary set; the real one skips
// when ../shared/testdata/cb/binary_metadata is absent.
func forEachBinarySet(t *testing.T, f func(t *testing.T, set binarySet)) {
	t.Helper()
	for _, set := range binarySets {
		t.Run(set.name, func(t *testing.T) {
			if set.dir == "" {
				set.dir = cbFile(t, "binary_metadata")
			}
			f(t, set)
		})
	}
}
