package datapath

import (
	"bytes"
	"net/netip"
	"slices"
)

// The packets: flows of the fuzzed node, and their mutations.

var (
	fzLocals   = []netip.Addr{pod1.addr(), pod2.addr(), fzPod3.addr()}
	fzRemotes  = []netip.Addr{pod4IP, pod5IP, fzRemote3, node1IP, worldIP, fzRouter}
	fzVIPs     = []netip.Addr{vip, fzVIP2}
	fzPorts    = []uint16{8080, 9090, 8081, 22, 80, 81, 82, 53, 5353, 40000, 50000}
	fzSvcPorts = []uint16{80, 81, 82, 53, 8080}
	fzSports   = []uint16{40000, 40001, 33333, 50000, 8080, 5353, 80, 53}
	fzTCPFlags = []uint8{0x02, 0x12, 0x10, 0x18, 0x11, 0x04, 0x14, 0x01}
)

// fzMenu are flows the policy and services above decide in every way:
// allowed and denied at egress, at ingress, or at both ends, through a
// service or not.
var fzMenu = []struct {
	src, dst netip.Addr
	proto    Proto
	dport    uint16
}{
	{pod1.addr(), vip, ProtoTCP, 80}, {pod1.addr(), vip, ProtoUDP, 53}, {pod1.addr(), vip, ProtoTCP, 81},
	{pod1.addr(), vip, ProtoTCP, 82}, {pod1.addr(), fzVIP2, ProtoTCP, 8080}, {pod2.addr(), vip, ProtoTCP, 80},
	{pod2.addr(), fzVIP2, ProtoTCP, 8080}, {fzPod3.addr(), vip, ProtoUDP, 53}, {fzPod3.addr(), fzVIP2, ProtoTCP, 8080},
	{fzPod3.addr(), vip, ProtoTCP, 80}, {pod1.addr(), pod4IP, ProtoTCP, 8080}, {pod1.addr(), pod4IP, ProtoTCP, 9090},
	{pod1.addr(), pod2.addr(), ProtoTCP, 8080}, {pod1.addr(), pod2.addr(), ProtoICMP, 0}, {pod1.addr(), fzPod3.addr(), ProtoUDP, 1234},
	{pod1.addr(), node1IP, ProtoTCP, 10250}, {pod1.addr(), worldIP, ProtoTCP, 443},
	{pod4IP, pod1.addr(), ProtoTCP, 8080}, {pod4IP, pod1.addr(), ProtoTCP, 22}, {pod4IP, pod2.addr(), ProtoTCP, 8081},
	{pod5IP, pod2.addr(), ProtoTCP, 8081}, {fzRemote3, pod1.addr(), ProtoICMP, 0}, {worldIP, pod1.addr(), ProtoTCP, 443},
	{pod4IP, pod2.addr(), ProtoUDP, 5353}, {fzPod3.addr(), pod2.addr(), ProtoTCP, 9999}, {pod2.addr(), pod1.addr(), ProtoTCP, 22},
	{node1IP, pod1.addr(), ProtoTCP, 8080}, {fzPod3.addr(), pod4IP, ProtoUDP, 5353}, {fzPod3.addr(), pod5IP, ProtoUDP, 5353},
}

func (f *fuzzer) pick(s []netip.Addr) netip.Addr { return s[f.r.IntN(len(s))] }

func (f *fuzzer) port(s []uint16) uint16 {
	if f.r.IntN(8) == 0 {
		return uint16(1 + f.r.IntN(65535))
	}
	return s[f.r.IntN(len(s))]
}

func (f *fuzzer) bytesN(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(f.r.UintN(256))
	}
	return b
}

// setMACs gives the frame the addresses of where it enters: a pod's eth0
// towards its lxc, or the ToR towards bond0.
func (f *fuzzer) setMACs(s *fzShape) {
	if ep, ok := f.eps[s.src]; ok {
		s.srcMAC, s.dstMAC = [6]byte(ep.podMAC()), [6]byte(ep.lxcMAC())
		return
	}
	s.srcMAC, s.dstMAC = [6]byte(torMAC), [6]byte(bond0MAC)
}

// setEcho makes s an ICMP echo request (ICMP tuple with a source port) or
// reply.
func setEcho(s *fzShape, k CTKey) {
	s.proto = uint8(ProtoICMP)
	if k.Src.Port() != 0 {
		s.icmpType, s.icmpID = 8, k.Src.Port()
	} else {
		s.icmpType, s.icmpID = 0, k.Dst.Port()
	}
}

// flow picks the addresses, protocol and ports of the next packet.
func (f *fuzzer) flow(s *fzShape) {
	r := f.r
	x := r.IntN(100)
	if len(f.ring) > 0 && x < 33 {
		k := f.recent()
		switch {
		case x < 25:
			// The same flow again, or its reply.
			if r.IntN(2) == 0 {
				k = CTKey{Src: k.Dst, Dst: k.Src, Proto: k.Proto}
			}
			s.src, s.dst, s.proto, s.sport, s.dport = k.Src.Addr(), k.Dst.Addr(), uint8(k.Proto), k.Src.Port(), k.Dst.Port()
			if k.Proto == ProtoICMP {
				setEcho(s, k)
			}
			return
		case k.Proto != ProtoICMP:
			// An ICMP error about it, from its destination or a router,
			// to its source.
			s.proto, s.icmpType, s.icmpCode = uint8(ProtoICMP), []uint8{3, 11, 12}[r.IntN(3)], uint8(r.IntN(4))
			s.src, s.dst = k.Dst.Addr(), k.Src.Addr()
			if r.IntN(2) == 0 {
				s.src = fzRouter
			}
			s.payload = quote(k.Src, k.Dst, uint8(k.Proto))
			return
		}
	}

	if r.IntN(5) < 2 {
		m := fzMenu[r.IntN(len(fzMenu))]
		s.src, s.dst, s.proto, s.dport = m.src, m.dst, uint8(m.proto), m.dport
		s.sport = f.port(fzSports)
		if m.proto == ProtoICMP {
			s.icmpType, s.icmpID = 8, []uint16{1, 7, 42}[r.IntN(3)]
		}
		return
	}
	if r.IntN(2) == 0 {
		s.src = f.pick(fzLocals)
		switch y := r.IntN(10); {
		case y < 3:
			s.dst = f.pick(fzLocals)
		case y < 6:
			s.dst = f.pick(fzRemotes)
		default:
			s.dst = f.pick(fzVIPs)
		}
	} else {
		s.src = f.pick(fzRemotes)
		s.dst = f.pick(fzLocals)
		if r.IntN(5) == 0 {
			s.dst = f.pick(append(fzRemotes[:len(fzRemotes):len(fzRemotes)], fzVIPs...))
		}
	}
	s.sport = f.port(fzSports)
	if slices.Contains(fzVIPs, s.dst) && r.IntN(2) == 0 {
		s.dport = f.port(fzSvcPorts)
	} else {
		s.dport = f.port(fzPorts)
	}
	switch y := r.IntN(10); {
	case y < 5:
		s.proto = uint8(ProtoTCP)
	case y < 8:
		s.proto = uint8(ProtoUDP)
	default:
		s.proto = uint8(ProtoICMP)
		s.icmpID = []uint16{1, 7, 42, uint16(r.IntN(65536))}[r.IntN(4)]
		switch z := r.IntN(10); {
		case z < 5:
			s.icmpType = 8
		case z < 7:
			s.icmpType = 0
		case z < 9:
			s.icmpType, s.icmpID = []uint8{3, 11, 12}[r.IntN(3)], 0
			q := []uint8{uint8(ProtoTCP), uint8(ProtoUDP)}[r.IntN(2)]
			// About a packet the destination sent.
			s.payload = quote(netip.AddrPortFrom(s.dst, f.port(fzSports)), netip.AddrPortFrom(f.pick(append(fzRemotes[:len(fzRemotes):len(fzRemotes)], fzLocals...)), f.port(fzPorts)), q)
		default:
			s.icmpType = uint8(r.IntN(256))
		}
	}
}

// randomShape is a valid packet of a random flow with random details.
func (f *fuzzer) randomShape() fzShape {
	r := f.r
	s := fzShape{ttl: 64, window: uint16(r.IntN(65536)), seq: r.Uint32(), ipID: uint16(r.IntN(65536)),
		df: r.IntN(2) == 0, icmpSeq: uint16(r.IntN(65536))}
	f.flow(&s)
	f.setMACs(&s)
	s.tcpFlags = fzTCPFlags[r.IntN(len(fzTCPFlags))]
	if r.IntN(10) == 0 {
		s.tcpFlags = uint8(r.IntN(256))
	}
	if s.tcpFlags&0x10 != 0 {
		s.ack = r.Uint32()
	}
	if r.IntN(7) == 0 {
		s.ttl = []uint8{0, 1, 2, 255, uint8(r.IntN(256))}[r.IntN(5)]
	}
	if r.IntN(10) == 0 {
		s.tos = uint8(r.IntN(256))
	}
	if r.IntN(10) == 0 {
		n := 4 * (1 + r.IntN(10))
		if r.IntN(2) == 0 {
			s.ipOpts = bytes.Repeat([]byte{1}, n) // NOPs ...
			s.ipOpts[n-1] = 0                     // ... and End of Options
		} else {
			s.ipOpts = f.bytesN(n)
		}
	}
	if s.proto == uint8(ProtoTCP) && r.IntN(5) == 0 {
		if r.IntN(5) == 0 {
			s.tcpOpts = f.bytesN(4 * (1 + r.IntN(10)))
		} else {
			opts := []byte{2, 4, 0x05, 0xb4} // MSS
			if r.IntN(2) == 0 {
				opts = append(opts, 1, 1, 4, 2) // SACK permitted
			}
			if r.IntN(2) == 0 {
				opts = append(append(opts, 1, 1, 8, 10), f.bytesN(8)...) // timestamps
			}
			if r.IntN(2) == 0 {
				opts = append(opts, 1, 3, 3, 7) // window scale
			}
			s.tcpOpts = opts
		}
	}
	if s.payload == nil {
		switch y := r.IntN(20); {
		case y < 8:
		case y < 16:
			s.payload = f.bytesN(1 + r.IntN(64))
		case y < 19:
			s.payload = f.bytesN(65 + r.IntN(448))
		default:
			s.payload = f.bytesN(513 + r.IntN(900))
		}
	}
	s.udpNoCsum = r.IntN(7) == 0
	if r.IntN(7) == 0 {
		if r.IntN(2) == 0 {
			s.trailer = make([]byte, 1+r.IntN(24)) // zero padding
		} else {
			s.trailer = f.bytesN(1 + r.IntN(32))
		}
	}
	return s
}

// next returns packet i: the truncation sweep first, then random packets,
// mutated or not.
func (f *fuzzer) next(i int) []byte {
	if i < len(f.sweep) {
		f.st.sweep++
		return f.sweep[i]
	}
	r := f.r
	if r.IntN(50) == 0 {
		// Garbage behind an IPv4 EtherType.
		f.st.garbage++
		b := f.bytesN(14 + 20 + r.IntN(100))
		b[12], b[13] = 0x08, 0x00
		if r.IntN(2) == 0 {
			b[14] = 0x45
		}
		return b
	}
	b := f.randomShape().build()
	if r.IntN(100) < 55 {
		f.st.mutated++
		for range 1 + r.IntN(3) {
			m := fzMutations[r.IntN(len(fzMutations))]
			f.st.mutations[m.name]++
			b = m.f(r, b)
		}
		if r.IntN(2) == 0 {
			fzFixChecksums(b)
		}
	}
	return b
}

// sweepPackets are every truncation (down to the Ethernet header) of a
// few packets: TCP and UDP to services, ICMP echo padded to Ethernet's
// minimum, TCP with IP and TCP options, an ICMP error, a bare ACK with
// padding.
func (f *fuzzer) sweepPackets() [][]byte {
	base := []fzShape{
		{src: pod1.addr(), dst: vip, proto: uint8(ProtoTCP), sport: 40000, dport: 80, tcpFlags: 0x02, payload: []byte("0123456789abcdef")},
		{src: pod1.addr(), dst: vip, proto: uint8(ProtoUDP), sport: 33333, dport: 53, payload: []byte("query....."), trailer: []byte("TRAILER!")},
		{src: pod1.addr(), dst: pod2.addr(), proto: uint8(ProtoICMP), icmpType: 8, icmpID: 7, trailer: make([]byte, 18)},
		{src: pod4IP, dst: pod1.addr(), proto: uint8(ProtoTCP), sport: 8080, dport: 40000, tcpFlags: 0x12,
			ipOpts: []byte{1, 1, 1, 0, 7, 3, 4, 0}, tcpOpts: []byte{2, 4, 5, 0xb4, 1, 1, 4, 2, 1, 3, 3, 7}},
		{src: fzRouter, dst: pod1.addr(), proto: uint8(ProtoICMP), icmpType: 3, icmpCode: 1,
			payload: quote(ap(pod1.addr(), 40000), ap(pod4IP, 8080), uint8(ProtoTCP))},
		{src: pod1.addr(), dst: pod4IP, proto: uint8(ProtoTCP), sport: 40000, dport: 8080, tcpFlags: 0x10, trailer: make([]byte, 6)},
	}
	var out [][]byte
	for _, s := range base {
		s.ttl, s.window, s.df = 64, 64240, true
		f.setMACs(&s)
		b := s.build()
		for n := 14; n <= len(b); n++ {
			out = append(out, b[:n:n])
		}
	}
	return out
}
