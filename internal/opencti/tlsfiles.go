package opencti

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"strings"
)

// TLS material is given as pycti takes it: PEM text, or the path of a PEM
// file.

// pemData returns the PEM text of value: itself when it starts with
// "-----BEGIN", else the content of the file it names.
func pemData(what, value string) ([]byte, error) {
	if strings.HasPrefix(strings.TrimSpace(value), "-----BEGIN") {
		return []byte(value), nil
	}
	b, err := os.ReadFile(value)
	if err != nil {
		return nil, fmt.Errorf("opencti: %s: %w", what, err)
	}
	return b, nil
}

// certPool reads CA certificates.
func certPool(what, value string) (*x509.CertPool, error) {
	data, err := pemData(what, value)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("opencti: %s: no PEM certificate found", what)
	}
	return pool, nil
}

// keyPair reads a certificate chain and its private key; passphrase
// decrypts a key in the legacy encrypted PEM format ("Proc-Type:
// 4,ENCRYPTED"). An encrypted PKCS#8 key is refused with a clear error.
func keyPair(what, cert, key, passphrase string) (tls.Certificate, error) {
	certPEM, err := pemData(what+" certificate", cert)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyPEM, err := pemData(what+" key", key)
	if err != nil {
		return tls.Certificate{}, err
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return tls.Certificate{}, fmt.Errorf("opencti: %s key: no PEM block found", what)
	}
	switch {
	case block.Type == "ENCRYPTED PRIVATE KEY":
		return tls.Certificate{}, fmt.Errorf("opencti: %s key: an encrypted PKCS#8 key is not supported; decrypt it (openssl pkey -in key.pem -out plain.pem) or use the legacy PEM encryption", what)
	case x509.IsEncryptedPEMBlock(block): //nolint:staticcheck // the legacy format pycti's passphrase decrypts
		if passphrase == "" {
			return tls.Certificate{}, fmt.Errorf("opencti: %s key is encrypted and no passphrase is set", what)
		}
		der, err := x509.DecryptPEMBlock(block, []byte(passphrase)) //nolint:staticcheck // as above
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("opencti: %s key: decrypt with the passphrase: %w", what, err)
		}
		keyPEM = pem.EncodeToMemory(&pem.Block{Type: block.Type, Bytes: der})
	}
	kp, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("opencti: %s: %w", what, err)
	}
	return kp, nil
}
