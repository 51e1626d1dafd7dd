// Package tlsca builds the TLS client configuration that verifies a
// server against a private certificate authority's PEM bundle: the one
// way the clients of vtconnector (Carbon Black, OpenCTI) read such a
// bundle. It imports nothing of vtconnector's.
package tlsca

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// Config returns a TLS configuration (TLS 1.2 or later) that trusts the
// certificates of the PEM bundle in file, and only them.
func Config(file string) (*tls.Config, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA bundle %s: no PEM certificate in it", file)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}
