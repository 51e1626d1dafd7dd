package packaging

import (
	"bytes"
	"debug/elf"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// shippedFile is one regular file the packages install.
type shippedFile struct {
	path   string
	mode   fs.FileMode
	config bool   // never overwritten on upgrade
	src    string // the file under packaging/ it is a copy of; "" for the binary
}

// shipped is every regular file the packages install, as nfpm.yaml lists it.
var shipped = []shippedFile{
	{"/usr/bin/vtconnector", 0o755, false, ""},
	{"/usr/lib/systemd/system/vtconnector-carbonblack.service", 0o644, false, "systemd/vtconnector-carbonblack.service"},
	{"/usr/lib/systemd/system/vtconnector-opencti.service", 0o644, false, "systemd/vtconnector-opencti.service"},
	{"/etc/cb/integrations/virustotal/connector.conf", 0o640, true, "connector.conf.example"},
	{"/etc/vtconnector/opencti.env", 0o640, true, "opencti.env.example"},
	{"/usr/share/doc/vtconnector/connector.conf.example", 0o644, false, "connector.conf.example"},
	{"/usr/share/doc/vtconnector/opencti.env.example", 0o644, false, "opencti.env.example"},
}

// scriptSources are the maintainer scripts, by nfpm's names.
var scriptSources = map[string]string{
	"preinstall":  "scripts/preinstall.sh",
	"postinstall": "scripts/postinstall.sh",
	"preremove":   "scripts/preremove.sh",
	"postremove":  "scripts/postremove.sh",
}

// elfMachines maps each package architecture name to its binary's machine.
var elfMachines = map[string]elf.Machine{
	"amd64": elf.EM_X86_64, "x86_64": elf.EM_X86_64, // deb, rpm
	"arm64": elf.EM_AARCH64, "aarch64": elf.EM_AARCH64,
}

// packagesDir is where make check-packages left the packages.
func packagesDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("VTC_TEST_PACKAGES_DIR")
	if dir == "" {
		t.Skip("package test: VTC_TEST_PACKAGES_DIR unset (`make check-packages` builds the packages and sets it)")
	}
	return dir
}

// TestPackagesHoldWhatNfpmYamlLists reads every .deb and .rpm back and checks
// each file's path, mode, owner, config mark and content, the scripts, and
// that nothing else is shipped.
func TestPackagesHoldWhatNfpmYamlLists(t *testing.T) {
	dir := packagesDir(t)
	for _, format := range []struct {
		ext  string
		read func([]byte) (archive, error)
	}{{"deb", readDeb}, {"rpm", readRPM}} {
		files, err := filepath.Glob(filepath.Join(dir, "*."+format.ext))
		if err != nil || len(files) == 0 {
			t.Fatalf("no .%s package in %s (%v)", format.ext, dir, err)
		}
		for _, file := range files {
			t.Run(filepath.Base(file), func(t *testing.T) {
				b, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				a, err := format.read(b)
				if err != nil {
					t.Fatal(err)
				}
				checkArchive(t, a)
				crossCheck(t, format.ext, file, a)
			})
		}
	}
}

func checkArchive(t *testing.T, a archive) {
	t.Helper()
	if a.name != "vtconnector" || a.version == "" {
		t.Errorf("package %q version %q, want vtconnector and a version", a.name, a.version)
	}
	machine, ok := elfMachines[a.arch]
	if !ok {
		t.Errorf("architecture %q, want one of %v", a.arch, elfMachines)
	}
	for _, w := range shipped {
		e, ok := a.entries[w.path]
		if !ok {
			t.Errorf("%s: not in the package", w.path)
			continue
		}
		if e.mode != w.mode || e.owner != "root" || e.group != "root" || e.config != w.config {
			t.Errorf("%s: %v %s:%s config %v; want %v root:root config %v", w.path, e.mode, e.owner, e.group, e.config, w.mode, w.config)
		}
		if w.src == "" {
			checkBinary(t, w.path, e.data, machine)
			continue
		}
		want, err := os.ReadFile(w.src)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(e.data, want) {
			t.Errorf("%s: content differs from packaging/%s", w.path, w.src)
		}
	}
	for p, e := range a.entries {
		if e.mode.IsRegular() && !slices.ContainsFunc(shipped, func(w shippedFile) bool { return w.path == p }) {
			t.Errorf("%s: shipped but not expected", p)
		}
		if strings.HasPrefix(p, "/var/") {
			t.Errorf("%s: owned by the package; the state and log directories are made by the scripts so that removal keeps them", p)
		}
	}
	for name, src := range scriptSources {
		want, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if got := a.scripts[name]; got != string(want) {
			t.Errorf("%s script: got %.80q, want packaging/%s", name, got, src)
		}
	}
	if len(a.scripts) != len(scriptSources) {
		t.Errorf("scripts %v, want only %v", a.scripts, scriptSources)
	}
}

// checkBinary checks that the binary is a static executable for machine.
func checkBinary(t *testing.T, p string, data []byte, machine elf.Machine) {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		t.Errorf("%s: not an ELF file: %v", p, err)
		return
	}
	if f.Type != elf.ET_EXEC || f.Machine != machine {
		t.Errorf("%s: %v for %v, want an executable for %v", p, f.Type, f.Machine, machine)
	}
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			t.Errorf("%s: dynamically linked (has an interpreter), want the static binary", p)
		}
	}
}

// crossCheck compares what the Go readers found with dpkg-deb's or rpm's
// listing, where the tool is installed.
func crossCheck(t *testing.T, format, file string, a archive) {
	t.Helper()
	var want, got []string
	for p, e := range a.entries {
		if e.mode.IsRegular() {
			want = append(want, p+" "+e.mode.String()+" "+map[bool]string{true: "config"}[e.config])
		}
	}
	var tool string
	switch format {
	case "deb":
		tool = "dpkg-deb"
		if _, err := exec.LookPath(tool); err != nil {
			break
		}
		conffiles := run(t, tool, "--info", file, "conffiles")
		for _, l := range strings.Split(run(t, tool, "--contents", file), "\n") {
			f := strings.Fields(l)
			if len(f) == 6 && strings.HasPrefix(f[0], "-") {
				p := strings.TrimPrefix(f[5], ".")
				got = append(got, p+" "+f[0]+" "+map[bool]string{true: "config"}[slices.Contains(strings.Fields(conffiles), p)])
			}
		}
	case "rpm":
		tool = "rpm"
		if _, err := exec.LookPath(tool); err != nil {
			break
		}
		out := run(t, tool, "-qp", "--qf", `[%{FILENAMES}\t%{FILEMODES:perms}\t%{FILEFLAGS}\n]`, file)
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Split(l, "\t")
			if len(f) == 3 && strings.HasPrefix(f[1], "-") {
				got = append(got, f[0]+" "+f[1]+" "+map[bool]string{true: "config"}[f[2] == "17"])
			}
		}
	}
	if got == nil {
		t.Logf("%s is not installed: the listing is not cross-checked", tool)
		return
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(want, got) {
		t.Errorf("%s lists\n%s\nthe Go reader found\n%s", tool, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// run runs a command and returns its standard output; it fails the test,
// with everything the command printed, when the command fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(t.Context(), name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}
