package obs

import (
	"bytes"
	"context"
	"flag"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// screenshotCopy is where TestStatusPageInChromium copies its screenshot,
// for a person to look at: go test -run Chromium -screenshot=/tmp/s.png.
var screenshotCopy = flag.String("screenshot", "", "copy the status page's screenshot to this path")

// Chromium's window, and so the screenshot's size.
const shotWidth, shotHeight = 1280, 1600

// chromium finds Debian's chromium. Without it the test fails in CI,
// which must install it (.ci/run does), and is skipped elsewhere.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not on PATH, and CI must run the status page test in a real browser: install Debian's chromium (.ci/run does: apt-get install chromium)")
	}
	t.Skip("chromium is not on PATH; install Debian's chromium to render the status page in a headless browser")
	return ""
}

// runChromium runs headless chromium with args and returns its stdout.
func runChromium(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	base := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--hide-scrollbars", "--user-data-dir=" + t.TempDir(),
	}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s: %v\n%s", strings.Join(args, " "), err, tail(stderr.String(), 3000))
	}
	return stdout.Bytes()
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func TestStatusPageInChromium(t *testing.T) {
	bin := chromium(t)
	o, _ := fixture(t)
	mux := http.NewServeMux()
	o.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	url := srv.URL + "/status"

	t.Run("screenshot", func(t *testing.T) {
		shot := filepath.Join(t.TempDir(), "status.png")
		runChromium(t, bin, "--window-size=1280,1600", "--screenshot="+shot, url)
		b, err := os.ReadFile(shot)
		if err != nil {
			t.Fatalf("chromium wrote no screenshot: %v", err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("the screenshot is not a PNG: %v", err)
		}
		if got := img.Bounds().Size(); got.X != shotWidth || got.Y != shotHeight {
			t.Errorf("the screenshot is %dx%d, want %dx%d", got.X, got.Y, shotWidth, shotHeight)
		}
		if *screenshotCopy != "" {
			if err := os.WriteFile(*screenshotCopy, b, 0o644); err != nil {
				t.Error(err)
			}
		}
	})

	t.Run("dom", func(t *testing.T) {
		dom := string(runChromium(t, bin, "--window-size=1280,1600", "--dump-dom", url))
		sections := map[string][]string{
			"quota": {
				"VirusTotal quota", `<tr class="window-day"><th scope="row">day</th><td class="num used">454</td><td class="num limit">500</td><td class="num remaining">46</td>`,
				"Every VirusTotal call is paused until 2026-03-14 15:10:11 UTC",
				`<figure class="chart" id="chart-day">`, `<rect class="full"`, "budget 500",
			},
			"queue": {
				"The queue is paused since 2026-03-14 14:59:26 UTC: &lt;b&gt;maintenance&lt;/b&gt; &amp; \"upgrade\"",
				`<span class="oldest">3h07m</span>`,
				`<tr><th scope="row">binary</th><td class="num">42</td>`,
				`<th scope="row">deep_scan</th>`,
			},
			"verdicts": {
				"44d88612fea8a8f36de82e1278abb02f", "62/71", "trojan.eicar/test",
				`href="https://www.virustotal.com/gui/file/275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"`,
				"&lt;script&gt;alert(\"label\")&lt;/script&gt;",
			},
			"problems": {
				`<li class="problem" data-key="virustotal_auth">`,
				"Carbon Black at &lt;https://cb.example&gt; answered \"401\" &amp; gave up",
			},
			"requests": {"API calls <b>311</b>", `<tr class="outcome-ok"><th scope="row">ok</th><td class="num">8</td></tr>`},
		}
		for id, texts := range sections {
			sec := section(dom, id)
			if sec == "" {
				t.Errorf("the rendered page has no #%s section:\n%s", id, dom)
				continue
			}
			for _, want := range texts {
				if !strings.Contains(sec, want) {
					t.Errorf("#%s lacks %q:\n%s", id, want, sec)
				}
			}
		}
		if !strings.Contains(dom, "<title>vtconnector — carbonblack</title>") {
			t.Error("the rendered page's title is not vtconnector — carbonblack")
		}
		if strings.Contains(dom, "<script") || strings.Contains(dom, "<img") {
			t.Error("the rendered page holds a script or an image: the hostile strings were not escaped")
		}
	})
}

// section returns the outer HTML of <section id="id"> in dom, or "".
func section(dom, id string) string {
	start := strings.Index(dom, `<section id="`+id+`">`)
	if start < 0 {
		return ""
	}
	end := strings.Index(dom[start:], "</section>")
	if end < 0 {
		return ""
	}
	return dom[start : start+end+len("</section>")]
}
