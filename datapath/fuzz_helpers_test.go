package datapath

// Helpers of TestFuzzInvariants (fuzz_invariants_test.go): Internet
// checksums, a packet builder, a parser that applies the datapath's own
// validity rules (ipv4_load, ct_extract_tuple4, ct_extract_related4), the
// mutations, and a CT snapshot cheap enough to take after every program run.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
)

// ---- Internet checksum (RFC 1071).

// csumAdd adds b as big-endian 16-bit words (an odd last byte padded with
// zero) to sum.
func csumAdd(sum uint32, b []byte) uint32 {
	n := len(b) &^ 1
	for i := 0; i < n; i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)&1 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	return sum
}

// csumFold folds sum to 16 bits (not complemented): a region whose
// checksum field is right folds to 0xffff.
func csumFold(sum uint32) uint16 {
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum)
}

// pseudoSum is the IPv4 pseudo-header sum of the frame b for an L4 segment
// of l4len bytes.
func pseudoSum(b []byte, proto uint8, l4len int) uint32 {
	return csumAdd(0, b[26:34]) + uint32(proto) + uint32(l4len)
}

// ---- The datapath's view of a frame.

// fzView is what the datapath's parsers make of a frame. valid is
// ipv4_load's verdict, which does not look at the EtherType (the egress
// policy stage, reached by a tail call, does not either); l4ok is
// ct_extract_tuple4's; the tuple ports are the CT tuple's (ICMP echo: the
// identifier as source port of requests, destination port of replies).
type fzView struct {
	n        int
	ethIPv4  bool // EtherType 0x0800
	valid    bool // ipv4_load accepts the header
	frag     bool
	ihl      int
	totLen   int
	end      int // 14 + IP total length: where Ethernet padding starts
	l4off    int
	src, dst netip.Addr
	proto    uint8
	ttl      uint8

	l4ok         bool
	sport, dport uint16 // CT tuple ports
	policyPort   uint16 // the port policy looks up: 0 for ICMP
	icmpType     uint8
	related      *CTKey // the flow an ICMP error quotes
}

func be16At(b []byte, off int) uint16 { return binary.BigEndian.Uint16(b[off:]) }

func addr4At(b []byte, off int) netip.Addr { return netip.AddrFrom4([4]byte(b[off : off+4])) }

// fzParse parses a frame the way the datapath does.
func fzParse(b []byte) fzView {
	v := fzView{n: len(b)}
	v.ethIPv4 = len(b) >= 14 && b[12] == 0x08 && b[13] == 0x00
	if len(b) < 34 {
		return v
	}
	v.ihl = int(b[14]&0x0f) * 4
	v.totLen = int(be16At(b, 16))
	v.src, v.dst = addr4At(b, 26), addr4At(b, 30)
	v.proto, v.ttl = b[23], b[22]
	if b[14]>>4 != 4 || v.ihl < 20 || v.totLen < v.ihl || len(b) < 14+v.totLen {
		return v
	}
	if be16At(b, 20)&0x3fff != 0 {
		v.frag = true
		return v
	}
	v.valid = true
	v.end = 14 + v.totLen
	v.l4off = 14 + v.ihl
	l4 := b[v.l4off:v.end]
	switch v.proto {
	case uint8(ProtoTCP):
		if len(l4) >= 20 && l4[12]>>4 >= 5 {
			v.l4ok = true
			v.sport, v.dport = be16At(l4, 0), be16At(l4, 2)
			v.policyPort = v.dport
		}
	case uint8(ProtoUDP):
		if len(l4) >= 8 {
			v.l4ok = true
			v.sport, v.dport = be16At(l4, 0), be16At(l4, 2)
			v.policyPort = v.dport
		}
	case uint8(ProtoICMP):
		if len(l4) < 8 {
			break
		}
		v.l4ok = true
		v.icmpType = l4[0]
		switch v.icmpType {
		case 8:
			v.sport = be16At(l4, 4)
		case 0:
			v.dport = be16At(l4, 4)
		case 3, 11, 12:
			if len(l4) < 8+24 {
				break
			}
			q := l4[8:]
			if q[0] != 0x45 || (q[9] != uint8(ProtoTCP) && q[9] != uint8(ProtoUDP)) {
				break
			}
			v.related = &CTKey{Src: netip.AddrPortFrom(addr4At(q, 12), be16At(q, 20)),
				Dst: netip.AddrPortFrom(addr4At(q, 16), be16At(q, 22)), Proto: Proto(q[9])}
		}
	}
	return v
}

// tuple is the packet's CT tuple in direction dir.
func (v fzView) tuple(dir TupleFlags) CTKey {
	return CTKey{Src: netip.AddrPortFrom(v.src, v.sport), Dst: netip.AddrPortFrom(v.dst, v.dport),
		Proto: Proto(v.proto), Flags: dir}
}

// ipCsumOK reports whether the IPv4 header checksum of a valid frame is right.
func (v fzView) ipCsumOK(b []byte) bool {
	return csumFold(csumAdd(0, b[14:14+v.ihl])) == 0xffff
}

// l4Csum reports whether a valid frame with an L4 header carries an L4
// checksum (a zero UDP checksum means none) and whether it is right,
// computed over the datagram's IP total length.
func (v fzView) l4Csum(b []byte) (present, ok bool) {
	if !v.l4ok {
		return false, false
	}
	l4 := b[v.l4off:v.end]
	switch v.proto {
	case uint8(ProtoUDP):
		if l4[6] == 0 && l4[7] == 0 {
			return false, false
		}
		fallthrough
	case uint8(ProtoTCP):
		return true, csumFold(pseudoSum(b, v.proto, len(l4))+csumAdd(0, l4)) == 0xffff
	case uint8(ProtoICMP):
		return true, csumFold(csumAdd(0, l4)) == 0xffff
	}
	return false, false
}

// fzFixChecksums recomputes the IPv4 header checksum and the L4 checksum
// wherever the (possibly mutated) header says they are and the frame holds
// them; a zero UDP checksum stays zero.
func fzFixChecksums(b []byte) {
	if len(b) < 34 {
		return
	}
	ihl := int(b[14]&0x0f) * 4
	if ihl < 20 || 14+ihl > len(b) {
		return
	}
	b[24], b[25] = 0, 0
	binary.BigEndian.PutUint16(b[24:], ^csumFold(csumAdd(0, b[14:14+ihl])))
	tot := int(be16At(b, 16))
	if tot < ihl || 14+tot > len(b) {
		return
	}
	l4 := b[14+ihl : 14+tot]
	switch b[23] {
	case uint8(ProtoTCP):
		if len(l4) >= 18 {
			l4[16], l4[17] = 0, 0
			binary.BigEndian.PutUint16(l4[16:], ^csumFold(pseudoSum(b, b[23], len(l4))+csumAdd(0, l4)))
		}
	case uint8(ProtoUDP):
		if len(l4) >= 8 && (l4[6] != 0 || l4[7] != 0) {
			l4[6], l4[7] = 0, 0
			c := ^csumFold(pseudoSum(b, b[23], len(l4)) + csumAdd(0, l4))
			if c == 0 {
				c = 0xffff
			}
			binary.BigEndian.PutUint16(l4[6:], c)
		}
	case uint8(ProtoICMP):
		if len(l4) >= 4 {
			l4[2], l4[3] = 0, 0
			binary.BigEndian.PutUint16(l4[2:], ^csumFold(csumAdd(0, l4)))
		}
	}
}

// ---- Building packets.

// fzShape is one packet to build: any protocol number, IP and TCP options,
// a UDP packet without checksum, bytes after the datagram (Ethernet
// padding or a trailer).
type fzShape struct {
	srcMAC, dstMAC [6]byte
	src, dst       netip.Addr
	proto          uint8
	sport, dport   uint16
	seq, ack       uint32
	tcpFlags       uint8
	window         uint16
	icmpType       uint8
	icmpCode       uint8
	icmpID         uint16
	icmpSeq        uint16
	ttl, tos       uint8
	ipID           uint16
	df             bool
	ipOpts         []byte // a multiple of 4 bytes, at most 40
	tcpOpts        []byte // a multiple of 4 bytes, at most 40
	payload        []byte // for ICMP errors: the quoted header and 8 bytes
	udpNoCsum      bool
	trailer        []byte
}

// build serializes the shape with correct lengths and checksums.
func (s fzShape) build() []byte {
	var l4 []byte
	switch s.proto {
	case uint8(ProtoTCP):
		l4 = make([]byte, 20+len(s.tcpOpts), 20+len(s.tcpOpts)+len(s.payload))
		binary.BigEndian.PutUint16(l4[0:], s.sport)
		binary.BigEndian.PutUint16(l4[2:], s.dport)
		binary.BigEndian.PutUint32(l4[4:], s.seq)
		binary.BigEndian.PutUint32(l4[8:], s.ack)
		l4[12] = byte(len(l4)/4) << 4
		l4[13] = s.tcpFlags
		binary.BigEndian.PutUint16(l4[14:], s.window)
		copy(l4[20:], s.tcpOpts)
	case uint8(ProtoUDP):
		l4 = make([]byte, 8, 8+len(s.payload))
		binary.BigEndian.PutUint16(l4[0:], s.sport)
		binary.BigEndian.PutUint16(l4[2:], s.dport)
		binary.BigEndian.PutUint16(l4[4:], uint16(8+len(s.payload)))
		if !s.udpNoCsum {
			l4[6], l4[7] = 0xff, 0xff // fzFixChecksums computes it
		}
	case uint8(ProtoICMP):
		l4 = make([]byte, 8, 8+len(s.payload))
		l4[0], l4[1] = s.icmpType, s.icmpCode
		binary.BigEndian.PutUint16(l4[4:], s.icmpID)
		binary.BigEndian.PutUint16(l4[6:], s.icmpSeq)
	}
	l4 = append(l4, s.payload...)

	ihl := 20 + len(s.ipOpts)
	b := make([]byte, 14+ihl, 14+ihl+len(l4)+len(s.trailer))
	copy(b[0:], s.dstMAC[:])
	copy(b[6:], s.srcMAC[:])
	b[12], b[13] = 0x08, 0x00
	ip := b[14:]
	ip[0] = 0x40 | byte(ihl/4)
	ip[1] = s.tos
	binary.BigEndian.PutUint16(ip[2:], uint16(ihl+len(l4)))
	binary.BigEndian.PutUint16(ip[4:], s.ipID)
	if s.df {
		ip[6] = 0x40
	}
	ip[8], ip[9] = s.ttl, s.proto
	src, dst := s.src.As4(), s.dst.As4()
	copy(ip[12:], src[:])
	copy(ip[16:], dst[:])
	copy(ip[20:], s.ipOpts)
	b = append(b, l4...)
	fzFixChecksums(b)
	return append(b, s.trailer...)
}

// quote is what an ICMP error carries about the packet src→dst: its IPv4
// header and the first 8 bytes of its L4 header.
func quote(src, dst netip.AddrPort, proto uint8) []byte {
	q := fzShape{src: src.Addr(), dst: dst.Addr(), proto: proto, sport: src.Port(), dport: dst.Port(),
		ttl: 64, tcpFlags: 0x02, window: 64240}.build()
	return append([]byte(nil), q[14:14+28]...)
}

// ---- Mutations.

// fzMutation changes a frame; it may return a shorter or longer one.
type fzMutation struct {
	name string
	f    func(r *rand.Rand, b []byte) []byte
}

// putBE16 writes a 16-bit field when the frame holds it.
func putBE16(b []byte, off int, v uint16) {
	if off+2 <= len(b) {
		binary.BigEndian.PutUint16(b[off:], v)
	}
}

var fzMutations = []fzMutation{
	{"byte flips", func(r *rand.Rand, b []byte) []byte {
		for range 1 + r.IntN(4) {
			// Mostly in the headers, where the datapath looks.
			lim := len(b)
			if r.IntN(4) != 0 {
				lim = min(lim, 14+60+24)
			}
			b[r.IntN(lim)] ^= byte(1 + r.IntN(255))
		}
		return b
	}},
	{"truncation", func(r *rand.Rand, b []byte) []byte {
		if len(b) <= 14 {
			return b
		}
		return b[:14+r.IntN(len(b)-14)]
	}},
	{"total length short", func(r *rand.Rand, b []byte) []byte {
		if len(b) >= 18 {
			tot := int(be16At(b, 16))
			putBE16(b, 16, uint16(r.IntN(max(tot, 1))))
		}
		return b
	}},
	{"total length long", func(r *rand.Rand, b []byte) []byte {
		if len(b) >= 18 {
			tot := int(be16At(b, 16))
			switch r.IntN(3) {
			case 0:
				putBE16(b, 16, uint16(tot+1+r.IntN(64)))
			case 1:
				putBE16(b, 16, 0xffff)
			default:
				putBE16(b, 16, uint16(len(b)-14+1))
			}
		}
		return b
	}},
	{"IHL", func(r *rand.Rand, b []byte) []byte {
		if len(b) > 14 {
			b[14] = b[14]&0xf0 | byte(r.IntN(16))
		}
		return b
	}},
	{"TCP data offset", func(r *rand.Rand, b []byte) []byte {
		if v := fzParse(b); v.valid && v.proto == uint8(ProtoTCP) && v.l4off+13 <= len(b) {
			b[v.l4off+12] = b[v.l4off+12]&0x0f | byte(r.IntN(16))<<4
		}
		return b
	}},
	{"fragment", func(r *rand.Rand, b []byte) []byte {
		if len(b) >= 22 {
			var fo uint16
			switch r.IntN(3) {
			case 0:
				fo = 0x2000 // MF, offset 0: a first fragment
			case 1:
				fo = uint16(1 + r.IntN(0x1fff)) // a later fragment
			default:
				fo = 0x2000 | uint16(1+r.IntN(0x1fff))
			}
			putBE16(b, 20, be16At(b, 20)&0x4000|fo)
		}
		return b
	}},
	{"IP version", func(r *rand.Rand, b []byte) []byte {
		if len(b) > 14 {
			b[14] = b[14]&0x0f | byte(r.IntN(16))<<4
		}
		return b
	}},
	{"IP protocol", func(r *rand.Rand, b []byte) []byte {
		if len(b) > 23 {
			b[23] = []byte{0, 1, 2, 6, 17, 47, 50, 132, byte(r.IntN(256))}[r.IntN(9)]
		}
		return b
	}},
	{"EtherType", func(r *rand.Rand, b []byte) []byte {
		putBE16(b, 12, []uint16{0x86dd, 0x0806, 0x8100, 0x88a8, 0x0801, uint16(r.IntN(0x10000))}[r.IntN(6)])
		return b
	}},
	{"trailer", func(r *rand.Rand, b []byte) []byte {
		for range 1 + r.IntN(40) {
			b = append(b, byte(r.IntN(256)))
		}
		return b
	}},
	{"TTL", func(r *rand.Rand, b []byte) []byte {
		if len(b) > 22 {
			b[22] = []byte{0, 1, 2, 255}[r.IntN(4)]
		}
		return b
	}},
	{"addresses swapped", func(r *rand.Rand, b []byte) []byte {
		if v := fzParse(b); len(b) >= 34 {
			s, d := v.src.As4(), v.dst.As4()
			copy(b[26:], d[:])
			copy(b[30:], s[:])
			if v.valid && (v.proto == uint8(ProtoTCP) || v.proto == uint8(ProtoUDP)) && v.l4off+4 <= len(b) {
				sp, dp := be16At(b, v.l4off), be16At(b, v.l4off+2)
				putBE16(b, v.l4off, dp)
				putBE16(b, v.l4off+2, sp)
			}
		}
		return b
	}},
}

// ---- CT snapshots.

// fzCT holds a snapshot of the CT table, taken with one batch lookup.
type fzCT struct {
	m    *ebpf.Map
	keys []lxcCtKey
	vals []lxcCtEntry
	n    int
}

func newFzCT(m *ebpf.Map) *fzCT {
	size := int(m.MaxEntries())
	return &fzCT{m: m, keys: make([]lxcCtKey, size), vals: make([]lxcCtEntry, size)}
}

// dump replaces the snapshot with the table's content.
func (c *fzCT) dump() error {
	var cursor ebpf.MapBatchCursor
	c.n = 0
	for c.n < len(c.keys) {
		n, err := c.m.BatchLookup(&cursor, c.keys[c.n:], c.vals[c.n:], nil)
		c.n += n
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("ct batch lookup: %w", err)
		}
	}
	return nil
}

// flush empties the table (and the snapshot).
func (c *fzCT) flush() error {
	if err := c.dump(); err != nil {
		return err
	}
	if c.n > 0 {
		if _, err := c.m.BatchDelete(c.keys[:c.n], nil); err != nil {
			return fmt.Errorf("ct batch delete: %w", err)
		}
	}
	c.n = 0
	return c.dump()
}

// find returns the snapshot's entry for k.
func (c *fzCT) find(k CTKey) (CTEntry, bool) {
	rk, err := k.raw()
	if err != nil {
		return CTEntry{}, false
	}
	for i := range c.n {
		if c.keys[i] == rk {
			return ctEntryFrom(c.keys[i], c.vals[i]), true
		}
	}
	return CTEntry{}, false
}

// has reports whether the snapshot holds raw key k.
func (c *fzCT) has(k lxcCtKey) bool {
	for i := range c.n {
		if c.keys[i] == k {
			return true
		}
	}
	return false
}

// added returns the entries of c that prev does not hold.
func (c *fzCT) added(prev *fzCT) []CTEntry {
	var out []CTEntry
	for i := range c.n {
		if !prev.has(c.keys[i]) {
			out = append(out, ctEntryFrom(c.keys[i], c.vals[i]))
		}
	}
	return out
}

// TestFuzzHelpersAgreeWithGopacket checks the fuzzer's own builder and
// checksums against gopacket: the same packets byte for byte, checksums
// accepted, and a flipped byte rejected.
func TestFuzzHelpersAgreeWithGopacket(t *testing.T) {
	tcp := fromPod(pod1, vip, 80)
	udp := tcp
	udp.proto, udp.sport, udp.dport, udp.payload = ProtoUDP, 33333, 53, []byte("query")
	icmp := tcp
	icmp.proto, icmp.icmpType, icmp.icmpID, icmp.payload = ProtoICMP, 8, 7, []byte("ping")
	for _, p := range []pkt{tcp, udp, icmp} {
		want := p.bytes(t)
		s := fzShape{srcMAC: [6]byte(p.srcMAC), dstMAC: [6]byte(p.dstMAC), src: p.src, dst: p.dst, proto: uint8(p.proto),
			sport: p.sport, dport: p.dport, seq: 1000, tcpFlags: 0x02, window: 64240, icmpType: p.icmpType, icmpID: p.icmpID,
			icmpSeq: 1, ttl: p.ttl, ipID: 1, df: true, payload: p.payload}
		got := s.build()
		// gopacket pads frames to Ethernet's 60-byte minimum.
		if pad := len(want) - len(got); len(want) == 60 && pad > 0 && bytes.Equal(want[len(got):], make([]byte, pad)) {
			s.trailer = make([]byte, pad)
			got = s.build()
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%v: built\n%x\ngopacket\n%x", p.proto, got, want)
		}
		v := fzParse(want)
		has, ok := v.l4Csum(want)
		if !v.valid || !v.l4ok || !v.ipCsumOK(want) || !has || !ok {
			t.Fatalf("%v: view %+v, IPv4 checksum %v, L4 checksum %v %v", p.proto, v, v.ipCsumOK(want), has, ok)
		}
		for _, off := range []int{14 + 8, v.l4off + 4, v.end - 1} {
			bad := append([]byte(nil), want...)
			bad[off] ^= 0x40
			_, l4ok := v.l4Csum(bad)
			if v.ipCsumOK(bad) && l4ok {
				t.Errorf("%v: byte %d flipped, checksums still right", p.proto, off)
			}
			fzFixChecksums(bad)
			if _, l4ok := v.l4Csum(bad); !v.ipCsumOK(bad) || !l4ok {
				t.Errorf("%v: byte %d flipped, checksums not fixed", p.proto, off)
			}
		}
	}
}
