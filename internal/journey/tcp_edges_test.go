package journey

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/google/gopacket/layers"
)

// synFrame is a SYN from 10.1.1.10:40000 to 10.224.1.1:80 (seq 1000,
// IPv4 total length 40) cut to 54 bytes: Ethernet + IPv4 + TCP without
// options or Ethernet padding, as captures on the sending side show it.
func synFrame(t *testing.T) []byte {
	t.Helper()
	f := frame(t, "10.1.1.10", "10.224.1.1", 7, &layers.TCP{SrcPort: 40000, DstPort: 80, Seq: 1000, SYN: true}, nil)
	if binary.BigEndian.Uint16(f[14+2:]) != 40 {
		t.Fatalf("total length %d", binary.BigEndian.Uint16(f[14+2:]))
	}
	return f[:14+20+20]
}

// withIPOptions inserts n bytes of IPv4 options (NOPs) after the 20-byte
// header, fixing IHL and the total length.
func withIPOptions(f []byte, n int) []byte {
	out := append([]byte(nil), f[:14+20]...)
	for range n {
		out = append(out, 1)
	}
	out = append(out, f[14+20:]...)
	out[14] = 0x40 | byte((20+n)/4)
	binary.BigEndian.PutUint16(out[14+2:], binary.BigEndian.Uint16(f[14+2:])+uint16(n))
	return out
}

func wantSYN(t *testing.T, s Segment, ok bool, offset int, payload uint32) {
	t.Helper()
	if !ok {
		t.Fatal("no segment")
	}
	want := Segment{Src: netip.MustParseAddrPort("10.1.1.10:40000"), Dst: netip.MustParseAddrPort("10.224.1.1:80"),
		Seq: 1000, Flags: tcpSYN, Payload: payload, Offset: offset}
	if s != want {
		t.Errorf("segment %+v, want %+v", s, want)
	}
}

// SegmentOf needs the whole of a 20-byte TCP header after the IPv4 header,
// whatever its length: a frame of exactly 14+20+20 bytes is a segment, one
// byte less is none; with 4 bytes of IPv4 options (IHL 6), 14+24+20 bytes
// are needed, and the TCP header starts at 38.
func TestSegmentOfFrameLength(t *testing.T) {
	syn := synFrame(t)
	s, ok := SegmentOf(syn)
	wantSYN(t, s, ok, 34, 0)
	if s, ok := SegmentOf(syn[:53]); ok {
		t.Errorf("53 bytes: %+v", s)
	}
	opt := withIPOptions(syn, 4)
	if len(opt) != 58 {
		t.Fatalf("%d bytes", len(opt))
	}
	s, ok = SegmentOf(opt)
	wantSYN(t, s, ok, 38, 0)
	if s, ok := SegmentOf(opt[:57]); ok {
		t.Errorf("IHL 6, 57 bytes: %+v", s)
	}
	// The largest IPv4 header, 60 bytes: the segment starts at 74.
	s, ok = SegmentOf(withIPOptions(syn, 40))
	wantSYN(t, s, ok, 74, 0)
}

// The IPv4 total length must leave room for the 20-byte TCP header after
// the IPv4 header, options included; the payload is what it leaves after
// the TCP header, options included, and none when the data offset claims
// more than it leaves.
func TestSegmentOfTotalLength(t *testing.T) {
	set := func(f []byte, total uint16) []byte {
		f = append([]byte(nil), f...)
		binary.BigEndian.PutUint16(f[14+2:], total)
		return f
	}
	syn := synFrame(t)
	if s, ok := SegmentOf(set(syn, 39)); ok {
		t.Errorf("total length 39: %+v", s)
	}
	opt := withIPOptions(syn, 4)
	if s, ok := SegmentOf(set(opt, 43)); ok {
		t.Errorf("IHL 6, total length 43: %+v", s)
	}
	s, ok := SegmentOf(set(opt, 44))
	wantSYN(t, s, ok, 38, 0)
	// A total length beyond the frame (a capture cut by its snap length):
	// the payload is what the IPv4 header says.
	s, ok = SegmentOf(set(syn, 40+1400))
	wantSYN(t, s, ok, 34, 1400)

	// A 32-byte TCP header (data offset 8) and 5 bytes of payload.
	f := frame(t, "10.1.1.10", "10.224.1.1", 7, &layers.TCP{SrcPort: 40000, DstPort: 80, Seq: 1000, SYN: true,
		Options: []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x05, 0xb4}},
			{OptionType: layers.TCPOptionKindNop}, {OptionType: layers.TCPOptionKindNop},
			{OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2}, {OptionType: layers.TCPOptionKindNop}, {OptionType: layers.TCPOptionKindNop}}},
		[]byte("hello"))
	if f[14+20+12]>>4 != 8 {
		t.Fatalf("data offset %d", f[14+20+12]>>4)
	}
	s, ok = SegmentOf(f)
	wantSYN(t, s, ok, 34, 5)
	if s.Len() != 6 || s.End() != 1006 {
		t.Errorf("len %d, end %d", s.Len(), s.End())
	}
	// A data offset of 15 (60 bytes) in a 40-byte datagram: no payload.
	bad := append([]byte(nil), syn...)
	bad[14+20+12] = 0xf0
	s, ok = SegmentOf(bad)
	wantSYN(t, s, ok, 34, 0)
}

// Frames cut inside the Ethernet or IPv4 header, even with the IPv4
// EtherType and bytes that look like TCP, are no segment (and read nothing
// past their end); so are IPv4 headers with IHL below 5.
func TestSegmentOfShortOrBroken(t *testing.T) {
	syn := synFrame(t)
	for _, n := range []int{0, 12, 13, 14, 15, 18, 23, 24, 33, 34, 40, 53} {
		if s, ok := SegmentOf(syn[:n]); ok {
			t.Errorf("%d bytes: %+v", n, s)
		}
	}
	for _, ihl := range []byte{0, 4} {
		f := append([]byte(nil), syn...)
		f[14] = 0x40 | ihl
		if s, ok := SegmentOf(f); ok {
			t.Errorf("IHL %d: %+v", ihl, s)
		}
	}
	// ARP (EtherType 0x0806) shares the first EtherType byte with IPv4.
	arp := append([]byte(nil), syn...)
	arp[13] = 0x06
	if s, ok := SegmentOf(arp); ok {
		t.Errorf("EtherType 0x0806: %+v", s)
	}
}
