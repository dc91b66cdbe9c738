package datapath

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/hoplab/hoplab/internal/errtext"
	"github.com/hoplab/hoplab/internal/testreq"
)

// A program the verifier rejects (a packet read without a bounds check)
// yields a LoadError naming the program, this kernel and the instruction
// the verifier stopped at, with the whole log as a diagnostic file.
func TestLoadErrorNamesProgramKernelAndInsn(t *testing.T) {
	testreq.Root(t)
	if err := rlimit.RemoveMemlock(); err != nil {
		t.Fatal(err)
	}
	spec := &ebpf.CollectionSpec{Programs: map[string]*ebpf.ProgramSpec{
		"rejected_prog": {
			Name: "rejected_prog", Type: ebpf.SchedCLS, License: "GPL",
			Instructions: asm.Instructions{
				asm.LoadMem(asm.R2, asm.R1, 76, asm.Word), // skb->data
				asm.LoadMem(asm.R0, asm.R2, 0, asm.Byte),  // no check against data_end
				asm.Return(),
			},
		},
	}}
	coll, err := ebpf.NewCollection(spec)
	if err == nil {
		coll.Close()
		t.Fatal("the verifier accepted an unchecked packet read")
	}
	e := newLoadError("test_obj", err)
	if e.Object != "test_obj" || e.Program != "rejected_prog" {
		t.Errorf("object %q program %q, want test_obj rejected_prog", e.Object, e.Program)
	}
	if e.Kernel == "" || e.Kernel != kernelRelease() {
		t.Errorf("kernel %q, want this kernel's release", e.Kernel)
	}
	if !regexp.MustCompile(`^1: \(71\) r0 = \*\(u8 \*\)\(r2 \+0\)$`).MatchString(e.Insn) {
		t.Errorf("insn %q, want the unchecked byte load (insn 1)", e.Insn)
	}
	if !strings.Contains(e.Reason, "outside of the packet") && !strings.Contains(e.Reason, "invalid access to packet") {
		t.Errorf("reason %q, want the verifier's packet bounds complaint", e.Reason)
	}
	msg := e.Error()
	for _, want := range []string{"load test_obj", "program rejected_prog", "on kernel " + e.Kernel, e.Reason, e.Insn} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("message spans lines: %q", msg)
	}
	files := e.DiagnosticFiles()
	if log := files["verifier-rejected_prog.log"]; !strings.Contains(log, e.Insn) || !strings.Contains(log, e.Reason) {
		t.Errorf("diagnostic files %v lack the verifier log", files)
	}
	var ve *ebpf.VerifierError
	if !errors.As(e, &ve) {
		t.Error("LoadError does not unwrap to the verifier error")
	}
}

// Without a verifier log the loader's error is quoted, but the program it
// names is named once.
func TestLoadErrorNamesTheProgramOnce(t *testing.T) {
	err := newLoadError("bpf_lxc", fmt.Errorf("program hoplab_to_container: load program: %w", unix.EPERM))
	want := "load bpf_lxc: program hoplab_to_container on kernel " + kernelRelease() + ": load program: operation not permitted"
	errtext.Check(t, err, want)
	err = newLoadError("bpf_lxc", fmt.Errorf("map hoplab_ct4_global: create map: %w", unix.ENOMEM))
	errtext.Check(t, err, "load bpf_lxc on kernel "+kernelRelease()+": map hoplab_ct4_global: create map: cannot allocate memory")
}
