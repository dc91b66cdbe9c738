package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

var update = flag.Bool("update", false, "rewrite testdata/any-sll-journey.pcap")

// TestRealTcpdumpAnySLL reads a capture made by tcpdump -i any on a veth pair
// (testdata/capture-veth.sh) and checks the conversion of each packet.
func TestRealTcpdumpAnySLL(t *testing.T) {
	pkts, err := ReadFile(filepath.Join("testdata", "tcpdump-any-veth-sll.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	if len(pkts) != 8 {
		t.Fatalf("%d packets, want 8", len(pkts))
	}
	mac := net.HardwareAddr{0x0a, 0xd6, 0x5b, 0x25, 0xab, 0x59}
	for _, p := range pkts {
		if p.LinkType != LinkTypeLinuxSLL || !p.Flags.Has(L2Synthesized) || !p.Replayable() || p.Flags.Has(Duplicate) {
			t.Errorf("packet %d: link %d flags %v refusal %v", p.Index, p.LinkType, p.Flags, p.Refusal)
		}
	}
	if !pkts[0].Flags.Has(NonIP) {
		t.Errorf("packet 0 (ARP request) flags %v", pkts[0].Flags)
	}
	syn := gopacket.NewPacket(pkts[4].Data, layers.LayerTypeEthernet, gopacket.Default)
	eth, _ := syn.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	tcp, _ := syn.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if eth == nil || tcp == nil || !bytes.Equal(eth.SrcMAC, mac) || !tcp.SYN || tcp.DstPort != 8080 {
		t.Fatalf("packet 4 is not the SYN from %v: %v", mac, syn)
	}
}

// TestRealTcpdumpAnySLL2Snaplen reads the SLL2 capture made with -s 70: the
// SYN's TCP options are cut (refused), the ICMP errors lose only payload.
func TestRealTcpdumpAnySLL2Snaplen(t *testing.T) {
	pkts, err := ReadFile(filepath.Join("testdata", "tcpdump-any-veth-sll2-snap70.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	if len(pkts) != 6 {
		t.Fatalf("%d packets, want 6", len(pkts))
	}
	for _, p := range pkts {
		if p.LinkType != LinkTypeLinuxSLL2 || p.IfIndex == 0 {
			t.Errorf("packet %d: link type %d ifindex %d", p.Index, p.LinkType, p.IfIndex)
		}
	}
	if !errors.Is(pkts[2].Refusal, ErrHeadersCut) || !pkts[2].Flags.Has(Truncated) {
		t.Errorf("SYN cut in its options: flags %v refusal %v", pkts[2].Flags, pkts[2].Refusal)
	}
	if p := pkts[1]; !p.Flags.Has(Truncated) || !p.Replayable() || len(p.Data) != 70-20+14 {
		t.Errorf("ICMP unreachable: flags %v refusal %v len %d", p.Flags, p.Refusal, len(p.Data))
	}
}

// sllJourney is what `tcpdump -i any` on node1 shows for pod1 → 10.224.1.1:80
// with the backend on node2: the SYN entering from pod1's veth, leaving bond0
// DNATed and with TTL 63, the SYN-ACK arriving on bond0 and leaving on the
// veth reverse-NATed, plus an ARP request on bond0 and a VLAN-tagged frame.
func sllJourney(t testing.TB) []record {
	pod1 := net.HardwareAddr{0x0a, 0x58, 0x0a, 0x01, 0x01, 0x0a}
	bond := net.HardwareAddr{0x02, 0x48, 0x00, 0x00, 0x01, 0x0b}
	tor := net.HardwareAddr{0x02, 0x48, 0x00, 0x00, 0xff, 0x01}
	pod4 := net.IP{10, 1, 2, 40}
	seg := func(src, dst net.IP, sp, dp layers.TCPPort, ttl uint8, id uint16, syn, ack bool) []byte {
		ip := &layers.IPv4{Version: 4, IHL: 5, TTL: ttl, Id: id, Flags: layers.IPv4DontFragment, Protocol: layers.IPProtocolTCP, SrcIP: src, DstIP: dst}
		tcp := &layers.TCP{SrcPort: sp, DstPort: dp, Seq: 1000, SYN: syn, ACK: ack, Window: 64240}
		if ack {
			tcp.Ack = 1001
		}
		return serialize(t, ip, tcp)
	}
	const (
		pktHost     = 0
		pktOutgoing = 4
	)
	synIn := append(sllHeader(pktHost, arphrdEther, pod1, etherTypeIPv4), seg(ipPod1, ipVIP, 40000, 80, 64, 0x4d01, true, false)...)
	synOut := append(sllHeader(pktOutgoing, arphrdEther, bond, etherTypeIPv4), seg(ipPod1, pod4, 40000, 8080, 63, 0x4d01, true, false)...)
	synAckIn := append(sllHeader(pktHost, arphrdEther, tor, etherTypeIPv4), seg(pod4, ipPod1, 8080, 40000, 62, 0, true, true)...)
	synAckOut := append(sllHeader(pktOutgoing, arphrdEther, macLXC, etherTypeIPv4), seg(ipVIP, ipPod1, 80, 40000, 61, 0, true, true)...)
	arp := serialize(t, &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
		Operation: layers.ARPRequest, SourceHwAddress: bond, SourceProtAddress: net.IP{10, 255, 1, 11}, DstHwAddress: make([]byte, 6), DstProtAddress: net.IP{10, 255, 1, 1}})
	arpOut := append(sllHeader(pktOutgoing, arphrdEther, bond, 0x0806), arp...)
	// libpcap re-inserts the VLAN tag that the kernel stripped.
	tag := binary.BigEndian.AppendUint16(nil, 42)
	tag = binary.BigEndian.AppendUint16(tag, etherTypeIPv4)
	vlan := append(append(sllHeader(pktOutgoing, arphrdEther, bond, etherTypeVLAN), tag...), seg(ipPod1, pod4, 40001, 8080, 63, 0x4d02, true, false)...)
	return []record{{data: synIn}, {data: synOut}, {data: synAckIn}, {data: synAckOut}, {data: arpOut}, {data: vlan}}
}

// TestGeneratedSLLSample checks testdata/any-sll-journey.pcap, a committed
// `tcpdump -i any`-style capture written by sllJourney (-update rewrites it).
func TestGeneratedSLLSample(t *testing.T) {
	path := filepath.Join("testdata", "any-sll-journey.pcap")
	want := writePcap(t, LinkTypeLinuxSLL, sllJourney(t)...)
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale; run go test ./internal/capture -run TestGeneratedSLLSample -update", path)
	}
	pkts, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pkts {
		if !p.Replayable() || !p.Flags.Has(L2Synthesized) {
			t.Errorf("packet %d: flags %v refusal %v", p.Index, p.Flags, p.Refusal)
		}
	}
	if p := pkts[5]; !p.Flags.Has(VLANStripped) || len(p.VLANs) != 1 || p.VLANs[0] != 42 {
		t.Errorf("VLAN packet: flags %v vlans %v", p.Flags, p.VLANs)
	}
	if !pkts[4].Flags.Has(NonIP) {
		t.Errorf("ARP flags %v", pkts[4].Flags)
	}
	// tcpdump -i any saw the SYN on the veth and again, DNATed, on bond0;
	// likewise the SYN-ACK on bond0 and, reverse-NATed, on the veth.
	for i, want := range []int{-1, 0, -1, 2, -1, -1} {
		if got := pkts[i].Flags.Has(Duplicate); got != (want >= 0) || (got && pkts[i].DuplicateOf != want) {
			t.Errorf("packet %d: duplicate %v of %d, want of %d", i, got, pkts[i].DuplicateOf, want)
		}
	}
}
