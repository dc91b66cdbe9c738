package roles

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"

	"github.com/hoplab/hoplab/datapath"
	"github.com/hoplab/hoplab/vmtest/agent/pods"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// injectMark is the socket mark of pod-inject's packet socket. The RST
// filter lets marked packets pass, so an injected RST is sent even while
// the pod's own RSTs on its flow are suppressed. The mark does not leave
// the pod: the veth clears it when the packet changes namespace.
const injectMark = 0x484c5253 // "HLRS"

// rstFlow is a TCP flow as the pod sends it: the key of the filter's map,
// addresses and ports in network byte order as they are in the packet.
type rstFlow [12]byte

// newRSTFlow returns the flow src → dst.
func newRSTFlow(src, dst netip.AddrPort) rstFlow {
	var f rstFlow
	s, d := src.Addr().As4(), dst.Addr().As4()
	copy(f[0:4], s[:])
	copy(f[4:8], d[:])
	binary.BigEndian.PutUint16(f[8:10], src.Port())
	binary.BigEndian.PutUint16(f[10:12], dst.Port())
	return f
}

// String returns "10.1.1.10:40010 -> 10.224.1.1:80".
func (f rstFlow) String() string {
	src := netip.AddrPortFrom(netip.AddrFrom4([4]byte(f[0:4])), binary.BigEndian.Uint16(f[8:10]))
	dst := netip.AddrPortFrom(netip.AddrFrom4([4]byte(f[4:8])), binary.BigEndian.Uint16(f[10:12]))
	return src.String() + " -> " + dst.String()
}

// tcpFlowOf returns the flow of an Ethernet + IPv4 + TCP frame, and false
// for any other frame (and for fragments after the first).
func tcpFlowOf(frame []byte) (rstFlow, bool) {
	if len(frame) < 14+20 || binary.BigEndian.Uint16(frame[12:14]) != 0x0800 {
		return rstFlow{}, false
	}
	ip := frame[14:]
	ihl := int(ip[0]&0x0f) * 4
	if ip[0]>>4 != 4 || ip[9] != 6 || ihl < 20 || len(ip) < ihl+4 || binary.BigEndian.Uint16(ip[6:8])&0x1fff != 0 {
		return rstFlow{}, false
	}
	var f rstFlow
	copy(f[0:8], ip[12:20])
	copy(f[8:12], ip[ihl:ihl+4])
	return f, true
}

// rstFilter drops the TCP RSTs a pod's eth0 sends on a set of flows, so
// that a pod whose side of a conversation is injected does not reset it:
// its kernel has no socket for the flow and answers the server's segments
// with RSTs. It is a tc egress program on the pod's eth0, assembled here
// (no clang), and a hash map of the flows to the RSTs dropped on each.
type rstFilter struct {
	pod   *pods.Pod
	prog  *ebpf.Program
	flows *ebpf.Map
	// size is the most flows the map holds (nodeapi.Inject.MaxFlows).
	size int
}

// rstFilterName names the filter's program and its tc filter.
const rstFilterName = "hoplab_rst_filter"

// rstFilterSize is the size of a filter for nodeapi.Inject.MaxFlows:
// nodeapi.DefaultRSTFlows for 0, an error outside 1..nodeapi.MaxRSTFlows.
func rstFilterSize(maxFlows int) (int, error) {
	switch {
	case maxFlows == 0:
		return nodeapi.DefaultRSTFlows, nil
	case maxFlows < 0 || maxFlows > nodeapi.MaxRSTFlows:
		return 0, fmt.Errorf("rst filter: %d flows outside 1..%d", maxFlows, nodeapi.MaxRSTFlows)
	}
	return maxFlows, nil
}

// Stack layout of the program (offsets from the frame pointer).
const (
	stKey   = -16 // flow key, 12 bytes
	stIP    = -40 // IPv4 header, 20 bytes
	stTCP   = -56 // TCP header up to the flags, 14 bytes
	stEther = -64 // ethertype, 2 bytes
)

// rstFilterInsns is the filter program: TC_ACT_SHOT for a TCP RST (IPv4,
// first fragment, not sent by pod-inject) whose flow is in the map, after
// counting it there; TC_ACT_OK for everything else. Headers are read with
// bpf_skb_load_bytes, which needs no packet-pointer bounds proofs and
// works on every kernel hoplab supports.
func rstFilterInsns(flows *ebpf.Map) asm.Instructions {
	const (
		tcActOK   = 0
		tcActShot = 2
		skbMark   = 8 // offsetof(struct __sk_buff, mark)
	)
	// load copies n bytes of the packet, from the offset in R2, to the
	// stack at dst; a short packet passes.
	load := func(dst int16, n int32) asm.Instructions {
		return asm.Instructions{
			asm.Mov.Reg(asm.R1, asm.R6),
			asm.Mov.Reg(asm.R3, asm.RFP),
			asm.Add.Imm(asm.R3, int32(dst)),
			asm.Mov.Imm(asm.R4, n),
			asm.FnSkbLoadBytes.Call(),
			asm.JNE.Imm(asm.R0, 0, "pass"),
		}
	}
	var p asm.Instructions
	p = append(p,
		asm.Mov.Reg(asm.R6, asm.R1),
		// pod-inject's own frames pass.
		asm.LoadMem(asm.R1, asm.R6, skbMark, asm.Word),
		asm.JEq.Imm(asm.R1, injectMark, "pass"),
	)
	// Ethertype IPv4 (bytes 08 00, read as a little-endian u16).
	p = append(p, asm.Mov.Imm(asm.R2, 12))
	p = append(p, load(stEther, 2)...)
	p = append(p,
		asm.LoadMem(asm.R1, asm.RFP, stEther, asm.Half),
		asm.JNE.Imm(asm.R1, 0x0008, "pass"),
	)
	// IPv4 header: protocol TCP, fragment offset 0.
	p = append(p, asm.Mov.Imm(asm.R2, 14))
	p = append(p, load(stIP, 20)...)
	p = append(p,
		asm.LoadMem(asm.R1, asm.RFP, stIP+9, asm.Byte),
		asm.JNE.Imm(asm.R1, 6, "pass"),
		asm.LoadMem(asm.R1, asm.RFP, stIP+6, asm.Half),
		asm.And.Imm(asm.R1, 0xff1f), // 0x1fff in network order
		asm.JNE.Imm(asm.R1, 0, "pass"),
		asm.LoadMem(asm.R2, asm.RFP, stIP, asm.Byte),
		asm.And.Imm(asm.R2, 0x0f),
		asm.LSh.Imm(asm.R2, 2),
		asm.JLT.Imm(asm.R2, 20, "pass"),
		asm.Add.Imm(asm.R2, 14),
	)
	// TCP header: RST set.
	p = append(p, load(stTCP, 14)...)
	p = append(p,
		asm.LoadMem(asm.R1, asm.RFP, stTCP+13, asm.Byte),
		asm.And.Imm(asm.R1, 0x04),
		asm.JEq.Imm(asm.R1, 0, "pass"),
		// Key: saddr, daddr, sport and dport.
		asm.LoadMem(asm.R1, asm.RFP, stIP+12, asm.Word),
		asm.StoreMem(asm.RFP, stKey, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.RFP, stIP+16, asm.Word),
		asm.StoreMem(asm.RFP, stKey+4, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.RFP, stTCP, asm.Word),
		asm.StoreMem(asm.RFP, stKey+8, asm.R1, asm.Word),
		asm.LoadMapPtr(asm.R1, flows.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, stKey),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "pass"),
		asm.Mov.Imm(asm.R1, 1),
		asm.StoreXAdd(asm.R0, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, tcActShot),
		asm.Return(),
		asm.Mov.Imm(asm.R0, tcActOK).WithSymbol("pass"),
		asm.Return(),
	)
	return p
}

// newRSTFilter loads a filter holding size flows and attaches it at tc
// egress of p's eth0. Its map allocates entries as flows are added
// (BPF_F_NO_PREALLOC), so a large size costs the VM nothing up front.
func newRSTFilter(p *pods.Pod, size int) (*rstFilter, error) {
	flows, err := ebpf.NewMap(&ebpf.MapSpec{
		Name:       "hoplab_rst_flows",
		Type:       ebpf.Hash,
		KeySize:    uint32(len(rstFlow{})),
		ValueSize:  8,
		MaxEntries: uint32(size),
		Flags:      unix.BPF_F_NO_PREALLOC,
	})
	if err != nil {
		return nil, fmt.Errorf("rst filter: flow map: %w", err)
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         rstFilterName,
		Type:         ebpf.SchedCLS,
		Instructions: rstFilterInsns(flows),
		License:      "Dual BSD/GPL",
	})
	if err != nil {
		flows.Close()
		return nil, fmt.Errorf("rst filter: load: %w", err)
	}
	f := &rstFilter{pod: p, prog: prog, flows: flows, size: size}
	if err := p.Do(func() error { return datapath.AttachTC("eth0", datapath.HookEgress, prog, rstFilterName) }); err != nil {
		f.closeObjects()
		return nil, fmt.Errorf("rst filter: %w", err)
	}
	return f, nil
}

// add makes the filter drop the RSTs of flows. A flow beyond its size is
// an error naming the size (the kernel says only "argument list too long").
func (f *rstFilter) add(flows []rstFlow) error {
	var zero uint64
	for _, fl := range flows {
		err := f.flows.Update(fl, zero, ebpf.UpdateNoExist)
		switch {
		case err == nil, errors.Is(err, ebpf.ErrKeyExist):
		case errors.Is(err, unix.E2BIG):
			return fmt.Errorf("rst filter: flow %s: the filter is full (%d flows; pod-inject's max_flows sizes it): %w", fl, f.size, err)
		default:
			return fmt.Errorf("rst filter: flow %s: %w", fl, err)
		}
	}
	return nil
}

// dropped returns the RSTs dropped on each flow.
func (f *rstFilter) dropped() (map[rstFlow]uint64, error) {
	out := map[rstFlow]uint64{}
	var k rstFlow
	var v uint64
	it := f.flows.Iterate()
	for it.Next(&k, &v) {
		out[k] = v
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("rst filter: %w", err)
	}
	return out, nil
}

// close detaches the filter (when the pod still exists) and unloads it.
func (f *rstFilter) close(detach bool) error {
	var err error
	if detach {
		err = f.pod.Do(func() error { return datapath.DetachTC("eth0", datapath.HookEgress) })
	}
	f.closeObjects()
	if err != nil {
		return fmt.Errorf("rst filter: %w", err)
	}
	return nil
}

func (f *rstFilter) closeObjects() {
	f.prog.Close()
	f.flows.Close()
}

// suppressRST makes pod (p) drop the RSTs it sends on the TCP flows of
// frames, loading its filter first if needed, sized for maxFlows flows
// (nodeapi.Inject.MaxFlows; an existing filter keeps its size).
func (n *Node) suppressRST(pod string, p *pods.Pod, frames [][]byte, maxFlows int) error {
	size, err := rstFilterSize(maxFlows)
	if err != nil {
		return err
	}
	var flows []rstFlow
	for _, fr := range frames {
		if fl, ok := tcpFlowOf(fr); ok {
			flows = append(flows, fl)
		}
	}
	n.rstMu.Lock()
	defer n.rstMu.Unlock()
	f := n.rst[pod]
	if f == nil {
		if f, err = newRSTFilter(p, size); err != nil {
			return err
		}
		if n.rst == nil {
			n.rst = map[string]*rstFilter{}
		}
		n.rst[pod] = f
		n.log.Debug("rst filter attached", "pod", pod, "flows", size)
	}
	return f.add(flows)
}

// stopRST removes pod's RST filter, if any; detach is false when the pod
// is being deleted (its filter goes with its eth0).
func (n *Node) stopRST(pod string, detach bool) error {
	n.rstMu.Lock()
	f := n.rst[pod]
	delete(n.rst, pod)
	n.rstMu.Unlock()
	if f == nil {
		return nil
	}
	if m, err := f.dropped(); err == nil {
		var total uint64
		for _, v := range m {
			total += v
		}
		n.log.Debug("rst filter removed", "pod", pod, "flows", len(m), "dropped", total)
	}
	return f.close(detach)
}

// stopAllRST removes every pod's RST filter.
func (n *Node) stopAllRST(detach bool) error {
	n.rstMu.Lock()
	names := make([]string, 0, len(n.rst))
	for name := range n.rst {
		names = append(names, name)
	}
	n.rstMu.Unlock()
	var errs []error
	for _, name := range names {
		if err := n.stopRST(name, detach); err != nil {
			errs = append(errs, fmt.Errorf("pod %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}
