package datapath

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
)

// Requirement is a kernel feature the datapath relies on, with the kernel
// that introduced it.
type Requirement struct {
	Name   string
	Kernel string
	probe  func() error
}

// Requirements lists what the programs need. Everything is in 4.19.
var Requirements = []Requirement{
	{"sched_cls programs", "4.1", func() error { return features.HaveProgramType(ebpf.SchedCLS) }},
	{"LRU hash map", "4.10", func() error { return features.HaveMapType(ebpf.LRUHash) }},
	{"LPM trie map", "4.11", func() error { return features.HaveMapType(ebpf.LPMTrie) }},
	{"per-CPU hash map", "4.6", func() error { return features.HaveMapType(ebpf.PerCPUHash) }},
	{"program array", "4.2", func() error { return features.HaveMapType(ebpf.ProgramArray) }},
	{"perf event array", "4.3", func() error { return features.HaveMapType(ebpf.PerfEventArray) }},
	{"bpf_skb_load_bytes", "4.5", func() error { return features.HaveProgramHelper(ebpf.SchedCLS, asm.FnSkbLoadBytes) }},
	{"bpf_redirect", "4.4", func() error { return features.HaveProgramHelper(ebpf.SchedCLS, asm.FnRedirect) }},
	{"bpf_perf_event_output", "4.4", func() error { return features.HaveProgramHelper(ebpf.SchedCLS, asm.FnPerfEventOutput) }},
	{"bpf_tail_call", "4.2", func() error { return features.HaveProgramHelper(ebpf.SchedCLS, asm.FnTailCall) }},
}

// ErrMissingFeature is returned by Probe when the kernel lacks a feature.
var ErrMissingFeature = errors.New("kernel lacks a datapath feature")

// Probe checks every Requirement and reports the first missing one, naming
// the kernel that has it.
func Probe() error {
	for _, r := range Requirements {
		if err := r.probe(); err != nil {
			if errors.Is(err, ebpf.ErrNotSupported) {
				return fmt.Errorf("%s (Linux %s): %w: %w", r.Name, r.Kernel, ErrMissingFeature, err)
			}
			return fmt.Errorf("probe %s: %w", r.Name, err)
		}
	}
	return nil
}
