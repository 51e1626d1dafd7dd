package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	fakeocti "github.com/vtconnector/vtconnector/internal/fake/opencti"
	fakevt "github.com/vtconnector/vtconnector/internal/fake/vt"
)

// secretsSeen collects everything the daemons and commands show to
// people: logs, errors, pages, metrics, dumps.
type secretsSeen struct {
	t     *testing.T
	texts map[string]string // where -> what
}

func (s *secretsSeen) add(where, text string) { s.texts[where] += text }

func (s *secretsSeen) file(where, path string) {
	b, err := os.ReadFile(path)
	if err == nil {
		s.add(where, string(b))
	}
}

func (s *secretsSeen) url(where, u string, user, pass string) {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Errorf("%s: %v", where, err)
		return
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		s.t.Errorf("%s: %d", where, resp.StatusCode)
	}
	s.add(where, string(b))
}

// check fails for every secret found anywhere.
func (s *secretsSeen) check(secrets ...string) {
	if len(s.texts) == 0 {
		s.t.Fatal("nothing was collected: the test proves nothing")
	}
	for where, text := range s.texts {
		for _, sec := range secrets {
			if strings.Contains(text, sec) {
				i := strings.Index(text, sec)
				s.t.Errorf("%s shows the secret %q: …%s…", where, sec, text[max(0, i-80):min(len(text), i+len(sec)+40)])
			}
		}
	}
}

// TestNoSecretInAnythingShown runs the commands and the daemons with
// distinctive secrets, through failures that tend to quote their input
// (bad key, malformed config line, bad DSN, unreachable database), and
// looks for the secrets in every log, error, page and metric they produce.
func TestNoSecretInAnythingShown(t *testing.T) {
	const (
		vtKey    = "vt-test-key" // the key of cbWorld's connector.conf
		cbToken  = "cb-token"    // cbWorld's Cb token
		feedPass = "Fe3dPassw0rd-s3cret"
		dbPass   = "DbPa55-w0rd/x?y#z"
	)
	seen := &secretsSeen{t: t, texts: map[string]string{}}

	// The Carbon Black daemon, with feed credentials, through its pages.
	w := newCbWorld(t, fakevt.Config{Seed: 5, UnknownPercent: 50}, "feed_username=analyst\nfeed_password="+feedPass+"\n")
	w.cb.AddSyntheticBinaries(6, time.Now().Add(-time.Hour).UTC(), time.Minute)
	stop := w.start(t)
	waitFor(t, 30*time.Second, "the binaries looked up", func() bool { return w.idle(t) })
	for _, p := range []string{"/status", "/status.json", "/metrics", "/binaries.html", "/feed.json"} {
		seen.url("carbonblack "+p, fmt.Sprintf("http://127.0.0.1:%d%s", w.port, p), "analyst", feedPass)
	}
	stop()
	seen.file("carbonblack log", filepath.Join(w.dir, "connector.log"))

	// Its admin commands and the configuration dump.
	for _, args := range [][]string{
		{"config", "check", "--carbonblack", w.confPth},
		{"carbonblack", "export-feed", "--config", w.confPth},
	} {
		r := runCLI(t, nil, "", nil, args...)
		seen.add(strings.Join(args[:2], " "), r.stdout+r.stderr)
	}

	// A malformed line holding a token, and a database URL with a password.
	bad := filepath.Join(t.TempDir(), "bad.conf")
	conf, _ := os.ReadFile(w.confPth)
	if err := os.WriteFile(bad, append(conf, []byte("carbonblack_server_token "+cbToken+"\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, nil, "", nil, "config", "check", "--carbonblack", bad)
	seen.add("malformed connector.conf", r.stdout+r.stderr)
	for _, dsn := range []string{
		"postgres://vtc:" + dbPass + "@127.0.0.1:1/vtc?connect_timeout=1",
		"host=127.0.0.1 port=1 user=vtc password=" + strings.ReplaceAll(dbPass, "/", "") + " dbname=vtc",
	} {
		r := runCLI(t, nil, "", nil, "db", "stats", "--db", dsn)
		seen.add("db stats", r.stdout+r.stderr)
		if r.code == 0 {
			t.Errorf("db stats on an unreachable database succeeded")
		}
	}

	// lookup with a key VirusTotal refuses, and with the key on stdin-free flags.
	strict := fakevt.New(fakevt.Config{Keys: []string{"another-key"}})
	r = runCLI(t, strict, "", nil, "lookup", "--apikey", vtKey, "--vt-url", simBase, "--rate", "0", "8.8.8.8", "example.com")
	seen.add("lookup with a refused key", r.stdout+r.stderr)
	if r.code == 0 {
		t.Errorf("lookup with a refused key succeeded")
	}

	// The OpenCTI daemon, when RabbitMQ is there.
	if os.Getenv("VTC_TEST_AMQP_URL") != "" {
		port := freePort(t)
		ow := newOctiWorld(t, fakevt.Config{Seed: 6, UnknownPercent: 30}, map[string]string{"VTCONNECTOR_HTTP_ADDR": fmt.Sprintf("127.0.0.1:%d", port)})
		ostop, logs := ow.start(t)
		ip := ow.platform.AddEntity(fakeocti.Entity{Type: "IPv4-Addr", Value: "198.51.100.23"})
		ow.enrich(t, ip)
		for _, p := range []string{"/status", "/status.json", "/metrics"} {
			seen.url("opencti "+p, fmt.Sprintf("http://127.0.0.1:%d%s", port, p), "", "")
		}
		ostop()
		seen.add("opencti log", logs.String())
		e := &env{stdin: strings.NewReader(""), stdout: new(strings.Builder), stderr: new(strings.Builder), getenv: func(string) string { return "" }, environ: ow.env}
		run(context.Background(), []string{"config", "check", "--opencti"}, e)
		seen.add("config check --opencti", e.stdout.(*strings.Builder).String()+e.stderr.(*strings.Builder).String())
		seen.check(vtKey, cbToken, feedPass, dbPass, ow.env["OPENCTI_TOKEN"], ow.env["VIRUSTOTAL_TOKEN"])
		return
	}
	seen.check(vtKey, cbToken, feedPass, dbPass)
}
