package vt

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
)

// Upload limits: POST /files takes a total payload of at most 32 MB;
// larger files go through a single-use upload URL, up to 650 MB.
const (
	MaxDirectUpload = 32_000_000
	MaxUpload       = 650_000_000
	// multipartSlack is room kept for the multipart headers when deciding
	// whether a file fits in a direct upload.
	multipartSlack = 64 << 10
)

// UploadFile uploads the file at path for analysis and returns the
// analysis id. The file is streamed from disk, never held in memory:
// files up to 32 MB (with the multipart envelope) go to POST /files,
// larger ones to a URL from GET /files/upload_url; over 650 MB is refused
// with ErrTooLarge before anything is sent.
func (c *Client) UploadFile(ctx context.Context, path string) (string, error) {
	return c.uploadFile(ctx, "upload", "files", path)
}

// uploadFile streams the file at path to collection (POST <collection>, or
// the URL from GET <collection>/upload_url when it does not fit in a direct
// upload) and returns the analysis id. op names the operation in errors.
func (c *Client) uploadFile(ctx context.Context, op, collection, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("vt: %s: %w", op, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("vt: %s: %w", op, err)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("vt: %s %s: not a regular file", op, path)
	}
	size := st.Size()
	if size > MaxUpload {
		return "", fmt.Errorf("vt: %s %s: %d bytes: %w (limit %d)", op, path, size, ErrTooLarge, int64(MaxUpload))
	}
	target, apiPath := c.endpoint(collection, nil), collection
	if size+multipartSlack > MaxDirectUpload {
		u, err := c.uploadURL(ctx, collection+"/upload_url")
		if err != nil {
			return "", err
		}
		target, apiPath = u, collection+"/upload_url → POST"
	}
	body, ctype, n, err := multipartFile(f, filepath.Base(path), size)
	if err != nil {
		return "", fmt.Errorf("vt: %s %s: %w", op, path, err)
	}
	return c.postForAnalysis(ctx, apiPath, target, body, ctype, n, false)
}

// UploadURL asks for a single-use URL to upload a large file to.
func (c *Client) UploadURL(ctx context.Context) (string, error) {
	return c.uploadURL(ctx, "files/upload_url")
}

// uploadURL GETs path, whose data is a single-use upload URL.
func (c *Client) uploadURL(ctx context.Context, path string) (string, error) {
	data, _, err := c.getData(ctx, path, nil)
	if err != nil {
		return "", err
	}
	var u string
	if err := json.Unmarshal(data, &u); err != nil || !strings.HasPrefix(u, "http") {
		return "", fmt.Errorf("vt: GET %s: %w: data is not a URL", path, ErrTransient)
	}
	return u, nil
}

// multipartFile builds a streaming multipart body with one "file" field
// and returns it with its exact length, so the upload carries a
// Content-Length and no chunked encoding.
func multipartFile(f io.Reader, name string, size int64) (io.Reader, string, int64, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, "", 0, err
	}
	boundary := "vtconnector" + hex.EncodeToString(b[:])
	var head strings.Builder
	mw := multipart.NewWriter(&head)
	if err := mw.SetBoundary(boundary); err != nil {
		return nil, "", 0, err
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, sanitizeFilename(name)))
	h.Set("Content-Type", "application/octet-stream")
	if _, err := mw.CreatePart(h); err != nil {
		return nil, "", 0, err
	}
	tail := "\r\n--" + boundary + "--\r\n"
	n := int64(head.Len()) + size + int64(len(tail))
	body := io.MultiReader(strings.NewReader(head.String()), io.LimitReader(f, size), strings.NewReader(tail))
	return body, mw.FormDataContentType(), n, nil
}

func sanitizeFilename(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == '"' || r == '\\' || r == 0x7f {
			return '_'
		}
		return r
	}, s)
	if s == "" {
		return "sample"
	}
	return s
}
