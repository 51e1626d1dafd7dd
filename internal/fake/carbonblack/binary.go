package carbonblack

import (
	"archive/zip"
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Binary is one file the server has collected from its sensors. Zero fields
// take defaults when the binary is added; the document the API serves is
// built from them (see [Server.AddBinary]).
type Binary struct {
	// MD5 is the upper-case hex MD5 (the API's identifier). Empty means the
	// MD5 of the content (or of the synthetic bytes).
	MD5 string
	// SHA256 is used to match sha256 feed IOCs; it is not a field of Cb
	// Response 6.2 binary documents, so it is never served. Empty means the
	// SHA-256 of the content when the content is known.
	SHA256 string
	// Size is orig_mod_len. With Content set it is len(Content).
	Size int64
	// Content is the file. Nil means synthetic bytes of Size, deterministic
	// from Config.Seed and the MD5 (they hash to MD5 only when MD5 was
	// empty and is computed from them).
	Content []byte
	// NotCopied marks a binary the server never received the bytes of:
	// copied_mod_len is 0 and the download answers 404.
	NotCopied bool
	// ServerAdded is server_added_timestamp (zero: Config.Now()). It keeps
	// millisecond precision, like the server's Solr index.
	ServerAdded time.Time
	// LastSeen is last_seen (zero: ServerAdded).
	LastSeen time.Time
	// Hostnames are the endpoints the file was seen on (zero: one host).
	Hostnames []string
	// Groups are the sensor groups (zero: "Default Group").
	Groups []string

	OriginalFilename  string
	ObservedFilenames []string // zero: c:\windows\temp\<OriginalFilename>
	OSType            string   // Windows (default), OSX or Linux
	IsExecutableImage bool
	Is64Bit           bool
	DigsigResult      string // Signed, Unsigned (default), Expired, ...
	DigsigPublisher   string
	DigsigIssuer      string
	DigsigSubject     string
	DigsigProgName    string
	DigsigSignTime    time.Time
	CompanyName       string
	ProductName       string
	ProductVersion    string
	FileVersion       string
	FileDesc          string
	InternalName      string
	LegalCopyright    string

	// Fields are extra document fields, added last (they override the ones
	// built from the fields above); values must encode to JSON, or they are
	// dropped. LoadTestdata puts the whole real document here, so it is
	// served unchanged.
	Fields map[string]any
}

// record is a binary as the server stores it. A stored record is never
// changed (an update stores a new one in its place), so a copy of the
// binary list can be read without s.mu.
type record struct {
	pos     int    // index in s.order
	md5     string // upper case
	sha256  string // lower case, may be empty
	added   time.Time
	size    int64
	copied  int64
	content []byte   // nil: synthetic
	key     [32]byte // seed of the synthetic bytes
	exe     bool     // synthetic bytes start with MZ
	doc     map[string]any
}

// AddBinary stores b, or updates the binary with the same MD5: the update
// replaces its metadata but keeps the first server_added_timestamp, as the
// server does for a file seen again. Binaries can be added while the server
// runs.
func (s *Server) AddBinary(b Binary) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addLocked(b, nil, nil)
}

// AddSyntheticBinaries adds n binaries with deterministic contents (from
// Config.Seed and how many synthetic binaries were added before), whose
// server_added_timestamp is start, start+step, ... It returns them with
// MD5, SHA256 and Size set and Content nil; the download serves bytes
// hashing to MD5.
func (s *Server) AddSyntheticBinaries(n int, start time.Time, step time.Duration) []Binary {
	out := make([]Binary, 0, max(n, 0))
	for i := range n {
		s.mu.Lock()
		s.synthSeq++
		seq := s.synthSeq
		s.mu.Unlock()
		b, key := s.syntheticBinary(seq, start.Add(time.Duration(i)*step))
		s.mu.Lock()
		out = append(out, s.addLocked(b, nil, &key))
		s.mu.Unlock()
	}
	return out
}

// LoadTestdata adds every binary document (*.json with an md5 field) in dir,
// such as the /api/v1/binary/{md5}/summary bodies of
// testdata/cb/binary_metadata, keeping all their fields. Their bytes are
// synthetic (orig_mod_len of them); those with copied_mod_len 0 cannot be
// downloaded. It returns how many binaries it added.
func (s *Server) LoadTestdata(dir string) (int, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return 0, fmt.Errorf("carbonblack: load testdata: %w", err)
	}
	sort.Strings(paths)
	n := 0
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			return n, fmt.Errorf("carbonblack: load testdata: %w", err)
		}
		doc, err := decodeDoc(raw)
		if err != nil {
			return n, fmt.Errorf("carbonblack: load testdata %s: %w", filepath.Base(p), err)
		}
		md5sum, _ := doc["md5"].(string)
		if !isHex(md5sum, 32) {
			continue
		}
		b := Binary{MD5: md5sum, Fields: doc}
		if t, err := parseSolrTime(str(doc["server_added_timestamp"])); err == nil {
			b.ServerAdded = t
		}
		if v, ok := toInt(doc["orig_mod_len"]); ok {
			b.Size = v
		}
		copied, hasCopied := toInt(doc["copied_mod_len"])
		b.NotCopied = hasCopied && copied == 0
		s.mu.Lock()
		s.addLocked(b, doc, nil)
		s.mu.Unlock()
		n++
	}
	return n, nil
}

// addLocked stores b; raw, when set, is a real document served as is; key,
// when set, seeds the synthetic bytes b's hashes were computed from. s.mu
// must be held. It returns b with the computed fields filled in.
func (s *Server) addLocked(b Binary, raw map[string]any, key *[32]byte) Binary {
	rec := &record{}
	if b.Content != nil {
		b.Size = int64(len(b.Content))
		rec.content = bytes.Clone(b.Content)
		if b.MD5 == "" {
			sum := md5.Sum(b.Content)
			b.MD5 = hex.EncodeToString(sum[:])
		}
		if b.SHA256 == "" {
			sum := sha256.Sum256(b.Content)
			b.SHA256 = hex.EncodeToString(sum[:])
		}
	} else {
		rec.exe = b.IsExecutableImage || raw != nil
		switch {
		case key != nil:
			rec.key = *key
		case b.MD5 == "":
			s.synthSeq++
			rec.key = contentKey(s.cfg.Seed, fmt.Sprintf("anon-%d", s.synthSeq))
			b.MD5, b.SHA256 = hashSynthetic(rec.key, rec.exe, b.Size)
		default:
			rec.key = contentKey(s.cfg.Seed, strings.ToUpper(b.MD5))
		}
	}
	b.MD5 = strings.ToUpper(b.MD5)
	b.SHA256 = strings.ToLower(b.SHA256)
	if b.ServerAdded.IsZero() {
		b.ServerAdded = s.now()
	}
	b.ServerAdded = b.ServerAdded.UTC().Truncate(time.Millisecond)
	old, seen := s.binaries[b.MD5]
	if seen {
		b.ServerAdded = old.added
	}
	rec.md5, rec.sha256, rec.added, rec.size = b.MD5, b.SHA256, b.ServerAdded, b.Size
	rec.copied = min(b.Size, maxCopiedLen)
	if c, ok := toInt(raw["copied_mod_len"]); ok && raw != nil {
		rec.copied = min(max(c, 0), b.Size)
	}
	if b.NotCopied {
		rec.copied = 0
	}
	if raw != nil {
		rec.doc = raw
	} else {
		rec.doc = s.buildDoc(&b, rec)
	}
	if seen {
		s.replace(old, rec)
	} else {
		rec.pos = len(s.order)
		s.binaries[b.MD5] = rec
		s.order = append(s.order, rec)
		s.insertByAdded(rec)
	}
	s.journal = append(s.journal, rec)
	return b
}

// replace stores rec, a new version of the binary old, where old was (it
// keeps old's server_added_timestamp, so its place in s.byAdded). s.mu
// must be held.
func (s *Server) replace(old, rec *record) {
	rec.pos = old.pos
	s.binaries[rec.md5] = rec
	s.order[rec.pos] = rec
	i := sort.Search(len(s.byAdded), func(i int) bool { return !addedBefore(s.byAdded[i], old) })
	s.byAdded[i] = rec
}

// buildDoc returns the binary document of b with the key set and value
// types of a Cb Response 6.2 search result. s.mu must be held.
func (s *Server) buildDoc(b *Binary, rec *record) map[string]any {
	if b.LastSeen.IsZero() {
		b.LastSeen = b.ServerAdded
	}
	if len(b.Hostnames) == 0 {
		b.Hostnames = []string{"WIN-SIM01"}
	}
	if len(b.Groups) == 0 {
		b.Groups = []string{"Default Group"}
	}
	if b.OSType == "" {
		b.OSType = "Windows"
	}
	if b.DigsigResult == "" {
		b.DigsigResult = "Unsigned"
	}
	if len(b.ObservedFilenames) == 0 && b.OriginalFilename != "" {
		b.ObservedFilenames = []string{`c:\windows\temp\` + strings.ToLower(b.OriginalFilename)}
	}
	endpoints := make([]any, 0, len(b.Hostnames))
	for _, h := range b.Hostnames {
		id, ok := s.sensors[strings.ToUpper(h)]
		if !ok {
			id = len(s.sensors) + 1
			s.sensors[strings.ToUpper(h)] = id
		}
		endpoints = append(endpoints, fmt.Sprintf("%s|%d", h, id))
	}
	s.facetSeq++
	day := b.ServerAdded.Truncate(24 * time.Hour).Unix()
	doc := map[string]any{
		"md5":                    b.MD5,
		"server_added_timestamp": solrTime(b.ServerAdded),
		"timestamp":              solrTime(b.ServerAdded),
		"last_seen":              solrTime(b.LastSeen.UTC()),
		"orig_mod_len":           b.Size,
		"copied_mod_len":         rec.copied,
		"host_count":             int64(len(b.Hostnames)),
		"endpoint":               endpoints,
		"group":                  stringsToAny(b.Groups),
		"observed_filename":      stringsToAny(b.ObservedFilenames),
		"original_filename":      b.OriginalFilename,
		"os_type":                b.OSType,
		"is_executable_image":    b.IsExecutableImage,
		"is_64bit":               b.Is64Bit,
		"digsig_result":          b.DigsigResult,
		"signed":                 b.DigsigResult,
		"digsig_result_code":     digsigCode(b.DigsigResult),
		"company_name":           b.CompanyName,
		"product_name":           b.ProductName,
		"product_version":        b.ProductVersion,
		"file_version":           b.FileVersion,
		"file_desc":              b.FileDesc,
		"internal_name":          b.InternalName,
		"legal_copyright":        b.LegalCopyright,
		"cb_version":             int64(600),
		"facet_id":               s.facetSeq,
		"event_partition_id":     []any{day << 16},
	}
	optional := map[string]string{
		"digsig_publisher": b.DigsigPublisher,
		"digsig_issuer":    b.DigsigIssuer,
		"digsig_subject":   b.DigsigSubject,
		"digsig_prog_name": b.DigsigProgName,
	}
	for k, v := range optional {
		if v != "" {
			doc[k] = v
		}
	}
	if !b.DigsigSignTime.IsZero() {
		doc["digsig_sign_time"] = b.DigsigSignTime.UTC().Truncate(time.Minute).Format("2006-01-02T15:04:05Z")
	}
	if len(b.Fields) > 0 {
		// a JSON round trip copies the caller's values and gives them the
		// types of decoded documents ([]any, int64, ...)
		raw, err := json.Marshal(b.Fields)
		if err == nil {
			var extra map[string]any
			if extra, err = decodeDoc(raw); err == nil {
				maps.Copy(doc, extra)
			}
		}
	}
	return doc
}

// digsigCode is the HRESULT the server reports for a signature status.
func digsigCode(result string) string {
	switch result {
	case "Signed":
		return "0"
	case "Unsigned":
		return "2148204800" // TRUST_E_NOSIGNATURE
	case "Expired":
		return "2148204801" // CERT_E_EXPIRED
	default:
		return "2148098064" // TRUST_E_BAD_DIGEST
	}
}

var (
	synthNames = []struct{ file, desc, company, product string }{
		{"updater.exe", "Software Updater", "Contoso Ltd.", "Contoso Update Service"},
		{"setup.exe", "Setup Launcher", "Fabrikam, Inc.", "Fabrikam Installer"},
		{"helper.dll", "Helper Library", "Northwind Traders", "Northwind Suite"},
		{"agent.exe", "Monitoring Agent", "Tailspin Toys", "Tailspin Agent"},
		{"invoice.exe", "", "", ""},
		{"svc.exe", "Background Service", "Wingtip Systems", "Wingtip Platform"},
		{"plugin.dll", "Browser Plugin", "Adventure Works", "Adventure Works Viewer"},
		{"tool.exe", "Command-line Tool", "Litware, Inc.", "Litware Tools"},
	}
	synthDirs  = []string{`c:\windows\system32\`, `c:\program files\common files\`, `c:\users\public\downloads\`, `c:\windows\temp\`}
	synthHosts = []string{"WIN-SIM01", "WIN-SIM02", "WIN-SIM03", "FINANCE-PC7", "DC01"}
)

// syntheticBinary returns the seq-th synthetic binary; its metadata and
// bytes depend only on Config.Seed and seq.
func (s *Server) syntheticBinary(seq uint64, added time.Time) (Binary, [32]byte) {
	key := contentKey(s.cfg.Seed, fmt.Sprintf("synthetic-%d", seq))
	rng := rand.New(rand.NewChaCha8(key))
	name := synthNames[rng.IntN(len(synthNames))]
	b := Binary{
		Size:              int64(512 + rng.IntN(64<<10)),
		ServerAdded:       added,
		OriginalFilename:  name.file,
		OSType:            "Windows",
		IsExecutableImage: strings.HasSuffix(name.file, ".exe"),
		Is64Bit:           rng.IntN(2) == 0,
		CompanyName:       name.company,
		ProductName:       name.product,
		FileDesc:          name.desc,
		InternalName:      strings.TrimSuffix(strings.TrimSuffix(name.file, ".exe"), ".dll"),
		ProductVersion:    fmt.Sprintf("%d.%d.%d", 1+rng.IntN(9), rng.IntN(20), rng.IntN(9000)),
	}
	b.FileVersion = b.ProductVersion
	if name.company != "" {
		b.LegalCopyright = "Copyright (C) " + name.company
	}
	b.ObservedFilenames = []string{synthDirs[rng.IntN(len(synthDirs))] + name.file}
	hosts := 1 + rng.IntN(3)
	first := rng.IntN(len(synthHosts))
	for i := range hosts {
		b.Hostnames = append(b.Hostnames, synthHosts[(first+i)%len(synthHosts)])
	}
	if name.company != "" && rng.IntN(3) > 0 {
		b.DigsigResult = "Signed"
		b.DigsigPublisher = name.company
		b.DigsigSignTime = added.Add(-time.Duration(1+rng.IntN(1000)) * 24 * time.Hour)
	}
	b.MD5, b.SHA256 = hashSynthetic(key, b.IsExecutableImage, b.Size)
	return b, key
}

// contentKey derives the seed of a binary's synthetic bytes.
func contentKey(seed int64, id string) [32]byte {
	var buf [8]byte
	binary.LittleEndian.PutUint64(buf[:], uint64(seed))
	return sha256.Sum256(append(append([]byte("fakecb-content\x00"), buf[:]...), id...))
}

// peHeader is the start of a Windows PE file: the MZ magic, e_lfanew
// (at 0x3c) pointing at 0x40, and the PE signature there.
var peHeader = func() []byte {
	h := make([]byte, 0x44)
	copy(h, "MZ")
	binary.LittleEndian.PutUint32(h[0x3c:], 0x40)
	copy(h[0x40:], "PE\x00\x00")
	return h
}()

// syntheticReader returns the n synthetic bytes seeded by key; executables
// start with a PE header, as content sniffers expect.
func syntheticReader(key [32]byte, exe bool, n int64) io.Reader {
	var r io.Reader = rand.NewChaCha8(key)
	if exe {
		r = io.MultiReader(bytes.NewReader(peHeader), r)
	}
	return io.LimitReader(r, n)
}

func hashSynthetic(key [32]byte, exe bool, n int64) (string, string) {
	m, h := md5.New(), sha256.New()
	_, _ = io.Copy(io.MultiWriter(m, h), syntheticReader(key, exe, n))
	return hex.EncodeToString(m.Sum(nil)), hex.EncodeToString(h.Sum(nil))
}

// filedata returns the bytes the server serves for rec: what it copied.
func (rec *record) filedata() io.Reader {
	if rec.content != nil {
		return bytes.NewReader(rec.content[:rec.copied])
	}
	return syntheticReader(rec.key, rec.exe, rec.copied)
}

// lookup returns the binary with md5 (any case). s.mu must be held.
func (s *Server) lookup(md5sum string) (*record, bool) {
	rec, ok := s.binaries[strings.ToUpper(md5sum)]
	return rec, ok
}

// document returns rec's document with the alliance fields of the feeds.
// s.mu must be held.
func (s *Server) document(rec *record) map[string]any {
	out := make(map[string]any, len(rec.doc)+8)
	for k, v := range rec.doc {
		out[k] = v
	}
	for k, v := range s.allianceFields(rec) {
		out[k] = v
	}
	return out
}

func (s *Server) handleSummary(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	rec, ok := s.lookup(r.PathValue("md5"))
	var doc map[string]any
	if ok {
		doc = s.document(rec)
	}
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "binary "+r.PathValue("md5")+" not found")
		return
	}
	writeJSON(w, http.StatusOK, doc)
}

// handleDownload streams a zip with the members filedata and metadata.
func (s *Server) handleDownload(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	rec, ok := s.lookup(r.PathValue("md5"))
	var (
		doc    map[string]any
		data   io.Reader
		md5sum string
		mod    time.Time
	)
	if ok {
		md5sum, mod = rec.md5, rec.added
		if rec.copied > 0 {
			doc, data = s.document(rec), rec.filedata()
		}
	}
	s.mu.Unlock()
	switch {
	case !ok:
		writeError(w, http.StatusNotFound, "not_found", "binary "+r.PathValue("md5")+" not found")
		return
	case data == nil:
		writeError(w, http.StatusNotFound, "not_found", "binary "+md5sum+" was not copied to the server")
		return
	}
	meta, err := json.Marshal(doc)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "server_error", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", `attachment; filename="`+md5sum+`.zip"`)
	w.WriteHeader(http.StatusOK)
	zw := zip.NewWriter(w)
	written, err := writeMember(zw, "filedata", mod, data)
	if err == nil {
		_, err = writeMember(zw, "metadata", mod, bytes.NewReader(meta))
	}
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		return // the client went away; the answer is already truncated
	}
	s.count(func(st *Stats) {
		st.Downloads++
		st.DownloadedBytes += written
	})
}

func writeMember(zw *zip.Writer, name string, mod time.Time, r io.Reader) (int64, error) {
	f, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: mod})
	if err != nil {
		return 0, err
	}
	return io.Copy(f, r)
}

// decodeDoc decodes a JSON document keeping integers as int64.
func decodeDoc(raw []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	if doc == nil {
		return nil, errors.New("not a JSON object")
	}
	return normalize(doc).(map[string]any), nil
}

// normalize turns json.Number into int64 or float64, recursively.
func normalize(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = normalize(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = normalize(e)
		}
		return x
	}
	return v
}

// solrTime formats t like the server's Solr index: UTC, milliseconds with
// trailing zeros dropped (none when zero), Z.
func solrTime(t time.Time) string {
	t = t.UTC()
	s := t.Format("2006-01-02T15:04:05")
	if ms := t.Nanosecond() / int(time.Millisecond); ms > 0 {
		s += strings.TrimRight(fmt.Sprintf(".%03d", ms), "0")
	}
	return s + "Z"
}

func parseSolrTime(s string) (time.Time, error) {
	return time.Parse(time.RFC3339Nano, s)
}

func stringsToAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func toInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int:
		return int64(x), true
	case float64:
		return int64(x), x == float64(int64(x))
	}
	return 0, false
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}
