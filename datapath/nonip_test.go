package datapath

import (
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

func arpRequest(t *testing.T) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	must(t, gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true},
		&layers.Ethernet{SrcMAC: pod1.podMAC(), DstMAC: layers.EthernetBroadcast, EthernetType: layers.EthernetTypeARP},
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: layers.ARPRequest, SourceHwAddress: pod1.podMAC(), SourceProtAddress: pod1.addr().AsSlice(),
			DstHwAddress: make([]byte, 6), DstProtAddress: []byte{10, 1, 1, 1}}))
	return append([]byte(nil), buf.Bytes()...)
}

func ipv6Packet(t *testing.T) []byte {
	t.Helper()
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP,
		SrcIP: net.ParseIP("fd00::10"), DstIP: net.ParseIP("fd00::20")}
	tcp := &layers.TCP{SrcPort: 40000, DstPort: 80, SYN: true}
	_ = tcp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	must(t, gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		&layers.Ethernet{SrcMAC: pod1.podMAC(), DstMAC: pod1.lxcMAC(), EthernetType: layers.EthernetTypeIPv6}, ip, tcp))
	return append([]byte(nil), buf.Bytes()...)
}

// ARP and IPv6 pass every attached program untouched, without events.
func TestNonIPv4PassesUntouched(t *testing.T) {
	dp := loadDatapath(t)
	events := openEvents(t, dp)
	for _, frame := range []struct {
		name string
		data []byte
	}{{"ARP", arpRequest(t)}, {"IPv6", ipv6Packet(t)}, {"an IPv4 datagram under another EtherType", otherEtherType(t)}} {
		for name, prog := range map[string]func() result{
			"from-container": func() result { return run(t, dp.FromContainer, frame.data, nil) },
			"from-netdev":    func() result { return run(t, dp.FromNetdev, frame.data, nil) },
			"to-netdev":      func() result { return run(t, dp.ToNetdev, frame.data, nil) },
			"to-container":   func() result { return run(t, dp.ToContainer, frame.data, nil) },
		} {
			t.Logf("%s through %s", frame.name, name)
			res := prog()
			res.assertVerdict(t, tcActOK)
			res.assertPacket(t, frame.data)
		}
	}
	if evs := drain(t, events); len(evs) != 0 {
		t.Errorf("events for non-IPv4: %v", evs)
	}
}

// otherEtherType is a valid IPv4 TCP packet from pod1 framed with the local
// experimental EtherType 0x88b5: only the EtherType says it is not IPv4.
func otherEtherType(t *testing.T) []byte {
	b := fromPod(pod1, pod4IP, 8080).bytes(t)
	b[12], b[13] = 0x88, 0xb5
	return b
}
