package packaging

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestDebInstallCreatesUserDirectoriesAndKeepsConfig installs the .deb for
// this machine (as root, with dpkg: CI runs so), checks the service user, the
// state and log directories, the units and the configuration's permissions,
// reinstalls it over an edited connector.conf (kept), removes it (the
// configuration and the state stay), and purges it. systemd is not needed.
func TestDebInstallCreatesUserDirectoriesAndKeepsConfig(t *testing.T) {
	dir := packagesDir(t)
	if os.Geteuid() != 0 {
		t.Skip("package install test: needs root")
	}
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("package install test: dpkg absent")
	}
	for _, p := range []string{"/usr/bin/vtconnector", "/etc/cb/integrations/virustotal/connector.conf", "/etc/vtconnector"} {
		if _, err := os.Lstat(p); err == nil {
			t.Skipf("package install test: %s exists: this machine has a vtconnector or a Carbon Black connector that the test must not touch", p)
		}
	}
	arch := strings.TrimSpace(run(t, "dpkg", "--print-architecture"))
	debs, _ := filepath.Glob(filepath.Join(dir, "vtconnector_*_"+arch+".deb"))
	if len(debs) != 1 {
		t.Fatalf("want one %s .deb in %s, found %v", arch, dir, debs)
	}
	deb := debs[0]
	leaveAsFound(t)

	run(t, "dpkg", "--install", deb)

	u, err := user.Lookup("vtconnector")
	if err != nil {
		t.Fatalf("no vtconnector user after install: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if g, err := user.LookupGroup("vtconnector"); err != nil || g.Gid != u.Gid {
		t.Errorf("group vtconnector %+v (%v), want the user's primary group %s", g, err, u.Gid)
	}
	pw := strings.Split(strings.TrimSpace(run(t, "getent", "passwd", "vtconnector")), ":")
	if len(pw) != 7 || uid >= 1000 || pw[5] != "/var/lib/vtconnector" || !strings.HasSuffix(pw[6], "/nologin") {
		t.Errorf("vtconnector user %q: want a system user (uid < 1000), home /var/lib/vtconnector, shell nologin", pw)
	}
	checkPath(t, "/var/lib/vtconnector", fs.ModeDir|0o750, uid, gid)
	checkPath(t, "/var/log/cb/integrations/virustotal", fs.ModeDir|0o750, uid, gid)
	checkPath(t, "/etc/cb/integrations/virustotal/connector.conf", 0o640, 0, gid)
	checkPath(t, "/etc/vtconnector/opencti.env", 0o640, 0, gid)
	checkPath(t, "/etc/vtconnector", fs.ModeDir|0o750, 0, gid)
	for _, unit := range []string{"vtconnector-carbonblack.service", "vtconnector-opencti.service"} {
		got, err := os.ReadFile("/usr/lib/systemd/system/" + unit)
		want, _ := os.ReadFile("systemd/" + unit)
		if err != nil || string(got) != string(want) {
			t.Errorf("/usr/lib/systemd/system/%s: not packaging/systemd/%s (%v)", unit, unit, err)
		}
	}
	if out := run(t, "/usr/bin/vtconnector", "version"); !strings.Contains(out, "vtconnector") {
		t.Errorf("vtconnector version printed %q", out)
	}

	// An upgrade (here the same version again) keeps an edited
	// connector.conf and the administrator's permissions.
	const conf = "/etc/cb/integrations/virustotal/connector.conf"
	edited := []byte("[bridge]\n; edited by the administrator\n")
	if err := os.WriteFile(conf, edited, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(conf, 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, "dpkg", "--install", deb)
	if got, _ := os.ReadFile(conf); string(got) != string(edited) {
		t.Errorf("reinstall replaced the edited connector.conf with %.60q", got)
	}
	checkPath(t, conf, 0o600, 0, gid)

	// Removal keeps the configuration, the state and the user.
	run(t, "dpkg", "--remove", "vtconnector")
	if _, err := os.Stat("/usr/bin/vtconnector"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("/usr/bin/vtconnector after removal: %v, want it gone", err)
	}
	for _, p := range []string{conf, "/var/lib/vtconnector"} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s after removal: %v, want it kept", p, err)
		}
	}
	if _, err := user.Lookup("vtconnector"); err != nil {
		t.Errorf("vtconnector user after removal: %v, want it kept (files in the state directory are its)", err)
	}
}

// checkPath checks a path's type, permissions and owner.
func checkPath(t *testing.T, p string, mode fs.FileMode, uid, gid int) {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Errorf("%s: %v", p, err)
		return
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		t.Fatalf("%s: no owner in %T", p, fi.Sys())
	}
	if fi.Mode() != mode || int(st.Uid) != uid || int(st.Gid) != gid {
		t.Errorf("%s: %v owned by %d:%d; want %v owned by %d:%d", p, fi.Mode(), st.Uid, st.Gid, mode, uid, gid)
	}
}

// leaveAsFound purges the package and removes, after the test, the user,
// the group and the directories the package made that did not exist before.
func leaveAsFound(t *testing.T) {
	t.Helper()
	_, userErr := user.Lookup("vtconnector")
	_, groupErr := user.LookupGroup("vtconnector")
	var made []string
	for _, p := range []string{"/var/lib/vtconnector", "/var/log/cb", "/var/log/cb/integrations", "/var/log/cb/integrations/virustotal", "/etc/cb", "/etc/cb/integrations", "/etc/cb/integrations/virustotal"} {
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			made = append(made, p)
		}
	}
	t.Cleanup(func() {
		if out, err := exec.Command("dpkg", "--purge", "vtconnector").CombinedOutput(); err != nil {
			t.Errorf("dpkg --purge vtconnector: %v\n%s", err, out)
		}
		for i := len(made) - 1; i >= 0; i-- {
			if err := os.RemoveAll(made[i]); err != nil {
				t.Error(err)
			}
		}
		if userErr != nil {
			if out, err := exec.Command("userdel", "vtconnector").CombinedOutput(); err != nil {
				t.Errorf("userdel vtconnector: %v\n%s", err, out)
			}
		}
		if _, err := user.LookupGroup("vtconnector"); groupErr != nil && err == nil {
			if out, err := exec.Command("groupdel", "vtconnector").CombinedOutput(); err != nil {
				t.Errorf("groupdel vtconnector: %v\n%s", err, out)
			}
		}
	})
}
