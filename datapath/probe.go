package datapath

import (
	"errors"
	"fmt"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"golang.org/x/sys/unix"
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

// haveSockRecvmsg4 caches the probe of HaveSockRecvmsg4.
var haveSockRecvmsg4 = sync.OnceValue(func() error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.CGroupSockAddr,
		AttachType:   ebpf.AttachCGroupUDP4Recvmsg,
		License:      "Dual BSD/GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 1), asm.Return()},
	})
	if err == nil {
		prog.Close()
		return nil
	}
	// BPF_PROG_LOAD rejects an expected attach type it does not know
	// with EINVAL; so does a kernel without cgroup sock_addr programs.
	if errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("cgroup/recvmsg4 (Linux 5.2, 4.19.57): %w", ebpf.ErrNotSupported)
	}
	return fmt.Errorf("probe cgroup/recvmsg4: %w", err)
})

// HaveSockRecvmsg4 reports whether the kernel has cgroup/recvmsg4
// (BPF_CGROUP_UDP4_RECVMSG: Linux 5.2, backported to 4.19.57 and 5.1.16),
// with which the socket LB makes UDP replies appear to come from the VIP.
// It returns nil when it has, an error wrapping ebpf.ErrNotSupported when
// it has not, and another error when the probe itself failed (no
// privileges). The answer is cached.
func HaveSockRecvmsg4() error { return haveSockRecvmsg4() }
