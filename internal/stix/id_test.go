package stix

import (
	"errors"
	"testing"
	"time"
)

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustID(t *testing.T) func(string, error) string {
	return func(id string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
}

// TestGoldenIDs checks every vector of opencti-protocol.md §9.3 and the ids
// opencti-virustotal.md §5.11–5.12 computed for the connector's objects.
func TestGoldenIDs(t *testing.T) {
	created := mustTime(t, "2022-11-25T19:00:05.000Z")
	stopped := mustTime(t, "2022-11-26T19:00:05.000Z")
	must := mustID(t)
	const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	tests := []struct {
		name, got, want string
	}{
		// pycti tests/01-unit/stix/test_bundle_ids_rewrite.py, mirrored by the
		// platform's identifier-test.js (opencti-protocol.md §9.3, "From IDT").
		{"campaign by lower-cased name", must(GenerateID("campaign", map[string]any{"name": NormalizeName("attack")})), "campaign--25f21617-8de8-5d5e-8cd4-b7e88547ba76"},
		{"note by content", NoteID("My note content!", time.Time{}), "note--2b4ab5af-2307-58e1-8862-a6a269aae798"},
		{"note by content and created", NoteID("My note content!", created), "note--10861e5c-049e-54f6-9736-81c106e39a0b"},
		{"relationship without times", RelationshipID("based-on", "from_id", "to_id", time.Time{}, time.Time{}), "relationship--0b11fa67-da01-5d34-9864-67d4d71c3740"},
		{"relationship with start time", RelationshipID("based-on", "from_id", "to_id", created, time.Time{}), "relationship--c5e1e2ce-14d6-535b-911d-267e92119e01"},
		{"relationship with start and stop time", RelationshipID("based-on", "from_id", "to_id", created, stopped), "relationship--a7778a7d-a743-5193-9912-89f88f9ed0b4"},
		{"individual identity lower-cases its class", IdentityID("julien", "Individual"), "identity--d969b177-497f-598d-8428-b128c8f5f819"},
		{"city lower-cases its name", LocationID("Lyon", LocationTypeCity), "location--da430873-42c8-57ca-b08b-a797558c6cbd"},
		{"sighting", SightingID("from_id", []string{"to_id"}, time.Time{}, time.Time{}), "sighting--161901df-21bb-527a-b96b-354119279fe2"},
		// opencti-protocol.md §9.3, "Computed here with the §9.1 rule".
		{"organization", IdentityID("filigran", IdentityClassOrganization), "identity--8cb00c79-ab20-5ed4-b37d-337241b96a29"},
		{"country", LocationID("france", LocationTypeCountry), "location--b8d0549f-de06-5ebd-a6e9-d31a581dba5d"},
		{"indicator by pattern", IndicatorID("[ipv4-addr:value = '1.2.3.4']"), "indicator--274128a4-2ad4-50b5-ae7b-b0dea1fa9861"},
		{"autonomous system by number", AutonomousSystemID(15169), "autonomous-system--7afc7bdf-d070-5add-90ff-f93503b1654d"},
		{"ipv4 address by value", IPv4AddrID("1.2.3.4"), "ipv4-addr--0198f97b-e65d-5025-87e5-58bc39d4bdb4"},
		{"domain name by value", DomainNameID("example.com"), "domain-name--bedb4899-d24b-5401-bc86-8f6b4cc18ec7"},
		{"file by MD5", must(FileID(Hashes{HashMD5: "d41d8cd98f00b204e9800998ecf8427e"}, "")), "file--02fff920-f614-527c-81d1-6353633a6d21"},
		{"file by SHA-256", must(FileID(Hashes{HashSHA256: emptySHA256}, "")), "file--22f8ff52-8f62-5f03-a53a-6f50f54fd74c"},
		{"artifact by SHA-256", must(ArtifactID(Hashes{HashSHA256: emptySHA256}, "")), "artifact--22f8ff52-8f62-5f03-a53a-6f50f54fd74c"},
		{"file by name", must(FileID(nil, "evil.exe")), "file--3974613c-1980-5209-8f08-17920a04da04"},
		{"external reference by url", must(ExternalReferenceID("https://example.com/report", "", "")), "external-reference--4d4eeaf9-7eeb-5d7f-9c6a-80a9f6942712"},
		{"external reference by source and external id", must(ExternalReferenceID("", "mitre-attack", "T1059")), "external-reference--aecbe091-f97b-5cc7-8b42-ee9efb0c4a9f"},
		// opencti-virustotal.md §5.11 (author identity) and §5.12.
		{"VirusTotal author organization", IdentityID("VirusTotal", IdentityClassOrganization), "identity--173c879a-bfb3-5dee-9f1f-3fffd76a8756"},
		{"autonomous system 13886", AutonomousSystemID(13886), "autonomous-system--023464f8-3ff7-5e57-b808-ee5527bffd77"},
		{"country named by its ISO code", LocationID("GB", LocationTypeCountry), "location--1c83dea3-77ca-5dcf-bee7-47bf6d77c685"},
		// Fixed TLP ids (identifier.js STATIC_STANDARD_IDS).
		{"TLP:CLEAR marking", MarkingDefinitionID("TLP", "TLP:CLEAR"), "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"},
		{"TLP:WHITE marking shares CLEAR's id", MarkingDefinitionID("TLP", "TLP:WHITE"), "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"},
		{"TLP:GREEN marking", MarkingDefinitionID("TLP", "TLP:GREEN"), "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"},
		{"TLP:AMBER marking", MarkingDefinitionID("TLP", "TLP:AMBER"), "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82"},
		{"TLP:AMBER+STRICT marking in lower case", MarkingDefinitionID("tlp", "tlp:amber+strict"), "marking-definition--826578e1-40ad-459f-bc73-ede076f81f37"},
		{"TLP:RED marking", MarkingDefinitionID("TLP", "TLP:RED"), "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"},
		// Cross-checked with Python's uuid.uuid5 over json.dumps(sort_keys,
		// compact separators, ensure_ascii=False), equal to JCS for these.
		{"non-TLP marking upper-cases both properties", MarkingDefinitionID("pap", "pap:green"), "marking-definition--89484dde-e3d2-547f-a6c6-d14824429eb1"},
		{"kill chain phase", KillChainPhaseID("mitre-attack", "execution"), "kill-chain-phase--59a25637-983b-58e3-9b65-c46debf88307"},
		{"hostname by value", HostnameID("www.example.com"), "hostname--3b96539c-807f-59c9-b4df-fe1865757b1e"},
		{"url with a quote", URLID("https://example.com/a'b"), "url--0fdd286c-649c-5175-bd5d-db79d35805b1"},
		{"ipv6 address by value", IPv6AddrID("2001:db8::1"), "ipv6-addr--6469e3a9-b053-5e34-a025-9396ae051d26"},
		{"note content with quotes and newline", NoteID("VirusTotal \"Report\"\n| a | b |", time.Time{}), "note--e406358e-b9c6-576e-b63b-89c481304ecd"},
		{"name with dotted capital I", LocationID("İstanbul", LocationTypeCity), "location--2619be12-1884-5002-9542-d22e5f36bcb9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %s, want %s", tt.got, tt.want)
			}
		})
	}
}

func TestIDNormalisation(t *testing.T) {
	must := mustID(t)
	md5 := "d41d8cd98f00b204e9800998ecf8427e"
	sha1 := "da39a3ee5e6b4b0d3255bfef95601890afd80709"
	sha256 := "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	tests := []struct {
		name, a, b string
	}{
		{"file id prefers MD5 over SHA-256 and name", must(FileID(Hashes{HashSHA256: sha256, HashMD5: md5}, "x.exe")), must(FileID(Hashes{HashMD5: md5}, ""))},
		{"file id prefers SHA-1 over SHA-256", must(FileID(Hashes{HashSHA256: sha256, HashSHA1: sha1}, "")), must(FileID(Hashes{HashSHA1: sha1}, ""))},
		{"file id upper-cases algorithm names", must(FileID(Hashes{"md5": md5}, "")), must(FileID(Hashes{HashMD5: md5}, ""))},
		{"file id skips empty hashes", must(FileID(Hashes{HashMD5: "", HashSHA256: sha256}, "")), must(FileID(Hashes{HashSHA256: sha256}, ""))},
		{"file id falls back to the name", must(FileID(Hashes{"SHA256": sha256}, "a.exe")), must(FileID(nil, "a.exe"))},
		{"artifact id falls back to the url", must(ArtifactID(nil, "https://x/a")), must(GenerateID("artifact", map[string]any{"url": "https://x/a"}))},
		{"indicator id trims the pattern", IndicatorID("  [url:value = 'a']\n"), IndicatorID("[url:value = 'a']")},
		{"note id trims the content", NoteID("\tabc \n", time.Time{}), NoteID("abc", time.Time{})},
		{"note id uses milliseconds", NoteID("abc", mustTime(t, "2022-11-25T20:00:05.000999+01:00")), NoteID("abc", mustTime(t, "2022-11-25T19:00:05Z"))},
		{"identity id trims and lower-cases", IdentityID("  VirusTotal ", " Organization"), IdentityID("virustotal", "organization")},
		{"observable values are not normalised", DomainNameID("Example.COM"), must(GenerateID("domain-name", map[string]any{"value": "Example.COM"}))},
		{"malware id lower-cases", MalwareID("BasicMalware"), MalwareID("basicmalware")},
		{"empty lists do not contribute", SightingID("from_id", nil, time.Time{}, time.Time{}), must(GenerateID("sighting", map[string]any{"type": "sighting", "sighting_of_ref": "from_id"}))},
		{"relationship stop time counts without a start time", RelationshipID("r", "a", "b", time.Time{}, mustTime(t, "2022-11-26T19:00:05Z")), must(GenerateID("relationship", map[string]any{"relationship_type": "r", "source_ref": "a", "target_ref": "b", "stop_time": "2022-11-26T19:00:05.000Z"}))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.a != tt.b {
				t.Errorf("%s != %s", tt.a, tt.b)
			}
		})
	}
	if DomainNameID("Example.COM") == DomainNameID("example.com") {
		t.Error("domain-name values must not be lower-cased")
	}
}

func TestIDWithoutContributingProperties(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{"file without hash or name", func() error { _, err := FileID(Hashes{"SHA256": "x"}, ""); return err }()},
		{"artifact without hash or url", func() error { _, err := ArtifactID(nil, ""); return err }()},
		{"external reference with source but no external id", func() error { _, err := ExternalReferenceID("", "VirusTotal", ""); return err }()},
		{"new file without hash or name", func() error { _, err := NewFile(nil, ""); return err }()},
		{"new artifact without hash or url", func() error { _, err := NewArtifact(nil, ""); return err }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !errors.Is(tt.err, ErrNoIDProperties) {
				t.Errorf("err = %v, want ErrNoIDProperties", tt.err)
			}
		})
	}
}

func TestIDsAreUUIDv5(t *testing.T) {
	id := IndicatorID("[ipv4-addr:value = '1.2.3.4']")
	// indicator--274128a4-2ad4-50b5-ae7b-b0dea1fa9861: version nibble 5,
	// variant bits 10.
	u := id[len("indicator--"):]
	if u[14] != '5' || (u[19] != '8' && u[19] != '9' && u[19] != 'a' && u[19] != 'b') {
		t.Errorf("%s is not an RFC 4122 version 5 UUID", u)
	}
}

func TestNormalizeName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"  Filigran\t", "filigran"},
		{"VirusTotal", "virustotal"},
		{"İstanbul", "i\u0307stanbul"},
		{"ΟΔΥΣΣΕΥΣ", "οδυσσευς"},
		{"ΣΑΣ ΣΑΣ.", "σας σας."},
		{"Σ", "σ"},
		{"\uFEFF\u00A0name\u3000", "name"},
		{"name\u0085", "name\u0085"}, // NEL is not JavaScript white space
	}
	for _, tt := range tests {
		if got := NormalizeName(tt.in); got != tt.want {
			t.Errorf("NormalizeName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
