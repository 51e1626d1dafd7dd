package vt

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

// uploadSlot is a single-use upload URL.
type uploadSlot struct {
	owner   string // API key that asked for it; its quota pays for the upload
	used    bool
	private bool // asked for at /private/files/upload_url
}

func (s *Server) handleUploadURL(w http.ResponseWriter, r *http.Request, rq *request) {
	s.grantUploadSlot(w, rq, false)
}

// grantUploadSlot answers with a fresh single-use upload URL for rq.key.
func (s *Server) grantUploadSlot(w http.ResponseWriter, rq *request, private bool) {
	s.mu.Lock()
	token := s.hexID(48, "upload-url", rq.key, fmt.Sprint(s.nextSeq()))
	s.uploadSlots[token] = &uploadSlot{owner: rq.key, private: private}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, dataEnvelope(rq.base+uploadPrefix+token+"/"))
}

func (s *Server) handleUpload(w http.ResponseWriter, r *http.Request, rq *request) {
	if got, ok := s.receive(w, r, maxDirectBody, maxDirectBody); ok {
		s.startUpload(w, got, rq)
	}
}

// startUpload stores a received public upload and answers with its new
// analysis.
func (s *Server) startUpload(w http.ResponseWriter, got *received, rq *request) {
	now := time.Now()
	s.mu.Lock()
	rec := s.storeUpload(s.uploads, got, now)
	a := s.newFileAnalysis(fileHit{rec: rec}, now)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, analysisDescriptor(a, rq))
}

// serveUploadSlot answers a POST to an upload URL: the URL is the
// credential; quota and faults apply to the key that asked for it.
func (s *Server) serveUploadSlot(w http.ResponseWriter, r *http.Request, m match, rq *request) {
	if m.allow != nil {
		notRouted(w, r, m)
		return
	}
	s.mu.Lock()
	slot := s.uploadSlots[rq.params[0]]
	reused := slot != nil && slot.used
	if slot != nil {
		slot.used = true
	}
	s.mu.Unlock()
	if slot == nil || reused {
		writeError(w, http.StatusNotFound, "NotFoundError", "Upload URL not found or already used")
		return
	}
	rq.key = slot.owner
	s.count(func(st *Stats) { bump(&st.ByKey, slot.owner) })
	if !s.admit(w, slot.owner, rq.received) {
		return
	}
	got, ok := s.receive(w, r, maxUploadURLFile+multipartSlack, maxUploadURLFile)
	switch {
	case !ok:
	case slot.private:
		s.startPrivateUpload(w, got, rq)
	default:
		s.startUpload(w, got, rq)
	}
}

// received is a file read from a multipart upload.
type received struct {
	name              string
	md5, sha1, sha256 string
	size              int64
	head              []byte // first bytes, for type sniffing
	content           []byte // all bytes when kept
	kept              bool
}

// keeper collects written bytes up to a limit, then gives up on them.
type keeper struct {
	buf   bytes.Buffer
	limit int64
	over  bool
}

func (k *keeper) Write(p []byte) (int, error) {
	if !k.over {
		if int64(k.buf.Len()+len(p)) > k.limit {
			k.over = true
			k.buf = bytes.Buffer{}
		} else {
			k.buf.Write(p)
		}
	}
	return len(p), nil
}

// head keeps the first bytes written.
type head struct{ b []byte }

func (h *head) Write(p []byte) (int, error) {
	if n := 512 - len(h.b); n > 0 {
		h.b = append(h.b, p[:min(n, len(p))]...)
	}
	return len(p), nil
}

// receive streams a multipart upload (field "file", other fields such as
// "password" ignored), hashing while reading. It writes the error and
// reports false when the upload is unusable.
func (s *Server) receive(w http.ResponseWriter, r *http.Request, maxBody, maxFile int64) (*received, bool) {
	tooLarge := func() {
		writeError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLargeError",
			fmt.Sprintf("Request body is larger than %d bytes; use /files/upload_url for files larger than 32MB (up to 650MB)", maxBody))
	}
	if r.ContentLength > maxBody {
		tooLarge()
		return nil, false
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "multipart/form-data" {
		writeError(w, http.StatusBadRequest, "BadRequestError", "Expecting a multipart/form-data body with a \"file\" field")
		return nil, false
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	mr, err := r.MultipartReader()
	if err != nil {
		writeError(w, http.StatusBadRequest, "BadRequestError", "Malformed multipart body: "+err.Error())
		return nil, false
	}
	var got *received
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				tooLarge()
				return nil, false
			}
			writeError(w, http.StatusBadRequest, "BadRequestError", "Malformed multipart body: "+err.Error())
			return nil, false
		}
		if part.FormName() == "file" && got == nil {
			got, err = readFilePart(part, r.ContentLength)
		} else {
			_, err = io.Copy(io.Discard, part)
		}
		part.Close()
		if err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				tooLarge()
				return nil, false
			}
			writeError(w, http.StatusBadRequest, "BadRequestError", "Reading upload: "+err.Error())
			return nil, false
		}
	}
	if got == nil {
		writeError(w, http.StatusBadRequest, "BadRequestError", "No file was submitted: the multipart field \"file\" is missing")
		return nil, false
	}
	if got.size > maxFile {
		tooLarge()
		return nil, false
	}
	return got, true
}

func readFilePart(part io.Reader, contentLength int64) (*received, error) {
	m5, s1, s256 := md5.New(), sha1.New(), sha256.New()
	k := &keeper{limit: maxKeptContent}
	if contentLength > 0 && contentLength <= maxKeptContent {
		k.buf.Grow(int(contentLength))
	}
	h := &head{}
	n, err := io.Copy(io.MultiWriter(m5, s1, s256, k, h), part)
	if err != nil {
		return nil, err
	}
	got := &received{
		md5:    hex.EncodeToString(m5.Sum(nil)),
		sha1:   hex.EncodeToString(s1.Sum(nil)),
		sha256: hex.EncodeToString(s256.Sum(nil)),
		size:   n,
		head:   h.b,
		kept:   !k.over,
	}
	if got.kept {
		got.content = k.buf.Bytes()
	}
	if p, ok := part.(interface{ FileName() string }); ok {
		got.name = cleanName(p.FileName())
	}
	return got, nil
}

func cleanName(name string) string {
	name = path.Base(strings.ReplaceAll(name, `\`, "/"))
	if name == "." || name == "/" {
		return ""
	}
	return name
}

// storeUpload records an uploaded file in store (by each of its hashes).
// s.mu must be held.
func (s *Server) storeUpload(store map[string]*fileRecord, got *received, now time.Time) *fileRecord {
	rec := store[got.sha256]
	if rec == nil {
		kind, isEICAR := sniff(got.head, got.size)
		rec = &fileRecord{md5: got.md5, sha1: got.sha1, sha256: got.sha256, size: got.size,
			kind: kind, tags: append([]string{}, kind.tags...), uploaded: true, eicar: isEICAR}
		for _, h := range []string{got.md5, got.sha1, got.sha256} {
			store[h] = rec
		}
	}
	rec.submissions = append(rec.submissions, now)
	if got.name != "" && !contains(rec.names, got.name) {
		rec.names = append(rec.names, got.name)
	}
	if got.kept && !rec.hasContent && s.storedBytes+got.size <= maxStoredContent {
		rec.content, rec.hasContent = got.content, true
		s.storedBytes += got.size
	}
	return rec
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// sniff guesses the file type from its first bytes and recognises the
// EICAR test file (the string, optionally followed by whitespace, at most
// 128 bytes).
func sniff(b []byte, size int64) (fileKind, bool) {
	byTag := func(tag string) fileKind {
		for _, k := range fileKinds {
			if k.tag == tag {
				return k
			}
		}
		return kindUnknown
	}
	switch {
	case bytes.HasPrefix(b, []byte(eicar)) && size <= 128 && len(bytes.TrimSpace(b[len(eicar):])) == 0:
		return kindText, true
	case bytes.HasPrefix(b, []byte("MZ")):
		return byTag("peexe"), false
	case bytes.HasPrefix(b, []byte("%PDF")):
		return byTag("pdf"), false
	case bytes.HasPrefix(b, []byte("\x7fELF")):
		return byTag("elf"), false
	case bytes.HasPrefix(b, []byte("PK\x03\x04")):
		if bytes.Contains(b, []byte("AndroidManifest.xml")) {
			return byTag("android"), false
		}
		return byTag("zip"), false
	case bytes.HasPrefix(b, []byte("\xd0\xcf\x11\xe0")):
		return byTag("doc"), false
	}
	lower := bytes.ToLower(bytes.TrimSpace(b))
	if bytes.HasPrefix(lower, []byte("<!doctype html")) || bytes.HasPrefix(lower, []byte("<html")) {
		return byTag("html"), false
	}
	if len(b) > 0 && isText(b) {
		return kindText, false
	}
	return kindUnknown, false
}

func isText(b []byte) bool {
	for _, c := range b {
		if c < 0x09 || (c > 0x0d && c < 0x20) || c == 0x7f {
			return false
		}
	}
	return true
}
