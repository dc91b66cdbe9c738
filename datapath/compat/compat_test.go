package compat

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

func linux419Profile(t *testing.T) Kernel {
	t.Helper()
	k, err := Lookup(MinKernel)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func loadTestObject(t *testing.T, name string) *ebpf.CollectionSpec {
	t.Helper()
	spec, err := ebpf.LoadCollectionSpec(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("load test object (rebuild with go generate ./datapath/compat): %v", err)
	}
	return spec
}

// insnAt returns the instruction at a raw offset of a loaded program.
func insnAt(t *testing.T, p *ebpf.ProgramSpec, off int) *asm.Instruction {
	t.Helper()
	for iter := p.Instructions.Iterate(); iter.Next(); {
		if int(iter.Offset) == off {
			return iter.Ins
		}
	}
	t.Fatalf("program %s has no instruction at offset %d", p.Name, off)
	return nil
}

// Each test object breaks exactly one rule (ringbuf.o necessarily two: the
// map and its helper); clean.o breaks none. Instruction offsets are checked
// by what sits there, so a different clang does not break the test.
func TestEachTestObjectYieldsItsViolation(t *testing.T) {
	k := linux419Profile(t)
	type want struct {
		program, mapName string
		rule             Rule
		// insn checks the instruction the violation points at; nil when
		// the violation has no instruction.
		insn func(*asm.Instruction) bool
	}
	helperCall := func(fn asm.BuiltinFunc) func(*asm.Instruction) bool {
		return func(ins *asm.Instruction) bool { return ins.IsBuiltinCall() && asm.BuiltinFunc(ins.Constant) == fn }
	}
	cases := []struct {
		object string
		want   []want
	}{
		{"clean.o", nil},
		{"too_big.o", []want{{program: "too_big", rule: RuleInsnLimit}}},
		{"new_helper.o", []want{{program: "new_helper", rule: RuleHelper, insn: helperCall(asm.FnRedirectPeer)}}},
		{"ringbuf.o", []want{
			{program: "ringbuf", rule: RuleHelper, insn: helperCall(asm.FnRingbufOutput)},
			{mapName: "ring", rule: RuleRingbuf},
		}},
		{"global_data.o", []want{
			{program: "global_data", mapName: ".bss", rule: RuleGlobalData,
				insn: func(ins *asm.Instruction) bool { return ins.IsLoadFromMap() && ins.Reference() == ".bss" }},
			{mapName: ".bss", rule: RuleGlobalData},
		}},
		{"loop.o", []want{{program: "loop", rule: RuleLoop,
			insn: func(ins *asm.Instruction) bool { return ins.OpCode.Class().IsJump() && ins.Offset < 0 }}}},
		{"tailcall_subprog.o", []want{{program: "tailcall_subprog", rule: RuleTailCallSubprog,
			insn: func(ins *asm.Instruction) bool { return ins.IsFunctionCall() && ins.Reference() == "pick_stage" }}}},
		{"new_map_type.o", []want{{mapName: "pending", rule: RuleMapType}}},
		{"new_prog_type.o", []want{{program: "new_prog_type", rule: RuleProgType}}},
		{"new_attach_type.o", []want{{program: "new_attach_type", rule: RuleAttachType}}},
		{"sock_addr_helper.o", []want{{program: "sock_addr_helper", rule: RuleHelper, insn: helperCall(asm.FnPerfEventOutput)}}},
		// The same attach type behind a probe (ProbedTag).
		{"probed_attach_type.o", nil},
		{"sock_addr_access.o", []want{{program: "sock_addr_access", rule: RuleCtxAccess,
			insn: func(ins *asm.Instruction) bool {
				return ins.OpCode.Class() == asm.LdXClass && ins.Offset == 24 && ins.OpCode.Size() == asm.Half
			}}}},
		{"ctx_field.o", []want{{program: "ctx_field", rule: RuleCtxField,
			insn: func(ins *asm.Instruction) bool { return ins.OpCode.Class() == asm.LdXClass && ins.Offset == 152 }}}},
		{"jmp32.o", []want{{program: "jmp32", rule: RuleISA,
			insn: func(ins *asm.Instruction) bool { return ins.OpCode.Class() == asm.Jump32Class }}}},
		// Only the program that adds the reloaded offset unbounded; its
		// sibling re-bounds it after the reload and passes.
		{"pkt_stack_offset.o", []want{{program: "pkt_stack_offset", rule: RulePktStackOffset,
			insn: func(ins *asm.Instruction) bool {
				return ins.OpCode.Class() == asm.ALU64Class && ins.OpCode.ALUOp() == asm.Add && ins.OpCode.Source() == asm.RegSource
			}}}},
	}
	for _, tc := range cases {
		t.Run(tc.object, func(t *testing.T) {
			spec := loadTestObject(t, tc.object)
			got := Check(spec, k)
			for _, v := range got {
				t.Logf("%s", v)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d violations, want %d", len(got), len(tc.want))
			}
			for i, w := range tc.want {
				v := got[i]
				if v.Program != w.program || v.Map != w.mapName || v.Rule != w.rule {
					t.Errorf("violation %d = (program %q, map %q, rule %s), want (%q, %q, %s)",
						i, v.Program, v.Map, v.Rule, w.program, w.mapName, w.rule)
					continue
				}
				if v.Reason == "" {
					t.Errorf("violation %d has no reason", i)
				}
				switch {
				case w.insn == nil && v.Insn != -1:
					t.Errorf("violation %d points at insn %d, want none", i, v.Insn)
				case w.insn != nil && v.Insn < 0:
					t.Errorf("violation %d points at no instruction", i)
				case w.insn != nil:
					if ins := insnAt(t, spec.Programs[v.Program], v.Insn); !w.insn(ins) {
						t.Errorf("violation %d points at insn %d = %v, not the offending instruction", i, v.Insn, ins)
					}
				}
			}
		})
	}
}

// A profile for a kernel with every feature accepts all the test objects:
// the rules come from the profile, not from the check.
func TestPermissiveProfileAcceptsEverything(t *testing.T) {
	k := Kernel{
		Name: "future", MaxInsns: 1 << 20,
		LastHelper: ^asm.BuiltinFunc(0) >> 8, LastMapType: ^ebpf.MapType(0) >> 8,
		LastProgramType: ^ebpf.ProgramType(0) >> 8, LastAttachType: ^ebpf.AttachType(0) >> 8,
		MapFlags: ^uint32(0), BoundedLoops: true, GlobalData: true, TailCallsWithSubprogs: true,
		JMP32: true, AtomicFetch: true, Kfuncs: true, ISAv4: true, SpilledScalarBounds: true,
	}
	objects, err := filepath.Glob("testdata/*.o")
	if err != nil || len(objects) == 0 {
		t.Fatalf("no test objects in testdata (err %v)", err)
	}
	for _, obj := range objects {
		vs, err := CheckFile(obj, k)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vs {
			t.Errorf("%s: %s", obj, v)
		}
	}
}

// clang lays out ctx_field.o with a backward jump that closes no cycle; the
// check must not take it for a loop (4.19 loads it).
func TestBackwardJumpIsNotALoop(t *testing.T) {
	spec := loadTestObject(t, "ctx_field.o")
	backward := 0
	for _, ins := range spec.Programs["ctx_field"].Instructions {
		if ins.OpCode.Class().IsJump() && ins.OpCode.JumpOp() != asm.Call && ins.Offset < 0 {
			backward++
		}
	}
	if backward == 0 {
		t.Fatal("ctx_field.o no longer has a backward jump; the test proves nothing")
	}
	for _, v := range Check(spec, linux419Profile(t)) {
		if v.Rule == RuleLoop {
			t.Errorf("backward jump reported as a loop: %s", v)
		}
	}
}

func jump(op asm.JumpOp, off int16) asm.Instruction {
	return asm.Instruction{OpCode: asm.OpCode(asm.JumpClass).SetJumpOp(op), Dst: asm.R0, Offset: off, Constant: 10}
}

func TestBackEdges(t *testing.T) {
	k := linux419Profile(t)
	cases := []struct {
		name  string
		insns asm.Instructions
		want  []backEdge // from, to in raw slots
	}{
		{
			name: "counting loop",
			insns: asm.Instructions{
				asm.Mov.Imm(asm.R0, 0).WithSymbol("f"),
				asm.Add.Imm(asm.R0, 1),
				jump(asm.JLT, -2), // -> 1
				asm.Return(),
			},
			want: []backEdge{{from: 2, to: 1, fromFunc: "f"}},
		},
		{
			// A shared tail placed before its second user: backward, but
			// not a cycle, and 4.19 loads it.
			name: "backward jump without a cycle",
			insns: asm.Instructions{
				jump(asm.JEq, 2).WithSymbol("f"), // -> 3
				asm.Mov.Imm(asm.R0, 0),
				asm.Return(),
				asm.Mov.Imm(asm.R0, 1),
				jump(asm.Ja, -4), // -> 1
			},
		},
		{
			// Offsets count 8-byte slots: the 64-bit load takes two.
			name: "loop over a wide load",
			insns: asm.Instructions{
				asm.LoadImm(asm.R0, 1<<40, asm.DWord).WithSymbol("f"),
				asm.Add.Imm(asm.R0, 1),
				jump(asm.JLT, -4), // slot 3 -> slot 0
				asm.Return(),
			},
			want: []backEdge{{from: 3, to: 0, fromFunc: "f"}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := backEdges(tc.insns); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("backEdges = %v, want %v", got, tc.want)
			}
			spec := &ebpf.CollectionSpec{Programs: map[string]*ebpf.ProgramSpec{
				"f": {Name: "f", Type: ebpf.SchedCLS, Instructions: tc.insns},
			}}
			got := Check(spec, k)
			for _, v := range got {
				t.Logf("%s", v)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d violations, want %d loop violations", len(got), len(tc.want))
			}
			for i, v := range got {
				if v.Rule != RuleLoop || v.Insn != tc.want[i].from {
					t.Errorf("violation %d = %s, want a loop at insn %d", i, v, tc.want[i].from)
				}
			}
		})
	}
}

// cilium/ebpf turns bpf_probe_read_kernel into bpf_probe_read on kernels
// without it, so the newer helper is not a violation; a helper without a
// fallback is.
func TestLoaderFallbackHelpers(t *testing.T) {
	spec := &ebpf.CollectionSpec{Programs: map[string]*ebpf.ProgramSpec{
		"f": {Name: "f", Type: ebpf.Kprobe, Instructions: asm.Instructions{
			asm.FnProbeReadKernel.Call().WithSymbol("f"),
			asm.FnProbeReadUserStr.Call(),
			asm.FnSendSignal.Call(),
			asm.Return(),
		}},
	}}
	got := Check(spec, linux419Profile(t))
	if len(got) != 1 || got[0].Rule != RuleHelper || got[0].Insn != 2 {
		t.Errorf("got %v, want one helper violation at insn 2 (bpf_send_signal)", got)
	}
}

func TestInsnCountCountsSlots(t *testing.T) {
	p := &ebpf.ProgramSpec{Instructions: asm.Instructions{
		asm.LoadImm(asm.R0, 1<<40, asm.DWord),
		asm.Return(),
	}}
	if n := InsnCount(p); n != 3 {
		t.Errorf("InsnCount = %d, want 3 (ld_imm64 is two slots)", n)
	}
}

func TestHelperName(t *testing.T) {
	for fn, want := range map[asm.BuiltinFunc]string{
		asm.FnSkbAncestorCgroupId: "bpf_skb_ancestor_cgroup_id",
		asm.FnL3CsumReplace:       "bpf_l3_csum_replace",
		asm.FnGetPrandomU32:       "bpf_get_prandom_u32",
		asm.FnRedirectPeer:        "bpf_redirect_peer",
	} {
		if got := helperName(fn); got != want {
			t.Errorf("helperName(%d) = %q, want %q", uint32(fn), got, want)
		}
	}
}

func TestVersionLess(t *testing.T) {
	if !versionLess("4.19", "5.4") || !versionLess("5.4", "5.10") || versionLess("5.10", "5.10") {
		t.Error("versionLess does not order releases numerically")
	}
}

func TestLookupUnknownKernel(t *testing.T) {
	if _, err := Lookup("2.6"); !errors.Is(err, ErrUnknownKernel) {
		t.Errorf("Lookup(2.6) error = %v, want ErrUnknownKernel", err)
	}
}

func TestCtxTracking(t *testing.T) {
	k := linux419Profile(t)
	ld := func(dst, base asm.Register, off int16) asm.Instruction {
		return asm.LoadMem(dst, base, off, asm.DWord)
	}
	cases := []struct {
		name  string
		insns asm.Instructions
		want  []int // raw offsets of ctx-field violations
	}{
		{
			name: "ctx kept in R6 across a helper call",
			insns: asm.Instructions{
				asm.Mov.Reg(asm.R6, asm.R1).WithSymbol("f"),
				asm.FnKtimeGetNs.Call(),
				ld(asm.R0, asm.R6, 152),
				asm.Return(),
			},
			want: []int{2},
		},
		{
			name: "ctx copy in R2 is clobbered by the call",
			insns: asm.Instructions{
				asm.Mov.Reg(asm.R2, asm.R1).WithSymbol("f"),
				asm.FnKtimeGetNs.Call(),
				ld(asm.R0, asm.R2, 152),
				asm.Return(),
			},
		},
		{
			// The check is must-hold: R6 is the context on one path only,
			// so the access is not claimed (the verifier would decide).
			name: "ctx only on one path",
			insns: asm.Instructions{
				jump(asm.JEq, 1).WithSymbol("f"), // -> 2
				asm.Mov.Reg(asm.R6, asm.R1),
				ld(asm.R0, asm.R6, 152),
				asm.Return(),
			},
		},
		{
			name: "ctx on both paths",
			insns: asm.Instructions{
				asm.Mov.Reg(asm.R6, asm.R1).WithSymbol("f"),
				jump(asm.JEq, 1), // -> 3
				asm.Mov.Imm(asm.R0, 0),
				ld(asm.R0, asm.R6, 152),
				asm.Return(),
			},
			want: []int{3},
		},
		{
			name: "store to a 4.19 field",
			insns: asm.Instructions{
				asm.StoreImm(asm.R1, 8, 1, asm.Word).WithSymbol("f"), // skb->mark
				asm.Return(),
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := &ebpf.CollectionSpec{Programs: map[string]*ebpf.ProgramSpec{
				"f": {Name: "f", Type: ebpf.SchedCLS, Instructions: tc.insns},
			}}
			var got []int
			for _, v := range Check(spec, k) {
				t.Logf("%s", v)
				if v.Rule == RuleCtxField {
					got = append(got, v.Insn)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("ctx-field violations at %v, want %v", got, tc.want)
			}
		})
	}
}

// A program's ProbedTag names the feature its loader probes for.
func TestProbed(t *testing.T) {
	if f, ok := Probed(loadTestObject(t, "probed_attach_type.o").Programs["probed_attach_type"]); !ok || f != "cgroup/getpeername4" {
		t.Errorf("Probed(probed_attach_type) = %q, %v; want cgroup/getpeername4, true", f, ok)
	}
	if f, ok := Probed(loadTestObject(t, "new_attach_type.o").Programs["new_attach_type"]); ok {
		t.Errorf("Probed(new_attach_type) = %q, true; the program has no tag", f)
	}
}

// sockAddrAccess419 follows 4.19.304's sock_addr_is_valid_access.
func TestSockAddrAccess419(t *testing.T) {
	const (
		connect4 = ebpf.AttachCGroupInet4Connect
		sendmsg4 = ebpf.AttachCGroupUDP4Sendmsg
		recvmsg4 = ebpf.AttachCGroupUDP4Recvmsg
		connect6 = ebpf.AttachCGroupInet6Connect
	)
	cases := []struct {
		name   string
		off    int
		size   int
		write  bool
		attach ebpf.AttachType
		ok     bool
	}{
		{"user_ip4 read", 4, 4, false, connect4, true},
		{"user_ip4 narrow read", 6, 2, false, connect4, true},
		{"user_ip4 byte read", 7, 1, false, recvmsg4, true},
		{"user_ip4 write", 4, 4, true, sendmsg4, true},
		{"user_ip4 narrow write", 4, 2, true, connect4, false},
		{"user_ip4 from an IPv6 hook", 4, 4, false, connect6, false},
		{"user_ip6 from an IPv4 hook", 8, 4, false, connect4, false},
		{"user_ip6 read", 12, 4, false, connect6, true},
		{"misaligned read", 5, 2, false, connect4, false},
		{"user_port read", 24, 4, false, connect4, true},
		{"user_port narrow read", 24, 2, false, connect4, false},
		{"user_port write", 24, 4, true, recvmsg4, true},
		{"user_port narrow write", 24, 2, true, connect4, false},
		{"protocol read", 36, 4, false, sendmsg4, true},
		{"protocol narrow read", 36, 1, false, sendmsg4, false},
		{"protocol write", 36, 4, true, sendmsg4, false},
		{"type read", 32, 4, false, connect4, true},
		{"family write", 28, 4, true, connect4, false},
		{"msg_src_ip4 in sendmsg4", 40, 4, true, sendmsg4, true},
		{"msg_src_ip4 in connect4", 40, 4, false, connect4, false},
		{"msg_src_ip6 in sendmsg4", 44, 4, false, sendmsg4, false},
	}
	for _, tc := range cases {
		why := sockAddrAccess419(tc.off, tc.size, tc.write, tc.attach)
		if (why == "") != tc.ok {
			t.Errorf("%s (offset %d, %d bytes, write %v, %s): %q, want accepted=%v", tc.name, tc.off, tc.size, tc.write, tc.attach, why, tc.ok)
		}
	}
}
