package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hoplab/hoplab/internal/study"
	"github.com/hoplab/hoplab/vmtest"
)

// Files hoplab study writes into --out.
const (
	studySamples = "samples.csv"
	studyPoints  = "points.csv"
	studyRun     = "run.json"
)

// studyFlags are hoplab study's flags.
type studyFlags struct {
	kernel, counts, variants string
	reps                     int
	duration                 time.Duration
	quick                    bool
	out, doc, fromCSV        string
}

func newStudyCmd(a *app) *cobra.Command {
	var f studyFlags
	cmd := &cobra.Command{
		Use:   "study [--quick] [--kernel K] [--counts 0,1,...] [--reps N] [--duration D] [--out DIR] [--doc FILE]",
		Short: "Reproduce the eBPF-versus-iptables study: throughput and TCP_RR against the number of policy entries",
		Long: `Study boots a two-node topology and measures, between a client pod and a
server pod on the same node (single-host) and on the other node
(multi-host), one bulk TCP stream's throughput and TCP_RR (100-byte
requests, 200-byte responses: transactions per second and mean latency):

  ebpf                the hoplab datapath, N policy entries for the server
  iptables-no-match   the pods on a Linux bridge per node (no BPF), N rules
                      in the FORWARD chain, none matching the traffic
  iptables-match      the same with a matching accept rule on top

for each N of --counts, --reps times each. It writes samples.csv,
points.csv (medians, spreads, ratios to each variant's N = 0), run.json
and one PNG per metric into --out, and the Markdown report to --doc
(default: OUT/study.md). The full grid (the default) takes about 22
minutes under TCG on 2 cores, --quick (counts 0, 200 and 10000, 3
repetitions) under 5. --from-csv redraws the plots and the report from
a previous run's samples.csv (and the run.json beside it) without booting.

The clients and servers are a Go implementation with iperf3's and
netperf's semantics (vmtest/agent/workload); the rules are installed over
netlink with github.com/google/nftables as iptables-nft would.`,
		Example: `  hoplab study --quick --out /tmp/study
  hoplab study --out docs/study --doc docs/study.md
  hoplab study --kernel 6.12 --counts 0,100,1000 --variants ebpf,iptables-no-match
  hoplab study --from-csv docs/study/samples.csv --out docs/study --doc docs/study.md`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.runStudy(cmd, f); err != nil {
				return fmt.Errorf("study: %w", err)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.kernel, "kernel", "", "kernel: a catalogue series (6.1) or /path/bzImage[,modules-dir]; default the topology's (6.1)")
	fl.StringVar(&f.counts, "counts", "", "entry counts, starting with 0 (default 0,1,5,10,25,50,100,200,1000,10000)")
	fl.StringVar(&f.variants, "variants", "", "variants (default ebpf,iptables-no-match,iptables-match)")
	fl.IntVar(&f.reps, "reps", 0, "repetitions per point (default 5)")
	fl.DurationVar(&f.duration, "duration", 0, "length of each bulk and TCP_RR test (default 1s)")
	fl.BoolVar(&f.quick, "quick", false, "the quick grid: counts 0,200,10000 and 3 repetitions (≤ 5 minutes)")
	fl.StringVar(&f.out, "out", "hoplab-study", "`directory` for the CSV files, run.json and the plots")
	fl.StringVar(&f.doc, "doc", "", "the Markdown report's `file` (default OUT/study.md)")
	fl.StringVar(&f.fromCSV, "from-csv", "", "redraw from this samples.csv (and the run.json beside it) instead of measuring")
	return cmd
}

// studyGrid is the grid the flags ask for.
func studyGrid(f studyFlags) (study.Grid, error) {
	g := study.FullGrid()
	if f.quick {
		g = study.QuickGrid()
	}
	if f.counts != "" {
		c, err := study.ParseCounts(f.counts)
		if err != nil {
			return g, fmt.Errorf("--counts: %w", err)
		}
		g.Counts = c
	}
	if f.variants != "" {
		v, err := study.ParseVariants(f.variants)
		if err != nil {
			return g, fmt.Errorf("--variants: %w", err)
		}
		g.Variants = v
	}
	if f.reps != 0 {
		g.Reps = f.reps
	}
	if f.duration != 0 {
		g.Duration = f.duration
	}
	return g, g.Validate()
}

func (a *app) runStudy(cmd *cobra.Command, f studyFlags) error {
	var res *study.Result
	if f.fromCSV != "" {
		var err error
		if res, err = readStudy(f.fromCSV); err != nil {
			return err
		}
	} else {
		g, err := studyGrid(f)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(f.out, 0o755); err != nil {
			return err
		}
		k := parseKernel(f.kernel)
		if k.path != "" {
			os.Setenv(vmtest.EnvKernel, k.path)
		}
		res, err = study.Run(cmd.Context(), study.Options{Grid: g, Series: k.series, AgentBinary: selfAgent,
			Logger: a.harnessLogger(), Progress: func(s string) { fmt.Fprintf(a.stderr, "study: %s\n", s) }})
		if err != nil {
			if res != nil && len(res.Samples) > 0 {
				// Keep what was measured: a failure late in a long run
				// should not throw it away.
				_ = writeStudyFiles(f.out, res)
				err = fmt.Errorf("%w (the %d samples so far are in %s)", err, len(res.Samples), filepath.Join(f.out, studySamples))
			}
			return err
		}
		if err := writeStudyFiles(f.out, res); err != nil {
			return err
		}
	}
	points := study.Summarize(res.Samples)
	if err := writeFile(filepath.Join(f.out, studyPoints), func(w *os.File) error { return study.WritePointsCSV(w, points) }); err != nil {
		return err
	}
	if _, err := study.WritePlots(f.out, points); err != nil {
		return err
	}
	doc := f.doc
	if doc == "" {
		doc = filepath.Join(f.out, "study.md")
	}
	rel, err := filepath.Rel(filepath.Dir(doc), f.out)
	if err != nil {
		rel = f.out
	}
	command := "hoplab " + strings.Join(os.Args[1:], " ")
	if f.fromCSV != "" && res.Command != "" {
		command = res.Command
	}
	if err := writeFile(doc, func(w *os.File) error {
		return study.WriteReport(w, res, points, study.ReportOptions{PlotDir: filepath.ToSlash(rel), Command: command})
	}); err != nil {
		return err
	}
	for _, l := range study.Headlines(points).Lines() {
		fmt.Fprintln(a.stdout, l)
	}
	fmt.Fprintf(a.stdout, "report: %s; plots, CSV and run.json in %s", doc, f.out)
	if res.Wall > 0 {
		fmt.Fprintf(a.stdout, "; wall time %v", res.Wall.Round(time.Second))
	}
	fmt.Fprintln(a.stdout)
	return nil
}

// writeStudyFiles writes samples.csv and run.json.
func writeStudyFiles(dir string, res *study.Result) error {
	if res.Command == "" {
		res.Command = "hoplab " + strings.Join(os.Args[1:], " ")
	}
	err := writeFile(filepath.Join(dir, studySamples), func(w *os.File) error { return study.WriteSamplesCSV(w, res.Samples) })
	if err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, studyRun), func(w *os.File) error {
		e := json.NewEncoder(w)
		e.SetIndent("", "  ")
		return e.Encode(res)
	})
}

// readStudy reads a previous run: samples.csv and the run.json beside it.
func readStudy(samples string) (*study.Result, error) {
	res := &study.Result{}
	b, err := os.ReadFile(filepath.Join(filepath.Dir(samples), studyRun))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err == nil {
		if err := json.Unmarshal(b, res); err != nil {
			return nil, fmt.Errorf("%s: %w", studyRun, err)
		}
	}
	f, err := os.Open(samples)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if res.Samples, err = study.ReadSamplesCSV(f); err != nil {
		return nil, err
	}
	if len(res.Grid.Counts) == 0 {
		res.Grid = study.GridOf(res.Samples)
	}
	return res, nil
}

// writeFile creates path and fills it with write.
func writeFile(path string, write func(*os.File) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	err = write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
