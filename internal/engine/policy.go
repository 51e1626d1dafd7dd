package engine

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/vtconnector/vtconnector/internal/retry"
	"github.com/vtconnector/vtconnector/internal/stix"
	"github.com/vtconnector/vtconnector/internal/vt"
)

// File types an upload policy can allow, recognised by content.
const (
	FileTypePE    = "pe"    // Windows PE (MZ header with a PE signature)
	FileTypeELF   = "elf"   // ELF executables and libraries
	FileTypeMachO = "macho" // Mach-O, 32/64-bit, either byte order, and universal binaries
	FileTypeAny   = "any"   // anything
)

// FileTypes are the names an upload policy accepts.
var FileTypes = []string{FileTypePE, FileTypeELF, FileTypeMachO, FileTypeAny}

// UploadPolicy says which files may leave for VirusTotal. The engine
// applies it to every upload, whichever front asks.
type UploadPolicy struct {
	// MaxSize is the largest file uploaded, in bytes (0: VirusTotal's
	// limit, 650 MB).
	MaxSize int64
	// FileTypes lists the allowed content types (FileTypePE, …); empty or
	// containing FileTypeAny allows every file.
	FileTypes []string
	// UnsignedOnly refuses files the platform says are signed.
	UnsignedOnly bool
	// MaxTLP, when set, refuses files whose entity is marked above it.
	MaxTLP *stix.TLP
}

// Validate checks the policy's values.
func (p UploadPolicy) Validate() error {
	var errs []error
	if p.MaxSize < 0 || p.MaxSize > vt.MaxUpload {
		errs = append(errs, fmt.Errorf("upload max size %d: want 0 to %d bytes", p.MaxSize, int64(vt.MaxUpload)))
	}
	for _, t := range p.FileTypes {
		if !slices.Contains(FileTypes, t) {
			errs = append(errs, fmt.Errorf("upload file type %q: want one of %s", t, strings.Join(FileTypes, ", ")))
		}
	}
	if p.MaxTLP != nil && !p.MaxTLP.Valid() {
		errs = append(errs, fmt.Errorf("upload TLP ceiling %s is not a TLP level", p.MaxTLP))
	}
	return errors.Join(errs...)
}

// UploadFacts are what the front knows about a file beyond its bytes.
type UploadFacts struct {
	// Signed: the platform says the file carries a valid signature
	// (Carbon Black's binary record).
	Signed bool
	// TLP is the entity's TLP marking, when it has one (OpenCTI).
	TLP *stix.TLP
}

// ErrUploadRefused matches every *UploadRefusedError.
var ErrUploadRefused = errors.New("upload refused by the upload policy")

// UploadRefusedError is an upload the policy refused; nothing was sent.
type UploadRefusedError struct {
	Reason string // short and stable, a metric label: "size", "file_type", "signed", "tlp"
	Detail string
}

func (e *UploadRefusedError) Error() string {
	return "upload refused (" + e.Reason + "): " + e.Detail
}

// Is matches ErrUploadRefused.
func (e *UploadRefusedError) Is(target error) bool { return target == ErrUploadRefused }

// Refusal reasons.
const (
	RefusedSize     = "size"
	RefusedFileType = "file_type"
	RefusedSigned   = "signed"
	RefusedTLP      = "tlp"
	RefusedPrivate  = "private_not_allowed"
)

// Check decides whether the file at path may be uploaded.
func (p UploadPolicy) Check(path string, f UploadFacts) error {
	fh, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("engine: upload policy: %w", err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return fmt.Errorf("engine: upload policy: %w", err)
	}
	max := p.MaxSize
	if max <= 0 || max > vt.MaxUpload {
		max = vt.MaxUpload
	}
	if st.Size() > max {
		return &UploadRefusedError{Reason: RefusedSize, Detail: fmt.Sprintf("%d bytes is more than the %d allowed", st.Size(), max)}
	}
	if p.MaxTLP != nil && f.TLP != nil && *f.TLP > *p.MaxTLP {
		return &UploadRefusedError{Reason: RefusedTLP, Detail: fmt.Sprintf("marked %s, above the upload ceiling %s", *f.TLP, *p.MaxTLP)}
	}
	if p.UnsignedOnly && f.Signed {
		return &UploadRefusedError{Reason: RefusedSigned, Detail: "the file is signed and only unsigned files are uploaded"}
	}
	if len(p.FileTypes) > 0 && !slices.Contains(p.FileTypes, FileTypeAny) {
		head := make([]byte, 4096)
		n, err := io.ReadFull(fh, head)
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			return fmt.Errorf("engine: upload policy: read %s: %w", path, err)
		}
		t := SniffFileType(head[:n])
		if !slices.Contains(p.FileTypes, t) {
			if t == "" {
				t = "not an executable"
			}
			return &UploadRefusedError{Reason: RefusedFileType, Detail: fmt.Sprintf("content is %s; allowed: %s", t, strings.Join(p.FileTypes, ", "))}
		}
	}
	return nil
}

// SniffFileType recognises executables by their first bytes: FileTypePE,
// FileTypeELF, FileTypeMachO, or "" for anything else.
func SniffFileType(head []byte) string {
	switch {
	case len(head) >= 4 && bytes.Equal(head[:4], []byte{0x7f, 'E', 'L', 'F'}):
		return FileTypeELF
	case len(head) >= 4 && isMachO(binary.BigEndian.Uint32(head[:4])):
		if binary.BigEndian.Uint32(head[:4]) == 0xcafebabe && !fatMachO(head) {
			return "" // a Java class file shares the universal binary's magic
		}
		return FileTypeMachO
	case len(head) >= 0x40 && head[0] == 'M' && head[1] == 'Z':
		off := binary.LittleEndian.Uint32(head[0x3c:0x40])
		if int64(off)+4 <= int64(len(head)) && bytes.Equal(head[off:off+4], []byte{'P', 'E', 0, 0}) {
			return FileTypePE
		}
	}
	return ""
}

func isMachO(magic uint32) bool {
	switch magic {
	case 0xfeedface, 0xfeedfacf, 0xcefaedfe, 0xcffaedfe, 0xcafebabe, 0xcafebabf:
		return true
	}
	return false
}

// fatMachO tells a universal binary (a small count of architectures)
// from a Java class file (whose next word is a version, 45 or more).
func fatMachO(head []byte) bool {
	if len(head) < 8 {
		return false
	}
	n := binary.BigEndian.Uint32(head[4:8])
	return n > 0 && n < 30
}

// DefaultAnalysisWait is how long an analysis is waited for, by default,
// before the engine gives up on it and takes whatever report VirusTotal
// has: every front's setting defaults to it.
const DefaultAnalysisWait = 2 * time.Hour

// AnalysisPolicy is how submissions are waited for: polls spaced from
// FirstPoll, doubling up to MaxInterval, for at most MaxWait.
type AnalysisPolicy struct {
	MaxWait     time.Duration // default DefaultAnalysisWait
	FirstPoll   time.Duration // default 20 s
	MaxInterval time.Duration // default 2 minutes
}

func (p AnalysisPolicy) withDefaults() AnalysisPolicy {
	if p.MaxWait <= 0 {
		p.MaxWait = DefaultAnalysisWait
	}
	if p.FirstPoll <= 0 {
		p.FirstPoll = 20 * time.Second
	}
	if p.MaxInterval <= 0 {
		p.MaxInterval = 2 * time.Minute
	}
	p.FirstPoll = min(p.FirstPoll, p.MaxInterval)
	return p
}

// interval is the wait before poll number polls+1.
func (p AnalysisPolicy) interval(polls int) time.Duration {
	return retry.Backoff{First: p.FirstPoll, Max: p.MaxInterval}.Nth(polls + 1)
}

// UploadDeadline bounds one upload attempt of size bytes: a minute plus
// the time to send it at minRate bytes per second (default 128 KiB/s), so
// a stalled connection cannot hold a worker (and its lease) for ever.
func UploadDeadline(size, minRate int64) time.Duration {
	if minRate <= 0 {
		minRate = 128 << 10
	}
	return time.Minute + time.Duration(size/minRate)*time.Second
}
