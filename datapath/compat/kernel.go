package compat

import (
	"errors"
	"fmt"
	"sort"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// ErrUnknownKernel is returned by [Lookup] for a kernel without a profile.
var ErrUnknownKernel = errors.New("unknown kernel profile")

// MinKernel is the oldest kernel hoplab's datapath supports, the default
// profile of the check.
const MinKernel = "4.19"

// Kernel is a compatibility profile: what one kernel release accepts from a
// BPF object. Numbers are the kernel's own enum values, which only grow, so
// "newer than" is "greater than the profile's last value".
type Kernel struct {
	// Name is the release, e.g. "4.19".
	Name string
	// MaxInsns is the largest program, in 8-byte instruction slots, that
	// BPF_PROG_LOAD accepts: a program of exactly MaxInsns loads.
	MaxInsns int
	// MaxVerifiedInsns is how many instructions the verifier explores,
	// over all paths, before it gives up on a program
	// (BPF_COMPLEXITY_LIMIT_INSNS). A static check cannot count it; tests
	// compare it with what the host's verifier reports.
	MaxVerifiedInsns int
	// LastHelper is the highest helper ID (enum bpf_func_id) the kernel has.
	LastHelper asm.BuiltinFunc
	// LastMapType is the highest map type (enum bpf_map_type).
	LastMapType ebpf.MapType
	// LastProgramType is the highest program type (enum bpf_prog_type).
	LastProgramType ebpf.ProgramType
	// LastAttachType is the highest attach type (enum bpf_attach_type),
	// which cgroup socket programs declare at load time.
	LastAttachType ebpf.AttachType
	// CtxSizes is the size of the context struct each program type gets
	// (struct __sk_buff for tc); accesses past it are newer fields. Program
	// types without an entry are not checked. Read-only.
	CtxSizes map[ebpf.ProgramType]int
	// CtxAccess says, per program type, which accesses inside the
	// context struct the kernel accepts (widths, writable fields, fields
	// of an attach type); program types without an entry are not checked.
	// Read-only.
	CtxAccess map[ebpf.ProgramType]CtxAccessRule
	// ProgramHelpers lists, per program type, the helpers the kernel lets
	// that type call (its *_func_proto); a helper the kernel has but not
	// for the type fails the load ("unknown func"). Program types without
	// an entry are checked against LastHelper only. Read-only.
	ProgramHelpers map[ebpf.ProgramType][]asm.BuiltinFunc
	// MapFlags is the set of map creation flags the kernel knows.
	MapFlags uint32
	// BoundedLoops is whether the verifier accepts back-edges (5.3).
	BoundedLoops bool
	// GlobalData is whether programs may address .data/.rodata/.bss
	// directly (5.2).
	GlobalData bool
	// TailCallsWithSubprogs is whether a program may both tail-call and
	// make BPF-to-BPF calls (5.10 on x86-64).
	TailCallsWithSubprogs bool
	// JMP32 is whether the BPF_JMP32 instruction class exists (5.1).
	JMP32 bool
	// AtomicFetch is whether atomics other than a plain add (fetch, and,
	// or, xor, xchg, cmpxchg) exist (5.12).
	AtomicFetch bool
	// Kfuncs is whether programs may call kernel functions (5.13).
	Kfuncs bool
	// ISAv4 is whether the cpu=v4 instructions exist: sign-extending
	// loads and moves, signed division, unconditional byte swap, 32-bit
	// jump offsets (6.6).
	ISAv4 bool
	// SpilledScalarBounds is whether the verifier remembers the bounds of
	// a scalar spilled to the stack (5.10; constants since 5.3). Without
	// it a reloaded offset cannot move a packet pointer until it is
	// bounded again.
	SpilledScalarBounds bool
}

// Linux 4.19, derived from include/uapi/linux/bpf.h at tag v4.19 (enums are
// append-only, so the last entry of each enum is the profile's bound), and
// cross-checked against bcc's docs/kernel-versions.md:
//
//   - helpers: __BPF_FUNC_MAPPER ends with FN(skb_ancestor_cgroup_id) = 83,
//     after get_local_storage (81) and sk_select_reuseport (82), both new in
//     4.19; sk_lookup_tcp (84), sk_lookup_udp, sk_release and the queue/stack
//     helpers (87-89) and msg_push_data (90) are 4.20.
//   - map types: BPF_MAP_TYPE_REUSEPORT_SOCKARRAY = 20 (with CGROUP_STORAGE
//     = 19, both 4.19); PERCPU_CGROUP_STORAGE, QUEUE and STACK are 4.20,
//     RINGBUF is 5.8.
//   - program types: BPF_PROG_TYPE_SK_REUSEPORT = 21; FLOW_DISSECTOR is 4.20.
//   - attach types: BPF_LIRC_MODE2 = 16; BPF_FLOW_DISSECTOR is 4.20.
//   - map flags: NO_PREALLOC, NO_COMMON_LRU, NUMA_NODE, RDONLY, WRONLY,
//     STACK_BUILD_ID (1<<0 .. 1<<5); ZERO_SEED is 5.0, RDONLY_PROG 5.2,
//     MMAPABLE 5.5, INNER_MAP 5.10.
//   - context structs: __sk_buff ends at data_meta (144 bytes; flow_keys,
//     tstamp and wire_len are 5.0), xdp_md at rx_queue_index (20),
//     bpf_sock at src_port (48), bpf_sock_addr at msg_src_ip6 (60).
//   - kernel/bpf/syscall.c bpf_prog_load: insn_cnt > BPF_MAXINSNS (4096)
//     fails with E2BIG; the 1M limit for privileged loaders arrived in 5.2.
//     kernel/bpf/verifier.c: BPF_COMPLEXITY_LIMIT_INSNS is 131072 (1M in 5.2).
//   - kernel/bpf/verifier.c check_cfg rejects any back-edge ("back-edge
//     from insn %d to %d"), and check_map_func_compatibility rejects
//     bpf_tail_call when subprog_cnt > 1 ("tail_calls are not allowed in
//     programs with bpf-to-bpf calls").
//   - kernel/bpf/verifier.c check_stack_write spills only pointers
//     (is_spillable_regtype); any other register is written as STACK_MISC,
//     and check_stack_read of STACK_MISC gives an unknown scalar, so an
//     offset that went through the stack fails adjust_ptr_min_max_vals
//     ("math between pkt pointer and register with unbounded min value is
//     not allowed"). Seen on a real 4.19.304 with hoplab_to_container.
//   - net/core/filter.c sock_addr_is_valid_access (4.19.304): user_port,
//     family, type and protocol take 4-byte loads only (clang narrows
//     (__be16)ctx->user_port to a 2-byte load unless it is volatile);
//     the address fields also narrow, aligned loads; only the address
//     fields and user_port are writable, with 4-byte stores.
var linux419 = Kernel{
	Name:             "4.19",
	MaxInsns:         4096,
	MaxVerifiedInsns: 131072,
	LastHelper:       asm.FnSkbAncestorCgroupId,
	LastMapType:      ebpf.ReusePortSockArray,
	LastProgramType:  ebpf.SkReuseport,
	LastAttachType:   ebpf.AttachLircMode2,
	CtxSizes:         ctxSizes419,
	CtxAccess:        map[ebpf.ProgramType]CtxAccessRule{ebpf.CGroupSockAddr: sockAddrAccess419},
	ProgramHelpers:   programHelpers419,
	MapFlags:         1<<6 - 1,
}

// baseHelpers419 is bpf_base_func_proto of net/core/filter.c in 4.19.
var baseHelpers419 = []asm.BuiltinFunc{
	asm.FnMapLookupElem, asm.FnMapUpdateElem, asm.FnMapDeleteElem, asm.FnGetPrandomU32,
	asm.FnGetSmpProcessorId, asm.FnGetNumaNodeId, asm.FnTailCall, asm.FnKtimeGetNs, asm.FnTracePrintk,
}

// programHelpers419 are the helpers of the socket program types in
// 4.19.304's net/core/filter.c: sock_addr_func_proto (no
// bpf_perf_event_output: a cgroup/connect4 program cannot send events)
// and cg_skb_func_proto (sk_filter_func_proto plus local storage).
var programHelpers419 = map[ebpf.ProgramType][]asm.BuiltinFunc{
	ebpf.CGroupSockAddr: append([]asm.BuiltinFunc{asm.FnGetCurrentUidGid, asm.FnBind,
		asm.FnGetSocketCookie, asm.FnGetLocalStorage}, baseHelpers419...),
	ebpf.CGroupSKB: append([]asm.BuiltinFunc{asm.FnSkbLoadBytes, asm.FnSkbLoadBytesRelative,
		asm.FnGetSocketCookie, asm.FnGetSocketUid, asm.FnGetLocalStorage}, baseHelpers419...),
}

var profiles = map[string]Kernel{
	linux419.Name: linux419,
}

// Lookup returns the profile of a kernel release ("4.19"), or an error
// wrapping [ErrUnknownKernel].
func Lookup(name string) (Kernel, error) {
	k, ok := profiles[name]
	if !ok {
		return Kernel{}, fmt.Errorf("kernel %q (known: %v): %w", name, Kernels(), ErrUnknownKernel)
	}
	return k, nil
}

// Kernels lists the releases that have a profile, oldest first.
func Kernels() []string {
	names := make([]string, 0, len(profiles))
	for name := range profiles {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool { return versionLess(names[i], names[j]) })
	return names
}

// versionLess orders "major.minor" releases numerically (4.19 < 5.4 < 5.10).
func versionLess(a, b string) bool {
	var amaj, amin, bmaj, bmin int
	fmt.Sscanf(a, "%d.%d", &amaj, &amin)
	fmt.Sscanf(b, "%d.%d", &bmaj, &bmin)
	return amaj < bmaj || amaj == bmaj && amin < bmin
}

// String returns the release name.
func (k Kernel) String() string { return k.Name }
