package journey

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/gopacket/layers"
)

// tunnelled is a TCP SYN from pod1 to pod4 in VXLAN (VNI 0x123) between
// the nodes' uplink addresses, on UDP port.
func tunnelled(t *testing.T, port uint16) []byte {
	inner := frame(t, "10.1.1.10", "10.1.2.40", 0x1234, &layers.TCP{SrcPort: 40000, DstPort: 8080, SYN: true}, nil)
	return vxlanFrame(t, port, inner)
}

var wantOuter = Outer{EthSrc: "02:00:00:00:00:01", EthDst: "02:00:00:00:00:02", IPSrc: "10.255.1.11", IPDst: "10.255.2.12",
	TTL: 64, Proto: "udp", Sport: 54321, Dport: 8472, VNI: 0x123}

// A VXLAN frame's hop describes the inner packet, with the encapsulation in
// Outer, on both VXLAN ports.
func TestHopFromPacketVXLAN(t *testing.T) {
	for _, port := range []uint16{8472, 4789} {
		h := HopFromPacket("node1", Wire, "node1-0", tunnelled(t, port))
		want := Hop{Node: "node1", Point: Wire, Device: "node1-0", EthSrc: "02:00:00:00:00:01", EthDst: "02:00:00:00:00:02",
			IPSrc: "10.1.1.10", IPDst: "10.1.2.40", TTL: 64, Proto: "tcp", Sport: 40000, Dport: 8080}
		o := wantOuter
		o.Dport = port
		if h.Outer == nil || *h.Outer != o {
			t.Errorf("port %d: outer %+v, want %+v", port, h.Outer, o)
		}
		h.Outer = nil
		if h != want {
			t.Errorf("port %d: hop %+v, want %+v", port, h, want)
		}
	}
}

// Frames that are not VXLAN with a VNI keep their outer packet as the hop:
// another port, a header without the valid-VNI flag, a payload too short
// for a header and an inner Ethernet header; VXLAN in VXLAN opens one level.
func TestHopFromPacketNotVXLAN(t *testing.T) {
	inner := frame(t, "10.1.1.10", "10.1.2.40", 0x1234, &layers.TCP{SrcPort: 40000, DstPort: 8080, SYN: true}, nil)
	udp := func(dport uint16, payload []byte) []byte {
		return frame(t, "10.255.1.11", "10.255.2.12", 0x77, &layers.UDP{SrcPort: 54321, DstPort: layers.UDPPort(dport)}, payload)
	}
	hdr := func(flags byte) []byte { return []byte{flags, 0, 0, 0, 0, 0x01, 0x23, 0} }
	for name, f := range map[string][]byte{
		"port 4790":            udp(4790, append(hdr(0x08), inner...)),
		"no VNI flag":          udp(8472, append(hdr(0xf7), inner...)),
		"13-byte inner frame":  udp(8472, append(hdr(0x08), inner[:13]...)),
		"header only":          udp(8472, hdr(0x08)),
		"7-byte VXLAN payload": udp(8472, hdr(0x08)[:7]),
	} {
		h := HopFromPacket("node1", Wire, "node1-0", f)
		if h.Outer != nil || h.IPSrc != "10.255.1.11" || h.Proto != "udp" || h.Sport != 54321 {
			t.Errorf("%s: hop %+v (outer %+v), want the outer UDP packet", name, h, h.Outer)
		}
	}
	// Exactly an inner Ethernet header is opened (its EtherType shows).
	h := HopFromPacket("node1", Wire, "node1-0", udp(8472, append(hdr(0x08), inner[:14]...)))
	if h.Outer == nil || h.Outer.VNI != 0x123 || h.IPSrc != "" || h.EthSrc != "02:00:00:00:00:01" {
		t.Errorf("14-byte inner frame: hop %+v (outer %+v)", h, h.Outer)
	}
	// VXLAN in VXLAN: the middle packet, with the outermost as Outer.
	h = HopFromPacket("node1", Wire, "node1-0", vxlanFrame(t, 8472, tunnelled(t, 4789)))
	if h.Outer == nil || *h.Outer != wantOuter || h.Proto != "udp" || h.Dport != 4789 || h.IPDst != "10.255.2.12" {
		t.Errorf("nested: hop %+v (outer %+v)", h, h.Outer)
	}
	// The VNI is 24 bits, big-endian.
	vni := udp(8472, append([]byte{0x08, 0, 0, 0, 0xab, 0xcd, 0xef, 0x99}, inner...))
	if h := HopFromPacket("node1", Wire, "node1-0", vni); h.Outer == nil || h.Outer.VNI != 0xabcdef {
		t.Errorf("VNI of ab cd ef: %+v", h.Outer)
	}
}

// The JSON contract: "outer" with DESIGN.md's keys on tunnelled hops, and
// absent elsewhere.
func TestOuterJSON(t *testing.T) {
	h := HopFromPacket("node1", Wire, "node1-0", tunnelled(t, 8472))
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if got, want := string(m["outer"]), `{"eth_src":"02:00:00:00:00:01","eth_dst":"02:00:00:00:00:02","ip_src":"10.255.1.11","ip_dst":"10.255.2.12","ttl":64,"proto":"udp","sport":54321,"dport":8472,"vni":291}`; got != want {
		t.Errorf("outer %s\nwant  %s", got, want)
	}
	h.Outer = nil
	if b, _ := json.Marshal(h); strings.Contains(string(b), "outer") {
		t.Errorf("a hop without encapsulation: %s", b)
	}
}

// Outer fields are compared like the others (zero values are wildcards),
// rendered on an "outer" line, and named by a missing hop's want line.
func TestOuterDiffAndRender(t *testing.T) {
	got := Packet{Verdict: Forwarded, Hops: []Hop{
		{Node: "node1", Point: ToNetdev, Device: "bond0", IPSrc: "10.1.1.10", IPDst: "10.1.2.40", Proto: "tcp", Verdict: Forwarded},
		HopFromPacket("node1", Wire, "node1-0", tunnelled(t, 8472)),
	}}
	got.Hops[1].Verdict = Forwarded
	want := Packet{Hops: []Hop{{Point: ToNetdev}, {Point: Wire, Outer: &Outer{VNI: 7, Dport: 8472}}}}
	d := Diff(want, got)
	if len(d.Diffs) != 1 || d.Diffs[0].Field != FieldOuterVNI || d.Diffs[0].Want != "7" || d.Diffs[0].Got != "291" {
		t.Fatalf("diffs %+v, want one on outer.vni", d.Diffs)
	}
	want.Hops[1].Outer.VNI = 291
	if d := Diff(want, got); !d.Equal() {
		t.Errorf("matching outer: %s", d)
	}
	want.Hops[0].Outer = &Outer{IPSrc: "10.255.1.11"}
	d = Diff(want, got)
	if len(d.Diffs) != 1 || d.Diffs[0].Field != FieldOuterIPSrc || d.Diffs[0].Got != "" {
		t.Errorf("outer wanted on a hop without one: %+v", d.Diffs)
	}
	text := RenderPacket(got)
	line := "     outer eth *02:00:00:00:00:01 -> *02:00:00:00:00:02  ip *10.255.1.11 -> *10.255.2.12  ttl *64  *udp *54321 -> *8472  vni *291\n"
	if !strings.Contains(text, line) {
		t.Errorf("rendering lacks\n%s\nin\n%s", line, text)
	}
	if n := strings.Count(text, "outer "); n != 1 {
		t.Errorf("%d outer lines, want 1 (the hop without encapsulation has none):\n%s", n, text)
	}
	// A wanted outer on a hop that has none is shown with its marks.
	marked := d.String()
	hop0, _, _ := strings.Cut(marked, "  01 ")
	if want := "     outer eth - -> -  ip !- (want 10.255.1.11) -> -  ttl -  - - -> -  vni -\n"; !strings.Contains(hop0, want) {
		t.Errorf("difference rendering of hop 0 lacks\n%s\nin\n%s", want, marked)
	}
	var b strings.Builder
	renderMissing(&b, Hop{Node: "node2", Point: FromOverlay, Device: "hoplab_vxlan", Outer: &Outer{VNI: 291, Dport: 8472}})
	if !strings.Contains(b.String(), "want outer.dport=8472 outer.vni=291") {
		t.Errorf("missing hop: %q", b.String())
	}
}

// A VXLAN frame's TCP segment is its inner packet's, its offset counted in
// the outer frame; a VXLAN frame with a UDP inner packet, or a UDP datagram
// to another port, has none.
func TestSegmentOfVXLAN(t *testing.T) {
	f := tunnelled(t, 8472)
	s, ok := SegmentOf(f)
	// Outer Ethernet, IPv4, UDP and VXLAN headers: 50; inner Ethernet and
	// IPv4: 34.
	if !ok || s.Src.String() != "10.1.1.10:40000" || s.Dst.String() != "10.1.2.40:8080" || !s.SYN() || s.Offset != 50+14+20 {
		t.Errorf("segment %+v %v (offset want %d)", s, ok, 50+14+20)
	}
	if got := f[s.Offset+2 : s.Offset+4]; got[0] != 8080>>8 || got[1] != 8080&0xff {
		t.Errorf("offset %d does not point at the inner TCP header: dport bytes %x", s.Offset, got)
	}
	udpInner := frame(t, "10.1.1.10", "10.1.2.40", 0x1234, &layers.UDP{SrcPort: 40000, DstPort: 53}, []byte("q"))
	if s, ok := SegmentOf(vxlanFrame(t, 8472, udpInner)); ok {
		t.Errorf("VXLAN around UDP: segment %+v", s)
	}
	tcpInner := frame(t, "10.1.1.10", "10.1.2.40", 0x1234, &layers.TCP{SrcPort: 40000, DstPort: 8080, SYN: true}, nil)
	plain := frame(t, "10.255.1.11", "10.255.2.12", 0x77, &layers.UDP{SrcPort: 54321, DstPort: 4790}, append([]byte{8, 0, 0, 0, 0, 1, 0x23, 0}, tcpInner...))
	if s, ok := SegmentOf(plain); ok {
		t.Errorf("UDP 4790: segment %+v", s)
	}
	// The outer IPv4 total length bounds the UDP datagram: a header of 8
	// UDP bytes but no room for them opens nothing.
	short := append([]byte(nil), f...)
	short[14+2], short[14+3] = 0, 20+7
	if s, ok := SegmentOf(short); ok {
		t.Errorf("outer total length 27: segment %+v", s)
	}
}
