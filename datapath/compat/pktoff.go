package compat

import (
	"fmt"
	"maps"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// Offsets of the packet pointers in struct __sk_buff (stable since 4.7 and
// 4.15): data and data_meta load as packet pointers, data_end as the end.
const (
	skbDataOff     = 76
	skbDataMetaOff = 140
)

// maxVarOff is the verifier's BPF_MAX_VAR_OFF: a scalar that may reach it
// cannot move a pointer. A 4- or 8-byte value read back from the stack can.
const maxVarOff = 1 << 29

// valKind is what the pkt-offset analysis knows of a register: a context
// pointer, a packet pointer, a scalar reloaded from the stack that nothing
// has bounded since, or anything else.
type valKind uint8

const (
	valOther valKind = iota
	valCtx
	valPkt
	valFilled
)

// regVal is one register's abstract value; for valFilled, fill and slot say
// where the scalar was reloaded (raw instruction offset, stack offset).
type regVal struct {
	kind valKind
	fill int
	slot int16
}

// slotKind is what the analysis knows of an 8-byte stack slot. A slot it
// has not seen written holds a scalar (reading it back loses its bounds).
type slotKind uint8

const (
	slotScalar slotKind = iota
	slotCtx
	slotPkt
	slotZero  // spilled from a register known to be zero: reads back as 0
	slotMixed // different on different paths, or written by a helper
)

// pktState is the abstract machine state before one instruction.
type pktState struct {
	regs  [11]regVal
	stack map[int16]slotKind // by offset from R10, for 8-byte slots
}

func (s pktState) clone() pktState {
	c := s
	c.stack = maps.Clone(s.stack)
	return c
}

// meet keeps what holds on both paths ("must" facts): the check reports
// only additions it is sure 4.19 rejects.
func (s pktState) meet(o pktState) pktState {
	m := s.clone()
	for r := range m.regs {
		a, b := s.regs[r], o.regs[r]
		switch {
		case a.kind != b.kind:
			m.regs[r] = regVal{}
		case a.kind == valFilled && b.fill < a.fill:
			m.regs[r] = b
		}
	}
	for off, k := range s.stack {
		if o.stack[off] != k {
			m.stack[off] = slotMixed
		}
	}
	for off, k := range o.stack {
		if _, ok := s.stack[off]; !ok && k != slotScalar {
			m.stack[off] = slotMixed
		}
	}
	return m
}

func (s pktState) equal(o pktState) bool {
	return s.regs == o.regs && maps.Equal(s.stack, o.stack)
}

// pktStackOffsets reports additions of a packet pointer and a scalar that
// was reloaded from the stack with nothing bounding it since. Linux 4.19
// does not track the bounds of scalars spilled to the stack (that arrived in
// 5.x): a 4- or 8-byte reload is an unknown value, and moving a packet
// pointer by it fails with "math between pkt pointer and register with
// unbounded min value is not allowed" (or "value ... makes pkt pointer be
// out of bounds"). Newer kernels remember the spilled bounds and load the
// same program, so only this check or a real 4.19 catches it. The fix is to
// re-bound the value where it is used: mask it, or compare it with a
// constant, after the reload.
//
// The analysis follows the context pointer (R1 at entry), the packet
// pointers loaded from it (skb->data, skb->data_meta), pointer spills and
// fills, and reloaded scalars through moves and arithmetic. Conditional
// jumps, masks and shifts count as bounds; at merges only facts true on
// every path survive, so it may miss a case but does not invent one.
func pktStackOffsets(p *ebpf.ProgramSpec) []Violation {
	insns := p.Instructions
	n := len(insns)
	if n == 0 {
		return nil
	}
	x := newInsnIndex(insns)
	in := make([]pktState, n)
	reached := make([]bool, n)
	entry := pktState{stack: map[int16]slotKind{}}
	entry.regs[asm.R1] = regVal{kind: valCtx}
	in[0], reached[0] = entry, true
	work := []int{0}
	flow := func(to int, s pktState) {
		if to < 0 || to >= n {
			return
		}
		if !reached[to] {
			in[to], reached[to] = s.clone(), true
			work = append(work, to)
			return
		}
		if m := in[to].meet(s); !m.equal(in[to]) {
			in[to] = m
			work = append(work, to)
		}
	}

	found := map[int]Violation{}
	for len(work) > 0 {
		i := work[len(work)-1]
		work = work[:len(work)-1]
		ins := &insns[i]
		s := in[i].clone()
		op := ins.OpCode
		cls := op.Class()
		if cls.IsJump() {
			switch op.JumpOp() {
			case asm.Exit:
			case asm.Call:
				if ins.IsFunctionCall() {
					callee := pktState{stack: map[int16]slotKind{}}
					for r := asm.R1; r <= asm.R5; r++ {
						if k := s.regs[r].kind; k == valCtx || k == valPkt {
							callee.regs[r] = s.regs[r]
						}
					}
					if t, ok := x.symbols[ins.Reference()]; ok {
						flow(t, callee)
					}
				}
				// Calls clobber R0-R5 and may write any stack slot they
				// were given a pointer to.
				for r := asm.R0; r <= asm.R5; r++ {
					s.regs[r] = regVal{}
				}
				for off, k := range s.stack {
					if k != slotScalar {
						s.stack[off] = slotMixed
					}
				}
				flow(i+1, s)
			case asm.Ja:
				flow(x.jumpTarget(i, ins), s)
			default:
				// A comparison bounds the scalars it compares (on at
				// least one side; both are assumed, see above).
				if s.regs[ins.Dst].kind == valFilled {
					s.regs[ins.Dst] = regVal{}
				}
				if op.Source() == asm.RegSource && s.regs[ins.Src].kind == valFilled {
					s.regs[ins.Src] = regVal{}
				}
				flow(x.jumpTarget(i, ins), s)
				flow(i+1, s)
			}
			continue
		}
		if v, bad := pktStep(&s, ins, x.raw[i]); bad {
			if _, seen := found[i]; !seen {
				found[i] = Violation{Program: p.Name, Rule: RulePktStackOffset, Insn: x.raw[i], Func: x.funcs[i], Reason: v}
			}
		}
		flow(i+1, s)
	}

	var out []Violation
	for i := range insns {
		if v, ok := found[i]; ok {
			out = append(out, v)
		}
	}
	return out
}

// pktStep applies one non-jump instruction to s. It returns the reason when
// the instruction moves a packet pointer by an unbounded reloaded scalar.
func pktStep(s *pktState, ins *asm.Instruction, raw int) (string, bool) {
	op := ins.OpCode
	dst, src := ins.Dst, ins.Src
	switch cls := op.Class(); {
	case cls == asm.LdXClass:
		width := op.Size().Sizeof()
		base := s.regs[src]
		switch {
		case src == asm.R10:
			k := s.stack[ins.Offset]
			switch {
			case width == 8 && k == slotCtx:
				s.regs[dst] = regVal{kind: valCtx}
			case width == 8 && k == slotPkt:
				s.regs[dst] = regVal{kind: valPkt}
			case width >= 4 && k == slotScalar:
				s.regs[dst] = regVal{kind: valFilled, fill: raw, slot: ins.Offset}
			default:
				s.regs[dst] = regVal{}
			}
		case base.kind == valCtx && width == 4 && (ins.Offset == skbDataOff || ins.Offset == skbDataMetaOff):
			s.regs[dst] = regVal{kind: valPkt}
		default:
			s.regs[dst] = regVal{}
		}
	case cls == asm.StXClass || cls == asm.StClass:
		if dst != asm.R10 || op.Mode() != asm.MemMode {
			break
		}
		width := op.Size().Sizeof()
		clobberSlots(s, ins.Offset, width)
		if width != 8 {
			break
		}
		switch {
		case cls == asm.StClass:
			if ins.Constant == 0 {
				s.stack[ins.Offset] = slotZero
			}
		case s.regs[src].kind == valCtx:
			s.stack[ins.Offset] = slotCtx
		case s.regs[src].kind == valPkt:
			s.stack[ins.Offset] = slotPkt
		}
	case cls == asm.LdClass:
		s.regs[dst] = regVal{} // ld_imm64 (map pointers, constants)
	case cls.IsALU():
		return pktALU(s, ins)
	}
	return "", false
}

// clobberSlots forgets the 8-byte slots a width-byte store at off overlaps.
func clobberSlots(s *pktState, off int16, width int) {
	for slot := range s.stack {
		if int(slot) < int(off)+width && int(off) < int(slot)+8 {
			delete(s.stack, slot)
		}
	}
}

func pktALU(s *pktState, ins *asm.Instruction) (string, bool) {
	op := ins.OpCode
	dst := ins.Dst
	d := s.regs[dst]
	alu, is64 := op.ALUOp(), op.Class() == asm.ALU64Class
	if op.Source() == asm.ImmSource {
		switch {
		case alu == asm.Mov:
			s.regs[dst] = regVal{}
		case d.kind == valPkt && is64 && (alu == asm.Add || alu == asm.Sub):
			// pointer += constant keeps a packet pointer
		case d.kind == valFilled && (alu == asm.And && ins.Constant >= 0 && ins.Constant < maxVarOff ||
			alu == asm.RSh || alu == asm.Mod || alu == asm.Div):
			s.regs[dst] = regVal{}
		case d.kind == valFilled:
			// +, -, *, |, ^, << by a constant leave it unbounded
		default:
			s.regs[dst] = regVal{}
		}
		return "", false
	}
	sv := s.regs[ins.Src]
	switch {
	case alu == asm.Mov:
		if is64 || sv.kind == valFilled {
			s.regs[dst] = sv
		} else {
			s.regs[dst] = regVal{}
		}
	case is64 && (alu == asm.Add || alu == asm.Sub) && d.kind == valPkt && sv.kind == valFilled,
		is64 && alu == asm.Add && d.kind == valFilled && sv.kind == valPkt:
		f := sv
		if d.kind == valFilled {
			f = d
		}
		s.regs[dst] = regVal{kind: valPkt}
		return fmt.Sprintf("moves a packet pointer by %s, reloaded from the stack (fp%d) at insn %d with no bound since: "+
			"4.19 forgets the bounds of spilled scalars and rejects it (\"math between pkt pointer and register with unbounded min value is not allowed\"); "+
			"re-bound the offset after the reload (compare it with or mask it by a constant)",
			scalarReg(ins, d, sv), f.slot, f.fill), true
	case (alu == asm.Add || alu == asm.Sub || alu == asm.Or || alu == asm.Xor || alu == asm.Mul) &&
		(d.kind == valFilled || sv.kind == valFilled) && d.kind != valPkt && sv.kind != valPkt:
		f := d
		if f.kind != valFilled {
			f = sv
		}
		s.regs[dst] = f
	default:
		s.regs[dst] = regVal{}
	}
	return "", false
}

// scalarReg names the operand of ins that holds the reloaded scalar.
func scalarReg(ins *asm.Instruction, d, sv regVal) asm.Register {
	if d.kind == valFilled && sv.kind == valPkt {
		return ins.Dst
	}
	return ins.Src
}

// skbContext reports the program types whose context is a struct __sk_buff
// with packet pointers at skbDataOff: those ctxSizes419 gives its size.
func skbContext(t ebpf.ProgramType) bool {
	return ctxSizes419[t] == skBuffSize419
}
