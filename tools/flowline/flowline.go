package flowline

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/hoplab/hoplab/internal/journey"
	"github.com/hoplab/hoplab/topologies"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// TimeLayout is the time format of a flow line (Hubble's).
const TimeLayout = "Jan _2 15:04:05.000"

// Verdicts of a flow line.
const (
	// Forwarded is the verdict of a trace event: the program passed the
	// packet on.
	Forwarded = "FORWARDED"
	// Dropped is the verdict of a drop event; the reason follows it.
	Dropped = "DROPPED"
)

// Verdict returns the flow verdict of an event: DROPPED for drop events,
// FORWARDED for traces.
func Verdict(e nodeapi.DatapathEvent) string {
	if e.Type == nodeapi.EventDrop {
		return Dropped
	}
	return Forwarded
}

// Format renders one event as a flow line; top (may be nil) names pods and
// nodes and fills in identities the event does not carry.
func Format(e nodeapi.DatapathEvent, top *topologies.Topology) string {
	h := journey.HopFromPacket(e.Node, journey.Point(e.Point), e.Device, e.Frame)
	point := e.Point
	if c, ok := journey.Canonical(e.Point); ok {
		point = string(c)
	}
	src := peer(top, e.Node, h.IPSrc, h.Sport, e.SrcIdentity)
	dst := peer(top, e.Node, h.IPDst, h.Dport, e.DstIdentity)
	verdict := Verdict(e)
	var extra []string
	if verdict == Dropped {
		extra = append(extra, orDash(e.Reason))
	}
	if l4 := summary(e.Frame); l4 != "" {
		extra = append(extra, l4)
	}
	line := fmt.Sprintf("%s %s %s -> %s %s %s", e.Time.Format(TimeLayout), e.Node, src, dst, point, verdict)
	if len(extra) > 0 {
		line += " (" + strings.Join(extra, ", ") + ")"
	}
	return line
}

// peer renders "name:port (ID:n)".
func peer(top *topologies.Topology, node, ip string, port uint16, id uint32) string {
	name := orDash(ip)
	a, err := netip.ParseAddr(ip)
	if err == nil && top != nil {
		if p := top.PodByIP(a); p != nil {
			name = p.Name
		}
		for _, n := range top.Nodes {
			if n.Uplink.Address.Addr() == a {
				name = n.Name
			}
		}
		if id == 0 {
			id = uint32(resolve(top, node, a))
		}
	}
	if port != 0 {
		name = fmt.Sprintf("%s:%d", name, port)
	}
	return fmt.Sprintf("%s (ID:%d)", name, id)
}

// resolve is the identity node's ipcache gives a.
func resolve(top *topologies.Topology, node string, a netip.Addr) topologies.Identity {
	if top.Node(node) == nil {
		return 0
	}
	best, id := -1, topologies.IdentityWorld
	for _, e := range top.IPCache(node) {
		if e.Prefix.Contains(a) && e.Prefix.Bits() > best {
			best, id = e.Prefix.Bits(), e.Identity
		}
	}
	return id
}

// summary is Hubble's L4 summary of a frame: "TCP Flags: SYN, ACK",
// "UDP", "ICMPv4 EchoRequest".
func summary(frame []byte) string {
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Lazy)
	switch l := pkt.TransportLayer().(type) {
	case *layers.TCP:
		var f []string
		for _, x := range []struct {
			on   bool
			name string
		}{{l.SYN, "SYN"}, {l.ACK, "ACK"}, {l.FIN, "FIN"}, {l.RST, "RST"}, {l.PSH, "PSH"}, {l.URG, "URG"}} {
			if x.on {
				f = append(f, x.name)
			}
		}
		return "TCP Flags: " + strings.Join(f, ", ")
	case *layers.UDP:
		return "UDP"
	}
	if ic, ok := pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4); ok {
		return "ICMPv4 " + icmpName(ic.TypeCode.Type())
	}
	return ""
}

func icmpName(t uint8) string {
	switch t {
	case layers.ICMPv4TypeEchoRequest:
		return "EchoRequest"
	case layers.ICMPv4TypeEchoReply:
		return "EchoReply"
	case layers.ICMPv4TypeDestinationUnreachable:
		return "DestinationUnreachable"
	case layers.ICMPv4TypeTimeExceeded:
		return "TimeExceeded"
	}
	return fmt.Sprintf("type %d", t)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
