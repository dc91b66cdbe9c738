package journey

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/hoplab/hoplab/internal/vxlan"
)

// HopFromPacket decodes an Ethernet frame (eth, IPv4 or IPv6, TCP, UDP,
// ICMP) into a Hop at node/point/device. Verdict and DropReason are left
// empty for the caller; fields the frame does not carry stay zero. A frame
// too short to decode gives a Hop with only what could be read. A VXLAN
// frame (UDP to 4789 or 8472 with a VNI) gives the inner packet's Hop with
// the encapsulation in Outer; only one level is opened.
func HopFromPacket(node string, point Point, device string, frame []byte) Hop {
	return hopFromFrame(node, point, device, frame, true)
}

func hopFromFrame(node string, point Point, device string, frame []byte, open bool) Hop {
	h := Hop{Node: node, Point: point, Device: device}
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.DecodeOptions{Lazy: true, NoCopy: true})
	eth, ok := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	if !ok {
		return h
	}
	h.EthSrc, h.EthDst = eth.SrcMAC.String(), eth.DstMAC.String()
	// gopacket keeps the layer of an IP header cut short, with nothing
	// read (no addresses): such a frame shows only its EtherType.
	switch ip := pkt.NetworkLayer().(type) {
	case *layers.IPv4:
		if ip.SrcIP == nil {
			h.Proto = strings.ToLower(eth.EthernetType.String())
			return h
		}
		h.IPSrc, h.IPDst, h.TTL = ip.SrcIP.String(), ip.DstIP.String(), ip.TTL
		h.Proto = ProtoName(ip.Protocol)
	case *layers.IPv6:
		if ip.SrcIP == nil {
			h.Proto = strings.ToLower(eth.EthernetType.String())
			return h
		}
		h.IPSrc, h.IPDst, h.TTL = ip.SrcIP.String(), ip.DstIP.String(), ip.HopLimit
		h.Proto = ProtoName(ip.NextHeader)
	default:
		h.Proto = strings.ToLower(eth.EthernetType.String())
		return h
	}
	switch l4 := pkt.TransportLayer().(type) {
	case *layers.TCP:
		h.Sport, h.Dport = uint16(l4.SrcPort), uint16(l4.DstPort)
	case *layers.UDP:
		h.Sport, h.Dport = uint16(l4.SrcPort), uint16(l4.DstPort)
		if vni, inner, ok := vxlanPayload(l4); ok && open {
			in := hopFromFrame(node, point, device, inner, false)
			in.Outer = &Outer{EthSrc: h.EthSrc, EthDst: h.EthDst, IPSrc: h.IPSrc, IPDst: h.IPDst, TTL: h.TTL,
				Proto: h.Proto, Sport: h.Sport, Dport: h.Dport, VNI: vni}
			return in
		}
	case *layers.SCTP:
		h.Sport, h.Dport = uint16(l4.SrcPort), uint16(l4.DstPort)
	}
	return h
}

// vxlanPayload opens a UDP datagram as VXLAN (package vxlan's rules).
func vxlanPayload(udp *layers.UDP) (vni uint32, inner []byte, ok bool) {
	return vxlan.Payload(uint16(udp.DstPort), udp.Payload)
}

// ProtoName is the lower-case name Hop.Proto uses for an IP protocol
// ("tcp", "udp", "icmp"; the number for protocols without a name).
func ProtoName(p layers.IPProtocol) string {
	switch p {
	case layers.IPProtocolTCP:
		return "tcp"
	case layers.IPProtocolUDP:
		return "udp"
	case layers.IPProtocolICMPv4:
		return "icmp"
	case layers.IPProtocolICMPv6:
		return "icmpv6"
	case layers.IPProtocolSCTP:
		return "sctp"
	}
	return strconv.Itoa(int(p))
}

// FlowKey identifies one IPv4 packet across NAT: its protocol, both
// endpoints as observed, and the IPv4 ID (which NAT leaves alone). For ICMP
// echo the echo identifier stands in for both ports.
type FlowKey struct {
	// Proto is the IP protocol number.
	Proto uint8
	// Src is the source address and port.
	Src netip.AddrPort
	// Dst is the destination address and port.
	Dst netip.AddrPort
	// IPID is the IPv4 identification field.
	IPID uint16
}

// String renders the key as "tcp 10.1.1.10:40000 > 10.224.1.1:80 id 0x1234".
func (k FlowKey) String() string {
	return fmt.Sprintf("%s %s > %s id 0x%04x", ProtoName(layers.IPProtocol(k.Proto)), k.Src, k.Dst, k.IPID)
}

// KeyFromFrame extracts the flow key of an Ethernet frame carrying IPv4; for
// VXLAN it is the inner packet's key (VXLAN as HopFromPacket reads it, so
// that a hop and its key always describe the same packet). ok is false for anything else, and
// for a frame whose IPv4 header is cut short.
func KeyFromFrame(frame []byte) (k FlowKey, ok bool) {
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.DecodeOptions{Lazy: true, NoCopy: true})
	for depth := 0; depth < 2; depth++ {
		ip, isV4 := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if !isV4 {
			return FlowKey{}, false
		}
		if udp, isUDP := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP); isUDP && depth == 0 {
			if _, inner, ok := vxlanPayload(udp); ok {
				pkt = gopacket.NewPacket(inner, layers.LayerTypeEthernet, gopacket.DecodeOptions{Lazy: true, NoCopy: true})
				continue
			}
		}
		src, okSrc := netip.AddrFromSlice(ip.SrcIP.To4())
		dst, okDst := netip.AddrFromSlice(ip.DstIP.To4())
		if !okSrc || !okDst {
			return FlowKey{}, false // the IPv4 header is cut short
		}
		var sp, dp uint16
		switch l4 := pkt.TransportLayer().(type) {
		case *layers.TCP:
			sp, dp = uint16(l4.SrcPort), uint16(l4.DstPort)
		case *layers.UDP:
			sp, dp = uint16(l4.SrcPort), uint16(l4.DstPort)
		case *layers.SCTP:
			sp, dp = uint16(l4.SrcPort), uint16(l4.DstPort)
		}
		if icmp, isICMP := pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4); isICMP {
			sp, dp = icmp.Id, icmp.Id
		}
		return FlowKey{Proto: uint8(ip.Protocol), Src: netip.AddrPortFrom(src, sp), Dst: netip.AddrPortFrom(dst, dp), IPID: ip.Id}, true
	}
	return FlowKey{}, false
}
