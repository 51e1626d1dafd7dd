package packaging

import (
	"os"
	"path"
	"strings"
	"testing"

	"github.com/vtconnector/vtconnector/internal/config"
)

// unitSettings reads a systemd unit's Key=Value lines (the last one wins,
// as for the single-valued keys checked here).
func unitSettings(t *testing.T, file string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	s := map[string][]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok && !strings.HasPrefix(l, "#") {
			s[k] = append(s[k], v)
		}
	}
	return s
}

// TestCarbonBlackUnitWritesWhereTheDefaultsPoint keeps the shipped unit and
// connector.conf's defaults together: with an unchanged connector.conf the
// service user can write the database and the log (the unit used to leave
// the database's directory read-only and restart every 10 s).
func TestCarbonBlackUnitWritesWhereTheDefaultsPoint(t *testing.T) {
	u := unitSettings(t, "systemd/vtconnector-carbonblack.service")
	last := func(k string) string {
		if v := u[k]; len(v) > 0 {
			return v[len(v)-1]
		}
		return ""
	}
	if got, want := "/var/lib/"+last("StateDirectory"), path.Dir(config.DefaultCarbonBlackDatabase); got != want {
		t.Errorf("StateDirectory gives %s, database_url's default is in %s", got, want)
	}
	if got, want := "/var/log/"+last("LogsDirectory"), path.Dir(config.DefaultCarbonBlackLogFile); got != want {
		t.Errorf("LogsDirectory gives %s, log_file's default is in %s", got, want)
	}
	for _, v := range u["ReadWritePaths"] {
		if strings.Contains(v, path.Dir(config.DefaultCarbonBlackLegacyDatabase)) {
			t.Errorf("ReadWritePaths=%s: the original's database is only read (legacy_database)", v)
		}
	}
	if want := "/usr/bin/vtconnector carbonblack --config " + config.DefaultCarbonBlackConfigPath; last("ExecStart") != want {
		t.Errorf("ExecStart=%s, want %s", last("ExecStart"), want)
	}
	if last("User") != "vtconnector" || last("RestartPreventExitStatus") != "2" {
		t.Errorf("User=%s RestartPreventExitStatus=%s, want vtconnector and 2 (the packages create that user)", last("User"), last("RestartPreventExitStatus"))
	}
}

// TestOpenCTIUnitDatabaseIsInItsStateDirectory does the same for the
// OpenCTI unit's database.
func TestOpenCTIUnitDatabaseIsInItsStateDirectory(t *testing.T) {
	u := unitSettings(t, "systemd/vtconnector-opencti.service")
	var db string
	for _, v := range u["Environment"] {
		if k, val, _ := strings.Cut(v, "="); k == "VTCONNECTOR_DATABASE_URL" {
			db = val
		}
	}
	if len(u["StateDirectory"]) != 1 || path.Dir(db) != "/var/lib/"+u["StateDirectory"][0] {
		t.Errorf("VTCONNECTOR_DATABASE_URL=%s is not in StateDirectory=%v", db, u["StateDirectory"])
	}
	if len(u["User"]) != 1 || u["User"][0] != "vtconnector" {
		t.Errorf("User=%v, want vtconnector (the packages create that user)", u["User"])
	}
}
