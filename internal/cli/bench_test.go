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
	fakeocti "github.com/vtconnector/vtconnector/internal/fake/opencti"
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
		e := &env{stdin: strings.NewReader(""), stdout: os.Stderr, stderr: os.Stderr, getenv: func(string) string { return "" }, cbTune: &prod, analysisPoll: fastPoll}
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

// BenchmarkOpenCTIThroughput: enrichments per second end to end through
// RabbitMQ (platform double, real broker), VirusTotal answering after
// 50 ms, at connector concurrency 1 and 8. Run with -benchtime 1x.
func BenchmarkOpenCTIThroughput(b *testing.B) {
	for _, conc := range []int{1, 8} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			for b.Loop() {
				w := newOctiWorld(b, fakevt.Config{Seed: 9, UnknownPercent: -1, Latency: 50 * time.Millisecond},
					map[string]string{"VTCONNECTOR_CONCURRENCY": fmt.Sprint(conc), "CONNECTOR_LOG_LEVEL": "error"})
				stop, _ := w.start(b)
				const n = 80
				var works []string
				ids := make([]string, n)
				for i := range n {
					ids[i] = w.platform.AddEntity(fakeocti.Entity{Type: "IPv4-Addr", Value: fmt.Sprintf("198.18.%d.%d", i/200, i%200+1)})
				}
				start := time.Now()
				for _, id := range ids {
					work, err := w.platform.Enrich(context.Background(), w.id, id)
					if err != nil {
						b.Fatal(err)
					}
					works = append(works, work)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				for _, work := range works {
					if _, err := w.platform.WaitWork(ctx, work, "complete"); err != nil {
						b.Fatal(err)
					}
				}
				cancel()
				elapsed := time.Since(start)
				stop()
				b.ReportMetric(float64(n)/elapsed.Seconds(), "enrichments/s")
				b.ReportMetric(float64(elapsed.Milliseconds())/n, "ms/enrichment")
			}
		})
	}
}
