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

// ctxAccesses reports loads and stores through the context pointer that
// reach past size bytes. It tracks which registers certainly hold the
// unmodified context (R1 at entry, copied by register moves, kept in R6-R9
// across calls, passed in R1 to BPF-to-BPF callees); a context pointer that
// went through the stack is not followed, so the check may miss accesses but
// does not invent them.
func ctxAccesses(p *ebpf.ProgramSpec, size int, kernel string) []Violation {
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

	var out []Violation
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
		verb := "reads"
		switch op.Class() {
		case asm.LdXClass:
			base = ins.Src
		case asm.StClass, asm.StXClass:
			base, verb = ins.Dst, "writes"
		default:
			continue
		}
		if !in[i].has(base) {
			continue
		}
		width := op.Size().Sizeof()
		if end := int(ins.Offset) + width; ins.Offset < 0 || end > size {
			out = append(out, Violation{Program: p.Name, Rule: RuleCtxField, Insn: raw[i], Func: funcs[i],
				Reason: fmt.Sprintf("%s the context at offset %d (%d bytes), past its end in %s (%d bytes): the field is newer",
					verb, ins.Offset, width, kernel, size)})
		}
	}
	return out
}
