package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

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
}

// Report file names in RunSpec.Dir.
const (
	JUnitReport = "junit.xml"
	JSONReport  = "report.json"
)

// runGinkgo runs the suites with the pinned Ginkgo CLI (go run, the version
// in go.mod) and returns their reports.
func runGinkgo(ctx context.Context, spec RunSpec) ([]types.Report, error) {
	if err := os.MkdirAll(filepath.Join(spec.Dir, "suites"), 0o755); err != nil {
		return nil, fmt.Errorf("artifacts: %w", err)
	}
	args := []string{"run", "github.com/onsi/ginkgo/v2/ginkgo",
		"--tags", "vm", "--keep-going", "--timeout", spec.Timeout.String(),
		"--poll-progress-after", "120s",
		"--junit-report", JUnitReport, "--json-report", JSONReport, "--output-dir", spec.Dir}
	if spec.LabelFilter != "" {
		args = append(args, "--label-filter", spec.LabelFilter)
	}
	args = append(args, spec.Suites...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.Env = append(spec.Target.env(os.Environ()), "HOPLAB_E2E_ARTIFACTS="+filepath.Join(spec.Dir, "suites"))
	fmt.Printf("e2e: %s (kernel %s, artifacts %s)\n", cmd.String(), spec.Target, spec.Dir)
	runErr := cmd.Run()
	reports, err := readReports(filepath.Join(spec.Dir, JSONReport))
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
