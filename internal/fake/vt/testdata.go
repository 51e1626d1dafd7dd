package vt

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// fixtureDoc is the part of a recorded response LoadTestdata reads to know
// where to serve it.
type fixtureDoc struct {
	Data fixtureObject `json:"data"`
}

type fixtureObject struct {
	Type       string `json:"type"`
	ID         string `json:"id"`
	Attributes struct {
		MD5     string          `json:"md5"`
		SHA1    string          `json:"sha1"`
		SHA256  string          `json:"sha256"`
		Size    int64           `json:"size"`
		URL     string          `json:"url"`
		Stats   json.RawMessage `json:"last_analysis_stats"`
		Results json.RawMessage `json:"last_analysis_results"`
	} `json:"attributes"`
}

// parseFixture checks a recorded response is an envelope: a collection
// (data is an array) for resolutions, an object otherwise.
func parseFixture(stem string, body []byte) (*fixtureDoc, error) {
	var top struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &top); err != nil {
		return nil, err
	}
	data := bytes.TrimSpace(top.Data)
	collection := strings.HasPrefix(stem, "ip_resolutions_") || strings.HasPrefix(stem, "domain_resolutions_")
	switch {
	case collection && !bytes.HasPrefix(data, []byte("[")):
		return nil, errors.New(`"data" is not an array`)
	case collection:
		return &fixtureDoc{}, nil
	case !bytes.HasPrefix(data, []byte("{")):
		return nil, errors.New(`"data" is not an object`)
	}
	doc := &fixtureDoc{}
	if err := json.Unmarshal(data, &doc.Data); err != nil {
		return nil, err
	}
	return doc, nil
}

// LoadTestdata serves the recorded responses in dir verbatim, under the
// paths their names and contents give:
//
//	file_*.json                  files/{sha256}, files/{md5}, files/{sha1}
//	ip_<ip>.json                 ip_addresses/<ip>
//	ip_resolutions_<ip>.json     ip_addresses/<ip>/resolutions
//	domain_<d>.json              domains/<d>
//	domain_resolutions_<d>.json  domains/<d>/resolutions
//	url_*.json                   urls/<data.id>, urls/<unpadded base64url of attributes.url>
//	yara_ruleset_*.json          yara_rulesets/<data.id>
//	analysis_*.json              analyses/<data.id>
//
// Other files (error_*.json, SOURCES.md, ...) are ignored. Loaded responses
// take precedence over synthetic objects. It returns how many files it
// loaded; on error nothing from dir is served.
func (s *Server) LoadTestdata(dir string) (int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("fakevt: load testdata: %w", err)
	}
	paths := map[string][]byte{}
	files := map[string]*fixtureFile{}
	urls := map[string]string{}
	loaded := 0
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".json") || strings.HasPrefix(name, "error_") {
			continue
		}
		stem := strings.TrimSuffix(name, ".json")
		if !recognised(stem) {
			continue
		}
		body, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			errs = append(errs, fmt.Errorf("fakevt: load testdata: %w", err))
			continue
		}
		doc, err := parseFixture(stem, body)
		if err != nil {
			errs = append(errs, fmt.Errorf("fakevt: load testdata %s: %w", name, err))
			continue
		}
		keys, err := fixtureKeys(stem, doc)
		if err != nil {
			errs = append(errs, fmt.Errorf("fakevt: load testdata %s: %w", name, err))
			continue
		}
		if keys == nil {
			continue
		}
		for _, k := range keys {
			paths[k] = body
		}
		a := doc.Data.Attributes
		switch {
		case strings.HasPrefix(stem, "file_"):
			f := &fixtureFile{md5: strings.ToLower(a.MD5), sha1: strings.ToLower(a.SHA1),
				sha256: strings.ToLower(a.SHA256), size: a.Size, stats: rawStats(a.Stats),
				results: a.Results, path: keys[0]}
			if f.sha256 == "" {
				f.sha256 = strings.ToLower(doc.Data.ID)
			}
			if f.results == nil {
				f.results = json.RawMessage("{}")
			}
			for _, h := range []string{f.md5, f.sha1, f.sha256} {
				if h != "" {
					files[h] = f
				}
			}
		case strings.HasPrefix(stem, "url_"):
			urls[strings.ToLower(doc.Data.ID)] = a.URL
		}
		loaded++
	}
	if len(errs) > 0 {
		return 0, errors.Join(errs...)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range paths {
		s.fixtures[k] = v
	}
	for k, v := range files {
		s.fixtureFiles[k] = v
	}
	for k, v := range urls {
		s.fixtureURLs[k] = v
	}
	return loaded, nil
}

// fixturePrefixes are the file name prefixes LoadTestdata serves.
var fixturePrefixes = []string{"file_", "ip_", "domain_", "url_", "yara_ruleset_", "analysis_"}

func recognised(stem string) bool {
	for _, p := range fixturePrefixes {
		if strings.HasPrefix(stem, p) {
			return true
		}
	}
	return false
}

// fixtureKeys returns the API paths (without /api/v3/) a recorded response
// is served at, nil for files LoadTestdata ignores.
func fixtureKeys(stem string, doc *fixtureDoc) ([]string, error) {
	id := doc.Data.ID
	a := doc.Data.Attributes
	needID := func(prefix string) ([]string, error) {
		if id == "" {
			return nil, errors.New("data.id is missing")
		}
		return []string{prefix + id}, nil
	}
	switch {
	case strings.HasPrefix(stem, "file_"):
		var keys []string
		for _, h := range []string{a.SHA256, a.MD5, a.SHA1, id} {
			if h, ok := normalizeFileID(h); ok && !contains(keys, "files/"+h) {
				keys = append(keys, "files/"+h)
			}
		}
		if len(keys) == 0 {
			return nil, errors.New("no md5, sha1 or sha256 in data.attributes")
		}
		return keys, nil
	case strings.HasPrefix(stem, "ip_resolutions_"):
		ip, ok := normalizeIP(strings.TrimPrefix(stem, "ip_resolutions_"))
		if !ok {
			return nil, errors.New("file name does not end in a valid IP address")
		}
		return []string{"ip_addresses/" + ip + "/resolutions"}, nil
	case strings.HasPrefix(stem, "ip_"):
		ip, ok := normalizeIP(strings.TrimPrefix(stem, "ip_"))
		if !ok {
			return nil, errors.New("file name does not end in a valid IP address")
		}
		return []string{"ip_addresses/" + ip}, nil
	case strings.HasPrefix(stem, "domain_resolutions_"):
		d, ok := normalizeDomain(strings.TrimPrefix(stem, "domain_resolutions_"))
		if !ok {
			return nil, errors.New("file name does not end in a valid domain")
		}
		return []string{"domains/" + d + "/resolutions"}, nil
	case strings.HasPrefix(stem, "domain_"):
		d, ok := normalizeDomain(strings.TrimPrefix(stem, "domain_"))
		if !ok {
			return nil, errors.New("file name does not end in a valid domain")
		}
		return []string{"domains/" + d}, nil
	case strings.HasPrefix(stem, "url_"):
		keys, err := needID("urls/")
		if err != nil {
			return nil, err
		}
		keys[0] = strings.ToLower(keys[0])
		if a.URL != "" {
			keys = append(keys, "urls/"+base64.RawURLEncoding.EncodeToString([]byte(a.URL)))
		}
		return keys, nil
	case strings.HasPrefix(stem, "yara_ruleset_"):
		keys, err := needID("yara_rulesets/")
		if err != nil {
			return nil, err
		}
		keys[0] = strings.ToLower(keys[0])
		return keys, nil
	case strings.HasPrefix(stem, "analysis_"):
		return needID("analyses/")
	}
	return nil, nil
}
