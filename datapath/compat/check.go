package compat

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
)

// Rule names one thing a kernel profile forbids.
type Rule string

// The rules [Check] enforces.
const (
	// RuleInsnLimit: the program has more instructions than the kernel
	// loads.
	RuleInsnLimit Rule = "insn-limit"
	// RuleHelper: a helper call newer than the kernel.
	RuleHelper Rule = "helper"
	// RuleMapType: a map type newer than the kernel.
	RuleMapType Rule = "map-type"
	// RuleMapFlags: a map creation flag newer than the kernel.
	RuleMapFlags Rule = "map-flags"
	// RuleProgType: a program type newer than the kernel.
	RuleProgType Rule = "prog-type"
	// RuleAttachType: an expected attach type newer than the kernel.
	RuleAttachType Rule = "attach-type"
	// RuleLoop: a back-edge in the control flow graph (a loop), which
	// verifiers before 5.3 reject even when the loop is bounded.
	RuleLoop Rule = "loop"
	// RuleTailCallSubprog: a program that both tail-calls and makes
	// BPF-to-BPF calls.
	RuleTailCallSubprog Rule = "tailcall-bpf2bpf"
	// RuleGlobalData: a .data, .rodata or .bss section, or an instruction
	// addressing one.
	RuleGlobalData Rule = "global-data"
	// RuleRingbuf: a BPF ring buffer map; use a perf event array.
	RuleRingbuf Rule = "ringbuf"
	// RuleCtxField: a context access past the end of the kernel's context
	// struct, i.e. a field added later (skb->tstamp, skb->sk, ...).
	RuleCtxField Rule = "ctx-field"
	// RuleISA: an instruction encoding the kernel cannot decode (JMP32,
	// atomics other than add, kfunc calls, cpu=v4 instructions, newer
	// ld_imm64 pseudo sources).
	RuleISA Rule = "isa"
	// RulePktStackOffset: a packet pointer moved by a scalar reloaded
	// from the stack with no bound since, which kernels before 5.10 reject
	// (they do not keep the bounds of spilled scalars).
	RulePktStackOffset Rule = "pkt-stack-offset"
	// RuleCtxAccess: an access to a context field the kernel has, in a
	// way it rejects: narrower than it allows, a write to a read-only
	// field, or a field of another attach type ("invalid bpf_context
	// access"). Checked for the program types of Kernel.CtxAccess.
	RuleCtxAccess Rule = "ctx-access"
)

// ProbedTag starts a BTF declaration tag that marks a program its loader
// loads only after probing the kernel for its program or attach type:
//
//	__attribute__((btf_decl_tag("hoplab:probed:cgroup/recvmsg4")))
//
// The rest of the tag names the feature. A kernel without the feature
// never sees the program, so [Check] does not report its program or attach
// type as too new; every other rule still holds, since a kernel of the
// profile's series may have the feature backported (4.19.57 has
// cgroup/recvmsg4) and then verifies the program.
const ProbedTag = "hoplab:probed:"

// Probed returns the feature a program is loaded behind (the rest of its
// [ProbedTag]), if it has one.
func Probed(p *ebpf.ProgramSpec) (string, bool) {
	if len(p.Instructions) == 0 {
		return "", false
	}
	fn := btf.FuncMetadata(&p.Instructions[0])
	if fn == nil {
		return "", false
	}
	for _, tag := range fn.Tags {
		if feature, ok := strings.CutPrefix(tag, ProbedTag); ok {
			return feature, true
		}
	}
	return "", false
}

// Violation is one reason a program or map would not load on a kernel.
type Violation struct {
	// Program is the program's name, empty for a map violation.
	Program string
	// Map is the map's name for map violations, and for program
	// violations that are about a map the program uses.
	Map string
	// Rule is the broken rule.
	Rule Rule
	// Insn is the instruction offset, in 8-byte slots, within the program
	// as loaded (subprograms appended), as the verifier log counts them;
	// -1 when the violation is not about one instruction.
	Insn int
	// Func is the function (entry point or subprogram) containing Insn.
	Func string
	// Reason is a one-line explanation naming the kernel that added the
	// feature.
	Reason string
}

// String formats the violation as "program P: insn N (in F): rule: reason"
// or "map M: rule: reason".
func (v Violation) String() string {
	var b strings.Builder
	if v.Program != "" {
		fmt.Fprintf(&b, "program %s: ", v.Program)
		if v.Insn >= 0 {
			fmt.Fprintf(&b, "insn %d", v.Insn)
			if v.Func != "" && v.Func != v.Program {
				fmt.Fprintf(&b, " (in %s)", v.Func)
			}
			b.WriteString(": ")
		}
	} else {
		fmt.Fprintf(&b, "map %s: ", v.Map)
	}
	fmt.Fprintf(&b, "%s: %s", v.Rule, v.Reason)
	return b.String()
}

// CheckFile loads the collection spec of a BPF ELF object and checks it
// against k.
func CheckFile(path string, k Kernel) ([]Violation, error) {
	spec, err := ebpf.LoadCollectionSpec(path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	return Check(spec, k), nil
}

// Check returns every violation of k in spec, programs first (by name),
// then maps (by name); nil means the spec is compatible as far as a static
// check can tell.
func Check(spec *ebpf.CollectionSpec, k Kernel) []Violation {
	var out []Violation
	for _, name := range sortedKeys(spec.Programs) {
		out = append(out, checkProgram(spec.Programs[name], k)...)
	}
	for _, name := range sortedKeys(spec.Maps) {
		out = append(out, checkMap(name, spec.Maps[name], k)...)
	}
	return out
}

// InsnCount is the size of the program the kernel receives, in 8-byte
// instruction slots (a 64-bit immediate load takes two), subprograms
// included: the number BPF_PROG_LOAD compares with its limit.
func InsnCount(p *ebpf.ProgramSpec) int {
	return int(p.Instructions.Size() / asm.InstructionSize)
}

func checkProgram(p *ebpf.ProgramSpec, k Kernel) []Violation {
	var out []Violation
	add := func(rule Rule, insn int, fn, format string, args ...any) {
		out = append(out, Violation{Program: p.Name, Rule: rule, Insn: insn, Func: fn,
			Reason: fmt.Sprintf(format, args...)})
	}

	_, probed := Probed(p)
	if probed {
		// Loaded only where the probe passed.
	} else if p.Type > k.LastProgramType {
		add(RuleProgType, -1, "", "program type %s (%d) is newer than %s (last: %s)",
			p.Type, uint32(p.Type), k.Name, k.LastProgramType)
	} else if p.AttachType > k.LastAttachType {
		add(RuleAttachType, -1, "", "attach type %s (%d) is newer than %s (last: %s)",
			p.AttachType, uint32(p.AttachType), k.Name, k.LastAttachType)
	}
	if n := InsnCount(p); n > k.MaxInsns {
		add(RuleInsnLimit, -1, "", "%d instructions, %s loads at most %d; split it with tail calls",
			n, k.Name, k.MaxInsns)
	}

	var (
		fn                   string
		firstCall, firstTail = -1, -1
		callee, callFunc     string
		calls                int
	)
	for iter := p.Instructions.Iterate(); iter.Next(); {
		ins, off := iter.Ins, int(iter.Offset)
		if sym := ins.Symbol(); sym != "" {
			fn = sym
		}
		op := ins.OpCode
		switch {
		case ins.IsBuiltinCall():
			if ins.Constant < 0 {
				break // placeholder patched at load time
			}
			helper := asm.BuiltinFunc(ins.Constant)
			if helper == asm.FnTailCall && firstTail < 0 {
				firstTail = off
			}
			if old, ok := loaderFallbacks[helper]; ok && old <= k.LastHelper {
				break
			}
			if helper > k.LastHelper {
				add(RuleHelper, off, fn, "%s (helper %d) is newer than %s (last helper %d, %s)",
					helperName(helper), uint32(helper), k.Name, uint32(k.LastHelper), helperName(k.LastHelper))
			} else if allowed, ok := k.ProgramHelpers[p.Type]; ok && !slices.Contains(allowed, helper) {
				add(RuleHelper, off, fn, "%s (helper %d) is not available to %s programs in %s",
					helperName(helper), uint32(helper), p.Type, k.Name)
			}
		case ins.IsFunctionCall():
			calls++
			if firstCall < 0 {
				firstCall, callee, callFunc = off, ins.Reference(), fn
			}
		case ins.IsKfuncCall():
			if !k.Kfuncs {
				add(RuleISA, off, fn, "kfunc call to %s: kfuncs arrived in 5.13", ins.Reference())
			}
		case op.IsDWordLoad() && ins.Src > asm.PseudoMapFD:
			if ins.Src == asm.PseudoMapValue {
				if !k.GlobalData {
					out = append(out, Violation{Program: p.Name, Map: ins.Reference(), Rule: RuleGlobalData,
						Insn: off, Func: fn, Reason: fmt.Sprintf(
							"addresses %s directly (BPF_PSEUDO_MAP_VALUE): global data arrived in 5.2", ins.Reference())})
				}
			} else if !k.Kfuncs {
				add(RuleISA, off, fn, "ld_imm64 with pseudo source %d (%s) is newer than %s",
					uint8(ins.Src), ins.Reference(), k.Name)
			}
		case op.Class() == asm.Jump32Class && !k.JMP32:
			add(RuleISA, off, fn, "BPF_JMP32 instruction (%v) arrived in 5.1; build with -mcpu=v2", op)
		case op.Class() == asm.StXClass && op.Mode() == asm.AtomicMode &&
			op.AtomicOp() != asm.AddAtomic && !k.AtomicFetch:
			add(RuleISA, off, fn, "atomic %v arrived in 5.12; %s only has a plain atomic add (do not use the result of __sync_fetch_and_add)",
				op.AtomicOp(), k.Name)
		case isV4(op) && !k.ISAv4:
			add(RuleISA, off, fn, "cpu=v4 instruction %v arrived in 6.6; build with -mcpu=v2", op)
		}
	}

	if firstCall >= 0 && firstTail >= 0 && !k.TailCallsWithSubprogs {
		out = append(out, Violation{Program: p.Name, Rule: RuleTailCallSubprog, Insn: firstCall, Func: callFunc,
			Reason: fmt.Sprintf("calls %s (%d BPF-to-BPF calls) and tail-calls at insn %d; %s rejects tail calls in programs with subprograms (5.10 on x86-64): inline the function (__always_inline)",
				callee, calls, firstTail, k.Name)})
	}

	if size, ok := k.CtxSizes[p.Type]; ok {
		accesses := contextAccesses(p)
		out = append(out, ctxAccesses(p, accesses, size, k.Name)...)
		if rule, ok := k.CtxAccess[p.Type]; ok {
			out = append(out, ctxAccessViolations(p, accesses, size, rule, k.Name)...)
		}
	}
	if !k.SpilledScalarBounds && skbContext(p.Type) {
		out = append(out, pktStackOffsets(p)...)
	}
	if !k.BoundedLoops {
		for _, e := range backEdges(p.Instructions) {
			add(RuleLoop, e.from, e.fromFunc, "back-edge from insn %d to insn %d: %s rejects loops (bounded loops arrived in 5.3); unroll it",
				e.from, e.to, k.Name)
		}
	}
	return out
}

// loaderFallbacks are helpers cilium/ebpf replaces with an older one when
// the kernel lacks them (fixupProbeReadKernel in its linker.go): such a call
// loads wherever the replacement exists.
var loaderFallbacks = map[asm.BuiltinFunc]asm.BuiltinFunc{
	asm.FnProbeReadKernel:    asm.FnProbeRead,
	asm.FnProbeReadUser:      asm.FnProbeRead,
	asm.FnProbeReadKernelStr: asm.FnProbeReadStr,
	asm.FnProbeReadUserStr:   asm.FnProbeReadStr,
}

// isV4 reports the cpu=v4 encodings (Linux 6.6).
func isV4(op asm.OpCode) bool {
	switch op.Class() {
	case asm.ALUClass, asm.ALU64Class:
		switch op.ALUOp() {
		case asm.SDiv, asm.SMod, asm.MovSX8, asm.MovSX16, asm.MovSX32:
			return true
		case asm.Swap:
			return op.Class() == asm.ALU64Class // unconditional bswap
		}
	case asm.LdXClass:
		return op.Mode() == asm.MemSXMode
	case asm.Jump32Class:
		return op.JumpOp() == asm.Ja // gotol
	}
	return false
}

func checkMap(name string, m *ebpf.MapSpec, k Kernel) []Violation {
	var out []Violation
	add := func(rule Rule, format string, args ...any) {
		out = append(out, Violation{Map: name, Rule: rule, Insn: -1, Reason: fmt.Sprintf(format, args...)})
	}
	switch {
	case isDataSection(name, m):
		if !k.GlobalData {
			add(RuleGlobalData, "%s is a global data section: global variables and constants need 5.2; use a map or a #define", name)
		}
		return out // flags are set by the loader, not by us
	case m.Type == ebpf.RingBuf && m.Type > k.LastMapType:
		add(RuleRingbuf, "ring buffers arrived in 5.8; use a perf event array")
	case m.Type > k.LastMapType:
		add(RuleMapType, "map type %s (%d) is newer than %s (last: %s)", m.Type, uint32(m.Type), k.Name, k.LastMapType)
	}
	if extra := m.Flags &^ k.MapFlags; extra != 0 {
		add(RuleMapFlags, "flags %#x are newer than %s (known: %#x)", extra, k.Name, k.MapFlags)
	}
	if m.InnerMap != nil {
		out = append(out, checkMap(name+"/inner", m.InnerMap, k)...)
	}
	return out
}

// isDataSection reports the maps cilium/ebpf makes from ELF data sections
// (.data, .rodata, .bss and their suffixed variants, .kconfig): arrays named
// after the section.
func isDataSection(name string, m *ebpf.MapSpec) bool {
	return strings.HasPrefix(name, ".") && m.Type == ebpf.Array
}

// helperName turns asm's FnSkbAncestorCgroupId into bpf_skb_ancestor_cgroup_id.
func helperName(fn asm.BuiltinFunc) string {
	s := strings.TrimPrefix(fn.String(), "Fn")
	var b strings.Builder
	b.WriteString("bpf_")
	for i, r := range s {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				prev := s[i-1]
				if prev >= 'a' && prev <= 'z' || prev >= '0' && prev <= '9' {
					b.WriteByte('_')
				}
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
