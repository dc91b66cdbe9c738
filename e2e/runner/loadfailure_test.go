package main

import (
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/rlimit"
	"github.com/onsi/ginkgo/v2/reporters"
	"github.com/onsi/ginkgo/v2/types"
	"golang.org/x/sys/unix"

	"github.com/hoplab/hoplab/datapath"
	"github.com/hoplab/hoplab/internal/testreq"
)

// rejectedLoad loads a program this kernel's verifier rejects (a packet
// read without a bounds check) and returns the load error as the datapath
// reports it, its verifier log written where the cluster keeps it
// (<artifacts>/<node>/verifier-<program>.log), and the failure message a
// suite's BeforeSuite then fails with.
func rejectedLoad(t *testing.T, dir string) (le *datapath.LoadError, logPath, msg string) {
	t.Helper()
	testreq.Root(t)
	if err := rlimit.RemoveMemlock(); err != nil {
		t.Fatal(err)
	}
	spec := &ebpf.CollectionSpec{Programs: map[string]*ebpf.ProgramSpec{"rejected_prog": {
		Name: "rejected_prog", Type: ebpf.SchedCLS, License: "GPL",
		Instructions: asm.Instructions{
			asm.LoadMem(asm.R2, asm.R1, 76, asm.Word), // skb->data
			asm.LoadMem(asm.R0, asm.R2, 0, asm.Byte),  // no check against data_end
			asm.Return(),
		},
	}}}
	coll, err := ebpf.NewCollection(spec)
	if err == nil {
		coll.Close()
		t.Fatal("the verifier accepted an unchecked packet read")
	}
	var ve *ebpf.VerifierError
	if !errors.As(err, &ve) || len(ve.Log) < 3 {
		t.Fatalf("no verifier log: %v", err)
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	le = &datapath.LoadError{Object: "bpf_test", Program: "rejected_prog", Kernel: unix.ByteSliceToString(u.Release[:]), Log: ve.Log, Err: err,
		Reason: strings.TrimSpace(ve.Log[len(ve.Log)-2])}
	for name, text := range le.DiagnosticFiles() {
		logPath = filepath.Join(dir, "suites", "policy", "node1", name)
		if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(logPath, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// As vmtest/cluster wraps a node's setup error with its diagnostics,
	// and Gomega prints the error twice (its text and its value).
	setup := fmt.Sprintf("lab: cluster policy: node1: node-setup: %v (full log: %s)", le, logPath)
	msg = fmt.Sprintf("Unexpected error:\n    <*fmt.wrapError>: \n    %s\n    {msg: %q}\noccurred", setup, setup)
	return le, logPath, msg
}

// A suite that failed because the kernel refused a program shows the
// program, the kernel and the last lines of the verifier log: in the JUnit
// failure (message and text) and under the summary, once per log.
func TestLoadFailureShowsVerifierTail(t *testing.T) {
	dir := t.TempDir()
	le, logPath, msg := rejectedLoad(t, dir)
	log, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(log), "\n"), "\n")
	tail := lines[max(0, len(lines)-TailLines):]
	last := tail[len(tail)-1] // "processed 2 insns (limit ...) ..."

	junit := reporters.JUnitTestSuites{TestSuites: []reporters.JUnitTestSuite{{Name: "policy", TestCases: []reporters.JUnitTestCase{
		{Name: "[BeforeSuite]", Status: "failed", Failure: &reporters.JUnitFailure{Message: msg, Type: "failed", Description: "[FAILED] " + msg + "\nIn [BeforeSuite] at: suite.go:22"}},
		{Name: "[It] pod1 → pod4", Status: "failed", Failure: &reporters.JUnitFailure{Message: "ttl: got 62, want 61"}},
	}}}}
	b, err := xml.Marshal(junit)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, JUnitReport), b, 0o644); err != nil {
		t.Fatal(err)
	}
	rep := report("policy", false)
	rep.SpecReports[0].State = types.SpecStateFailed
	rep.SpecReports[0].Failure = types.Failure{Message: msg}
	r := Result{Series: "6.1", Release: "6.1.0-56-cloud-amd64", Dir: dir, Suites: []types.Report{rep, report("same-node", true, types.SpecStatePassed)}}
	if err := recordKernel(dir, r); err != nil {
		t.Fatal(err)
	}

	b, err = os.ReadFile(filepath.Join(dir, JUnitReport))
	if err != nil {
		t.Fatal(err)
	}
	var got reporters.JUnitTestSuites
	if err := xml.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	f := got.TestSuites[0].TestCases[0].Failure
	header := fmt.Sprintf("\nverifier log %s, last %d lines:\n", logPath, len(tail))
	for _, text := range []string{f.Message, f.Description} {
		for _, want := range []string{"program rejected_prog on kernel " + le.Kernel, le.Reason, header, "  " + last} {
			if !strings.Contains(text, want) {
				t.Errorf("JUnit failure lacks %q:\n%s", want, text)
			}
		}
		if strings.Count(text, "\nverifier log ") != 1 {
			t.Errorf("the log's tail is not there once:\n%s", text)
		}
	}
	if other := got.TestSuites[0].TestCases[1].Failure.Message; other != "ttl: got 62, want 61" {
		t.Errorf("a failure naming no log changed: %q", other)
	}

	var out strings.Builder
	PrintLoadFailures(&out, r)
	s := out.String()
	for _, want := range []string{"\nload failure in suite policy (BeforeSuite) on kernel 6.1.0-56-cloud-amd64:\n", header, "  " + last + "\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "same-node") || strings.Count(s, "load failure") != 1 {
		t.Errorf("summary names more than the failed suite:\n%s", s)
	}
}

// A log that is gone leaves the message as it was.
func TestLoadFailureWithoutLog(t *testing.T) {
	msg := "load bpf_lxc: program x on kernel 6.1: verifier: bad (full log: /nonexistent/node1/verifier-x.log)"
	if got := withVerifierTails(msg); got != msg {
		t.Errorf("message changed: %q", got)
	}
}
