package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hoplab/hoplab/internal/study"
)

// TestStudyFromCSV: --from-csv redraws a previous run without booting:
// points.csv, a PNG per metric and the report (plots linked relative to
// it), with the headline on stdout and the run's command and grid taken
// from run.json.
func TestStudyFromCSV(t *testing.T) {
	dir := t.TempDir()
	var samples []study.Sample
	for _, v := range study.Variants {
		for _, pl := range study.Placements {
			for _, n := range []int{0, 200} {
				f := 1.0
				if v == study.IPTablesNoMatch && n > 0 {
					f = 0.5
				}
				samples = append(samples,
					study.Sample{Variant: v, Placement: pl, Entries: n, Kind: study.KindBulk, Mbps: 100 * f, Duration: time.Second, CPUSeconds: 1},
					study.Sample{Variant: v, Placement: pl, Entries: n, Kind: study.KindRR, TPS: 1000 * f, LatencyUS: 1000 / f, Duration: time.Second, CPUSeconds: 1})
			}
		}
	}
	res := &study.Result{Kernel: "6.1.192", Accel: "tcg", Command: "hoplab study --counts 0,200 --reps 1", Samples: samples}
	res.Grid = study.GridOf(samples)
	if err := writeStudyFiles(dir, res); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "plots")
	doc := filepath.Join(dir, "study.md")
	stdout, stderr, code := runCLI(t, "study", "--from-csv", filepath.Join(dir, "samples.csv"), "--out", out, "--doc", doc)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "iptables without a matching rule, single-host: throughput −50.0 % at 200 rules") {
		t.Errorf("stdout: %s", stdout)
	}
	for _, f := range []string{"points.csv", "throughput.png", "latency.png", "transactions.png", "throughput-per-cpu.png", "cpu-per-transaction.png"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	b, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"](plots/throughput.png)", "`hoplab study --counts 0,200 --reps 1`", "| 200 |"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

// TestStudyFlags: the quick grid, overrides, and bad grids refused before
// anything boots.
func TestStudyFlags(t *testing.T) {
	g, err := studyGrid(studyFlags{quick: true})
	if err != nil || g.Reps != 3 || len(g.Counts) != 3 {
		t.Errorf("quick: %+v, %v", g, err)
	}
	g, err = studyGrid(studyFlags{counts: "0,5", variants: "ebpf", reps: 2, duration: 2 * time.Second})
	if err != nil || len(g.Counts) != 2 || len(g.Variants) != 1 || g.Reps != 2 || g.Duration != 2*time.Second {
		t.Errorf("overrides: %+v, %v", g, err)
	}
	for _, f := range []studyFlags{{counts: "5,10"}, {counts: "0,x"}, {variants: "bpfilter"}, {reps: -1}, {counts: "0,50000"}} {
		if _, err := studyGrid(f); err == nil {
			t.Errorf("%+v: accepted", f)
		}
	}
	_, stderr, code := runCLI(t, "study", "--counts", "1,2")
	if code != 1 || !strings.Contains(stderr, "hoplab: study: counts must start with 0") {
		t.Errorf("exit %d: %s", code, stderr)
	}
}
