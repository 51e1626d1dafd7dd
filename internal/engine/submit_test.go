package engine_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vtconnector/vtconnector/internal/engine"
	fakevt "github.com/vtconnector/vtconnector/internal/fake/vt"
	"github.com/vtconnector/vtconnector/internal/stix"
	"github.com/vtconnector/vtconnector/internal/vt"
)

// memTransport serves requests with an in-process handler, so the tests
// run inside synctest bubbles (no sockets).
type memTransport struct{ h http.Handler }

func (t memTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	if r.Body != nil {
		defer r.Body.Close()
	}
	t.h.ServeHTTP(rec, r)
	if err := r.Context().Err(); err != nil {
		return nil, err
	}
	return rec.Result(), nil
}

// events records what the engine reports.
type events struct {
	mu      sync.Mutex
	refused []string
	eps     []string
}

func (e *events) Request(ep string, _ error, _ time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.eps = append(e.eps, ep)
}
func (e *events) Answered(string) {}
func (e *events) UploadRefused(reason string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.refused = append(e.refused, reason)
}

func newSubmitEngine(t *testing.T, h http.Handler, opt engine.Options) (*engine.Engine, *events) {
	t.Helper()
	c, err := vt.New("k", vt.WithBaseURL("http://vt.sim/api/v3"), vt.WithHTTPClient(&http.Client{Transport: memTransport{h}}))
	if err != nil {
		t.Fatal(err)
	}
	ev := &events{}
	opt.Events, opt.Submit, opt.Log = ev, c, nil
	sched := engine.NewScheduler(engine.NewMemLedger(), engine.Limits{}, time.Minute, nil)
	t.Cleanup(sched.Close)
	return engine.New(c, engine.NewMemCache(), sched, opt), ev
}

// writeFile writes content to a new file and returns its path.
func writeFile(t *testing.T, name string, content []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, content, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// peFile is a minimal PE header followed by unique bytes.
func peFile(unique string) []byte {
	h := make([]byte, 0x44)
	copy(h, "MZ")
	h[0x3c] = 0x40
	copy(h[0x40:], "PE\x00\x00")
	return append(h, []byte(unique)...)
}

func TestSniffFileType(t *testing.T) {
	elf := append([]byte{0x7f, 'E', 'L', 'F'}, make([]byte, 60)...)
	macho64 := append([]byte{0xcf, 0xfa, 0xed, 0xfe}, make([]byte, 60)...)
	fat := append([]byte{0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 2}, make([]byte, 56)...)
	javaClass := append([]byte{0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 52}, make([]byte, 56)...)
	mzOnly := append([]byte("MZ"), make([]byte, 100)...)
	badOffset := peFile("x")
	badOffset[0x3c] = 0xff // e_lfanew beyond the head
	for _, tc := range []struct {
		name string
		head []byte
		want string
	}{
		{"PE", peFile("x"), engine.FileTypePE},
		{"ELF", elf, engine.FileTypeELF},
		{"Mach-O 64", macho64, engine.FileTypeMachO},
		{"universal binary", fat, engine.FileTypeMachO},
		{"Java class is not Mach-O", javaClass, ""},
		{"MZ without PE signature (DOS)", mzOnly, ""},
		{"PE offset out of range", badOffset, ""},
		{"text", []byte("hello world"), ""},
		{"empty", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := engine.SniffFileType(tc.head); got != tc.want {
				t.Errorf("SniffFileType = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestUploadPolicyRefusesWithAReason(t *testing.T) {
	amber, clear := stix.TLPAmber, stix.TLPClear
	pe := writeFile(t, "a.exe", peFile("policy"))
	text := writeFile(t, "a.txt", []byte("just text"))
	big := writeFile(t, "big.exe", append(peFile("big"), make([]byte, 2000)...))
	for _, tc := range []struct {
		name   string
		policy engine.UploadPolicy
		path   string
		facts  engine.UploadFacts
		reason string // "" = allowed
	}{
		{"executables allowed", engine.UploadPolicy{FileTypes: []string{"pe", "elf", "macho"}}, pe, engine.UploadFacts{}, ""},
		{"text refused by type", engine.UploadPolicy{FileTypes: []string{"pe", "elf", "macho"}}, text, engine.UploadFacts{}, engine.RefusedFileType},
		{"any type", engine.UploadPolicy{FileTypes: []string{"any"}}, text, engine.UploadFacts{}, ""},
		{"no types listed: any", engine.UploadPolicy{}, text, engine.UploadFacts{}, ""},
		{"too large", engine.UploadPolicy{MaxSize: 1000}, big, engine.UploadFacts{}, engine.RefusedSize},
		{"signed refused when unsigned only", engine.UploadPolicy{UnsignedOnly: true}, pe, engine.UploadFacts{Signed: true}, engine.RefusedSigned},
		{"unsigned allowed when unsigned only", engine.UploadPolicy{UnsignedOnly: true}, pe, engine.UploadFacts{}, ""},
		{"TLP above the ceiling", engine.UploadPolicy{MaxTLP: &clear}, pe, engine.UploadFacts{TLP: &amber}, engine.RefusedTLP},
		{"TLP at the ceiling", engine.UploadPolicy{MaxTLP: &amber}, pe, engine.UploadFacts{TLP: &amber}, ""},
		{"no marking", engine.UploadPolicy{MaxTLP: &clear}, pe, engine.UploadFacts{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.policy.Check(tc.path, tc.facts)
			var re *engine.UploadRefusedError
			switch {
			case tc.reason == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.reason != "" && !errors.As(err, &re):
				t.Fatalf("Check = %v, want a refusal for %s", err, tc.reason)
			case tc.reason != "" && (re.Reason != tc.reason || !errors.Is(err, engine.ErrUploadRefused)):
				t.Fatalf("refused for %s (%v), want %s", re.Reason, err, tc.reason)
			}
		})
	}
	bad := engine.UploadPolicy{MaxSize: -1, FileTypes: []string{"pe", "docx"}}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "docx") || !strings.Contains(err.Error(), "max size") {
		t.Errorf("Validate = %v, want both problems named", err)
	}
}

func TestRefusedUploadSendsNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := fakevt.New(fakevt.Config{UnknownPercent: 100})
		eng, ev := newSubmitEngine(t, sim, engine.Options{Uploads: engine.UploadPolicy{FileTypes: []string{"pe"}}})
		_, err := eng.Upload(t.Context(), engine.Upload{Path: writeFile(t, "doc.txt", []byte("a document"))})
		if !errors.Is(err, engine.ErrUploadRefused) {
			t.Fatalf("Upload = %v, want a refusal", err)
		}
		if n := sim.Stats().Requests; n != 0 {
			t.Errorf("%d requests reached VirusTotal for a refused upload", n)
		}
		if len(ev.refused) != 1 || ev.refused[0] != engine.RefusedFileType {
			t.Errorf("refusals reported %v, want [file_type]", ev.refused)
		}
	})
}

func TestStalledUploadEndsByItsDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := fakevt.New(fakevt.Config{})
		var uploads sync.WaitGroup
		stall := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/files") {
				uploads.Add(1)
				defer uploads.Done()
				<-r.Context().Done() // the server never answers
				return
			}
			sim.ServeHTTP(w, r)
		})
		eng, _ := newSubmitEngine(t, stall, engine.Options{UploadMinRate: 1 << 20})
		content := append(peFile("stall"), make([]byte, 10<<20)...)
		path := writeFile(t, "big.exe", content)
		began := time.Now()
		_, err := eng.Upload(t.Context(), engine.Upload{Path: path})
		took := time.Since(began)
		if !errors.Is(err, vt.ErrDeadlineExceeded) {
			t.Fatalf("Upload = %v, want a deadline error", err)
		}
		want := engine.UploadDeadline(int64(len(content)), 1<<20)
		if took != want {
			t.Errorf("the stalled upload ended after %s, want its deadline %s (one attempt, no retry)", took, want)
		}
		uploads.Wait()
	})
}

func TestPublicUploadIsCollectedWithAFreshReport(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := fakevt.New(fakevt.Config{UnknownPercent: 100, AnalysisDelay: 90 * time.Second})
		eng, _ := newSubmitEngine(t, sim, engine.Options{Analysis: engine.AnalysisPolicy{FirstPoll: 20 * time.Second, MaxInterval: time.Minute}})
		path := writeFile(t, "new.exe", peFile("public collect"))
		sha, _ := vt.SHA256File(path)
		sub, err := eng.Upload(t.Context(), engine.Upload{Path: path, Mode: engine.Public})
		if err != nil {
			t.Fatal(err)
		}
		if sub.Subject != sha || sub.Mode != engine.Public || sub.Kind != vt.KindFile {
			t.Fatalf("submission %+v", sub)
		}
		var polls []time.Duration
		for {
			c, err := eng.Collect(t.Context(), &sub, engine.CallOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if c.Done {
				if c.GaveUp || !c.Result.Found || c.Result.Object.Attributes.SHA256 != sha || c.Result.Cached {
					t.Fatalf("collected %+v, want the fresh report of %s", c, sha)
				}
				break
			}
			d := time.Until(c.NextPoll)
			polls = append(polls, d)
			time.Sleep(d)
		}
		if want := []time.Duration{20 * time.Second, 40 * time.Second, time.Minute}; fmt.Sprint(polls) != fmt.Sprint(want) {
			t.Errorf("poll spacing %v, want %v", polls, want)
		}
		if sub.Polls != 4 {
			t.Errorf("%d polls counted, want 4", sub.Polls)
		}
	})
}

func TestCollectGivesUpAfterTheAnalysisWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := fakevt.New(fakevt.Config{UnknownPercent: 100, AnalysisDelay: 10 * time.Hour})
		eng, _ := newSubmitEngine(t, sim, engine.Options{Analysis: engine.AnalysisPolicy{MaxWait: 30 * time.Minute}})
		sub, err := eng.Upload(t.Context(), engine.Upload{Path: writeFile(t, "slow.exe", peFile("never done"))})
		if err != nil {
			t.Fatal(err)
		}
		for {
			c, err := eng.Collect(t.Context(), &sub, engine.CallOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if c.Done {
				if !c.GaveUp {
					t.Errorf("done without giving up although the analysis takes 10 h")
				}
				if waited := time.Since(sub.Since); waited < 30*time.Minute || waited > 33*time.Minute {
					t.Errorf("gave up after %s, want the 30 min analysis wait (plus one poll interval)", waited)
				}
				return
			}
			time.Sleep(time.Until(c.NextPoll))
		}
	})
}

func TestPrivateModeNeverReachesPublicEndpoints(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := fakevt.New(fakevt.Config{UnknownPercent: 100, AnalysisDelay: 30 * time.Second})
		eng, _ := newSubmitEngine(t, sim, engine.Options{})
		path := writeFile(t, "secret.exe", peFile("private"))
		sub, err := eng.Upload(t.Context(), engine.Upload{Path: path, Mode: engine.Private})
		if err != nil {
			t.Fatal(err)
		}
		usub, err := eng.SubmitURL(t.Context(), "http://private.example/x", engine.Private, engine.UploadFacts{}, engine.CallOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []*engine.Submission{&sub, &usub} {
			for {
				c, err := eng.Collect(t.Context(), s, engine.CallOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if c.Done {
					if !c.Result.Found || !c.Result.Object.Private {
						t.Errorf("%s: collected %+v, want a private report", s.Kind, c.Result)
					}
					break
				}
				time.Sleep(time.Until(c.NextPoll))
			}
		}
		for ep, n := range sim.Stats().ByEndpoint {
			if !strings.HasPrefix(ep, "GET /private/") && !strings.HasPrefix(ep, "POST /private/") && ep != "GET /users/{id}/overall_quotas" {
				t.Errorf("private mode sent %d requests to %s", n, ep)
			}
		}
	})
}

func TestPrivateUploadRefusedByTheServerDoesNotFallBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := fakevt.New(fakevt.Config{UnknownPercent: 100, PrivateKeys: []string{"someone-else"}})
		eng, _ := newSubmitEngine(t, sim, engine.Options{})
		_, err := eng.Upload(t.Context(), engine.Upload{Path: writeFile(t, "x.exe", peFile("no licence")), Mode: engine.Private})
		if !errors.Is(err, vt.ErrForbidden) {
			t.Fatalf("Upload = %v, want VirusTotal's refusal (no private scanning licence)", err)
		}
		if n := sim.Stats().ByEndpoint["POST /files"]; n != 0 {
			t.Errorf("the refused private upload fell back to %d public uploads", n)
		}
	})
}

func TestURLServingIPIsReadOnceThenCached(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := fakevt.New(fakevt.Config{UnknownPercent: -1})
		eng, _ := newSubmitEngine(t, sim, engine.Options{})
		res, err := eng.Lookup(t.Context(), engine.Request{Kind: vt.KindURL, ID: "http://served.example/page"})
		if err != nil || !res.Found {
			t.Fatalf("lookup: %v %+v", err, res)
		}
		ip, err := eng.URLServingIP(t.Context(), res.Object.ID, engine.CallOptions{})
		if err != nil {
			t.Fatal(err)
		}
		again, err := eng.URLServingIP(t.Context(), res.Object.ID, engine.CallOptions{})
		if err != nil || again != ip {
			t.Fatalf("second read %q (%v), first %q", again, err, ip)
		}
		if ip != "" {
			if _, err := vt.NormalizeIP(ip); err != nil {
				t.Errorf("serving IP %q is not an address", ip)
			}
		}
		if n := sim.Stats().ByEndpoint["GET /urls/{id}/last_serving_ip_address"]; n != 1 {
			t.Errorf("%d requests for the serving IP, want 1 (then the cache)", n)
		}
	})
}
