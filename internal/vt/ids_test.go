package vt

import (
	"encoding/base64"
	"strings"
	"testing"
)

// stdToURLUnpadded turns standard base64 into unpadded base64url by hand
// (RFC 4648 §5 alphabet, padding dropped): an independent reference for
// URLID.
func stdToURLUnpadded(s string) string {
	return strings.NewReplacer("+", "-", "/", "_", "=", "").Replace(s)
}

func TestURLID(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		stdHas  string // characters the standard base64 of url must contain
		knownID string // known answer (computed outside Go), when given
	}{
		{"plain URL of the shared sample", "http://soclosebutyetqq.com/69.exe", "", "aHR0cDovL3NvY2xvc2VidXR5ZXRxcS5jb20vNjkuZXhl"},
		{"standard base64 has + / and one =", "https://example.com/?q=>>>", "+/=", "aHR0cHM6Ly9leGFtcGxlLmNvbS8_cT0-Pj4"},
		{"standard base64 has + and =", "https://example.com/~~~", "+=", "aHR0cHM6Ly9leGFtcGxlLmNvbS9-fn4"},
		{"standard base64 has / and ==", "http://a.b/?x=\u00ff", "/=", "aHR0cDovL2EuYi8_eD3Dvw"},
		{"standard base64 has / and =", "http://example.com/path?<>", "/=", ""},
		{"query with & and =", "https://example.com/a?b=c&d=e", "=", ""},
		{"URL as given, not canonicalised", "HTTP://Example.COM", "", ""},
		{"empty", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			std := base64.StdEncoding.EncodeToString([]byte(tt.url))
			for _, c := range tt.stdHas {
				if !strings.ContainsRune(std, c) {
					t.Fatalf("bad test case: standard base64 %q of %q has no %q", std, tt.url, c)
				}
			}
			got := URLID(tt.url)
			if want := stdToURLUnpadded(std); got != want {
				t.Errorf("URLID(%q) = %q, want %q", tt.url, got, want)
			}
			if tt.knownID != "" && got != tt.knownID {
				t.Errorf("URLID(%q) = %q, want known %q", tt.url, got, tt.knownID)
			}
			if strings.ContainsAny(got, "+/=") {
				t.Errorf("URLID(%q) = %q has characters outside unpadded base64url", tt.url, got)
			}
			back, err := base64.RawURLEncoding.DecodeString(got)
			if err != nil || string(back) != tt.url {
				t.Errorf("URLID(%q) decodes to %q, %v", tt.url, back, err)
			}
		})
	}
}

func TestIsHash(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{"546bb6ef89bebfb053999777f6930d7e", true},                                  // MD5
		{"44392b16e2db656104579e83d603b363bf91ccb2", true},                          // SHA-1
		{"4bc00f7d638e042da764e8648c03c0db46700599dd4f08d117e3e9e8b538519b", true},  // SHA-256
		{"4BC00F7D638E042DA764E8648C03C0DB46700599DD4F08D117E3E9E8B538519B", true},  // upper case
		{"546bb6ef89bebfb053999777f6930d7", false},                                  // 31
		{"546bb6ef89bebfb053999777f6930d7e0", false},                                // 33
		{"4bc00f7d638e042da764e8648c03c0db46700599dd4f08d117e3e9e8b538519g", false}, // g
		{strings.Repeat("a", 128), false},                                           // SHA-512 not accepted
		{strings.Repeat("a", 56), false},                                            // SHA-224
		{" 546bb6ef89bebfb053999777f6930d7e", false},
		{"546bb6ef89bebfb05399977-f6930d7e", false},
		{"", false},
		{strings.Repeat("é", 16), false}, // 32 bytes, not hex
	}
	for _, tt := range tests {
		if got := IsHash(tt.s); got != tt.want {
			t.Errorf("IsHash(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}

func TestNormalizeDomain(t *testing.T) {
	label63 := strings.Repeat("a", 63)
	long := strings.Join([]string{label63, label63, label63, strings.Repeat("b", 61)}, ".") // 253
	tests := []struct {
		name, in, want string
		wantErr        bool
	}{
		{name: "valid", in: "example.com", want: "example.com"},
		{name: "sub-domain with hyphen and digits", in: "a-1.b2.example.co.uk", want: "a-1.b2.example.co.uk"},
		{name: "underscore label", in: "_dmarc.example.com", want: "_dmarc.example.com"},
		{name: "trailing dot dropped", in: "example.com.", want: "example.com"},
		{name: "upper case lowered", in: "WWW.Example.COM", want: "www.example.com"},
		{name: "spaces trimmed", in: "  example.com\n", want: "example.com"},
		{name: "punycode", in: "xn--80ak6aa92e.com", want: "xn--80ak6aa92e.com"},
		{name: "exactly 253 characters", in: long, want: long},
		{name: "253 characters and a trailing dot", in: long + ".", want: long},
		{name: "254 characters", in: long + "b", wantErr: true},
		{name: "63-character label", in: label63 + ".com", want: label63 + ".com"},
		{name: "64-character label", in: label63 + "a.com", wantErr: true},
		{name: "IPv4 rejected", in: "192.168.1.1", wantErr: true},
		{name: "IPv6 rejected", in: "2001:db8::1", wantErr: true},
		{name: "single label", in: "localhost", wantErr: true},
		{name: "empty", in: "", wantErr: true},
		{name: "only a dot", in: ".", wantErr: true},
		{name: "empty label", in: "example..com", wantErr: true},
		{name: "leading dot", in: ".example.com", wantErr: true},
		{name: "two trailing dots", in: "example.com..", wantErr: true},
		{name: "leading hyphen", in: "-bad.example.com", wantErr: true},
		{name: "trailing hyphen", in: "bad-.example.com", wantErr: true},
		{name: "space inside", in: "exa mple.com", wantErr: true},
		{name: "URL rejected", in: "http://example.com", wantErr: true},
		{name: "path rejected", in: "example.com/x", wantErr: true},
		{name: "port rejected", in: "example.com:443", wantErr: true},
		{name: "unicode rejected", in: "bücher.de", wantErr: true},
		{name: "wildcard rejected", in: "*.example.com", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormalizeDomain(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Errorf("NormalizeDomain(%q) = %q, want an error", tt.in, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("NormalizeDomain(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestNormalizeIP(t *testing.T) {
	tests := []struct {
		name, in, want string
		wantErr        bool
	}{
		{name: "IPv4", in: "8.8.8.8", want: "8.8.8.8"},
		{name: "IPv4 with spaces", in: " 23.129.64.215\t", want: "23.129.64.215"},
		{name: "IPv6 compressed", in: "2001:0db8:0000:0000:0000:0000:0000:0001", want: "2001:db8::1"},
		{name: "IPv6 upper case", in: "2001:DB8::A", want: "2001:db8::a"},
		{name: "IPv6 loopback", in: "::1", want: "::1"},
		{name: "v4-mapped IPv6 unmapped", in: "::ffff:138.128.150.133", want: "138.128.150.133"},
		{name: "v4-mapped in hex unmapped", in: "::ffff:c0a8:0101", want: "192.168.1.1"},
		{name: "IPv6 with zone rejected", in: "fe80::1%eth0", wantErr: true},
		{name: "IPv4 leading zeros rejected", in: "010.1.1.1", wantErr: true},
		{name: "three octets rejected", in: "1.2.3", wantErr: true},
		{name: "octet out of range", in: "256.1.1.1", wantErr: true},
		{name: "bracketed", in: "[::1]", wantErr: true},
		{name: "CIDR rejected", in: "10.0.0.0/8", wantErr: true},
		{name: "with port rejected", in: "1.2.3.4:80", wantErr: true},
		{name: "domain rejected", in: "example.com", wantErr: true},
		{name: "empty", in: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormalizeIP(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Errorf("NormalizeIP(%q) = %q, want an error", tt.in, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("NormalizeIP(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseQuery(t *testing.T) {
	tests := []struct {
		name, in  string
		wantKind  Kind
		wantValue string
		wantErr   bool
	}{
		{name: "MD5", in: "546BB6EF89BEBFB053999777F6930D7E", wantKind: KindFile, wantValue: "546bb6ef89bebfb053999777f6930d7e"},
		{name: "SHA-1", in: "44392b16e2db656104579e83d603b363bf91ccb2", wantKind: KindFile, wantValue: "44392b16e2db656104579e83d603b363bf91ccb2"},
		{name: "SHA-256 with spaces", in: "  4bc00f7d638e042da764e8648c03c0db46700599dd4f08d117e3e9e8b538519b\n", wantKind: KindFile, wantValue: "4bc00f7d638e042da764e8648c03c0db46700599dd4f08d117e3e9e8b538519b"},
		{name: "IPv4", in: "138.128.150.133", wantKind: KindIP, wantValue: "138.128.150.133"},
		{name: "IPv6", in: "2001:DB8:0:0::1", wantKind: KindIP, wantValue: "2001:db8::1"},
		{name: "bracketed IPv6", in: "[::1]", wantKind: KindIP, wantValue: "::1"},
		{name: "v4-mapped IPv6", in: "::ffff:8.8.8.8", wantKind: KindIP, wantValue: "8.8.8.8"},
		{name: "domain", in: "Example.COM.", wantKind: KindDomain, wantValue: "example.com"},
		{name: "sub-domain", in: "loremipsum-services.net", wantKind: KindDomain, wantValue: "loremipsum-services.net"},
		{name: "URL with scheme kept as given", in: "http://soclosebutyetqq.com/69.exe", wantKind: KindURL, wantValue: "http://soclosebutyetqq.com/69.exe"},
		{name: "https URL with query", in: "https://Example.com/a?b=c#frag", wantKind: KindURL, wantValue: "https://Example.com/a?b=c#frag"},
		{name: "host and path without scheme", in: "soclosebutyetqq.com/69.exe", wantKind: KindURL, wantValue: "http://soclosebutyetqq.com/69.exe"},
		{name: "host and query without scheme", in: "example.com?x=1", wantKind: KindURL, wantValue: "http://example.com?x=1"},
		{name: "IP and path without scheme", in: "1.2.3.4/admin", wantKind: KindURL, wantValue: "http://1.2.3.4/admin"},
		{name: "garbage", in: "not a thing!", wantErr: true},
		{name: "64 non-hex characters", in: strings.Repeat("z", 64), wantErr: true},
		{name: "32 non-hex characters", in: strings.Repeat("g", 32), wantErr: true},
		{name: "empty", in: "   ", wantErr: true},
		{name: "scheme without host", in: "http://", wantErr: true},
		{name: "scheme with a bad URL", in: "http://exa mple.com:xx/", wantErr: true},
		{name: "single label", in: "localhost", wantErr: true},
		{name: "IPv6 with zone", in: "fe80::1%eth0", wantErr: true},
		{name: "path after a non-host", in: "not a host/path", wantErr: true},
		{name: "SHA-512 is not a file hash", in: strings.Repeat("ab", 64), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, v, err := ParseQuery(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Errorf("ParseQuery(%q) = %q, %q; want an error", tt.in, k, v)
				}
				return
			}
			if err != nil || k != tt.wantKind || v != tt.wantValue {
				t.Errorf("ParseQuery(%q) = %q, %q, %v; want %q, %q", tt.in, k, v, err, tt.wantKind, tt.wantValue)
			}
			if !k.Valid() {
				t.Errorf("kind %q is not Valid", k)
			}
		})
	}
}

func TestGUILink(t *testing.T) {
	const sha = "7d83e9f686ff0122ded311f27aababf6922800a45a23a4dacc860b56ccada4cb"
	tests := []struct {
		kind Kind
		id   string
		want string
	}{
		{KindFile, "4BC00F7D638E042DA764E8648C03C0DB46700599DD4F08D117E3E9E8B538519B", "https://www.virustotal.com/gui/file/4bc00f7d638e042da764e8648c03c0db46700599dd4f08d117e3e9e8b538519b"},
		{KindIP, "138.128.150.133", "https://www.virustotal.com/gui/ip-address/138.128.150.133"},
		{KindIP, "2001:db8::1", "https://www.virustotal.com/gui/ip-address/2001:db8::1"},
		{KindDomain, "example.com", "https://www.virustotal.com/gui/domain/example.com"},
		{KindURL, sha, "https://www.virustotal.com/gui/url/" + sha},
		{KindURL, "http://x.com/a?b", "https://www.virustotal.com/gui/url/http:%2F%2Fx.com%2Fa%3Fb"},
		{Kind("analysis"), "x", ""},
		{Kind(""), "x", ""},
	}
	for _, tt := range tests {
		if got := GUILink(tt.kind, tt.id); got != tt.want {
			t.Errorf("GUILink(%q, %q) = %q, want %q", tt.kind, tt.id, got, tt.want)
		}
	}
	for k, want := range map[Kind]bool{KindFile: true, KindIP: true, KindDomain: true, KindURL: true, "analysis": false, "": false, "File": false} {
		if k.Valid() != want {
			t.Errorf("Kind(%q).Valid() = %v, want %v", k, !want, want)
		}
	}
}
