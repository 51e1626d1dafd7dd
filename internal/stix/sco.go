package stix

import "maps"

// Hashes maps hash algorithm names (HashMD5, HashSHA256, …) to hex values.
type Hashes map[string]string

// AutonomousSystem is a STIX autonomous-system observable.
type AutonomousSystem struct {
	ObservableCommon
	Number int64  `json:"number"`
	Name   string `json:"name,omitempty"`
	RIR    string `json:"rir,omitempty"`
}

// NewAutonomousSystem returns the autonomous system number with its
// deterministic id.
func NewAutonomousSystem(number int64) AutonomousSystem {
	return AutonomousSystem{ObservableCommon: newObservableCommon("autonomous-system", AutonomousSystemID(number)), Number: number}
}

// IPv4Addr is a STIX ipv4-addr observable.
type IPv4Addr struct {
	ObservableCommon
	Value string `json:"value"`
}

// NewIPv4Addr returns the ipv4-addr value with its deterministic id.
func NewIPv4Addr(value string) IPv4Addr {
	return IPv4Addr{ObservableCommon: newObservableCommon("ipv4-addr", IPv4AddrID(value)), Value: value}
}

// IPv6Addr is a STIX ipv6-addr observable.
type IPv6Addr struct {
	ObservableCommon
	Value string `json:"value"`
}

// NewIPv6Addr returns the ipv6-addr value with its deterministic id.
func NewIPv6Addr(value string) IPv6Addr {
	return IPv6Addr{ObservableCommon: newObservableCommon("ipv6-addr", IPv6AddrID(value)), Value: value}
}

// DomainName is a STIX domain-name observable.
type DomainName struct {
	ObservableCommon
	Value string `json:"value"`
}

// NewDomainName returns the domain-name value with its deterministic id.
func NewDomainName(value string) DomainName {
	return DomainName{ObservableCommon: newObservableCommon("domain-name", DomainNameID(value)), Value: value}
}

// Hostname is OpenCTI's custom hostname observable (type "hostname").
type Hostname struct {
	ObservableCommon
	Value string `json:"value"`
}

// NewHostname returns the hostname value with its deterministic id.
func NewHostname(value string) Hostname {
	return Hostname{ObservableCommon: newObservableCommon("hostname", HostnameID(value)), Value: value}
}

// URL is a STIX url observable.
type URL struct {
	ObservableCommon
	Value string `json:"value"`
}

// NewURL returns the url value with its deterministic id.
func NewURL(value string) URL {
	return URL{ObservableCommon: newObservableCommon("url", URLID(value)), Value: value}
}

// File is a STIX file observable.
type File struct {
	ObservableCommon
	Hashes   Hashes `json:"hashes,omitempty"`
	Size     *int64 `json:"size,omitempty"`
	Name     string `json:"name,omitempty"`
	MimeType string `json:"mime_type,omitempty"`
	// AdditionalNames is x_opencti_additional_names.
	AdditionalNames []string `json:"x_opencti_additional_names,omitempty"`
}

// NewFile returns a file with a copy of hashes, name and its deterministic
// id (FileID). It fails with ErrNoIDProperties when there is no usable hash
// and no name.
func NewFile(hashes Hashes, name string) (File, error) {
	id, err := FileID(hashes, name)
	if err != nil {
		return File{}, err
	}
	return File{ObservableCommon: newObservableCommon("file", id), Hashes: maps.Clone(hashes), Name: name}, nil
}

// Artifact is a STIX artifact observable. STIX requires either payload_bin,
// or url together with hashes.
type Artifact struct {
	ObservableCommon
	MimeType   string `json:"mime_type,omitempty"`
	PayloadBin string `json:"payload_bin,omitempty"`
	URL        string `json:"url,omitempty"`
	Hashes     Hashes `json:"hashes,omitempty"`
	// AdditionalNames is x_opencti_additional_names.
	AdditionalNames []string `json:"x_opencti_additional_names,omitempty"`
}

// NewArtifact returns an artifact with a copy of hashes, url and its
// deterministic id (ArtifactID). It fails with ErrNoIDProperties when there
// is no usable hash and no url.
func NewArtifact(hashes Hashes, url string) (Artifact, error) {
	id, err := ArtifactID(hashes, url)
	if err != nil {
		return Artifact{}, err
	}
	return Artifact{ObservableCommon: newObservableCommon("artifact", id), Hashes: maps.Clone(hashes), URL: url}, nil
}
