package capture

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// flowFrame builds an Ethernet/IPv4 frame of proto between the given
// endpoints with a fixed IP ID, TTL, TCP sequence and payload, as scapy
// and trafgen send them.
func flowFrame(t testing.TB, proto layers.IPProtocol, src string, sport uint16, dst string, dport uint16, ttl uint8) []byte {
	return flowFrameWith(t, proto, src, sport, dst, dport, ttl, "same payload")
}

// flowFrameWith is flowFrame with the given payload.
func flowFrameWith(t testing.TB, proto layers.IPProtocol, src string, sport uint16, dst string, dport uint16, ttl uint8, data string) []byte {
	eth := &layers.Ethernet{SrcMAC: macPod1, DstMAC: macLXC, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: ttl, Id: 0, Flags: layers.IPv4DontFragment, Protocol: proto, SrcIP: net.ParseIP(src), DstIP: net.ParseIP(dst)}
	payload := gopacket.Payload(data)
	switch proto {
	case layers.IPProtocolTCP:
		return serialize(t, eth, ip, &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), Seq: 1000, SYN: true, Window: 64240}, payload)
	case layers.IPProtocolUDP:
		return serialize(t, eth, ip, &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}, payload)
	}
	icmp := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0), Id: sport, Seq: 1}
	return serialize(t, eth, ip, icmp, payload)
}

// TestSightingsKeepTheirEndpoints: a second packet is another sighting of
// the first only if one side (address and port) is unchanged and a side
// whose address is unchanged kept its port; ICMP's identifier counts as
// its port.
func TestSightingsKeepTheirEndpoints(t *testing.T) {
	tcp, udp, icmp := layers.IPProtocolTCP, layers.IPProtocolUDP, layers.IPProtocolICMPv4
	const client, vip, backend, node = "10.1.1.10", "10.96.0.10", "10.1.2.20", "10.255.1.11"
	for _, tc := range []struct {
		name          string
		first, second []byte
		dup           bool
	}{
		{"DNAT: destination address and port rewritten", flowFrame(t, tcp, client, 40000, vip, 80, 64), flowFrame(t, tcp, client, 40000, backend, 8080, 63), true},
		{"SNAT: source address and port rewritten", flowFrame(t, udp, client, 40000, vip, 53, 64), flowFrame(t, udp, node, 61000, vip, 53, 63), true},
		{"forwarded unchanged, TTL lower", flowFrame(t, tcp, client, 40000, backend, 8080, 64), flowFrame(t, tcp, client, 40000, backend, 8080, 62), true},
		{"two SYNs to two ports of one server", flowFrame(t, tcp, client, 40000, backend, 80, 64), flowFrame(t, tcp, client, 40000, backend, 81, 64), false},
		{"two UDP datagrams, ID 0, to two ports", flowFrame(t, udp, client, 40000, backend, 53, 64), flowFrame(t, udp, client, 40000, backend, 5353, 64), false},
		{"same server port from two client ports", flowFrame(t, udp, client, 40000, backend, 53, 64), flowFrame(t, udp, client, 40001, backend, 53, 64), false},
		{"source port changed, destination rewritten", flowFrame(t, tcp, client, 40000, vip, 80, 64), flowFrame(t, tcp, client, 40001, backend, 8080, 63), false},
		{"both addresses rewritten", flowFrame(t, tcp, client, 40000, vip, 80, 64), flowFrame(t, tcp, node, 40000, backend, 80, 63), false},
		{"TTL grew", flowFrame(t, tcp, client, 40000, backend, 80, 63), flowFrame(t, tcp, client, 40000, backend, 80, 64), false},
		{"ICMP echo, destination rewritten", flowFrame(t, icmp, client, 7, vip, 0, 64), flowFrame(t, icmp, client, 7, backend, 0, 63), true},
		{"ICMP echoes with two identifiers", flowFrame(t, icmp, client, 7, backend, 0, 64), flowFrame(t, icmp, client, 8, backend, 0, 64), false},
	} {
		pkts := []Packet{
			{Index: 0, Timestamp: testTime, Data: tc.first, OrigLen: len(tc.first), Interface: 0, LinkType: LinkTypeEthernet},
			{Index: 1, Timestamp: testTime.Add(time.Millisecond), Data: tc.second, OrigLen: len(tc.second), Interface: 1, LinkType: LinkTypeEthernet},
		}
		for i := range pkts {
			if err := checkHeaders(&pkts[i]); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
		}
		MarkDuplicates(pkts)
		if got := pkts[1].Flags.Has(Duplicate); got != tc.dup {
			t.Errorf("%s: duplicate %v, want %v", tc.name, got, tc.dup)
		}
	}
}

// TestMarkDuplicatesOutOfOrderTimestamps: in a merged capture whose
// timestamps go back, a packet pairs with a later-captured one within the
// window, and not with one that is more than the window older.
func TestMarkDuplicatesOutOfOrderTimestamps(t *testing.T) {
	f := ethTCP(t, 4)
	mk := func(i int, ts time.Duration, ifc int) Packet {
		p := Packet{Index: i, Timestamp: testTime.Add(ts), Data: append([]byte(nil), f...), OrigLen: len(f), Interface: ifc}
		if err := checkHeaders(&p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pkts := []Packet{mk(0, 0, 0), mk(1, time.Second, 1), mk(2, 300*time.Millisecond, 2)}
	MarkDuplicates(pkts)
	if pkts[1].Flags.Has(Duplicate) {
		t.Error("packet 1, 1 s after packet 0, paired with it")
	}
	if !pkts[2].Flags.Has(Duplicate) || pkts[2].DuplicateOf != 1 {
		t.Errorf("packet 2 (300 ms, after packet 1 at 1 s): %v of %d, want a duplicate of 1", pkts[2].Flags, pkts[2].DuplicateOf)
	}
}

// BenchmarkMarkDuplicates100k marks 100,000 packets of 50,000 flows, each
// seen twice (two interfaces): linear time keeps it in milliseconds.
func BenchmarkMarkDuplicates100k(b *testing.B) {
	pkts := make([]Packet, 0, 100_000)
	for i := range 50_000 {
		f := flowFrame(b, layers.IPProtocolTCP, "10.1.1.10", uint16(10000+i%50000), fmt.Sprintf("10.96.%d.%d", i/250%250, i%250), 80, 64)
		for ifc := range 2 {
			p := Packet{Index: len(pkts), Timestamp: testTime.Add(time.Duration(i) * time.Millisecond), Data: f, OrigLen: len(f), Interface: ifc}
			if err := checkHeaders(&p); err != nil {
				b.Fatal(err)
			}
			pkts = append(pkts, p)
		}
	}
	b.ResetTimer()
	for range b.N {
		for i := range pkts {
			pkts[i].Flags &^= Duplicate
		}
		MarkDuplicates(pkts)
	}
	b.StopTimer()
	dups := 0
	for _, p := range pkts {
		if p.Flags.Has(Duplicate) {
			dups++
		}
	}
	if dups != 50_000 {
		b.Fatalf("%d duplicates, want 50000", dups)
	}
}

// BenchmarkReadFile100k reads a 100,000-packet pcap (50,000 flows, each
// seen on the pod veth and, DNATed, once more): reading, checking and
// duplicate marking together.
func BenchmarkReadFile100k(b *testing.B) {
	recs := make([]record, 0, 100_000)
	for i := range 50_000 {
		dst := fmt.Sprintf("10.96.%d.%d", i/250%250, i%250)
		recs = append(recs, record{data: flowFrame(b, layers.IPProtocolTCP, "10.1.1.10", uint16(10000+i%50000), dst, 80, 64)})
		recs = append(recs, record{data: flowFrame(b, layers.IPProtocolTCP, "10.1.1.10", uint16(10000+i%50000), "10.1.2.20", 8080, 63)})
	}
	path := writeTemp(b, "big.pcap", writePcap(b, uint32(layers.LinkTypeLinuxSLL), slled(recs)...))
	b.ResetTimer()
	for range b.N {
		pkts, err := ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		dups := 0
		for _, p := range pkts {
			if p.Flags.Has(Duplicate) {
				dups++
			}
		}
		if len(pkts) != 100_000 || dups != 50_000 {
			b.Fatalf("%d packets, %d duplicates; want 100000 and 50000", len(pkts), dups)
		}
	}
}

// slled turns Ethernet records into Linux cooked (SLL v1) records, as
// `tcpdump -i any` writes them.
func slled(recs []record) []record {
	out := make([]record, len(recs))
	for i, r := range recs {
		out[i] = record{data: append(sllHeader(0, 1, r.data[6:12], 0x0800), r.data[14:]...)}
	}
	return out
}

// TestBadIPChecksumFlagged: a wrong IPv4 header checksum (options
// included in the sum) is flagged; the packet stays replayable.
func TestBadIPChecksumFlagged(t *testing.T) {
	good := ipv4(6, 24+8, 17, 0, make([]byte, 8))
	good[20], good[21] = 0x94, 0x04 // router alert option, checksummed
	_, sum := IPv4HeaderChecksum(good[:24])
	good[10], good[11] = byte(sum>>8), byte(sum)
	bad := append([]byte(nil), good...)
	bad[11] ^= 0x01
	for _, tc := range []struct {
		name string
		l3   []byte
		want bool
	}{{"correct", good, false}, {"one bit off", bad, true}} {
		f := frameOf(0x0800, tc.l3)
		p := Packet{Data: f, OrigLen: len(f)}
		if err := checkHeaders(&p); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if p.Flags.Has(BadIPChecksum) != tc.want {
			t.Errorf("%s: flags %v", tc.name, p.Flags)
		}
	}
}

// sightings turns frames into checked packets, one interface each, at the
// given times.
func sightings(t *testing.T, frames [][]byte, at []time.Duration, ifcs []int) []Packet {
	t.Helper()
	pkts := make([]Packet, len(frames))
	for i, f := range frames {
		pkts[i] = Packet{Index: i, Timestamp: testTime.Add(at[i]), Data: f, OrigLen: len(f), Interface: ifcs[i], LinkType: LinkTypeEthernet}
		if err := checkHeaders(&pkts[i]); err != nil {
			t.Fatal(err)
		}
	}
	MarkDuplicates(pkts)
	return pkts
}

// TestEarliestSightingWinsAcrossSides: a packet that matches an earlier
// packet by its kept source and a later one by its kept destination is a
// sighting of the earlier one.
func TestEarliestSightingWinsAcrossSides(t *testing.T) {
	tcp := layers.IPProtocolTCP
	a := flowFrame(t, tcp, "10.1.1.10", 40000, "10.96.0.10", 80, 64)    // client → VIP
	b := flowFrame(t, tcp, "10.255.1.11", 61000, "10.1.2.20", 8080, 64) // node → backend (not a sighting of a)
	p := flowFrame(t, tcp, "10.1.1.10", 40000, "10.1.2.20", 8080, 63)   // client → backend: a DNATed, or b un-SNATed
	pkts := sightings(t, [][]byte{a, b, p}, []time.Duration{0, time.Millisecond, 2 * time.Millisecond}, []int{0, 1, 2})
	if pkts[1].Flags.Has(Duplicate) {
		t.Fatal("b, with both sides changed, paired with a")
	}
	if !pkts[2].Flags.Has(Duplicate) || pkts[2].DuplicateOf != 0 {
		t.Errorf("p: %v of %d, want a duplicate of packet 0, the earliest match", pkts[2].Flags, pkts[2].DuplicateOf)
	}
}

// TestForgottenSightingStaysForgotten: a sighting that left the window is
// not found again by either of its sides, even when a later packet's
// timestamp goes back into its window.
func TestForgottenSightingStaysForgotten(t *testing.T) {
	udp := layers.IPProtocolUDP
	// Empty datagrams: nothing but the endpoints tells them apart.
	a := flowFrameWith(t, udp, "10.1.1.10", 40000, "10.1.2.20", 53, 64, "")
	other := flowFrameWith(t, udp, "10.1.1.30", 1, "10.1.2.30", 2, 64, "")
	snat := flowFrameWith(t, udp, "10.255.1.11", 61000, "10.1.2.20", 53, 63, "") // a with its source rewritten
	pkts := sightings(t, [][]byte{a, other, snat}, []time.Duration{0, time.Second, 100 * time.Millisecond}, []int{0, 0, 1})
	if pkts[2].Flags.Has(Duplicate) {
		t.Errorf("packet 2 paired with packet %d, which the window had forgotten at packet 1", pkts[2].DuplicateOf)
	}
}

// TestTooOldSightingInWindowOrder: in a capture whose timestamps go back, a
// sighting still held (a newer packet heads the window) is not paired when
// it is more than the window older than the packet.
func TestTooOldSightingInWindowOrder(t *testing.T) {
	tcp := layers.IPProtocolTCP
	head := flowFrame(t, tcp, "10.1.1.30", 1, "10.1.2.30", 2, 64)
	a := flowFrame(t, tcp, "10.1.1.10", 40000, "10.96.0.10", 80, 64)
	dnat := flowFrame(t, tcp, "10.1.1.10", 40000, "10.1.2.20", 8080, 63)
	pkts := sightings(t, [][]byte{head, a, dnat}, []time.Duration{500 * time.Millisecond, 0, 400 * time.Millisecond}, []int{0, 0, 1})
	if pkts[2].Flags.Has(Duplicate) {
		t.Errorf("packet 2 (400 ms) paired with packet %d (0 ms), 400 ms apart", pkts[2].DuplicateOf)
	}
}

// TestIPv4HeaderChecksumValues compares IPv4HeaderChecksum with gopacket's
// on headers whose sums carry several times, and on one whose words sum
// to exactly 0xffff (checksum 0).
func TestIPv4HeaderChecksumValues(t *testing.T) {
	for _, tc := range []struct{ src, dst string }{
		{"10.1.1.10", "10.96.0.10"}, {"255.255.255.255", "255.255.255.254"}, {"192.168.200.250", "172.31.255.1"},
	} {
		f := flowFrame(t, layers.IPProtocolUDP, tc.src, 1, tc.dst, 2, 255)
		got, want := IPv4HeaderChecksum(f[14:34])
		if got != want {
			t.Errorf("%s -> %s: field %04x, computed %04x", tc.src, tc.dst, got, want)
		}
	}
	// 0x4500 + 0x0014 + 0xbaeb = 0xffff: the checksum is 0.
	hdr := []byte{0x45, 0, 0, 0x14, 0, 0, 0, 0, 0xba, 0xeb, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	if got, want := IPv4HeaderChecksum(hdr); got != 0 || want != 0 {
		t.Errorf("sum 0xffff: field %04x, computed %04x; want 0 and 0", got, want)
	}
}
