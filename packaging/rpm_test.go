package packaging

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// RPM header tags read here (rpm's lib/rpmtag.h).
const (
	tagName           = 1000
	tagVersion        = 1001
	tagArch           = 1022
	tagPreIn          = 1023
	tagPostIn         = 1024
	tagPreUn          = 1025
	tagPostUn         = 1026
	tagFileModes      = 1030
	tagFileFlags      = 1037
	tagFileUserName   = 1039
	tagFileGroupName  = 1040
	tagDirIndexes     = 1116
	tagBaseNames      = 1117
	tagDirNames       = 1118
	tagPayloadFormat  = 1124
	tagPayloadCompres = 1125
)

// File flags: %config is fileConfig, %config(noreplace) adds fileNoReplace.
const (
	fileConfig    = 1 << 0
	fileNoReplace = 1 << 4
)

// rpmScripts maps the header's scriptlet tags to nfpm's script names.
var rpmScripts = map[uint32]string{
	tagPreIn:  "preinstall",
	tagPostIn: "postinstall",
	tagPreUn:  "preremove",
	tagPostUn: "postremove",
}

// rpmValue is one header entry's data: strings or integers.
type rpmValue struct {
	strs []string
	ints []int64
}

// readRPM reads an .rpm: a 96-byte lead, the signature header (padded to
// 8 bytes), the main header, and a gzip-compressed cpio (newc) payload.
func readRPM(b []byte) (archive, error) {
	if len(b) < 96 || !bytes.Equal(b[:4], []byte{0xed, 0xab, 0xee, 0xdb}) {
		return archive{}, errors.New("rpm: no rpm lead")
	}
	_, n, err := readRPMHeader(b[96:])
	if err != nil {
		return archive{}, fmt.Errorf("rpm: signature: %w", err)
	}
	off := 96 + n
	off += (8 - off%8) % 8
	h, n, err := readRPMHeader(b[off:])
	if err != nil {
		return archive{}, fmt.Errorf("rpm: header: %w", err)
	}
	off += n
	str := func(tag uint32) string {
		if v := h[tag].strs; len(v) == 1 {
			return v[0]
		}
		return ""
	}
	a := archive{
		name: str(tagName), version: str(tagVersion), arch: str(tagArch),
		entries: map[string]entry{}, scripts: map[string]string{},
	}
	for tag, name := range rpmScripts {
		if s := str(tag); s != "" {
			a.scripts[name] = s
		}
	}
	if f, c := str(tagPayloadFormat), str(tagPayloadCompres); f != "cpio" || c != "gzip" {
		return archive{}, fmt.Errorf("rpm: payload %s/%s, want cpio/gzip", f, c)
	}
	base, dirs, idx := h[tagBaseNames].strs, h[tagDirNames].strs, h[tagDirIndexes].ints
	modes, flags := h[tagFileModes].ints, h[tagFileFlags].ints
	users, groups := h[tagFileUserName].strs, h[tagFileGroupName].strs
	for _, n := range []int{len(idx), len(modes), len(flags), len(users), len(groups)} {
		if n != len(base) {
			return archive{}, fmt.Errorf("rpm: %d file names, but a file array of %d", len(base), n)
		}
	}
	for i, bn := range base {
		if idx[i] < 0 || int(idx[i]) >= len(dirs) {
			return archive{}, fmt.Errorf("rpm: file %s: bad directory index %d", bn, idx[i])
		}
		a.entries[path.Clean(dirs[idx[i]]+bn)] = entry{
			mode:   rpmMode(modes[i]),
			owner:  users[i],
			group:  groups[i],
			config: flags[i]&(fileConfig|fileNoReplace) == fileConfig|fileNoReplace,
		}
	}
	zr, err := gzip.NewReader(bytes.NewReader(b[off:]))
	if err != nil {
		return archive{}, fmt.Errorf("rpm: payload: %w", err)
	}
	payload, err := io.ReadAll(zr)
	if err != nil {
		return archive{}, fmt.Errorf("rpm: payload: %w", err)
	}
	err = readCpio(payload, func(name string, mode int64, data []byte) error {
		p := path.Clean("/" + name)
		e, ok := a.entries[p]
		if !ok {
			return fmt.Errorf("rpm: payload file %s is not in the header", p)
		}
		if rpmMode(mode) != e.mode {
			return fmt.Errorf("rpm: %s: payload mode %v, header %v", p, rpmMode(mode), e.mode)
		}
		e.data = data
		a.entries[p] = e
		return nil
	})
	if err != nil {
		return archive{}, err
	}
	return a, nil
}

// readRPMHeader reads one header structure and returns its entries and length.
func readRPMHeader(b []byte) (map[uint32]rpmValue, int, error) {
	if len(b) < 16 || !bytes.Equal(b[:4], []byte{0x8e, 0xad, 0xe8, 0x01}) {
		return nil, 0, errors.New("no header magic")
	}
	count, size := int(binary.BigEndian.Uint32(b[8:])), int(binary.BigEndian.Uint32(b[12:]))
	if count > 1<<16 || size > 1<<28 || len(b) < 16+16*count+size {
		return nil, 0, fmt.Errorf("header of %d entries and %d bytes does not fit", count, size)
	}
	store := b[16+16*count : 16+16*count+size]
	out := map[uint32]rpmValue{}
	for i := range count {
		e := b[16+16*i:]
		tag, typ := binary.BigEndian.Uint32(e), binary.BigEndian.Uint32(e[4:])
		off, n := int(binary.BigEndian.Uint32(e[8:])), int(binary.BigEndian.Uint32(e[12:]))
		if off > len(store) || n > len(store) {
			return nil, 0, fmt.Errorf("tag %d: data outside the header", tag)
		}
		d := store[off:]
		var v rpmValue
		switch typ {
		case 3, 4: // INT16, INT32
			w := int(typ-2) * 2
			if n*w > len(d) {
				return nil, 0, fmt.Errorf("tag %d: %d integers outside the header", tag, n)
			}
			for j := range n {
				if w == 2 {
					v.ints = append(v.ints, int64(binary.BigEndian.Uint16(d[2*j:])))
				} else {
					v.ints = append(v.ints, int64(binary.BigEndian.Uint32(d[4*j:])))
				}
			}
		case 6, 8, 9: // STRING, STRING_ARRAY, I18NSTRING
			if typ == 6 {
				n = 1
			}
			for range n {
				s, rest, ok := bytes.Cut(d, []byte{0})
				if !ok {
					return nil, 0, fmt.Errorf("tag %d: unterminated string", tag)
				}
				v.strs, d = append(v.strs, string(s)), rest
			}
		}
		out[tag] = v
	}
	return out, 16 + 16*count + size, nil
}

// rpmMode turns a st_mode into an fs.FileMode.
func rpmMode(m int64) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & 0o170000 {
	case 0o040000:
		mode |= fs.ModeDir
	case 0o120000:
		mode |= fs.ModeSymlink
	case 0o100000:
	default:
		mode |= fs.ModeIrregular
	}
	return mode
}

// readCpio calls fn for every member of a cpio archive in the "newc" format.
func readCpio(b []byte, fn func(name string, mode int64, data []byte) error) error {
	for off := 0; ; {
		if len(b)-off < 110 || string(b[off:off+6]) != "070701" {
			return fmt.Errorf("rpm: payload: no cpio header at %d", off)
		}
		field := func(i int) (int64, error) {
			return strconv.ParseInt(string(b[off+6+8*i:off+14+8*i]), 16, 64)
		}
		mode, err1 := field(1)
		size, err2 := field(6)
		nameSize, err3 := field(11)
		if err := errors.Join(err1, err2, err3); err != nil {
			return fmt.Errorf("rpm: payload: cpio header at %d: %w", off, err)
		}
		nameEnd := off + 110 + int(nameSize)
		if nameSize < 1 || nameEnd > len(b) {
			return fmt.Errorf("rpm: payload: cpio name at %d outside the archive", off)
		}
		name := strings.TrimSuffix(string(b[off+110:nameEnd]), "\x00")
		start := nameEnd + (4-nameEnd%4)%4
		end := start + int(size)
		if size < 0 || end > len(b) {
			return fmt.Errorf("rpm: payload: cpio member %s outside the archive", name)
		}
		if name == "TRAILER!!!" {
			return nil
		}
		if err := fn(name, mode, b[start:end]); err != nil {
			return err
		}
		off = end + (4-end%4)%4
	}
}
