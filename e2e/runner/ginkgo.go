package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/onsi/ginkgo/v2/reporters"
	"github.com/onsi/ginkgo/v2/types"
)

// RunSpec is one run of the suites on one kernel.
type RunSpec struct {
	// Target is the kernel.
	Target Target
	// Suites are the suite packages ("./e2e/policy").
	Suites []string
	// LabelFilter is Ginkgo's --label-filter.
	LabelFilter string
	// Dir receives junit.xml, report.json and suites/ (the suites'
	// artifacts, HOPLAB_E2E_ARTIFACTS).
	Dir string
	// Timeout bounds the run.
	Timeout time.Duration
	// Verifier records the verifier's statistics first (verifier.json).
	Verifier bool
	// Lanes is how many Ginkgo processes run the suites side by side
	// (each suite boots its own cluster); 0 or 1 runs them one after the
	// other.
	Lanes int
}

// Report file names in RunSpec.Dir.
const (
	JUnitReport = "junit.xml"
	JSONReport  = "report.json"
)

// runGinkgo runs the suites with the pinned Ginkgo CLI (go run, the version
// in go.mod) and returns their reports. With spec.Lanes > 1 the suites are
// split into lanes (splitLanes), each a Ginkgo process of its own writing
// its reports into lane-N/, which are merged into spec.Dir afterwards.
func runGinkgo(ctx context.Context, spec RunSpec) ([]types.Report, error) {
	if err := os.MkdirAll(filepath.Join(spec.Dir, "suites"), 0o755); err != nil {
		return nil, fmt.Errorf("artifacts: %w", err)
	}
	lanes := splitLanes(spec.Suites, spec.Lanes)
	if len(lanes) == 1 {
		return runLane(ctx, spec, spec.Suites, spec.Dir, os.Stdout)
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		errs    = make([]error, len(lanes))
		jsons   []string
		junits  []string
		outputs []*lineWriter
	)
	for i, suites := range lanes {
		dir := filepath.Join(spec.Dir, fmt.Sprintf("lane-%d", i+1))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("artifacts: %w", err)
		}
		jsons, junits = append(jsons, filepath.Join(dir, JSONReport)), append(junits, filepath.Join(dir, JUnitReport))
		out := &lineWriter{mu: &mu, w: os.Stdout, prefix: fmt.Sprintf("[lane %d] ", i+1)}
		outputs = append(outputs, out)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = runLane(ctx, spec, suites, dir, out)
		}()
	}
	wg.Wait()
	for _, o := range outputs {
		o.flush()
	}
	// Merge what the lanes wrote (a lane that wrote nothing has its error).
	var haveJSON, haveJUnit []string
	for i := range lanes {
		if _, err := os.Stat(jsons[i]); err == nil {
			haveJSON = append(haveJSON, jsons[i])
		}
		if _, err := os.Stat(junits[i]); err == nil {
			haveJUnit = append(haveJUnit, junits[i])
		}
	}
	if _, err := reporters.MergeAndCleanupJUnitReports(haveJUnit, filepath.Join(spec.Dir, JUnitReport)); err != nil && len(haveJUnit) > 0 {
		return nil, fmt.Errorf("merge JUnit reports: %w", err)
	}
	if _, err := reporters.MergeAndCleanupJSONReports(haveJSON, filepath.Join(spec.Dir, JSONReport)); err != nil && len(haveJSON) > 0 {
		return nil, fmt.Errorf("merge JSON reports: %w", err)
	}
	for i := range lanes {
		_ = os.Remove(filepath.Join(spec.Dir, fmt.Sprintf("lane-%d", i+1))) // empty once merged
	}
	reports, err := readReports(filepath.Join(spec.Dir, JSONReport))
	if err != nil {
		return nil, errors.Join(append([]error{err}, errs...)...)
	}
	if runErr := errors.Join(errs...); runErr != nil && allPassed(reports) {
		return reports, runErr
	}
	return reports, nil
}

// runLane runs one Ginkgo process over suites, writing its reports into
// dir and its output to out.
func runLane(ctx context.Context, spec RunSpec, suites []string, dir string, out io.Writer) ([]types.Report, error) {
	args := []string{"run", "github.com/onsi/ginkgo/v2/ginkgo",
		"--tags", "vm", "--keep-going", "--timeout", spec.Timeout.String(),
		"--poll-progress-after", "120s",
		"--junit-report", JUnitReport, "--json-report", JSONReport, "--output-dir", dir}
	if spec.LabelFilter != "" {
		args = append(args, "--label-filter", spec.LabelFilter)
	}
	args = append(args, suites...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(spec.Target.env(os.Environ()), "HOPLAB_E2E_ARTIFACTS="+filepath.Join(spec.Dir, "suites"))
	fmt.Fprintf(out, "e2e: %s (kernel %s, artifacts %s)\n", cmd.String(), spec.Target, spec.Dir)
	runErr := cmd.Run()
	reports, err := readReports(filepath.Join(dir, JSONReport))
	if err != nil {
		if runErr != nil {
			return nil, fmt.Errorf("ginkgo: %w (%v)", runErr, err)
		}
		return nil, err
	}
	if runErr != nil && allPassed(reports) {
		return reports, fmt.Errorf("ginkgo: %w", runErr)
	}
	return reports, nil
}

func readReports(path string) ([]types.Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errNoReport, err)
	}
	var reports []types.Report
	if err := json.Unmarshal(b, &reports); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return reports, nil
}

func allPassed(reports []types.Report) bool {
	for _, r := range reports {
		if !r.SuiteSucceeded {
			return false
		}
	}
	return true
}

func orDefault(series string) string {
	if series == "" {
		return "default"
	}
	return series
}

// suiteWeight is roughly how long each suite takes under TCG (seconds),
// for splitLanes; an unknown suite counts as suiteWeightDefault.
var suiteWeight = map[string]int{
	"./e2e/podtoservice": 50, "./e2e/crosskernel": 45, "./e2e/l7": 45, "./e2e/policy": 37,
	"./e2e/nodeport": 32, "./e2e/multibackend": 30, "./e2e/host": 25, "./e2e/nobackend": 22,
	"./e2e/tunnel": 22, "./e2e/socketlb": 20, "./e2e/samenode": 18,
}

const suiteWeightDefault = 30

// splitLanes deals suites into at most n lanes of about equal weight
// (longest first, each to the lightest lane), each lane keeping the
// suites' order. n < 2 or a single suite gives one lane.
func splitLanes(suites []string, n int) [][]string {
	if n < 2 || len(suites) < 2 {
		return [][]string{suites}
	}
	n = min(n, len(suites))
	weight := func(s string) int {
		if w, ok := suiteWeight[s]; ok {
			return w
		}
		return suiteWeightDefault
	}
	order := make([]int, len(suites))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return weight(suites[order[a]]) > weight(suites[order[b]]) })
	load := make([]int, n)
	lane := make([]int, len(suites))
	for _, i := range order {
		best := 0
		for l := 1; l < n; l++ {
			if load[l] < load[best] {
				best = l
			}
		}
		lane[i] = best
		load[best] += weight(suites[i])
	}
	out := make([][]string, n)
	for i, s := range suites {
		out[lane[i]] = append(out[lane[i]], s)
	}
	return out
}

// lineWriter writes whole lines, each with a prefix, under a lock shared
// by the lanes, so that their outputs interleave by line.
type lineWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		if _, err := fmt.Fprintf(l.w, "%s%s\n", l.prefix, l.buf[:i]); err != nil {
			return 0, err
		}
		l.buf = l.buf[i+1:]
	}
	return len(p), nil
}

// flush writes a last line without its newline.
func (l *lineWriter) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		fmt.Fprintf(l.w, "%s%s\n", l.prefix, l.buf)
		l.buf = nil
	}
}
