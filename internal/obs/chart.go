package obs

import (
	"fmt"
	"time"

	"github.com/vtconnector/vtconnector/internal/engine"
)

// The quota chart: the last HistoryWindow in chartBuckets bars, each the
// highest sample of its span, drawn server-side as inline SVG.
const (
	chartBuckets = 96
	bucketLen    = HistoryWindow / chartBuckets // 15 minutes
	barStep      = 10                           // SVG units per bar, gap included
	barWidth     = 8
	chartWidth   = chartBuckets * barStep
	plotTop      = 16 // room for the budget label
	plotHeight   = 100
	chartHeight  = plotTop + plotHeight + 16 // room for the time labels
	ticksEvery   = chartBuckets / 4          // a time label every 6 hours
)

// HistoryPoint is the quota use in one span of the chart: the highest
// sample of each window in it.
type HistoryPoint struct {
	Start   time.Time `json:"start"`
	Minute  int       `json:"minute"`
	Day     int       `json:"day"`
	Month   int       `json:"month"`
	Paused  bool      `json:"paused"`  // some sample in the span was paused
	Samples int       `json:"samples"` // how many samples the span holds
}

// chartStart is the start of the chart's first span: spans follow the
// clock (…:00, :15, :30, :45) and the last one holds now.
func chartStart(now time.Time) time.Time {
	return now.Truncate(bucketLen).Add(bucketLen - HistoryWindow)
}

// bucketize groups the samples of the chart's 24 hours into chartBuckets
// spans; spans without samples are left out.
func bucketize(samples []Sample, now time.Time) []HistoryPoint {
	start := chartStart(now)
	var (
		buckets [chartBuckets]HistoryPoint
		out     []HistoryPoint
	)
	for _, s := range samples {
		if s.At.Before(start) || s.At.After(now) {
			continue
		}
		i := min(int(s.At.Sub(start)/bucketLen), chartBuckets-1)
		b := &buckets[i]
		b.Minute, b.Day, b.Month = max(b.Minute, s.Minute), max(b.Day, s.Day), max(b.Month, s.Month)
		b.Paused = b.Paused || s.Paused
		b.Samples++
	}
	for i, b := range buckets {
		if b.Samples > 0 {
			b.Start = start.Add(time.Duration(i) * bucketLen)
			out = append(out, b)
		}
	}
	return out
}

// chart is the data of one window's SVG chart; the template draws it.
type chart struct {
	Window  string
	Limit   int // 0: unlimited
	Width   int
	Height  int
	Base    int // y of the time axis
	LimitY  int // y of the budget line, when Limit > 0
	LabelY  int // y of the budget label
	TickY   int // y of the time labels
	Bars    []bar
	Ticks   []tick
	Summary string // the chart in words, for screen readers and text browsers
}

type bar struct {
	X, Y, W, H int
	Class      string // used, full, paused or zero
	Title      string
}

type tick struct {
	X      int
	Anchor string
	Label  string
}

// charts draws the minute, day and month charts of points.
func charts(points []HistoryPoint, lim engine.Limits, now time.Time) []chart {
	start := chartStart(now)
	pick := []struct {
		window string
		limit  int
		value  func(HistoryPoint) int
	}{
		{engine.WindowMinute, lim.PerMinute, func(p HistoryPoint) int { return p.Minute }},
		{engine.WindowDay, lim.PerDay, func(p HistoryPoint) int { return p.Day }},
		{engine.WindowMonth, lim.PerMonth, func(p HistoryPoint) int { return p.Month }},
	}
	out := make([]chart, 0, len(pick))
	for _, w := range pick {
		c := chart{Window: w.window, Limit: w.limit, Width: chartWidth, Height: chartHeight, Base: plotTop + plotHeight, TickY: chartHeight - 3}
		top, peak := w.limit, 0
		for _, p := range points {
			peak = max(peak, w.value(p))
		}
		top = max(top, peak, 1)
		if w.limit > 0 {
			c.LimitY = c.Base - plotHeight*w.limit/top
			c.LabelY = c.LimitY - 4
		}
		for _, p := range points {
			v := w.value(p)
			i := int(p.Start.Sub(start) / bucketLen)
			h := (plotHeight*v + top - 1) / top // round up: any use shows
			b := bar{X: i*barStep + (barStep-barWidth)/2, W: barWidth, H: max(h, 1), Class: "used"}
			b.Y = c.Base - b.H
			switch {
			case p.Paused:
				b.Class = "paused"
			case w.limit > 0 && v >= w.limit:
				b.Class = "full"
			case v == 0:
				b.Class = "zero"
			}
			b.Title = fmt.Sprintf("%s–%s UTC: %s", p.Start.UTC().Format("15:04"), p.Start.Add(bucketLen).UTC().Format("15:04"), usedOf(v, w.limit))
			if p.Paused {
				b.Title += ", paused after a 429"
			}
			c.Bars = append(c.Bars, b)
		}
		for i := 0; i <= chartBuckets; i += ticksEvery {
			t := tick{X: i * barStep, Anchor: "middle", Label: start.Add(time.Duration(i) * bucketLen).UTC().Format("15:04")}
			switch i {
			case 0:
				t.Anchor = "start"
			case chartBuckets:
				t.Anchor = "end"
			}
			c.Ticks = append(c.Ticks, t)
		}
		switch {
		case len(points) == 0:
			c.Summary = "No samples yet."
		default:
			c.Summary = fmt.Sprintf("Highest in the last 24 hours: %s.", usedOf(peak, w.limit))
		}
		out = append(out, c)
	}
	return out
}

func usedOf(v, limit int) string {
	if limit > 0 {
		return fmt.Sprintf("%d of %d used", v, limit)
	}
	return fmt.Sprintf("%d used (no budget)", v)
}
