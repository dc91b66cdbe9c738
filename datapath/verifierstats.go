package datapath

import (
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// ProgramStats is what loading one program cost: its size and how hard its
// verifier worked, as the kernel reported it.
type ProgramStats struct {
	// Object is the BPF object ("bpf_lxc") and Program the program.
	Object  string `json:"object"`
	Program string `json:"program"`
	// Insns is the program's size in instruction slots, the number the
	// kernel compares with its 4096-instruction limit on 4.19.
	Insns int `json:"insns"`
	// Processed is how many instructions the verifier processed over all
	// paths ("processed N insns"), the number 4.19 limits to 131072; -1
	// when the kernel did not say.
	Processed int `json:"processed"`
	// Verify is the verification time the kernel reported (5.2 and later;
	// 0 on older kernels).
	Verify time.Duration `json:"verify_ns"`
}

var (
	processedRe  = regexp.MustCompile(`processed ([0-9]+) insns`)
	verifyTimeRe = regexp.MustCompile(`verification time ([0-9]+) usec`)
)

// statsFromLog reads a program's statistics from its verifier log (the
// last "processed" line: 4.19 prints it after a full instruction trace,
// 5.2 and later alone with LogLevelStats).
func statsFromLog(object, name string, insns asm.Instructions, log string) ProgramStats {
	s := ProgramStats{Object: object, Program: name, Insns: int(insns.Size() / asm.InstructionSize), Processed: -1}
	if m := processedRe.FindAllStringSubmatch(log, -1); m != nil {
		s.Processed, _ = strconv.Atoi(m[len(m)-1][1])
	}
	if m := verifyTimeRe.FindAllStringSubmatch(log, -1); m != nil {
		us, _ := strconv.Atoi(m[len(m)-1][1])
		s.Verify = time.Duration(us) * time.Microsecond
	}
	return s
}

// collectStats records the statistics of every program coll loaded from
// spec.
func (d *Datapath) collectStats(object string, spec *ebpf.CollectionSpec, progs map[string]*ebpf.Program) {
	for name, p := range progs {
		ps, ok := spec.Programs[name]
		if !ok || p == nil {
			continue
		}
		d.stats = append(d.stats, statsFromLog(object, name, ps.Instructions, p.VerifierLog))
	}
}

// VerifierStats returns the statistics of every program, by object and
// name; empty unless the datapath was loaded with Options.VerifierStats.
func (d *Datapath) VerifierStats() []ProgramStats {
	out := append([]ProgramStats(nil), d.stats...)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Object != out[j].Object {
			return out[i].Object < out[j].Object
		}
		return out[i].Program < out[j].Program
	})
	return out
}

// statsLogLevel returns the verifier log level that gives a program's
// statistics. Kernels from 5.2 have a statistics-only level
// (LogLevelStats). Older ones take it for a full log with the register
// state at every instruction, which for a large program outgrows the 16
// MiB log buffer 4.19 accepts (the load then fails with EINVAL); their
// instruction log (LogLevelBranch) ends with the same "processed N insns"
// line and is a fraction of the size. A two-instruction program loaded at
// LogLevelStats tells them apart: only the old kernels print its
// instructions.
func statsLogLevel() ebpf.LogLevel {
	prog, err := ebpf.NewProgramWithOptions(&ebpf.ProgramSpec{
		Type:         ebpf.SchedCLS,
		License:      "Dual BSD/GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
	}, ebpf.ProgramOptions{LogLevel: ebpf.LogLevelStats})
	if err != nil {
		return ebpf.LogLevelStats
	}
	defer prog.Close()
	if strings.Contains(prog.VerifierLog, "(b7)") {
		return ebpf.LogLevelBranch
	}
	return ebpf.LogLevelStats
}

// ProgramObjects names every program the datapath loads with the object it
// comes from, the set VerifierStats reports. recvmsg4 says whether the
// kernel has cgroup/recvmsg4 (HaveSockRecvmsg4): without it the socket LB
// attaches its egress fallback alone.
func ProgramObjects(recvmsg4 bool) map[string]string {
	m := map[string]string{
		lxcProgHoplabFromContainer: "bpf_lxc", lxcProgHoplabToContainer: "bpf_lxc", lxcProgTailIpv4EgressPolicy: "bpf_lxc",
		netdevProgHoplabFromNetdev: "bpf_netdev", netdevProgHoplabToNetdev: "bpf_netdev",
		overlayProgHoplabFromOverlay: "bpf_overlay",
		sockProgHoplabSock4Connect:   "bpf_sock", sockProgHoplabSock4Sendmsg: "bpf_sock", sockProgHoplabSock4UdpEgress: "bpf_sock",
	}
	if recvmsg4 {
		m[sockProgHoplabSock4Recvmsg] = "bpf_sock"
	}
	return m
}
