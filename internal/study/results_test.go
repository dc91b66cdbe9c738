package study

import (
	"bytes"
	"image/png"
	"math"
	"os"
	"strings"
	"testing"
	"time"
)

// synthetic returns samples of a study in which eBPF stays at 100 Mbit/s,
// the no-match baseline loses 10 % per 100 rules and the match baseline
// stays flat; three repetitions of 0.95, 1 and 1.05 times the value.
func synthetic(counts []int) []Sample {
	var out []Sample
	for _, v := range Variants {
		for _, pl := range Placements {
			for _, n := range counts {
				f := 1.0
				if v == IPTablesNoMatch {
					f = 1 / (1 + 0.001*float64(n))
				}
				for rep, j := range []float64{0.95, 1, 1.05} {
					out = append(out,
						Sample{Variant: v, Placement: pl, Entries: n, Rep: rep, Kind: KindBulk, Mbps: 100 * f * j, Duration: time.Second, CPUSeconds: 1},
						Sample{Variant: v, Placement: pl, Entries: n, Rep: rep, Kind: KindRR, TPS: 1000 * f * j, LatencyUS: 1000 / f * j, Duration: time.Second, CPUSeconds: 1})
				}
			}
		}
	}
	return out
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// TestSummarizeMediansSpreadsRatios: each point is the median of its
// repetitions with their min and max, and the ratio to the same variant
// and placement at 0 entries; points come in report order.
func TestSummarizeMediansSpreadsRatios(t *testing.T) {
	points := Summarize(synthetic([]int{0, 100, 200}))
	if len(points) != len(Metrics)*len(Variants)*len(Placements)*3 {
		t.Fatalf("%d points", len(points))
	}
	if p := points[0]; p.Metric != Throughput || p.Variant != EBPF || p.Placement != SingleHost || p.Entries != 0 {
		t.Errorf("first point %+v", p)
	}
	p, ok := Find(points, Throughput, IPTablesNoMatch, MultiHost, 200)
	if !ok || p.N != 3 || !near(p.Median, 100/1.2) || !near(p.Min, 0.95*100/1.2) || !near(p.Max, 1.05*100/1.2) {
		t.Fatalf("no-match 200: %+v", p)
	}
	if !near(p.Ratio, 1/1.2) || !near(p.RatioMin, 0.95/1.2) || !near(p.RatioMax, 1.05/1.2) || !near(p.Spread(), 0.1) {
		t.Errorf("no-match 200 ratios: %+v", p)
	}
	if l, _ := Find(points, Latency, IPTablesNoMatch, SingleHost, 100); !near(l.Ratio, 1.1) {
		t.Errorf("latency ratio %v, want 1.1", l.Ratio)
	}
	if c, _ := Find(points, CPUPerTransaction, IPTablesNoMatch, SingleHost, 200); !near(c.Ratio, 1.2) || !near(c.Median, 1000*1.2) {
		t.Errorf("cpu per transaction: %+v", c)
	}
	if e, _ := Find(points, Transactions, EBPF, SingleHost, 200); !near(e.Ratio, 1) {
		t.Errorf("ebpf tps ratio %v", e.Ratio)
	}
	// An even count of repetitions takes the middle two's mean; a point
	// without a 0-entry base has no ratio.
	even := Summarize([]Sample{
		{Variant: EBPF, Placement: SingleHost, Entries: 5, Kind: KindBulk, Mbps: 1},
		{Variant: EBPF, Placement: SingleHost, Entries: 5, Kind: KindBulk, Mbps: 3},
	})
	if len(even) != 1 || even[0].Median != 2 || !math.IsNaN(even[0].Ratio) {
		t.Errorf("even: %+v", even)
	}
	if s := Slope(points, Throughput, IPTablesNoMatch, SingleHost, 200); !(s < 0) {
		t.Errorf("no-match slope %v, want negative", s)
	}
	if s := Slope(points, Throughput, EBPF, SingleHost, 200); !near(s, 0) {
		t.Errorf("ebpf slope %v, want 0", s)
	}
}

// TestCSVRoundTrip: samples.csv reads back to the same samples; points.csv
// has a header and one row per point.
func TestCSVRoundTrip(t *testing.T) {
	samples := synthetic([]int{0, 10})
	var buf bytes.Buffer
	if err := WriteSamplesCSV(&buf, samples); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(buf.String(), "variant,placement,entries,rep,kind,mbit_s,tps,latency_us,duration_s,vm_cpu_s\nebpf,single-host,0,0,bulk,95,,,1,1\n") {
		t.Errorf("samples.csv starts %q", buf.String()[:120])
	}
	back, err := ReadSamplesCSV(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != len(samples) {
		t.Fatalf("%d samples back, want %d", len(back), len(samples))
	}
	for i := range back {
		if back[i] != samples[i] {
			t.Fatalf("sample %d: %+v, want %+v", i, back[i], samples[i])
		}
	}
	for _, bad := range []string{"", "a,b\n", strings.Replace(buf.String(), "variant", "variety", 1),
		"variant,placement,entries,rep,kind,mbit_s,tps,latency_us,duration_s,vm_cpu_s\nebpf,single-host,x,0,bulk,1,,,1,\n",
		"variant,placement,entries,rep,kind,mbit_s,tps,latency_us,duration_s,vm_cpu_s\nebpf,single-host,0,0,udp,1,,,1,\n"} {
		if _, err := ReadSamplesCSV(strings.NewReader(bad)); err == nil {
			t.Errorf("read %q: no error", bad)
		}
	}
	points := Summarize(samples)
	buf.Reset()
	if err := WritePointsCSV(&buf, points); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != len(points)+1 || lines[0] != "metric,unit,variant,placement,entries,n,median,min,max,ratio,ratio_min,ratio_max" {
		t.Errorf("points.csv: %d lines, header %q", len(lines), lines[0])
	}
	if lines[1] != "throughput,Mbit/s,ebpf,single-host,0,3,100,95,105,1,0.95,1.05" {
		t.Errorf("points.csv first row %q", lines[1])
	}
}

// TestPlotIsAPNG: each metric's plot is a PNG of the plot's size with a
// tile per placement; a metric without points is an error.
func TestPlotIsAPNG(t *testing.T) {
	points := Summarize(synthetic(FullCounts))
	dir := t.TempDir()
	paths, err := WritePlots(dir, points)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != len(Metrics) {
		t.Fatalf("plots %v", paths)
	}
	for _, p := range paths {
		b, err := readFile(p)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if w, h := img.Bounds().Dx(), img.Bounds().Dy(); w != 11*plotDPI || h != int(4.5*plotDPI) {
			t.Errorf("%s: %dx%d", p, w, h)
		}
	}
	if err := WritePlot(&bytes.Buffer{}, nil, Throughput); err == nil {
		t.Error("plot of nothing: no error")
	}
	// Samples without CPU times have no CPU metrics: no such plot.
	var noCPU []Sample
	for _, s := range synthetic([]int{0, 1}) {
		s.CPUSeconds = 0
		noCPU = append(noCPU, s)
	}
	paths, err = WritePlots(t.TempDir(), Summarize(noCPU))
	if err != nil || len(paths) != 3 {
		t.Errorf("plots without CPU times: %v, %v", paths, err)
	}
}

// TestReportNamesTheHeadline: the report carries the run, the headline
// ratios with the slope, the plots, a table per metric and placement with
// every count, the comparison with the study and the closing note.
func TestReportNamesTheHeadline(t *testing.T) {
	points := Summarize(synthetic(FullCounts))
	res := &Result{Kernel: "6.1.192", Accel: "tcg", Grid: FullGrid(), CPUs: 2, Wall: 20 * time.Minute, Boot: 40 * time.Second,
		Phases: map[string]time.Duration{"ebpf": 5 * time.Minute, "baseline": 14 * time.Minute}, LoadBefore: "1.00 0.50 0.20", LoadAfter: "2.10 2.00 1.50"}
	var buf bytes.Buffer
	if err := WriteReport(&buf, res, points, ReportOptions{PlotDir: "study", Command: "hoplab study --out docs/study"}); err != nil {
		t.Fatal(err)
	}
	doc := buf.String()
	for _, want := range []string{
		"| kernel | 6.1.192 (tcg) |",
		"| wall time | 20m0s (boot 40s; eBPF phase 5m0s; baseline phase 14m0s) |",
		"eBPF throughput at 10000 entries, single-host: 1.000 of its 0-entry value (+0.0 %, within the 10 % target)",
		"iptables without a matching rule, single-host: throughput −16.7 % at 200 rules, −90.9 % at 10000",
		"TCP_RR mean latency +2.5 % at 25 rules, +20.0 % at 200, +1000.0 % at 10000",
		"![TCP throughput, one bulk stream](study/throughput.png)",
		"![TCP_RR mean latency](study/latency.png)",
		"| 10000 | 1.000 (0.950–1.050) · 100 | 0.091 (0.086–0.095) · 9.09 | 1.000 (0.950–1.050) · 100 |",
		"The study measured a 29 % loss at 200 rules single-host; here it is 16.7 %",
		"github.com/google/nftables",
		"**eBPF, single-host:** the median throughput stays within 0.0 % of the 0-entry value at every count",
		"Flat, as in the study",
		"**iptables with the matching rule on top, multi-host:** the median throughput stays within 0.0 % of the 0-rule value",
		"## Closing note",
		"[samples.csv](study/samples.csv)",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if n := strings.Count(doc, "| entries |"); n != len(Metrics)*len(Placements) {
		t.Errorf("%d tables, want %d", n, len(Metrics)*len(Placements))
	}
	if strings.Contains(doc, "NaN") || strings.Contains(doc, "%!") {
		t.Errorf("report has a formatting error:\n%s", doc)
	}
}

func readFile(p string) ([]byte, error) { return os.ReadFile(p) }

// TestFlatness: a variant whose medians move but whose ranges all overlap
// the 0-entry range reads as noise; one whose range leaves it does not.
func TestFlatness(t *testing.T) {
	mk := func(lo, mid, hi float64) []Sample {
		var out []Sample
		for n, vals := range map[int][]float64{0: {90, 100, 110}, 100: {lo, mid, hi}} {
			for rep, v := range vals {
				out = append(out, Sample{Variant: EBPF, Placement: SingleHost, Entries: n, Rep: rep, Kind: KindBulk, Mbps: v, Duration: time.Second})
			}
		}
		return out
	}
	f := flatness(Summarize(mk(70, 80, 95)), EBPF, SingleHost, 100)
	if !near(f.worst, -0.2) || f.at != 100 || !f.overlaps || math.Abs(f.slope+200) > 1e-6 {
		t.Errorf("noisy: %+v", f)
	}
	if !strings.Contains(f.text("entries"), "overlaps the 0-entry range") {
		t.Errorf("noisy text: %s", f.text("entries"))
	}
	f = flatness(Summarize(mk(50, 60, 70)), EBPF, SingleHost, 100)
	if f.overlaps || !strings.Contains(f.text("rules"), "lies wholly apart from the 0-rule range") {
		t.Errorf("apart: %+v %s", f, f.text("rules"))
	}
}
