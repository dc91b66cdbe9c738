package journey

import (
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// frame serializes an Ethernet/IPv4 frame around l4 (TCP or UDP) and payload.
func frame(t *testing.T, src, dst string, id uint16, l4 gopacket.SerializableLayer, payload []byte) []byte {
	t.Helper()
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Id: id, SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}
	switch l := l4.(type) {
	case *layers.TCP:
		ip.Protocol = layers.IPProtocolTCP
		l.SetNetworkLayerForChecksum(ip)
	case *layers.UDP:
		ip.Protocol = layers.IPProtocolUDP
		l.SetNetworkLayerForChecksum(ip)
	}
	buf := gopacket.NewSerializeBuffer()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		eth, ip, l4, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// vxlanFrame wraps inner in VXLAN (an 8-byte header, VNI 0x123) over UDP port.
func vxlanFrame(t *testing.T, port uint16, inner []byte) []byte {
	hdr := []byte{0x08, 0, 0, 0, 0, 0x01, 0x23, 0}
	return frame(t, "10.255.1.11", "10.255.2.12", 0x77, &layers.UDP{SrcPort: 54321, DstPort: layers.UDPPort(port)}, append(hdr, inner...))
}

// The flow key of a VXLAN frame is its inner packet's, on both VXLAN ports;
// a VXLAN payload too short for the header, or a VXLAN packet inside VXLAN,
// is not looked into further.
func TestKeyFromFrameVXLAN(t *testing.T) {
	inner := frame(t, "10.1.1.10", "10.1.2.40", 0x1234, &layers.TCP{SrcPort: 40000, DstPort: 8080, SYN: true}, nil)
	want := FlowKey{Proto: uint8(layers.IPProtocolTCP), Src: netip.MustParseAddrPort("10.1.1.10:40000"), Dst: netip.MustParseAddrPort("10.1.2.40:8080"), IPID: 0x1234}
	for _, port := range []uint16{4789, 8472} {
		if k, ok := KeyFromFrame(vxlanFrame(t, port, inner)); !ok || k != want {
			t.Errorf("VXLAN on %d: key %v %v, want %v", port, k, ok, want)
		}
	}
	outer := func(dport uint16) FlowKey {
		return FlowKey{Proto: uint8(layers.IPProtocolUDP), Src: netip.MustParseAddrPort("10.255.1.11:54321"),
			Dst: netip.AddrPortFrom(netip.MustParseAddr("10.255.2.12"), dport), IPID: 0x77}
	}
	short := frame(t, "10.255.1.11", "10.255.2.12", 0x77, &layers.UDP{SrcPort: 54321, DstPort: 8472}, []byte{8, 0, 0, 0, 0, 1, 0x23})
	if k, ok := KeyFromFrame(short); !ok || k != outer(8472) {
		t.Errorf("7-byte VXLAN payload: key %v %v, want the outer %v", k, ok, outer(8472))
	}
	// A VXLAN header and nothing behind it, or a header without the
	// valid-VNI flag: not VXLAN, the outer packet is the key.
	if k, ok := KeyFromFrame(vxlanFrame(t, 8472, nil)); !ok || k != outer(8472) {
		t.Errorf("header-only VXLAN: key %v %v, want the outer %v", k, ok, outer(8472))
	}
	noVNI := frame(t, "10.255.1.11", "10.255.2.12", 0x77, &layers.UDP{SrcPort: 54321, DstPort: 4789}, append([]byte{0xf7, 0, 0, 0, 0, 1, 0x23, 0}, inner...))
	if k, ok := KeyFromFrame(noVNI); !ok || k != outer(4789) {
		t.Errorf("VXLAN without the VNI flag: key %v %v, want the outer %v", k, ok, outer(4789))
	}
	// VXLAN in VXLAN: one level is decapsulated, the middle packet is the key.
	nested := vxlanFrame(t, 8472, vxlanFrame(t, 4789, inner))
	if k, ok := KeyFromFrame(nested); !ok || k != outer(4789) {
		t.Errorf("nested VXLAN: key %v %v, want the middle %v", k, ok, outer(4789))
	}
	// Another UDP port is not VXLAN.
	other := frame(t, "10.255.1.11", "10.255.2.12", 0x77, &layers.UDP{SrcPort: 54321, DstPort: 4790}, append([]byte{8, 0, 0, 0, 0, 1, 0x23, 0}, inner...))
	if k, ok := KeyFromFrame(other); !ok || k != outer(4790) {
		t.Errorf("UDP 4790: key %v %v, want the outer %v", k, ok, outer(4790))
	}
}
