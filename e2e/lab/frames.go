package lab

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/hoplab/hoplab/internal/journey"
	"github.com/hoplab/hoplab/vmtest/cluster"
)

// Packet describes a frame a pod sends, for specs that need a packet no
// fixture has: From is the sending pod or external host, To the destination address and
// port, Proto "tcp" (a SYN) or "udp", Sport the source port, ID the IPv4 ID
// that tells its observations apart (journey.Merge), TTL the IPv4 TTL (0
// means 64).
type Packet struct {
	From  string
	To    netip.AddrPort
	Proto string
	Sport uint16
	ID    uint16
	TTL   uint8
}

// Frame builds p as the sender's eth0 sends it (pod MAC → its lxc MAC; an
// external host's MAC → the router's end of its veth), injected there.
func (l *Lab) Frame(p Packet) (cluster.Frame, error) {
	srcMAC, dstMAC, srcIP, point, err := l.sender(p.From)
	if err != nil {
		return cluster.Frame{}, err
	}
	ttl := p.TTL
	if ttl == 0 {
		ttl = 64
	}
	eth := &layers.Ethernet{SrcMAC: srcMAC, DstMAC: dstMAC, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: ttl, Id: p.ID, Flags: layers.IPv4DontFragment,
		SrcIP: srcIP.AsSlice(), DstIP: p.To.Addr().AsSlice()}
	var l4 gopacket.SerializableLayer
	switch p.Proto {
	case "tcp", "":
		ip.Protocol = layers.IPProtocolTCP
		tcp := &layers.TCP{SrcPort: layers.TCPPort(p.Sport), DstPort: layers.TCPPort(p.To.Port()), Seq: 1000, SYN: true, Window: 64240}
		if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
			return cluster.Frame{}, fmt.Errorf("lab: frame: %w", err)
		}
		l4 = tcp
	case "udp":
		ip.Protocol = layers.IPProtocolUDP
		udp := &layers.UDP{SrcPort: layers.UDPPort(p.Sport), DstPort: layers.UDPPort(p.To.Port())}
		if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
			return cluster.Frame{}, fmt.Errorf("lab: frame: %w", err)
		}
		l4 = udp
	default:
		return cluster.Frame{}, fmt.Errorf("lab: frame: protocol %q (want tcp or udp)", p.Proto)
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	layersToWrite := []gopacket.SerializableLayer{eth, ip, l4}
	if p.Proto == "udp" {
		layersToWrite = append(layersToWrite, gopacket.Payload("hoplab"))
	}
	if err := gopacket.SerializeLayers(buf, opts, layersToWrite...); err != nil {
		return cluster.Frame{}, fmt.Errorf("lab: frame: %w", err)
	}
	return cluster.Frame{Data: buf.Bytes(), Point: point}, nil
}

// sender returns the MACs, address and injection point of a sending pod or
// external host.
func (l *Lab) sender(name string) (src, dst net.HardwareAddr, ip netip.Addr, point cluster.InjectPoint, err error) {
	if pod := l.Topology.Pod(name); pod != nil {
		return pod.MAC.HardwareAddr(), pod.LXCMAC.HardwareAddr(), pod.IP, cluster.InjectPoint{Kind: cluster.AtPod, Pod: pod.Name, Node: pod.Node}, nil
	}
	if e := l.Topology.External(name); e != nil {
		point, err = cluster.ParsePoint(l.Topology, name)
		return e.MAC.HardwareAddr(), e.RouterMAC.HardwareAddr(), e.IP, point, err
	}
	return nil, nil, netip.Addr{}, point, fmt.Errorf("lab: frame: no pod or external host %q in %s", name, l.Topology.Name)
}

// ReplayOne builds p, replays it and returns its journey.
func (l *Lab) ReplayOne(ctx context.Context, p Packet) (journey.Packet, error) {
	f, err := l.Frame(p)
	if err != nil {
		return journey.Packet{}, err
	}
	rep, err := l.Replay(ctx, []cluster.Frame{f}, cluster.ReplayOptions{})
	if err != nil {
		return journey.Packet{}, err
	}
	if len(rep.Packets) != 1 {
		return journey.Packet{}, fmt.Errorf("lab: replay of one frame gave %d journeys", len(rep.Packets))
	}
	return rep.Packets[0], nil
}
