package packaging

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// debScripts maps the deb maintainer script names to nfpm's.
var debScripts = map[string]string{
	"preinst":  "preinstall",
	"postinst": "postinstall",
	"prerm":    "preremove",
	"postrm":   "postremove",
}

// readDeb reads a .deb: an ar archive of debian-binary, control.tar.gz and
// data.tar.gz.
func readDeb(b []byte) (archive, error) {
	members, err := readAr(b)
	if err != nil {
		return archive{}, err
	}
	if got := string(members["debian-binary"]); got != "2.0\n" {
		return archive{}, fmt.Errorf("deb: debian-binary is %q, want 2.0", got)
	}
	a := archive{entries: map[string]entry{}, scripts: map[string]string{}}
	control := map[string][]byte{}
	err = readTarGz(members["control.tar.gz"], func(h *tar.Header, data []byte) {
		control[path.Clean(h.Name)] = data
		if name, ok := debScripts[path.Clean(h.Name)]; ok {
			if h.FileInfo().Mode().Perm() != 0o755 {
				a.scripts[name] = fmt.Sprintf("mode %v, want -rwxr-xr-x", h.FileInfo().Mode().Perm())
				return
			}
			a.scripts[name] = string(data)
		}
	})
	if err != nil {
		return archive{}, fmt.Errorf("deb: control.tar.gz: %w", err)
	}
	fields := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(control["control"]))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ": "); ok && !strings.HasPrefix(k, " ") {
			fields[k] = v
		}
	}
	a.name, a.version, a.arch = fields["Package"], fields["Version"], fields["Architecture"]
	conffiles := map[string]bool{}
	for _, l := range strings.Fields(string(control["conffiles"])) {
		conffiles[l] = true
	}
	err = readTarGz(members["data.tar.gz"], func(h *tar.Header, data []byte) {
		p := path.Clean("/" + h.Name)
		a.entries[p] = entry{mode: h.FileInfo().Mode(), owner: h.Uname, group: h.Gname, config: conffiles[p], data: data}
	})
	if err != nil {
		return archive{}, fmt.Errorf("deb: data.tar.gz: %w", err)
	}
	for p := range conffiles {
		if _, ok := a.entries[p]; !ok {
			return archive{}, fmt.Errorf("deb: conffile %s is not in data.tar.gz", p)
		}
	}
	return a, nil
}

// readAr reads the members of a System V ar archive (the .deb container).
func readAr(b []byte) (map[string][]byte, error) {
	const magic = "!<arch>\n"
	if !bytes.HasPrefix(b, []byte(magic)) {
		return nil, errors.New("deb: not an ar archive")
	}
	members := map[string][]byte{}
	for off := len(magic); off < len(b); {
		if len(b)-off < 60 {
			return nil, fmt.Errorf("deb: truncated ar header at %d", off)
		}
		h := b[off : off+60]
		if string(h[58:60]) != "`\n" {
			return nil, fmt.Errorf("deb: bad ar header at %d", off)
		}
		name := strings.TrimSuffix(strings.TrimSpace(string(h[0:16])), "/")
		size, err := strconv.Atoi(strings.TrimSpace(string(h[48:58])))
		if err != nil || size < 0 || size > len(b)-off-60 {
			return nil, fmt.Errorf("deb: ar member %s: bad size %q", name, h[48:58])
		}
		members[name] = b[off+60 : off+60+size]
		off += 60 + size + size%2
	}
	return members, nil
}

// readTarGz calls fn for every entry of a gzip-compressed tar archive.
func readTarGz(b []byte, fn func(*tar.Header, []byte)) error {
	if b == nil {
		return errors.New("member absent")
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return err
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		var data []byte
		if h.FileInfo().Mode().Type() == 0 {
			if data, err = io.ReadAll(tr); err != nil {
				return err
			}
		}
		if h.FileInfo().Mode().Type() == fs.ModeSymlink {
			data = []byte(h.Linkname)
		}
		fn(h, data)
	}
}
