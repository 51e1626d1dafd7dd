package opencti

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vtconnector/vtconnector/internal/config"
)

func testCert(t *testing.T) (certPEM string, key *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "client"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), key
}

func TestBrokerTLSReadsPycticsSettings(t *testing.T) {
	certPEM, key := testCert(t)
	ecDER, _ := x509.MarshalECPrivateKey(key)
	plain := string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER}))
	//nolint:staticcheck // the legacy encryption pycti's passphrase is for
	encBlock, err := x509.EncryptPEMBlock(rand.Reader, "EC PRIVATE KEY", ecDER, []byte("s3cret"), x509.PEMCipherAES256)
	if err != nil {
		t.Fatal(err)
	}
	encrypted := string(pem.EncodeToMemory(encBlock))
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, []byte(certPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		mq    config.MQ
		error string // "" = loads
	}{
		{"nothing set", config.MQ{}, ""},
		{"CA from a file, client certificate as PEM text", config.MQ{SSLCA: caFile, SSLCert: certPEM, SSLKey: config.Secret(plain)}, ""},
		{"legacy encrypted key with its passphrase", config.MQ{SSLCert: certPEM, SSLKey: config.Secret(encrypted), SSLPassphrase: "s3cret"}, ""},
		{"legacy encrypted key, wrong passphrase", config.MQ{SSLCert: certPEM, SSLKey: config.Secret(encrypted), SSLPassphrase: "nope"}, "passphrase"},
		{"encrypted key without passphrase", config.MQ{SSLCert: certPEM, SSLKey: config.Secret(encrypted)}, "no passphrase"},
		{"encrypted PKCS#8 refused", config.MQ{SSLCert: certPEM, SSLKey: "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"}, "PKCS#8"},
		{"missing CA file", config.MQ{SSLCA: filepath.Join(dir, "none.pem")}, "MQ_USE_SSL_CA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc, err := BrokerTLS(tt.mq)
			if tt.error != "" {
				if err == nil || !strings.Contains(err.Error(), tt.error) {
					t.Errorf("error %v, want one saying %q", err, tt.error)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.mq.SSLCA != "" && tc.RootCAs == nil {
				t.Error("the CA is not trusted")
			}
			if tt.mq.SSLCert != "" && len(tc.Certificates) != 1 {
				t.Error("no client certificate")
			}
		})
	}
}
