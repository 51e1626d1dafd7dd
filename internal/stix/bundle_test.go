package stix

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

type samples struct {
	now             Timestamp
	author          Identity
	indicator, yara Indicator
	note            Note
	basedOn, timed  Relationship
	country         Location
	as              AutonomousSystem
	ipv4            IPv4Addr
	ipv6            IPv6Addr
	domain          DomainName
	hostname        Hostname
	url             URL
	file            File
	artifact        Artifact
	extRef          ExternalReference
	enriched        RawObject
	bundle          Bundle
	typed           []Object
}

// sampleObjects builds one of each type the way the enrichment fills them,
// from a fixed clock.
func sampleObjects(t *testing.T) samples {
	t.Helper()
	now := time.Date(2024, time.May, 1, 10, 20, 30, 123456789, time.UTC)
	const (
		md5    = "44d88612fea8a8f36de82e1278abb02f"
		sha1   = "3395856ce81f2b7382dee72602f798b642f14140"
		sha256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"
	)
	var s samples
	s.now = NewTimestamp(now)
	s.author = NewIdentity("VirusTotal", IdentityClassOrganization, now)
	s.author.Description = "VirusTotal"
	amber := []string{TLPAmber.MarkingID()}
	s.extRef = ExternalReference{SourceName: "VirusTotal", URL: "https://www.virustotal.com/gui/file/" + sha256, Description: "EICAR virus test files"}

	file, err := NewFile(Hashes{HashMD5: md5, HashSHA1: sha1, HashSHA256: sha256}, "eicar.com")
	if err != nil {
		t.Fatal(err)
	}
	file.Size = new(int64(68))
	file.AdditionalNames = []string{"eicar.txt", "eicar_com.zip"}
	file.Score = new(72)
	file.Labels = []string{"peexe", "overlay"}
	file.CreatedByRef = s.author.ID
	file.ExternalReferences = []ExternalReference{s.extRef}
	file.ObjectMarkingRefs = amber
	s.file = file

	s.indicator = NewIndicator(FileHashPattern(HashSHA256, sha256), PatternTypeSTIX, now)
	s.indicator.Name = sha256
	s.indicator.Description = "Created by VirusTotal connector as the positive count was >= 10"
	s.indicator.ValidUntil = NewTimestamp(now.Add(48 * time.Hour))
	s.indicator.CreatedByRef = s.author.ID
	s.indicator.ExternalReferences = []ExternalReference{s.extRef}
	s.indicator.ObjectMarkingRefs = amber
	s.indicator.Labels = []string{"peexe"}
	s.indicator.Score = new(72)
	s.indicator.Detection = new(false)
	s.indicator.MainObservableType = "StixFile"
	s.indicator.KillChainPhases = []KillChainPhase{{KillChainName: "mitre-attack", PhaseName: "execution"}}

	s.yara = NewIndicator("rule EICAR {\n\tstrings:\n\t\t$a = \"X5O!P%@AP\"\n\tcondition:\n\t\t$a\n}", PatternTypeYARA, now)
	s.yara.Name = "EICAR"
	s.yara.ValidFrom = NewTimestamp(time.Unix(1136214245, 0))
	s.yara.MainObservableType = "StixFile"
	s.yara.Score = new(72)
	s.yara.CreatedByRef = s.author.ID

	s.note = NewNote("| Total Analyses | Malicious |\n|---|---|\n| 70 | 60 |", []string{file.ID}, now)
	s.note.Abstract = "VirusTotal Report"
	s.note.CreatedByRef = s.author.ID
	s.note.ObjectMarkingRefs = amber

	s.basedOn = NewRelationship(RelBasedOn, s.indicator.ID, file.ID, now)
	s.basedOn.CreatedByRef = s.author.ID
	s.timed = NewRelationship(RelRelatedTo, file.ID, s.yara.ID, now)
	s.timed.StartTime = NewTimestamp(now.Add(-time.Hour))
	s.timed.StopTime = NewTimestamp(now)
	s.timed.ID = RelationshipID(s.timed.RelationshipType, s.timed.SourceRef, s.timed.TargetRef, s.timed.StartTime.Time, s.timed.StopTime.Time)

	s.country = NewCountry("United Kingdom", "GB", now)
	s.country.CreatedByRef = s.author.ID

	s.as = NewAutonomousSystem(15169)
	s.as.Name = "GOOGLE"
	s.as.RIR = "ARIN"

	s.ipv4 = NewIPv4Addr("8.8.8.8")
	s.ipv4.Score = new(0)
	s.ipv4.CreatedByRef = s.author.ID
	s.ipv4.Extensions = map[string]map[string]any{ExtensionOpenCTISCO: {"extension_type": "property-extension", "score": float64(0)}}
	s.ipv6 = NewIPv6Addr("2001:4860:4860::8888")
	s.domain = NewDomainName("dns.google")
	s.domain.Description = "Google Public DNS"
	s.hostname = NewHostname("www.dns.google")
	s.url = NewURL("https://example.com/it's?a=b")
	s.artifact, err = NewArtifact(Hashes{HashSHA256: sha256}, "https://opencti.example/storage/get/import/Artifact/eicar.com")
	if err != nil {
		t.Fatal(err)
	}
	s.artifact.MimeType = "application/octet-stream"

	// The enriched entity as the platform sends it, with properties the
	// types do not model: it must travel through the bundle unchanged.
	s.enriched, err = ParseObject([]byte(`{
		"id": "file--7b4f5c6b-0f0a-5a6b-8f8f-0a0b0c0d0e0f", "spec_version": "2.1", "type": "file",
		"hashes": {"SHA-256": "` + sha256 + `"},
		"x_opencti_id": "8c555399-ad2c-4862-8113-0889a3c14116", "x_opencti_type": "StixFile",
		"extensions": {"` + ExtensionOpenCTISCO + `": {"extension_type": "property-extension", "score": 72, "labels": ["peexe"]}}
	}`))
	if err != nil {
		t.Fatal(err)
	}

	s.typed = []Object{
		s.author, TLPMarkingDefinition(TLPGreen), s.indicator, s.basedOn, s.yara, s.timed, s.note,
		s.country, s.as, s.ipv4, s.ipv6, s.domain, s.hostname, s.url, s.file, s.artifact,
	}
	s.bundle = NewBundle(append([]Object{s.enriched}, s.typed...)...)
	return s
}

func TestConstructors(t *testing.T) {
	s := sampleObjects(t)
	if s.now.String() != "2024-05-01T10:20:30.123Z" {
		t.Errorf("timestamp = %s", s.now)
	}
	checks := []struct{ name, got, want string }{
		{"indicator id", s.indicator.ID, IndicatorID(s.indicator.Pattern)},
		{"indicator valid_from is now", s.indicator.ValidFrom.String(), s.now.String()},
		{"indicator pattern version", s.indicator.PatternVersion, "2.1"},
		{"yara has no pattern version", s.yara.PatternVersion, ""},
		{"note id hashes created", s.note.ID, NoteID(s.note.Content, s.now.Time)},
		{"relationship id", s.basedOn.ID, RelationshipID(RelBasedOn, s.indicator.ID, s.file.ID, time.Time{}, time.Time{})},
		{"country id from name", s.country.ID, LocationID("united kingdom", LocationTypeCountry)},
		{"country code kept", s.country.Country, "GB"},
		{"country named by code when nameless", NewCountry("", "GB", s.now.Time).ID, "location--1c83dea3-77ca-5dcf-bee7-47bf6d77c685"},
		{"author id", s.author.ID, "identity--173c879a-bfb3-5dee-9f1f-3fffd76a8756"},
		{"file id from MD5", s.file.ID, func() string { id, _ := FileID(Hashes{HashMD5: s.file.Hashes[HashMD5]}, ""); return id }()},
		{"spec version", s.ipv4.SpecVersion + s.indicator.SpecVersion, "2.12.1"},
		{"bundle type", s.bundle.Type, "bundle"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %s, want %s", c.name, c.got, c.want)
		}
	}
	if !s.indicator.Created.Equal(s.indicator.Modified.Time) || !s.note.Created.Equal(s.now.Time) {
		t.Error("created/modified not set from the given clock")
	}
	// Constructors copy the caller's slices and maps.
	refs := []string{"file--a"}
	n := NewNote("x", refs, s.now.Time)
	refs[0] = "changed"
	h := Hashes{HashMD5: "d41d8cd98f00b204e9800998ecf8427e"}
	f, _ := NewFile(h, "")
	h[HashMD5] = "changed"
	if n.ObjectRefs[0] != "file--a" || f.Hashes[HashMD5] == "changed" {
		t.Error("constructor kept a reference to the caller's data")
	}
	if NewBundle(s.typed...).ID != NewBundle(s.typed...).ID || NewBundle(s.typed...).ID == NewBundle(s.typed[1:]...).ID {
		t.Error("bundle id is not derived from the objects")
	}
}

func TestJSONOmitsEmptyAndKeepsZeroValues(t *testing.T) {
	s := sampleObjects(t)
	tests := []struct {
		name    string
		obj     any
		present []string
		absent  []string
	}{
		{"bare indicator", NewIndicator(IPv4Pattern("1.2.3.4"), PatternTypeSTIX, s.now.Time),
			[]string{`"pattern_version":"2.1"`, `"valid_from":"2024-05-01T10:20:30.123Z"`, `"created":"2024-05-01T10:20:30.123Z"`},
			[]string{"labels", "external_references", "object_marking_refs", "valid_until", "x_opencti_score", "x_opencti_detection", "created_by_ref", "kill_chain_phases", "extensions"}},
		{"detection false and score 0 are written", Indicator{Score: new(0), Detection: new(false)},
			[]string{`"x_opencti_score":0`, `"x_opencti_detection":false`}, nil},
		{"bare relationship", NewRelationship(RelBasedOn, "indicator--a", "file--b", s.now.Time),
			nil, []string{"start_time", "stop_time", "description"}},
		{"observable uses OpenCTI's custom properties", s.ipv4,
			[]string{`"x_opencti_score":0`, `"x_opencti_created_by_ref":"identity--`}, []string{`"created_by_ref"`, "x_opencti_labels"}},
		{"bare observable", NewDomainName("example.com"),
			[]string{`"spec_version":"2.1"`}, []string{"x_opencti", "object_marking_refs", "extensions"}},
		{"bundle", Bundle{Type: "bundle", ID: "bundle--x"}, nil, []string{"objects", "spec_version"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := json.Marshal(tt.obj)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range tt.present {
				if !bytes.Contains(data, []byte(p)) {
					t.Errorf("%s lacks %s", data, p)
				}
			}
			for _, a := range tt.absent {
				if bytes.Contains(data, []byte(a)) {
					t.Errorf("%s has %s", data, a)
				}
			}
		})
	}
}

// TestBundleGolden pins the serialised bundle; run with -update to rewrite
// testdata/enrichment_bundle.golden.json after an intended change.
func TestBundleGolden(t *testing.T) {
	s := sampleObjects(t)
	got, err := json.MarshalIndent(s.bundle, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	golden := filepath.Join("testdata", "enrichment_bundle.golden.json")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("bundle differs from %s (-want +got):\n%s", golden, diff)
	}
}

// TestBundleGoldenIsValidSTIX is a fidelity test: the golden bundle
// validates against the official STIX 2.1 schemas of ../shared/spec.
func TestBundleGoldenIsValidSTIX(t *testing.T) {
	golden, err := os.ReadFile(filepath.Join("testdata", "enrichment_bundle.golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := validateBundle(t, json.RawMessage(golden)); err != nil {
		t.Errorf("golden bundle is not valid STIX: %v", err)
	}
}

func TestBundleRoundTrip(t *testing.T) {
	s := sampleObjects(t)
	first, err := json.Marshal(s.bundle)
	if err != nil {
		t.Fatal(err)
	}
	var back Bundle
	if err := json.Unmarshal(first, &back); err != nil {
		t.Fatal(err)
	}
	second, err := json.Marshal(back)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, second) {
		t.Errorf("re-marshalled bundle differs:\n%s\n%s", first, second)
	}
	if back.ID != s.bundle.ID || back.SpecVersion != SpecVersion || len(back.Objects) != len(s.bundle.Objects) {
		t.Fatalf("bundle header or size changed: %+v", back)
	}
	for i, orig := range s.bundle.Objects {
		raw, ok := back.Objects[i].(RawObject)
		if !ok {
			t.Fatalf("object %d decoded as %T, want RawObject", i, back.Objects[i])
		}
		if raw.ObjectID() != orig.ObjectID() || raw.ObjectType() != orig.ObjectType() {
			t.Errorf("object %d: %s %s, want %s %s", i, raw.ObjectType(), raw.ObjectID(), orig.ObjectType(), orig.ObjectID())
		}
		if _, isRaw := orig.(RawObject); isRaw {
			continue
		}
		typed := reflect.New(reflect.TypeOf(orig))
		if err := raw.Decode(typed.Interface()); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(orig, typed.Elem().Interface()); diff != "" {
			t.Errorf("%s changed in the round trip (-want +got):\n%s", orig.ObjectID(), diff)
		}
	}
}

// TestRealBundlesRoundTrip reads pycti's bundles and writes them back
// without losing anything.
func TestRealBundlesRoundTrip(t *testing.T) {
	for _, name := range []string{"pycti_bundle_ids_sample.json", "pycti_bundle_indicator.json", "pycti_bundle_malware_with_sample.json", "pycti_bundle_mono_entity.json", "pycti_bundle_mono_relationship.json"} {
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(sharedFile(t, "testdata/opencti/"+name))
			if err != nil {
				t.Fatal(err)
			}
			var b Bundle
			if err := json.Unmarshal(in, &b); err != nil {
				t.Fatal(err)
			}
			out, err := json.Marshal(b)
			if err != nil {
				t.Fatal(err)
			}
			var want, got map[string]any
			if err := json.Unmarshal(in, &want); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatal(err)
			}
			delete(want, "x_opencti_seq") // bundle-level extras are not kept
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("round trip lost data (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBundleAndObjectDecodingErrors(t *testing.T) {
	for _, in := range []string{`{"type":"report","id":"report--x"}`, `{"type":"bundle","objects":[{"type":"x"}]}`, `{"type":"bundle","objects":[1]}`, `[]`} {
		var b Bundle
		if err := json.Unmarshal([]byte(in), &b); err == nil {
			t.Errorf("Unmarshal(%s) succeeded", in)
		}
	}
	if _, err := json.Marshal(RawObject{}); err == nil {
		t.Error("marshalling an empty RawObject succeeded")
	}
	var ts Timestamp
	for _, in := range []string{`1`, `"yesterday"`, `null`} {
		if err := json.Unmarshal([]byte(in), &ts); err == nil {
			t.Errorf("Timestamp Unmarshal(%s) succeeded", in)
		}
	}
	if err := json.Unmarshal([]byte(`"2022-11-25T20:00:05.5+01:00"`), &ts); err != nil || ts.String() != "2022-11-25T19:00:05.500Z" {
		t.Errorf("Timestamp with offset = %s, %v", ts, err)
	}
}
