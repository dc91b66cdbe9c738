package main

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/hoplab/hoplab/datapath"
)

// The table has one row per program, its size, and per kernel the
// processed instructions with the verification time when reported; a
// kernel that did not say shows "?", one that lacks the program "-".
func TestWriteVerifierTable(t *testing.T) {
	runs := []verifierRun{
		{Kernel: "6.1", Release: "6.1.0-56-cloud-amd64", Stats: []datapath.ProgramStats{
			{Object: "bpf_lxc", Program: "hoplab_from_container", Insns: 1551, Processed: 6650, Verify: 119123 * time.Microsecond},
			{Object: "bpf_overlay", Program: "hoplab_from_overlay", Insns: 385, Processed: 618, Verify: 2612 * time.Microsecond},
		}},
		{Kernel: "/k/bzImage", Release: "4.19.304", Stats: []datapath.ProgramStats{
			{Object: "bpf_lxc", Program: "hoplab_from_container", Insns: 1551, Processed: -1},
		}},
	}
	var b bytes.Buffer
	if err := writeVerifierTable(&b, runs); err != nil {
		t.Fatal(err)
	}
	want := "PROGRAM                          INSNS  6.1.0-56-cloud-amd64  4.19.304\n" +
		"bpf_lxc/hoplab_from_container    1551   6650 (119.12ms)       ?\n" +
		"bpf_overlay/hoplab_from_overlay  385    618 (2.61ms)          -\n"
	if b.String() != want {
		t.Errorf("table\n%s\nwant\n%s", b.String(), want)
	}
}

// --kernels: "all" (and nothing) is every catalogue series once, in the
// lock's order; a list splits on ',' unless it holds ';' (an image with a
// modules directory has a comma of its own); an empty list is an error.
func TestVerifierKernels(t *testing.T) {
	all, err := verifierKernels("all")
	if err != nil || !slices.Equal(all, []string{"5.10", "6.1", "6.12", "7.2"}) {
		t.Errorf("all: %v, %v", all, err)
	}
	if def, _ := verifierKernels(""); !slices.Equal(def, all) {
		t.Errorf("default: %v", def)
	}
	for in, want := range map[string][]string{
		"5.10,7.2":                             {"5.10", "7.2"},
		"6.1; /k/bzImage,/k/lib/modules/4.19 ": {"6.1", "/k/bzImage,/k/lib/modules/4.19"},
		"/k/bzImage":                           {"/k/bzImage"},
	} {
		if got, err := verifierKernels(in); err != nil || !slices.Equal(got, want) {
			t.Errorf("%q: %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := verifierKernels(" ; "); err == nil {
		t.Error("a list of separators gave no error")
	}
}
