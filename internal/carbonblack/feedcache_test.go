package carbonblack

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestFeedCacheRender(t *testing.T) {
	c := newFixedFeedCache()
	if c.Current() != nil {
		t.Fatal("Current before the first render is not nil")
	}
	info := goldenFeedInfo(t)
	if err := c.Render(info, nil); err != nil {
		t.Fatal(err)
	}
	empty := c.Current()
	if !bytes.Contains(empty.Body, []byte(`"reports":[]}`)) || empty.Reports != 0 {
		t.Errorf("empty feed = %s", empty.Body)
	}
	if errs := ValidateFeedJSON(empty.Body); errs != nil {
		t.Errorf("empty feed is invalid: %v", errors.Join(errs...))
	}

	reports := BuildReports(goldenVerdicts(), FeedOptions{})
	if err := c.Render(info, reports); err != nil {
		t.Fatal(err)
	}
	s := c.Current()
	sum := sha256.Sum256(s.Body)
	if want := `"` + hex.EncodeToString(sum[:16]) + `"`; s.ETag != want {
		t.Errorf("ETag = %s, want %s", s.ETag, want)
	}
	if s.GzipETag() != strings.TrimSuffix(s.ETag, `"`)+`-gzip"` {
		t.Errorf("GzipETag = %s", s.GzipETag())
	}
	zr, err := gzip.NewReader(bytes.NewReader(s.Gzip))
	if err != nil {
		t.Fatal(err)
	}
	unzipped, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(unzipped, s.Body) {
		t.Errorf("gzip does not round-trip (err %v)", err)
	}
	if s.Reports != len(reports) || !s.RenderedAt.Equal(fixedRenderClock()) {
		t.Errorf("Reports %d RenderedAt %v", s.Reports, s.RenderedAt)
	}

	t.Run("unchanged content keeps the snapshot", func(t *testing.T) {
		c.now = func() time.Time { return fixedRenderClock().Add(time.Hour) }
		if err := c.Render(info, BuildReports(goldenVerdicts(), FeedOptions{})); err != nil {
			t.Fatal(err)
		}
		if c.Current() != s {
			t.Error("an identical render replaced the snapshot")
		}
	})
	t.Run("invalid feed is refused and the old one kept", func(t *testing.T) {
		bad := append([]Report(nil), reports...)
		bad[0].Title = "two\nlines"
		err := c.Render(info, bad)
		var fe *FeedError
		if !errors.As(err, &fe) || fe.Field != "title" {
			t.Errorf("Render error = %v, want a title FeedError", err)
		}
		if c.Current() != s {
			t.Error("a refused render replaced the snapshot")
		}
	})
	t.Run("a change gets a new snapshot", func(t *testing.T) {
		if err := c.Render(info, reports[:1]); err != nil {
			t.Fatal(err)
		}
		n := c.Current()
		if n == s || n.ETag == s.ETag || n.Reports != 1 || !n.RenderedAt.Equal(fixedRenderClock().Add(time.Hour)) {
			t.Errorf("new snapshot %+v", n)
		}
	})
}

// BenchmarkRender100k measures one render of a 100,000-report feed:
// validation, JSON encoding, SHA-256 and gzip.
func BenchmarkRender100k(b *testing.B) {
	reports := BuildReports(syntheticVerdicts(100_000), FeedOptions{IncludeSHA256: true})
	info := DefaultFeedInfo()
	var last *FeedSnapshot
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c := NewFeedCache() // a fresh cache, so that no render is skipped as unchanged
		if err := c.Render(info, reports); err != nil {
			b.Fatal(err)
		}
		last = c.Current()
	}
	b.ReportMetric(float64(len(last.Body))/1e6, "body-MB")
	b.ReportMetric(float64(len(last.Gzip))/1e6, "gzip-MB")
}
