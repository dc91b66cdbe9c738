//go:build vm

package study

import (
	"context"
	"math"
	"os"
	"testing"
	"time"

	"github.com/hoplab/hoplab/internal/testreq"
)

// TestTinyGrid runs the study's smallest grid, 0 and 10 entries once on
// every variant and placement, and checks every number is sane: positive
// throughput below what a VM could move, transactions whose mean latency
// matches their rate, CPU times within the tests' windows, a ratio for
// every point.
func TestTinyGrid(t *testing.T) {
	testreq.Command(t, "qemu-system-x86_64", "apt-get install qemu-system-x86")
	g := Grid{Variants: Variants, Counts: []int{0, 10}, Placements: Placements, Reps: 1, Duration: time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	res, err := Run(ctx, Options{Grid: g, Series: os.Getenv("HOPLAB_SERIES"), Progress: func(s string) { t.Log(s) }})
	if err != nil {
		t.Fatal(err)
	}
	if want := g.Measurements(); len(res.Samples) != want {
		t.Fatalf("%d samples, want %d", len(res.Samples), want)
	}
	for _, s := range res.Samples {
		switch s.Kind {
		case KindBulk:
			if !(s.Mbps > 0.1 && s.Mbps < 100_000) {
				t.Errorf("%v: throughput", s)
			}
		case KindRR:
			if !(s.TPS > 1) || math.Abs(s.TPS*s.LatencyUS/1e6-1) > 0.2 {
				t.Errorf("%v: %.0f/s at a mean latency of %.0f µs", s, s.TPS, s.LatencyUS)
			}
		}
		if s.Duration < 900*time.Millisecond || s.Duration > 30*time.Second {
			t.Errorf("%v: measured over %v", s, s.Duration)
		}
		if !(s.CPUSeconds > 0 && s.CPUSeconds < 3*(s.Duration.Seconds()+5)) {
			t.Errorf("%v: VM CPU %.2f s", s, s.CPUSeconds)
		}
	}
	points := Summarize(res.Samples)
	if want := len(Metrics) * len(Variants) * len(Placements) * 2; len(points) != want {
		t.Errorf("%d points, want %d", len(points), want)
	}
	for _, p := range points {
		if math.IsNaN(p.Ratio) || p.Ratio <= 0 {
			t.Errorf("%+v: no ratio", p)
		}
	}
	if res.Kernel == "" || res.Wall <= 0 || res.Phases[string(EBPF)] <= 0 || res.Phases["baseline"] <= 0 {
		t.Errorf("run: %+v", res)
	}
	t.Logf("tiny grid on %s (%s) in %v", res.Kernel, res.Accel, res.Wall.Round(time.Second))
}
