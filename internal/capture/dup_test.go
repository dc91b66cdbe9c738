package capture

import (
	"testing"
	"time"
)

func TestMarkDuplicatesWindowAndInterfaces(t *testing.T) {
	f := ethTCP(t, 4)
	mk := func(i int, ts time.Duration, ifc int) Packet {
		p := Packet{Index: i, Timestamp: testTime.Add(ts), Data: append([]byte(nil), f...), OrigLen: len(f), Interface: ifc}
		if err := checkHeaders(&p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pkts := []Packet{mk(0, 0, 0), mk(1, time.Millisecond, 1), mk(2, time.Second, 2), mk(3, time.Second+time.Millisecond, 2)}
	MarkDuplicates(pkts)
	if !pkts[1].Flags.Has(Duplicate) || pkts[1].DuplicateOf != 0 {
		t.Errorf("packet 1 (other interface, 1 ms later): %v of %d", pkts[1].Flags, pkts[1].DuplicateOf)
	}
	if pkts[2].Flags.Has(Duplicate) {
		t.Error("packet 2 is outside the window")
	}
	if pkts[3].Flags.Has(Duplicate) {
		t.Error("packet 3 was seen on the same interface as packet 2 (a retransmission, not a sighting)")
	}
}

// The sighting key: which packets have one, and which bytes of the L4
// header and payload it keeps (ports and checksums may change in NAT).
func TestSightingOf(t *testing.T) {
	pkt := func(l3 []byte) Packet {
		f := frameOf(0x0800, l3)
		return Packet{Data: f, OrigLen: len(f)}
	}
	tcp := tcpHeader(5)
	for i := range tcp {
		tcp[i] = byte(i + 1)
	}
	tcp[12] = 0x50
	payload := []byte("pay")
	for _, tc := range []struct {
		name string
		p    Packet
		ok   bool
		l4   []byte
	}{
		{"TCP: seq, ack, offset/flags, window, payload", pkt(ipv4(5, 20+20+3, 6, 0, append(append([]byte(nil), tcp...), payload...))), true,
			append(append([]byte(nil), tcp[4:16]...), payload...)},
		{"TCP with 19 bytes", pkt(ipv4(5, 39, 6, 0, tcp[:19])), false, nil},
		{"UDP: payload", pkt(ipv4(5, 31, 17, 0, append([]byte{1, 2, 3, 4, 5, 6, 7, 8}, payload...))), true, payload},
		{"UDP with 8 bytes", pkt(ipv4(5, 28, 17, 0, []byte{1, 2, 3, 4, 5, 6, 7, 8})), true, []byte{}},
		{"UDP with 7 bytes", pkt(ipv4(5, 27, 17, 0, []byte{1, 2, 3, 4, 5, 6, 7})), false, nil},
		{"ICMP: type, code, id, sequence, payload", pkt(ipv4(5, 31, 1, 0, append([]byte{8, 0, 0xaa, 0xbb, 0, 7, 0, 1}, payload...))), true,
			append([]byte{8, 0, 0, 7, 0, 1}, payload...)},
		{"ICMP with 8 bytes", pkt(ipv4(5, 28, 1, 0, []byte{8, 0, 0xaa, 0xbb, 0, 7, 0, 1})), true, []byte{8, 0, 0, 7, 0, 1}},
		{"ICMP with 7 bytes", pkt(ipv4(5, 27, 1, 0, []byte{8, 0, 0, 0, 0, 7, 0})), false, nil},
		{"other protocol: everything", pkt(ipv4(5, 23, 47, 0, payload)), true, payload},
		{"bare IPv4 header, total length 20", pkt(ipv4(5, 20, 47, 0, nil)), true, []byte{}},
		{"total length below the header", pkt(ipv4(6, 20, 47, 0, make([]byte, 4))), false, nil},
		{"total length past the frame: the frame", pkt(ipv4(5, 200, 47, 0, payload)), true, payload},
		{"19 bytes of IPv4", Packet{Data: frameOf(0x0800, make([]byte, 19)), OrigLen: 33}, false, nil},
		{"refused", Packet{Data: frameOf(0x0800, ipv4(5, 23, 47, 0, payload)), OrigLen: 37, Refusal: ErrBadHeader}, false, nil},
		{"IPv6", Packet{Data: frameOf(0x86dd, make([]byte, 40)), OrigLen: 54, Flags: IPv6}, false, nil},
		{"fragment", Packet{Data: frameOf(0x0800, ipv4(5, 23, 47, 0x2000, payload)), OrigLen: 37, Flags: IPFragment}, false, nil},
	} {
		s, ok := sightingOf(tc.p)
		if ok != tc.ok || ok && string(s.l4) != string(tc.l4) {
			t.Errorf("%s: ok %v l4 %x, want %v %x", tc.name, ok, s.l4, tc.ok, tc.l4)
		}
	}
}

// Sightings exactly DuplicateWindow apart still pair; an SLL v1 packet
// pairs with another SLL v1 packet on the same (unknown) interface, not
// with an Ethernet one; a third sighting points at the first.
func TestMarkDuplicatesEdges(t *testing.T) {
	f := ethTCP(t, 4)
	mk := func(i int, ts time.Duration, ifc int, lt uint32) Packet {
		p := Packet{Index: i, Timestamp: testTime.Add(ts), Data: append([]byte(nil), f...), OrigLen: len(f), Interface: ifc, LinkType: lt}
		if err := checkHeaders(&p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pkts := []Packet{mk(0, 0, 0, 0), mk(1, DuplicateWindow, 1, 0), mk(2, DuplicateWindow+time.Millisecond, 2, 0)}
	MarkDuplicates(pkts)
	if !pkts[1].Flags.Has(Duplicate) || pkts[1].DuplicateOf != 0 {
		t.Errorf("exactly a window apart: %v of %d", pkts[1].Flags, pkts[1].DuplicateOf)
	}
	if !pkts[2].Flags.Has(Duplicate) || pkts[2].DuplicateOf != 0 {
		t.Errorf("third sighting: %v of %d, want a duplicate of 0", pkts[2].Flags, pkts[2].DuplicateOf)
	}
	mixed := []Packet{mk(0, 0, 0, LinkTypeLinuxSLL), mk(1, time.Millisecond, 0, 1)}
	MarkDuplicates(mixed)
	if mixed[1].Flags.Has(Duplicate) {
		t.Error("an Ethernet packet paired with an SLL v1 one on the same interface")
	}
	sll := []Packet{mk(0, 0, 0, LinkTypeLinuxSLL), mk(1, time.Millisecond, 0, LinkTypeLinuxSLL)}
	MarkDuplicates(sll)
	if !sll[1].Flags.Has(Duplicate) {
		t.Error("two SLL v1 sightings not paired")
	}
}
