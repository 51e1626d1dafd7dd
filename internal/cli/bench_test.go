package cli

import (
	"context"
	"crypto/md5"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vtconnector/vtconnector/internal/carbonblack"
	fakecb "github.com/vtconnector/vtconnector/internal/fake/carbonblack"
	fakevt "github.com/vtconnector/vtconnector/internal/fake/vt"
)

// BenchmarkCarbonBlackTimeToFeed measures the time from a malicious
// binary appearing on the Carbon Black server to its report being served
// in the feed, with the production intervals except a 1 s poll
// (sleep_between_batches=1) and 50 ms of VirusTotal latency. Run with
// -benchtime 1x.
func BenchmarkCarbonBlackTimeToFeed(b *testing.B) {
	for b.Loop() {
		w := newCbWorld(b, fakevt.Config{Seed: 31, UnknownPercent: -1, Latency: 50 * time.Millisecond}, "")
		prod := *fastTune
		prod.Debounce, prod.SyncEvery, prod.Idle = 500*time.Millisecond, time.Minute, 5*time.Second
		ctx, cancel := context.WithCancel(context.Background())
		e := &env{stdin: strings.NewReader(""), stdout: os.Stderr, stderr: os.Stderr, getenv: func(string) string { return "" }, cbTune: &prod}
		done := make(chan int, 1)
		go func() { done <- run(ctx, []string{"carbonblack", "--config", w.confPth}, e) }()
		waitForB(b, 30*time.Second, func() bool { got, _ := w.feed(b); return got != nil })

		var lat []time.Duration
		for i := 0; len(lat) < 20 && i < 200; i++ {
			bin := fakecb.Binary{Content: []byte(fmt.Sprintf("bench binary %d", i)), ServerAdded: time.Now().UTC()}
			bins := w.expected(b, []string{md5hex(bin.Content)})
			if len(bins) == 0 {
				continue // not detected: it would never appear in the feed
			}
			start := time.Now()
			w.cb.AddBinary(bin)
			id := "Binary_" + strings.ToUpper(md5hex(bin.Content))
			waitForB(b, 30*time.Second, func() bool { got, _ := w.feed(b); _, ok := got[id]; return ok })
			lat = append(lat, time.Since(start))
			time.Sleep(time.Duration(i%7) * 100 * time.Millisecond) // spread over the poll cycle
		}
		cancel()
		<-done
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50_ms")
		b.ReportMetric(float64(lat[len(lat)*9/10].Milliseconds()), "p90_ms")
		b.ReportMetric(float64(lat[len(lat)-1].Milliseconds()), "max_ms")
		b.ReportMetric(float64(len(lat)), "binaries")
	}
	_ = carbonblack.FeedName
}

func waitForB(b *testing.B, d time.Duration, cond func() bool) {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatal("timed out")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func md5hex(b []byte) string { return fmt.Sprintf("%x", md5.Sum(b)) }
