package compat

import "github.com/cilium/ebpf/asm"

// backEdge is a jump or call to an instruction that is still on the
// depth-first search path: the edge that closes a loop.
type backEdge struct {
	from, to int // raw instruction offsets
	fromFunc string
}

// insnIndex locates a program's instructions: raw[i] is instruction i's raw
// offset and funcs[i] the symbol of the function holding it; index maps a
// raw offset back to i and symbols each function to its first instruction.
type insnIndex struct {
	raw     []int
	funcs   []string
	index   map[int]int
	symbols map[string]int
}

// jumpTarget returns the index of the instruction jump i (ins) goes to,
// or -1 when it lands on no instruction: BPF_JA of the JMP32 class (gotol)
// carries its offset in the immediate.
func (x insnIndex) jumpTarget(i int, ins *asm.Instruction) int {
	delta := int(ins.Offset)
	if ins.OpCode.Class() == asm.Jump32Class && ins.OpCode.JumpOp() == asm.Ja {
		delta = int(int32(ins.Constant))
	}
	if t, ok := x.index[x.raw[i]+1+delta]; ok {
		return t
	}
	return -1
}

func newInsnIndex(insns asm.Instructions) insnIndex {
	n := len(insns)
	x := insnIndex{raw: make([]int, n), funcs: make([]string, n), index: make(map[int]int, n), symbols: map[string]int{}}
	fn := ""
	for iter := insns.Iterate(); iter.Next(); {
		i := iter.Index
		x.raw[i] = int(iter.Offset)
		x.index[x.raw[i]] = i
		if sym := iter.Ins.Symbol(); sym != "" {
			fn = sym
			x.symbols[sym] = i
		}
		x.funcs[i] = fn
	}
	return x
}

// backEdges walks the control flow graph from the entry point depth-first,
// as 4.19's check_cfg does (following BPF-to-BPF calls into the callee), and
// returns the edges it rejects. A backward jump that does not close a cycle
// (clang sometimes places a shared tail block before its users) is not a
// back-edge and loads fine.
func backEdges(insns asm.Instructions) []backEdge {
	n := len(insns)
	if n == 0 {
		return nil
	}
	x := newInsnIndex(insns)
	raw, funcs, index, symbols := x.raw, x.funcs, x.index, x.symbols

	succ := func(i int) []int {
		ins := &insns[i]
		next := []int{}
		if i+1 < n {
			next = append(next, i+1)
		}
		op := ins.OpCode
		if !op.Class().IsJump() {
			return next
		}
		target := func(delta int) {
			if t, ok := index[raw[i]+1+delta]; ok {
				next = append(next, t)
			}
		}
		switch op.JumpOp() {
		case asm.Exit:
			return nil
		case asm.Call:
			if ins.IsFunctionCall() {
				if t, ok := symbols[ins.Reference()]; ok {
					next = append(next, t)
				} else if ins.Reference() == "" {
					target(int(ins.Constant))
				}
			}
			return next
		case asm.Ja:
			next = next[:0]
			if op.Class() == asm.Jump32Class {
				target(int(int32(ins.Constant))) // gotol
			} else {
				target(int(ins.Offset))
			}
			return next
		default:
			target(int(ins.Offset))
			return next
		}
	}

	const (
		unseen = iota
		onPath
		done
	)
	state := make([]uint8, n)
	type frame struct {
		node  int
		succs []int
	}
	var edges []backEdge
	stack := []frame{{0, succ(0)}}
	state[0] = onPath
	for len(stack) > 0 {
		top := &stack[len(stack)-1]
		if len(top.succs) == 0 {
			state[top.node] = done
			stack = stack[:len(stack)-1]
			continue
		}
		v := top.succs[0]
		top.succs = top.succs[1:]
		switch state[v] {
		case onPath:
			edges = append(edges, backEdge{from: raw[top.node], to: raw[v], fromFunc: funcs[top.node]})
		case unseen:
			state[v] = onPath
			stack = append(stack, frame{v, succ(v)})
		}
	}
	return edges
}
