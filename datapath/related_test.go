package datapath

import (
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// icmpError is an ICMP error from router about the packet quoted (its IP
// header and first 8 bytes), as it arrives on bond0 for the quoted sender.
func icmpError(t *testing.T, router string, typ uint8, quoted []byte) []byte {
	t.Helper()
	q := quoted[14 : 14+20+8]
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 62, Protocol: layers.IPProtocolICMPv4,
		SrcIP: addr(router).AsSlice(), DstIP: pod1.addr().AsSlice()}
	buf := gopacket.NewSerializeBuffer()
	must(t, gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		&layers.Ethernet{SrcMAC: torMAC, DstMAC: bond0MAC, EthernetType: layers.EthernetTypeIPv4},
		ip, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, 0)}, gopacket.Payload(q)))
	return append([]byte(nil), buf.Bytes()...)
}

// An ICMP error about a connection pod1 opened is RELATED: it passes
// pod1's ingress policy (which allows nothing) and is traced as related;
// the same error about an unknown flow is policy-checked and denied.
func TestICMPErrorRelated(t *testing.T) {
	dp := loadDatapath(t)
	events := openEvents(t, dp)
	addEndpoint(t, dp, pod1, true, false)

	syn := fromPod(pod1, pod4IP, 8080).bytes(t)
	run(t, dp.FromContainer, syn, nil).assertVerdict(t, tcActOK)
	drain(t, events)

	for _, typ := range []uint8{3, 11, 12} {
		in := icmpError(t, "10.255.2.1", typ, syn)
		res := run(t, dp.FromNetdev, in, nil)
		res.assertVerdict(t, tcActRedirect)
		tr := traces(drain(t, events))
		if len(tr) != 2 || tr[1].Reason != TraceReasonCTRelated {
			t.Fatalf("ICMP type %d: traces %v, want to-container with ct=related", typ, tr)
		}
	}

	// Other ICMP types (redirect, source quench) quoting the connection
	// are not errors about it.
	for _, typ := range []uint8{4, 5} {
		run(t, dp.FromNetdev, icmpError(t, "10.255.2.1", typ, syn), nil).assertVerdict(t, tcActShot)
		if d := drops(drain(t, events)); len(d) != 1 || d[0].Reason != DropPolicy {
			t.Fatalf("ICMP type %d: drops %v, want Policy denied", typ, d)
		}
	}

	other := fromPod(pod1, pod4IP, 9999).bytes(t)
	run(t, dp.FromNetdev, icmpError(t, "10.255.2.1", 3, other), nil).assertVerdict(t, tcActShot)
	if d := drops(drain(t, events)); len(d) != 1 || d[0].Reason != DropPolicy {
		t.Fatalf("drops %v", d)
	}

	// A quote that is not a plain IPv4 TCP/UDP header relates to nothing,
	// even with the connection's addresses and ports where they would be.
	for name, mangle := range map[string]func(q []byte){
		"IHL 6":         func(q []byte) { q[14] = 0x46 },
		"IPv6 version":  func(q []byte) { q[14] = 0x65 },
		"protocol ICMP": func(q []byte) { q[14+9] = 1 },
		"protocol GRE":  func(q []byte) { q[14+9] = 47 },
	} {
		q := append([]byte(nil), syn...)
		mangle(q)
		run(t, dp.FromNetdev, icmpError(t, "10.255.2.1", 3, q), nil).assertVerdict(t, tcActShot)
		if d := drops(drain(t, events)); len(d) != 1 || d[0].Reason != DropPolicy {
			t.Fatalf("quote with %s: drops %v, want Policy denied", name, d)
		}
	}
}

// icmpErrorFrom is an ICMP error pod sends to dst about the packet quoted,
// as it leaves pod's eth0.
func icmpErrorFrom(t *testing.T, from testEndpoint, dst netip.Addr, typ uint8, quoted []byte) []byte {
	t.Helper()
	q := quoted[14 : 14+20+8]
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolICMPv4,
		SrcIP: from.addr().AsSlice(), DstIP: dst.AsSlice()}
	buf := gopacket.NewSerializeBuffer()
	must(t, gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		&layers.Ethernet{SrcMAC: from.podMAC(), DstMAC: from.lxcMAC(), EthernetType: layers.EthernetTypeIPv4},
		ip, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, 3)}, gopacket.Payload(q)))
	return append([]byte(nil), buf.Bytes()...)
}
