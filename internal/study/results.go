package study

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"
)

// Test kinds of a Sample.
const (
	KindBulk = "bulk"
	KindRR   = "rr"
)

// Sample is one perf test.
type Sample struct {
	Variant   Variant
	Placement Placement
	// Entries is N: policy entries or FORWARD rules.
	Entries int
	// Rep counts the repetitions of this point from 0.
	Rep int
	// Kind is KindBulk or KindRR.
	Kind string
	// Mbps is a bulk test's throughput (receiver's bytes over receiver's
	// time), in Mbit/s.
	Mbps float64
	// TPS and LatencyUS are a TCP_RR test's transactions per second and
	// mean latency in microseconds.
	TPS       float64
	LatencyUS float64
	// Duration is the measured time.
	Duration time.Duration
	// CPUSeconds is the host CPU time the VMs carrying the flow (node1
	// single-host; node1, the ToR and node2 multi-host) used during the
	// test: what the emulation of the whole path cost, whatever else the
	// host was doing meanwhile.
	CPUSeconds float64
}

// Metric is one of the study's three measures.
type Metric string

// The metrics, each with its plot and table: the study's three, measured
// by the wall clock, and two that divide by the VMs' CPU time and so do
// not depend on how much of the host's CPU the VMs got.
const (
	Throughput   Metric = "throughput"
	Transactions Metric = "transactions"
	Latency      Metric = "latency"
	// ThroughputPerCPU is a bulk test's bits per second of the VMs' CPU
	// time.
	ThroughputPerCPU Metric = "throughput-per-cpu"
	// CPUPerTransaction is a TCP_RR test's VM CPU time per transaction.
	CPUPerTransaction Metric = "cpu-per-transaction"
)

// Metrics lists them in the report's order.
var Metrics = []Metric{Throughput, Transactions, Latency, ThroughputPerCPU, CPUPerTransaction}

// Title is the metric's plot title.
func (m Metric) Title() string {
	switch m {
	case Throughput:
		return "TCP throughput, one bulk stream"
	case Transactions:
		return "TCP_RR transactions per second (100 B request, 200 B response)"
	case Latency:
		return "TCP_RR mean latency"
	case ThroughputPerCPU:
		return "Bulk throughput per VM CPU second"
	case CPUPerTransaction:
		return "VM CPU time per TCP_RR transaction"
	}
	return string(m)
}

// Unit is the metric's absolute unit.
func (m Metric) Unit() string {
	switch m {
	case Throughput:
		return "Mbit/s"
	case Transactions:
		return "1/s"
	case Latency:
		return "µs"
	case ThroughputPerCPU:
		return "Mbit per CPU s"
	case CPUPerTransaction:
		return "CPU µs"
	}
	return ""
}

// value returns s's value of m and whether s measures m.
func (s Sample) value(m Metric) (float64, bool) {
	switch {
	case m == Throughput && s.Kind == KindBulk:
		return s.Mbps, true
	case m == Transactions && s.Kind == KindRR:
		return s.TPS, true
	case m == Latency && s.Kind == KindRR:
		return s.LatencyUS, true
	case m == ThroughputPerCPU && s.Kind == KindBulk && s.CPUSeconds > 0:
		return s.Mbps * s.Duration.Seconds() / s.CPUSeconds, true
	case m == CPUPerTransaction && s.Kind == KindRR && s.CPUSeconds > 0 && s.TPS > 0:
		return s.CPUSeconds * 1e6 / (s.TPS * s.Duration.Seconds()), true
	}
	return 0, false
}

// Point is one metric at one (variant, placement, entries): the median of
// its repetitions, their spread, and the ratio to the same variant and
// placement at 0 entries.
type Point struct {
	Metric    Metric
	Variant   Variant
	Placement Placement
	Entries   int
	// N counts the repetitions.
	N int
	// Median, Min and Max are absolute (Metric.Unit).
	Median, Min, Max float64
	// Ratio is Median over the 0-entry median; RatioMin and RatioMax are
	// Min and Max over it (the spread, relative). NaN without a base.
	Ratio, RatioMin, RatioMax float64
}

// Spread is (Max-Min)/Median, the relative spread of the repetitions.
func (p Point) Spread() float64 {
	if p.Median == 0 {
		return math.NaN()
	}
	return (p.Max - p.Min) / p.Median
}

type pointKey struct {
	m Metric
	v Variant
	p Placement
	n int
}

// Summarize groups samples into points, ordered by metric, variant,
// placement and entries (each in the order of Metrics, Variants,
// Placements, then ascending).
func Summarize(samples []Sample) []Point {
	values := map[pointKey][]float64{}
	for _, s := range samples {
		for _, m := range Metrics {
			if v, ok := s.value(m); ok {
				k := pointKey{m, s.Variant, s.Placement, s.Entries}
				values[k] = append(values[k], v)
			}
		}
	}
	var out []Point
	for k, vs := range values {
		slices.Sort(vs)
		out = append(out, Point{Metric: k.m, Variant: k.v, Placement: k.p, Entries: k.n, N: len(vs),
			Median: median(vs), Min: vs[0], Max: vs[len(vs)-1]})
	}
	slices.SortFunc(out, func(a, b Point) int {
		return cmp.Or(
			cmp.Compare(slices.Index(Metrics, a.Metric), slices.Index(Metrics, b.Metric)),
			cmp.Compare(orderOf(Variants, a.Variant), orderOf(Variants, b.Variant)),
			cmp.Compare(a.Variant, b.Variant),
			cmp.Compare(orderOf(Placements, a.Placement), orderOf(Placements, b.Placement)),
			cmp.Compare(a.Entries, b.Entries))
	})
	base := map[pointKey]float64{}
	for _, p := range out {
		if p.Entries == 0 {
			base[pointKey{p.Metric, p.Variant, p.Placement, 0}] = p.Median
		}
	}
	for i := range out {
		p := &out[i]
		b, ok := base[pointKey{p.Metric, p.Variant, p.Placement, 0}]
		if !ok || b == 0 {
			p.Ratio, p.RatioMin, p.RatioMax = math.NaN(), math.NaN(), math.NaN()
			continue
		}
		p.Ratio, p.RatioMin, p.RatioMax = p.Median/b, p.Min/b, p.Max/b
	}
	return out
}

// orderOf is x's index in list, or len(list) for an unknown value.
func orderOf[T comparable](list []T, x T) int {
	if i := slices.Index(list, x); i >= 0 {
		return i
	}
	return len(list)
}

// median of sorted values.
func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// Find returns the point of m, v, p at n entries.
func Find(points []Point, m Metric, v Variant, p Placement, n int) (Point, bool) {
	for _, x := range points {
		if x.Metric == m && x.Variant == v && x.Placement == p && x.Entries == n {
			return x, true
		}
	}
	return Point{}, false
}

// Slope is the least-squares slope of the ratio of m against the entry
// count, over the points of v and p with at most maxEntries entries, per
// entry; NaN with fewer than two points.
func Slope(points []Point, m Metric, v Variant, p Placement, maxEntries int) float64 {
	var xs, ys []float64
	for _, x := range points {
		if x.Metric == m && x.Variant == v && x.Placement == p && x.Entries <= maxEntries && !math.IsNaN(x.Ratio) {
			xs = append(xs, float64(x.Entries))
			ys = append(ys, x.Ratio)
		}
	}
	if len(xs) < 2 {
		return math.NaN()
	}
	var mx, my float64
	for i := range xs {
		mx += xs[i]
		my += ys[i]
	}
	mx /= float64(len(xs))
	my /= float64(len(ys))
	var sxy, sxx float64
	for i := range xs {
		sxy += (xs[i] - mx) * (ys[i] - my)
		sxx += (xs[i] - mx) * (xs[i] - mx)
	}
	if sxx == 0 {
		return math.NaN()
	}
	return sxy / sxx
}

// String is a one-line account of the sample (progress lines).
func (s Sample) String() string {
	if s.Kind == KindBulk {
		return fmt.Sprintf("%s %s %d entries #%d: bulk %.1f Mbit/s", s.Variant, s.Placement, s.Entries, s.Rep+1, s.Mbps)
	}
	return fmt.Sprintf("%s %s %d entries #%d: rr %.0f/s, %.0f µs", s.Variant, s.Placement, s.Entries, s.Rep+1, s.TPS, s.LatencyUS)
}
