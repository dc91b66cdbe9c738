// Package compat checks compiled BPF objects against what an older kernel
// accepts, without loading them: hoplab's datapath must load on Linux 4.19,
// but the tests run on whatever kernel the host has, and a newer verifier
// happily accepts programs 4.19 rejects.
//
// [Check] walks every program of an [ebpf.CollectionSpec] as the kernel
// would receive it (subprograms linked in by cilium/ebpf) and every map, and
// reports each [Violation] of a [Kernel] profile: the instruction limit,
// helpers, map, program and attach types newer than the kernel, loops,
// BPF-to-BPF calls in tail-calling programs, global data, ring buffers,
// context fields past the end of the kernel's context struct, context
// accesses its verifier rejects (bpf_sock_addr widths and writes), instruction
// encodings the kernel cannot decode, and packet pointers moved by an
// offset reloaded from the stack with no bound since (4.19 forgets the
// bounds of spilled scalars; found on a real 4.19.304). A program tagged
// with [ProbedTag] may have a newer program or attach type: its loader
// loads it only where a probe found the feature.
//
// The committed datapath objects are checked by this package's tests, so
// `make test` fails when a change breaks 4.19; the bpfcompat command
// (./datapath/compat/cmd/bpfcompat) runs the same check on any object file.
//
// The check is static: it cannot see verifier limits that depend on the
// explored paths (4.19 gives up after 131072 processed instructions), nor
// helpers that exist but are not allowed for a program type. Loading the
// objects in a 4.19 VM (vmtest) remains the final word.
package compat
