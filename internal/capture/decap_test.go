package capture

import (
	"bytes"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// tunnelled wraps inner in VXLAN (VNI 291, flags) from node1's uplink to
// node2's, UDP to dport, with a correct or a broken outer IPv4 checksum.
func tunnelled(t *testing.T, inner []byte, dport uint16, flags byte, badSum bool) []byte {
	t.Helper()
	return tunnelledFrag(t, inner, dport, flags, badSum, 0)
}

// tunnelledFrag is tunnelled with the outer IPv4 header's flags.
func tunnelledFrag(t *testing.T, inner []byte, dport uint16, flags byte, badSum bool, ipFlags layers.IPv4Flag) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 1, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 1, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Id: 0x4242, Flags: ipFlags, Protocol: layers.IPProtocolUDP, SrcIP: net.ParseIP("10.255.1.11"), DstIP: net.ParseIP("10.255.2.12")}
	udp := &layers.UDP{SrcPort: 45437, DstPort: layers.UDPPort(dport)}
	hdr := []byte{flags, 0, 0, 0, 0, 0x01, 0x23, 0}
	f := serialize(t, eth, ip, udp, gopacket.Payload(append(hdr, inner...)))
	if badSum {
		f[14+10] ^= 0xff
	}
	return f
}

// A VXLAN frame's inner frame is the packet, with the frame as captured in
// Outer; the outer headers' findings (a wrong checksum) do not stay, the
// inner frame is checked, and a refusal names the encapsulation.
func TestVXLANDecapsulated(t *testing.T) {
	inner := flowFrame(t, layers.IPProtocolTCP, "10.1.1.10", 40000, "10.1.2.40", 8080, 64)
	outer := tunnelled(t, inner, 8472, 0x08, true)
	v6 := serialize(t, &layers.Ethernet{SrcMAC: macPod1, DstMAC: macLXC, EthernetType: layers.EthernetTypeIPv6},
		&layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolNoNextHeader, SrcIP: net.ParseIP("fd00::1"), DstIP: net.ParseIP("fd00::2")})
	cutInner := tunnelled(t, inner, 4789, 0x08, false)
	pkts, err := readBytes(t, "tunnel.pcap", writePcap(t, uint32(layers.LinkTypeEthernet),
		record{data: outer},
		record{data: tunnelled(t, inner, 4790, 0x08, false)},
		record{data: tunnelled(t, inner, 8472, 0x00, false)},
		record{data: tunnelled(t, v6, 8472, 0x08, false)},
		record{data: cutInner[:len(cutInner)-len(inner)+40], origLen: len(cutInner)},
		record{data: tunnelledFrag(t, inner, 8472, 0x08, false, layers.IPv4MoreFragments)},
	))
	if err != nil {
		t.Fatal(err)
	}
	p := pkts[0]
	if p.Flags != VXLANDecapsulated || !bytes.Equal(p.Data, inner) || !bytes.Equal(p.Outer, outer) || p.VNI != 0x123 ||
		p.OrigLen != len(inner) || !p.Replayable() {
		t.Errorf("VXLAN on 8472: flags %v, VNI %#x, origLen %d (want %d), inner %v, outer %v, refusal %v",
			p.Flags, p.VNI, p.OrigLen, len(inner), bytes.Equal(p.Data, inner), bytes.Equal(p.Outer, outer), p.Refusal)
	}
	p.Outer[0] ^= 0xff
	if p.Data[0] != inner[0] {
		t.Error("the inner frame aliases the outer one")
	}
	for i, why := range map[int]string{1: "UDP 4790", 2: "no VNI flag", 5: "first fragment"} {
		if p := pkts[i]; p.Flags.Has(VXLANDecapsulated) || p.Outer != nil || len(p.Data) != len(outer) {
			t.Errorf("%s: flags %v, %d bytes", why, p.Flags, len(p.Data))
		}
	}
	if p := pkts[3]; p.Flags != VXLANDecapsulated|IPv6 || !p.Replayable() {
		t.Errorf("IPv6 inside: flags %v, refusal %v", p.Flags, p.Refusal)
	}
	p = pkts[4]
	want := "tunnel.pcap: packet 4 (frame 5): VXLAN VNI 291, inner frame: headers cut by snaplen: TCP header has 6 of 20 bytes (frame 40 of 66 bytes captured)"
	if p.Refusal == nil || !strings.HasSuffix(p.Refusal.Error(), want) || !errors.Is(p.Refusal, ErrHeadersCut) || p.Flags != VXLANDecapsulated|Truncated {
		t.Errorf("inner cut by the snaplen: flags %v, refusal\n%v\nwant\n%s", p.Flags, p.Refusal, want)
	}
}

// A packet seen on a pod's veth and again in VXLAN on the uplink (tcpdump
// -i any on a tunnel-mode node) is replayed once: the encapsulated
// sighting is a duplicate of the first.
func TestVXLANSightingIsADuplicate(t *testing.T) {
	inner := flowFrame(t, layers.IPProtocolTCP, "10.1.1.10", 40000, "10.1.2.40", 8080, 64)
	other := flowFrame(t, layers.IPProtocolTCP, "10.1.1.10", 40001, "10.1.2.40", 8080, 64)
	// tcpdump -i any: Linux cooked headers in place of the Ethernet ones.
	cooked := func(frame []byte) []byte {
		return append(sllHeader(4 /* outgoing */, arphrdEther, frame[6:12], etherTypeIPv4), frame[14:]...)
	}
	pkts, err := readBytes(t, "any.pcap", writePcap(t, LinkTypeLinuxSLL,
		record{data: cooked(inner)}, record{data: cooked(tunnelled(t, inner, 8472, 0x08, false))}, record{data: cooked(tunnelled(t, other, 8472, 0x08, false))}))
	if err != nil {
		t.Fatal(err)
	}
	if !pkts[1].Flags.Has(Duplicate) || pkts[1].DuplicateOf != 0 || pkts[2].Flags.Has(Duplicate) {
		t.Errorf("flags %v (of %d), %v", pkts[1].Flags, pkts[1].DuplicateOf, pkts[2].Flags)
	}
	if s := pkts[1].Flags.String(); !strings.Contains(s, "vxlan-decapsulated") {
		t.Errorf("flag names %q", s)
	}
}
