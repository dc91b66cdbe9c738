package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/onsi/ginkgo/v2/types"
)

// Report entries the suites' lab.Start adds (lab.ReportKernel,
// lab.ReportStartup; the runner does not import the Ginkgo DSL).
const (
	entryKernel  = "hoplab-kernel"
	entryStartup = "hoplab-startup"
)

// Result is the outcome of the suites on one kernel.
type Result struct {
	// Series is the kernel's series and Release its uname -r, as the
	// harness prepared it; Image is the kernel image booted.
	Series, Release, Image string
	// Dir is the run's artifacts directory.
	Dir string
	// Suites are Ginkgo's reports, one per suite.
	Suites []types.Report
	// Fetch is the kernel fetch's duration, Wall the whole run's.
	Fetch, Wall time.Duration
	// Err is a failure outside the specs (kernel fetch, build).
	Err error
	// Verifier is the line recordVerifier returned ("" when not run).
	Verifier string
}

// Ran is the kernel release the suites' VMs reported (uname -r in the
// guests), "" when no suite got that far.
func (r Result) Ran() string {
	for _, rep := range r.Suites {
		if k := Row(rep).Kernel; k != "" {
			return k
		}
	}
	return ""
}

// Kernel is the release to report: the one the guests ran, else the one
// the harness prepared (no VM booted).
func (r Result) Kernel() string {
	if ran := r.Ran(); ran != "" {
		return ran
	}
	return r.Release
}

// OK reports whether the run and every suite passed.
func (r Result) OK() bool { return r.Err == nil && len(r.Suites) > 0 && allPassed(r.Suites) }

// SuiteRow is one suite's line of the summary.
type SuiteRow struct {
	Suite                          string
	Specs, Passed, Failed, Skipped int
	Startup                        string
	Wall                           time.Duration
	Kernel                         string
}

// Row summarises one suite's report.
func Row(r types.Report) SuiteRow {
	row := SuiteRow{Suite: r.SuiteDescription, Wall: r.RunTime}
	if row.Suite == "" {
		row.Suite = filepath.Base(r.SuitePath)
	}
	for _, s := range r.SpecReports {
		for _, e := range s.ReportEntries {
			switch e.Name {
			case entryKernel:
				row.Kernel = e.StringRepresentation()
			case entryStartup:
				row.Startup = e.StringRepresentation()
			}
		}
		if s.LeafNodeType != types.NodeTypeIt {
			if s.State.Is(types.SpecStateFailureStates) {
				row.Failed++
			}
			continue
		}
		row.Specs++
		switch {
		case s.State == types.SpecStatePassed:
			row.Passed++
		case s.State.Is(types.SpecStateFailureStates):
			row.Failed++
		default:
			row.Skipped++
		}
	}
	return row
}

// PrintSuites writes the per-suite summary of one run.
func PrintSuites(w io.Writer, r Result) {
	fmt.Fprintf(w, "\n== e2e summary: kernel %s (%s, %s), fetch %v, wall %v\n", r.Series, orDash(r.Kernel()), orDash(r.Image), r.Fetch.Round(time.Millisecond), r.Wall.Round(time.Second))
	if r.Err != nil {
		fmt.Fprintf(w, "ERROR: %v\n", r.Err)
	}
	if r.Verifier != "" {
		fmt.Fprintln(w, r.Verifier)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SUITE\tSPECS\tPASSED\tFAILED\tSKIPPED\tSTARTUP\tWALL\tRESULT")
	var tot SuiteRow
	for _, rep := range r.Suites {
		row := Row(rep)
		res := "ok"
		if !rep.SuiteSucceeded {
			res = "FAIL"
			if len(rep.SpecialSuiteFailureReasons) > 0 {
				res += " (" + strings.Join(rep.SpecialSuiteFailureReasons, "; ") + ")"
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%v\t%s\n", row.Suite, row.Specs, row.Passed, row.Failed, row.Skipped, orDash(row.Startup), row.Wall.Round(100*time.Millisecond), res)
		tot.Specs += row.Specs
		tot.Passed += row.Passed
		tot.Failed += row.Failed
		tot.Skipped += row.Skipped
		tot.Wall += row.Wall
	}
	fmt.Fprintf(tw, "total\t%d\t%d\t%d\t%d\t\t%v\t\n", tot.Specs, tot.Passed, tot.Failed, tot.Skipped, tot.Wall.Round(100*time.Millisecond))
	tw.Flush()
}

// PrintMatrix writes one line per kernel.
func PrintMatrix(w io.Writer, results []Result) {
	fmt.Fprintln(w, "\n== e2e matrix")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERIES\tKERNEL\tSUITES\tSPECS\tPASSED\tFAILED\tWALL\tRESULT\tIMAGE")
	for _, r := range results {
		var specs, passed, failed int
		for _, rep := range r.Suites {
			row := Row(rep)
			specs, passed, failed = specs+row.Specs, passed+row.Passed, failed+row.Failed
		}
		res := "ok"
		if !r.OK() {
			res = "FAIL"
			if r.Err != nil {
				res += ": " + r.Err.Error()
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%v\t%s\t%s\n", r.Series, orDash(r.Kernel()), len(r.Suites), specs, passed, failed, r.Wall.Round(time.Second), res, orDash(r.Image))
	}
	tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
