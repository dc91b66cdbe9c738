package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/hoplab/hoplab/e2e/lab"
)

func TestEntryNames(t *testing.T) {
	if entryKernel != lab.ReportKernel || entryStartup != lab.ReportStartup {
		t.Fatalf("runner entries %q %q, lab's %q %q", entryKernel, entryStartup, lab.ReportKernel, lab.ReportStartup)
	}
}

func report(name string, ok bool, states ...types.SpecState) types.Report {
	r := types.Report{SuiteDescription: name, SuiteSucceeded: ok, RunTime: 12 * time.Second}
	r.SpecReports = append(r.SpecReports, types.SpecReport{LeafNodeType: types.NodeTypeBeforeSuite, State: types.SpecStatePassed,
		ReportEntries: types.ReportEntries{
			{Name: lab.ReportKernel, Value: types.WrapEntryValue("6.1.0-56-cloud-amd64")},
			{Name: lab.ReportStartup, Value: types.WrapEntryValue("8.5s")},
		}})
	for _, s := range states {
		r.SpecReports = append(r.SpecReports, types.SpecReport{LeafNodeType: types.NodeTypeIt, State: s})
	}
	return r
}

func TestRow(t *testing.T) {
	row := Row(report("policy", false, types.SpecStatePassed, types.SpecStatePassed, types.SpecStateFailed, types.SpecStateSkipped, types.SpecStateTimedout))
	want := SuiteRow{Suite: "policy", Specs: 5, Passed: 2, Failed: 2, Skipped: 1, Startup: "8.5s", Wall: 12 * time.Second, Kernel: "6.1.0-56-cloud-amd64"}
	if row != want {
		t.Fatalf("Row = %+v, want %+v", row, want)
	}
	// A failed BeforeSuite counts as a failure, not as a spec.
	r := report("same-node", false)
	r.SpecReports[0].State = types.SpecStateFailed
	if row := Row(r); row.Failed != 1 || row.Specs != 0 {
		t.Fatalf("failed BeforeSuite: %+v", row)
	}
}

func TestPrint(t *testing.T) {
	ok := Result{Series: "6.1", Release: "6.1.0-56-cloud-amd64", Suites: []types.Report{
		report("pod-to-service", true, types.SpecStatePassed, types.SpecStatePassed),
		report("policy", true, types.SpecStatePassed),
	}, Wall: 95 * time.Second}
	bad := Result{Series: "7.2", Err: errors.New("fetch kernel 7.2: boom")}
	var b bytes.Buffer
	PrintSuites(&b, ok)
	PrintMatrix(&b, []Result{ok, bad})
	out := b.String()
	for _, w := range []string{
		"pod-to-service  2      2       0       0        8.5s     12s   ok",
		"total           3      3       0       0",
		"6.1     6.1.0-56-cloud-amd64  2       3      3       0       1m35s  ok",
		"7.2     -                     0       0      0       0       0s     FAIL: fetch kernel 7.2: boom",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	if !ok.OK() || bad.OK() || (Result{}).OK() {
		t.Error("OK: want true for the passed run only")
	}
}
