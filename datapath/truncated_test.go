package datapath

import (
	"math/rand/v2"
	"testing"
)

// Every truncation of a valid service packet (TCP, UDP, ICMP) is dropped
// or passed, and never rewritten: the IP total length no longer fits, so
// nothing behind the cut is read.
func TestTruncatedPackets(t *testing.T) {
	dp := loadDatapath(t)
	tcp, udp, icmp := servicePackets(t, dp)
	for _, p := range []pkt{tcp, udp, icmp} {
		full := p.bytes(t)
		// BPF_PROG_TEST_RUN refuses IPv4 frames without a full IPv4
		// header (EINVAL on 6.x), so the shortest runs start there.
		// Stop where the datagram ends: Ethernet padding may follow.
		end := 14 + (int(full[16])<<8 | int(full[17]))
		for n := 14 + 20; n < end; n++ {
			in := full[:n]
			for _, prog := range []struct {
				name string
				run  func() result
			}{
				{"from-container", func() result { return run(t, dp.FromContainer, in, nil) }},
				{"from-netdev", func() result { return run(t, dp.FromNetdev, in, nil) }},
				{"to-container", func() result { return run(t, dp.ToContainer, in, nil) }},
				{"to-netdev", func() result { return run(t, dp.ToNetdev, in, nil) }},
			} {
				res := prog.run()
				if res.ret != tcActOK && res.ret != tcActShot {
					t.Fatalf("%v %s, %d of %d bytes: verdict %d", p.proto, prog.name, n, len(full), res.ret)
				}
				if string(res.out) != string(in) {
					t.Fatalf("%v %s, %d of %d bytes: packet rewritten\n in: %x\nout: %x", p.proto, prog.name, n, len(full), in, res.out)
				}
			}
		}
	}
	if m := metric(t, dp, DropInvalid, Egress); m.Packets == 0 {
		t.Errorf("no invalid-packet drops counted")
	}
}

// Garbage after an IPv4 EtherType never gets rewritten and never crashes;
// a header with a bad version or IHL is "Invalid packet".
func TestGarbagePackets(t *testing.T) {
	dp := loadDatapath(t)
	must(t, dp.Services.Upsert(webService(Backend{ID: 1, Addr: pod4IP, Port: 8080})))
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		in := make([]byte, 14+20+rng.IntN(100))
		for j := range in {
			in[j] = byte(rng.UintN(256))
		}
		in[12], in[13] = 0x08, 0x00
		res := run(t, dp.FromContainer, in, nil)
		if res.ret == tcActRedirect {
			// A random packet may form a valid flow to a local endpoint;
			// only the source lookup could make that happen, and pod IPs
			// are not random: treat it as a failure.
			t.Fatalf("garbage %d redirected: %x", i, in)
		}
		if res.ret == tcActShot && string(res.out) != string(in) {
			t.Fatalf("garbage %d rewritten and dropped", i)
		}
	}

	valid := fromPod(pod1, vip, 80).bytes(t)
	for _, mutate := range []struct {
		name string
		f    func(b []byte)
	}{
		{"version 6 in an IPv4 frame", func(b []byte) { b[14] = 0x65 }},
		{"IHL 4", func(b []byte) { b[14] = 0x44 }},
		{"total length beyond the frame", func(b []byte) { b[16], b[17] = 0x05, 0xdc }},
		{"total length below the header", func(b []byte) { b[16], b[17] = 0, 10 }},
	} {
		in := append([]byte(nil), valid...)
		mutate.f(in)
		res := run(t, dp.FromContainer, in, nil)
		res.assertVerdict(t, tcActShot)
		res.assertPacket(t, in)
		t.Logf("%s: dropped", mutate.name)
	}
}

// A datagram whose IP total length ends inside its L4 header, while the
// frame still carries the whole header behind it (as Ethernet padding or
// garbage would): the L4 header is not the datagram's, so nothing is
// translated or forwarded on it. The frame-length checks cannot see this;
// only the datapath's total-length check of the L4 header (ipv4_l4_fits)
// does.
func TestTotalLengthEndsInsideL4Header(t *testing.T) {
	dp := loadDatapath(t)
	events := openEvents(t, dp)
	tcp, udp, icmp := servicePackets(t, dp)
	for _, c := range []struct {
		p    pkt
		hlen int
	}{{tcp, 20}, {udp, 8}, {icmp, 8}} {
		full := c.p.bytes(t)
		for l4 := 0; l4 < c.hlen; l4++ {
			in := append([]byte(nil), full...)
			totLen := 20 + l4
			in[16], in[17] = byte(totLen>>8), byte(totLen)
			fixIPv4Checksum(in[14:34])
			res := run(t, dp.FromContainer, in, nil)
			if res.ret != tcActShot || string(res.out) != string(in) {
				t.Errorf("%v with %d of %d L4 header bytes inside the datagram: verdict %d, rewritten %v",
					c.p.proto, l4, c.hlen, res.ret, string(res.out) != string(in))
			}
			// The IPv4 header is valid (even a datagram that is only a
			// header): the L4 header is what is missing.
			if d := drops(drain(t, events)); len(d) != 1 || d[0].Reason != DropCTInvalidHdr {
				t.Errorf("%v with %d of %d L4 header bytes: drops %v, want %v", c.p.proto, l4, c.hlen, d, DropCTInvalidHdr)
			}
		}
	}
	if _, err := dp.CT.Lookup(CTKey{Src: ap(pod1.addr(), 40000), Dst: ap(pod4IP, 8080), Proto: ProtoTCP}); err == nil {
		t.Error("a datagram without a whole TCP header created a CT entry")
	}
	// The same at to-container, for a packet to a local pod.
	toPod := pkt{srcMAC: torMAC, dstMAC: bond0MAC, src: pod4IP, dst: pod1.addr(), ttl: 62,
		proto: ProtoTCP, sport: 50000, dport: 8080, syn: true}
	full := toPod.bytes(t)
	for l4 := 0; l4 < 20; l4++ {
		in := append([]byte(nil), full...)
		totLen := 20 + l4
		in[16], in[17] = byte(totLen>>8), byte(totLen)
		fixIPv4Checksum(in[14:34])
		if res := run(t, dp.ToContainer, in, nil); res.ret != tcActShot || string(res.out) != string(in) {
			t.Errorf("to-container, %d of 20 TCP header bytes inside the datagram: verdict %d, rewritten %v", l4, res.ret, string(res.out) != string(in))
		}
	}
	if entries, err := dp.CT.Entries(); err != nil || len(entries) != 0 {
		t.Errorf("CT after the short datagrams: %v (%v)", entries, err)
	}
}

// fixIPv4Checksum recomputes the checksum of a 20-byte IPv4 header.
func fixIPv4Checksum(h []byte) {
	h[10], h[11] = 0, 0
	var sum uint32
	for i := 0; i < len(h); i += 2 {
		sum += uint32(h[i])<<8 | uint32(h[i+1])
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	h[10], h[11] = byte(^sum>>8), byte(^sum)
}

// A TCP header whose data offset is under 5 words is not a TCP header:
// "Invalid TCP header" (CT), never translated.
func TestTCPDataOffsetUnderFive(t *testing.T) {
	dp := loadDatapath(t)
	events := openEvents(t, dp)
	must(t, dp.Services.Upsert(webService(Backend{ID: 1, Addr: pod4IP, Port: 8080})))
	for doff := range 6 {
		in := fromPod(pod1, vip, 80).bytes(t)
		in[14+20+12] = byte(doff<<4) | in[14+20+12]&0x0f
		res := run(t, dp.FromContainer, in, nil)
		d := drops(drain(t, events))
		if doff == 5 {
			res.assertVerdict(t, tcActOK)
			continue
		}
		res.assertVerdict(t, tcActShot)
		res.assertPacket(t, in)
		if len(d) != 1 || d[0].Reason != DropCTInvalidHdr {
			t.Errorf("data offset %d: drops %v, want one %v", doff, d, DropCTInvalidHdr)
		}
	}
}

// servicePackets installs a TCP (80) and a UDP (53) service backed by pod4
// and returns a packet from pod1 to each, and an ICMP echo to pod2.
func servicePackets(t *testing.T, dp *Datapath) (tcp, udp, icmp pkt) {
	t.Helper()
	must(t, dp.Services.Upsert(webService(Backend{ID: 1, Addr: pod4IP, Port: 8080})))
	must(t, dp.Services.Upsert(Service{VIP: vip, Port: 53, Proto: ProtoUDP, ID: 2, Backends: []Backend{{ID: 3, Addr: pod4IP, Port: 5353}}}))
	udp = fromPod(pod1, vip, 53)
	udp.proto = ProtoUDP
	icmp = fromPod(pod1, pod2.addr(), 0)
	icmp.proto, icmp.icmpType, icmp.icmpID = ProtoICMP, 8, 7
	return fromPod(pod1, vip, 80), udp, icmp
}
