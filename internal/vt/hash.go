package vt

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
)

// SHA256File returns the SHA-256 of a regular file's content, in hex.
func SHA256File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("vt: hash file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("vt: hash file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("vt: hash file %s: not a regular file", path)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("vt: hash file %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
