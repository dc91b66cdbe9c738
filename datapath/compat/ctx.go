package compat

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// Context sizes in Linux 4.19 (include/uapi/linux/bpf.h at v4.19): the
// struct each program type receives ends at these many bytes, and the
// verifier rejects any access past the end ("invalid bpf_context access").
const (
	skBuffSize419   = 144 // struct __sk_buff ends with data_meta at 140
	xdpMDSize419    = 20  // struct xdp_md ends with rx_queue_index at 16
	sockSize419     = 48  // struct bpf_sock ends with src_port at 44
	sockAddrSize419 = 60  // struct bpf_sock_addr ends with msg_src_ip6 at 44..59
)

var ctxSizes419 = map[ebpf.ProgramType]int{
	ebpf.SocketFilter:   skBuffSize419,
	ebpf.SchedCLS:       skBuffSize419,
	ebpf.SchedACT:       skBuffSize419,
	ebpf.CGroupSKB:      skBuffSize419,
	ebpf.LWTIn:          skBuffSize419,
	ebpf.LWTOut:         skBuffSize419,
	ebpf.LWTXmit:        skBuffSize419,
	ebpf.LWTSeg6Local:   skBuffSize419,
	ebpf.SkSKB:          skBuffSize419,
	ebpf.XDP:            xdpMDSize419,
	ebpf.CGroupSock:     sockSize419,
	ebpf.CGroupSockAddr: sockAddrSize419,
}

// regSet is a set of registers R0..R10 as a bit mask.
type regSet uint16

const (
	allRegs     regSet = 1<<11 - 1
	callerSaved regSet = 1<<6 - 1 // R0..R5, clobbered by every call
)

func (s regSet) has(r asm.Register) bool { return r <= asm.R10 && s&(1<<r) != 0 }
func (s regSet) with(r asm.Register) regSet {
	if r > asm.R10 {
		return s
	}
	return s | 1<<r
}
func (s regSet) without(r asm.Register) regSet {
	if r > asm.R10 {
		return s
	}
	return s &^ (1 << r)
}

// ctxAccess is one load or store through the context pointer.
type ctxAccess struct {
	insn  int    // raw offset, as the verifier counts
	fn    string // function containing it
	off   int    // offset into the context struct
	size  int    // bytes
	write bool
}

// contextAccesses finds the loads and stores through the context pointer.
// It tracks which registers certainly hold the unmodified context (R1 at
// entry, copied by register moves, kept in R6-R9 across calls, passed in
// R1 to BPF-to-BPF callees); a context pointer that went through the
// stack is not followed, so the check may miss accesses but does not
// invent them.
func contextAccesses(p *ebpf.ProgramSpec) []ctxAccess {
	insns := p.Instructions
	n := len(insns)
	if n == 0 {
		return nil
	}
	x := newInsnIndex(insns)
	raw, funcs, symbols := x.raw, x.funcs, x.symbols

	// in[i] is the set of registers holding the context on every path to
	// i; allRegs marks instructions not reached yet (the meet is AND).
	in := make([]regSet, n)
	for i := range in {
		in[i] = allRegs
	}
	reached := make([]bool, n)
	in[0], reached[0] = regSet(1<<asm.R1), true
	work := []int{0}
	flow := func(to int, s regSet) {
		if to < 0 || to >= n {
			return
		}
		if merged := in[to] & s; !reached[to] || merged != in[to] {
			in[to], reached[to] = merged, true
			work = append(work, to)
		}
	}
	for len(work) > 0 {
		i := work[len(work)-1]
		work = work[:len(work)-1]
		ins := &insns[i]
		s := in[i]
		op := ins.OpCode
		switch cls := op.Class(); {
		case cls.IsJump():
			switch op.JumpOp() {
			case asm.Exit:
			case asm.Call:
				if ins.IsFunctionCall() {
					callee := regSet(0)
					if s.has(asm.R1) {
						callee = regSet(1 << asm.R1)
					}
					if t, ok := symbols[ins.Reference()]; ok {
						flow(t, callee)
					}
				}
				flow(i+1, s&^callerSaved)
			case asm.Ja:
				flow(x.jumpTarget(i, ins), s)
			default:
				flow(x.jumpTarget(i, ins), s)
				flow(i+1, s)
			}
			continue
		case cls == asm.ALU64Class && op.ALUOp() == asm.Mov && op.Source() == asm.RegSource:
			if s.has(ins.Src) {
				s = s.with(ins.Dst)
			} else {
				s = s.without(ins.Dst)
			}
		case cls.IsALU(), cls.IsLoad():
			s = s.without(ins.Dst)
		}
		flow(i+1, s)
	}

	var out []ctxAccess
	for i := range insns {
		if !reached[i] {
			continue
		}
		ins := &insns[i]
		op := ins.OpCode
		if op.Mode() != asm.MemMode && op.Mode() != asm.MemSXMode && op.Mode() != asm.AtomicMode {
			continue
		}
		var base asm.Register
		write := false
		switch op.Class() {
		case asm.LdXClass:
			base = ins.Src
		case asm.StClass, asm.StXClass:
			base, write = ins.Dst, true
		default:
			continue
		}
		if !in[i].has(base) {
			continue
		}
		out = append(out, ctxAccess{insn: raw[i], fn: funcs[i], off: int(ins.Offset),
			size: op.Size().Sizeof(), write: write})
	}
	return out
}

func (a ctxAccess) verb() string {
	if a.write {
		return "writes"
	}
	return "reads"
}

// ctxAccesses reports the accesses that reach past size bytes, the end of
// the kernel's context struct.
func ctxAccesses(p *ebpf.ProgramSpec, accesses []ctxAccess, size int, kernel string) []Violation {
	var out []Violation
	for _, a := range accesses {
		if end := a.off + a.size; a.off < 0 || end > size {
			out = append(out, Violation{Program: p.Name, Rule: RuleCtxField, Insn: a.insn, Func: a.fn,
				Reason: fmt.Sprintf("%s the context at offset %d (%d bytes), past its end in %s (%d bytes): the field is newer",
					a.verb(), a.off, a.size, kernel, size)})
		}
	}
	return out
}

// CtxAccessRule says whether the kernel accepts one access to a field of
// a program type's context: it returns "" when it does, else why not. off
// lies inside the context struct (accesses past its end are the ctx-field
// rule's). attach is the program's expected attach type.
type CtxAccessRule func(off, size int, write bool, attach ebpf.AttachType) string

// ctxAccessViolations reports the accesses inside the context struct that
// the kernel's is_valid_access rejects (a narrower load, a write to a
// read-only field, a field of another attach type).
func ctxAccessViolations(p *ebpf.ProgramSpec, accesses []ctxAccess, size int, rule CtxAccessRule, kernel string) []Violation {
	var out []Violation
	for _, a := range accesses {
		if a.off < 0 || a.off+a.size > size {
			continue
		}
		if why := rule(a.off, a.size, a.write, p.AttachType); why != "" {
			out = append(out, Violation{Program: p.Name, Rule: RuleCtxAccess, Insn: a.insn, Func: a.fn,
				Reason: fmt.Sprintf("%s %d bytes of the context at offset %d: %s rejects it: %s",
					a.verb(), a.size, a.off, kernel, why)})
		}
	}
	return out
}

// struct bpf_sock_addr in 4.19 (include/uapi/linux/bpf.h).
const (
	sockAddrUserFamily = 0
	sockAddrUserIP4    = 4
	sockAddrUserIP6    = 8 // [4]
	sockAddrUserPort   = 24
	sockAddrFamily     = 28
	sockAddrType       = 32
	sockAddrProtocol   = 36
	sockAddrMsgSrcIP4  = 40
	sockAddrMsgSrcIP6  = 44 // [4], to the end at 60
)

// sockAddrAccess419 is sock_addr_is_valid_access of net/core/filter.c in
// 4.19.304: the IPv4 address fields belong to the IPv4 attach types and
// msg_src_* to sendmsg; the address fields take narrow (1, 2, 4-byte)
// aligned reads and 4-byte writes; user_port takes 4-byte reads and
// writes only (narrow reads of it came later), and every other field
// 4-byte reads only. clang narrows a load whose value it truncates, so
// (__be16)ctx->user_port needs a volatile 4-byte read.
func sockAddrAccess419(off, size int, write bool, attach ebpf.AttachType) string {
	if size <= 0 || off%size != 0 {
		return "misaligned"
	}
	field := ""
	address := false
	switch {
	case off >= sockAddrUserIP4 && off < sockAddrUserIP4+4:
		field, address = "user_ip4", true
		switch attach {
		case ebpf.AttachCGroupInet4Bind, ebpf.AttachCGroupInet4Connect, ebpf.AttachCGroupUDP4Sendmsg, ebpf.AttachCGroupUDP4Recvmsg:
		default:
			return fmt.Sprintf("user_ip4 is for IPv4 bind, connect, sendmsg and recvmsg programs, not %s", attach)
		}
	case off >= sockAddrUserIP6 && off < sockAddrUserIP6+16:
		field, address = "user_ip6", true
		switch attach {
		case ebpf.AttachCGroupInet6Bind, ebpf.AttachCGroupInet6Connect, ebpf.AttachCGroupUDP6Sendmsg, ebpf.AttachCGroupUDP6Recvmsg:
		default:
			return fmt.Sprintf("user_ip6 is for IPv6 bind, connect, sendmsg and recvmsg programs, not %s", attach)
		}
	case off >= sockAddrMsgSrcIP4 && off < sockAddrMsgSrcIP4+4:
		field, address = "msg_src_ip4", true
		if attach != ebpf.AttachCGroupUDP4Sendmsg {
			return fmt.Sprintf("msg_src_ip4 is for UDP sendmsg4 programs only, not %s", attach)
		}
	case off >= sockAddrMsgSrcIP6 && off < sockAddrMsgSrcIP6+16:
		field, address = "msg_src_ip6", true
		if attach != ebpf.AttachCGroupUDP6Sendmsg {
			return fmt.Sprintf("msg_src_ip6 is for UDP sendmsg6 programs only, not %s", attach)
		}
	case off >= sockAddrUserPort && off < sockAddrUserPort+4:
		field = "user_port"
	default:
		field = map[int]string{sockAddrUserFamily: "user_family", sockAddrFamily: "family",
			sockAddrType: "type", sockAddrProtocol: "protocol"}[off-off%4]
	}
	switch {
	case address && !write && size <= 4:
		return ""
	case size != 4:
		return fmt.Sprintf("%s takes 4-byte accesses only (a volatile __u32 read keeps clang from narrowing it)", field)
	case write && !address && field != "user_port":
		return fmt.Sprintf("%s is read-only", field)
	}
	return ""
}
