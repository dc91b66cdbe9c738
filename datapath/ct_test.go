package datapath

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// FIN marks the entry closing and shortens its lifetime; a new SYN on the
// same tuple reopens it; RST closes both directions.
func TestCTClosing(t *testing.T) {
	dp := loadDatapath(t)
	key := CTKey{Src: ap(pod1.addr(), 40000), Dst: ap(pod4IP, 8080), Proto: ProtoTCP, Flags: TupleOut}
	p := fromPod(pod1, pod4IP, 8080)
	run(t, dp.FromContainer, p.bytes(t), nil)
	if e := ctEntry(t, dp, key); e.Lifetime-e.Created != 60 || e.Flags&CTSeenNonSyn != 0 {
		t.Errorf("after SYN: %v", e)
	}
	p.syn, p.ack = false, true
	run(t, dp.FromContainer, p.bytes(t), nil)
	if e := ctEntry(t, dp, key); e.Lifetime-e.Created < 21600 || e.Flags&CTSeenNonSyn == 0 {
		t.Errorf("after ACK: %v", e)
	}
	p.fin = true
	run(t, dp.FromContainer, p.bytes(t), nil)
	e := ctEntry(t, dp, key)
	if e.Flags&CTTxClosing == 0 || e.Flags&CTRxClosing != 0 || e.Lifetime-e.Created > 11 || e.TxPackets != 3 {
		t.Errorf("after FIN: %v", e)
	}
	if !strings.Contains(e.String(), "TxClosing") || !strings.HasPrefix(e.String(), "TCP OUT 10.1.1.10:40000 -> 10.1.2.40:8080 expires=") {
		t.Errorf("String() = %q", e.String())
	}

	t.Log("a new SYN reopens the tuple")
	p = fromPod(pod1, pod4IP, 8080)
	run(t, dp.FromContainer, p.bytes(t), nil)
	if e := ctEntry(t, dp, key); e.Flags&(CTTxClosing|CTRxClosing) != 0 || e.TxPackets != 1 {
		t.Errorf("after new SYN: %v", e)
	}

	t.Log("RST from the peer closes both directions")
	rst := pkt{srcMAC: torMAC, dstMAC: bond0MAC, src: pod4IP, dst: pod1.addr(), ttl: 62,
		proto: ProtoTCP, sport: 8080, dport: 40000, rst: true, ack: true}
	run(t, dp.FromNetdev, rst.bytes(t), nil).assertVerdict(t, tcActRedirect)
	if e := ctEntry(t, dp, key); e.Flags&CTTxClosing == 0 || e.Flags&CTRxClosing == 0 {
		t.Errorf("after RST: %v", e)
	}

	entries, err := dp.CT.Entries()
	must(t, err)
	if len(entries) != 1 {
		t.Errorf("%d entries, want only the OUT entry (the RST was a reply)", len(entries))
	}
	n, capacity, err := dp.CT.Count()
	must(t, err)
	if n != 1 || capacity != ctTestEntries {
		t.Errorf("Count() = %d of %d, want 1 of %d", n, capacity, ctTestEntries)
	}
	must(t, dp.CT.Flush())
	entries, err = dp.CT.Entries()
	must(t, err)
	if len(entries) != 0 {
		t.Errorf("flush left %d entries", len(entries))
	}
}

// A packet whose source is not a local endpoint is "Invalid source ip".
func TestInvalidSourceIP(t *testing.T) {
	dp := loadDatapath(t)
	events := openEvents(t, dp)
	p := fromPod(pod1, pod4IP, 8080)
	p.src = worldIP
	run(t, dp.FromContainer, p.bytes(t), nil).assertVerdict(t, tcActShot)
	if d := drops(drain(t, events)); len(d) != 1 || d[0].Reason != DropInvalidSIP {
		t.Fatalf("drops %v", d)
	}
}

// Protocols without connection tracking (here GRE) are dropped with
// "CT: Unknown L4 protocol", fragments with "IP fragmentation not
// supported".
func TestUnsupportedL4AndFragments(t *testing.T) {
	dp := loadDatapath(t)
	in := fromPod(pod1, pod4IP, 8080).bytes(t)
	gre := append([]byte(nil), in...)
	gre[14+9] = 47
	run(t, dp.FromContainer, gre, nil).assertVerdict(t, tcActShot)
	frag := append([]byte(nil), in...)
	frag[14+6] = 0x20 // MF
	run(t, dp.FromContainer, frag, nil).assertVerdict(t, tcActShot)
	if m := metric(t, dp, DropCTUnknownProto, Egress); m.Packets != 1 {
		t.Errorf("unknown L4 metric %+v", m)
	}
	if m := metric(t, dp, DropFragNoSupport, Egress); m.Packets != 1 {
		t.Errorf("fragment metric %+v", m)
	}
}

// TestMetricsReset: Reset zeroes the counters, and counting starts again.
func TestMetricsReset(t *testing.T) {
	dp := loadDatapath(t)
	gre := fromPod(pod1, pod4IP, 8080).bytes(t)
	gre[14+9] = 47
	run(t, dp.FromContainer, gre, nil).assertVerdict(t, tcActShot)
	if m := metric(t, dp, DropCTUnknownProto, Egress); m.Packets != 1 {
		t.Fatalf("before reset: %+v", m)
	}
	must(t, dp.Metrics.Reset())
	all, err := dp.Metrics.All()
	must(t, err)
	if len(all) != 0 {
		t.Errorf("after reset: %v", all)
	}
	run(t, dp.FromContainer, gre, nil).assertVerdict(t, tcActShot)
	if m := metric(t, dp, DropCTUnknownProto, Egress); m.Packets != 1 || m.Bytes != uint64(len(gre)) {
		t.Errorf("after reset and one more drop: %+v, want 1 packet of %d bytes", m, len(gre))
	}
}

// The connection's entry counts packets and bytes each way and remembers
// the TCP flags seen each way; the service entry (keyed by the pre-DNAT
// tuple) follows the connection's state: SYN timeout, established after
// the first packet without SYN, closing after FIN, both ways after RST.
func TestCTAccountingAndServiceEntryState(t *testing.T) {
	dp := loadDatapath(t)
	must(t, dp.Services.Upsert(webService(Backend{ID: 1, Addr: pod4IP, Port: 8080})))
	out := CTKey{Src: ap(pod1.addr(), 40000), Dst: ap(pod4IP, 8080), Proto: ProtoTCP, Flags: TupleOut}
	svc := CTKey{Src: ap(pod1.addr(), 40000), Dst: ap(vip, 80), Proto: ProtoTCP, Flags: TupleService}

	p := fromPod(pod1, vip, 80)
	syn := p.bytes(t)
	run(t, dp.FromContainer, syn, nil).assertVerdict(t, tcActOK)
	if s := ctEntry(t, dp, svc); s.Lifetime-s.Created != 60 || s.Flags&CTSeenNonSyn != 0 {
		t.Errorf("service entry after SYN: %v", s)
	}

	reply := pkt{srcMAC: torMAC, dstMAC: bond0MAC, src: pod4IP, dst: pod1.addr(), ttl: 62,
		proto: ProtoTCP, sport: 8080, dport: 40000, syn: true, ack: true}
	synAck := reply.bytes(t)
	run(t, dp.FromNetdev, synAck, nil).assertVerdict(t, tcActRedirect)

	p.syn, p.ack = false, true
	ack := p.bytes(t)
	run(t, dp.FromContainer, ack, nil).assertVerdict(t, tcActOK)
	e := ctEntry(t, dp, out)
	if e.TxPackets != 2 || e.TxBytes != uint64(len(syn)+len(ack)) || e.RxPackets != 1 || e.RxBytes != uint64(len(synAck)) {
		t.Errorf("counters after SYN, SYN-ACK, ACK: %v", e)
	}
	if e.TxFlagsSeen != 0x12 || e.RxFlagsSeen != 0x12 {
		t.Errorf("flags seen tx %#02x rx %#02x, want SYN|ACK both ways: %v", e.TxFlagsSeen, e.RxFlagsSeen, e)
	}
	if s := ctEntry(t, dp, svc); s.Lifetime-s.Created != 21600 || s.Flags&CTSeenNonSyn == 0 || s.Flags&(CTTxClosing|CTRxClosing) != 0 {
		t.Errorf("service entry after ACK: %v", s)
	}

	p.fin = true
	run(t, dp.FromContainer, p.bytes(t), nil).assertVerdict(t, tcActOK)
	if s := ctEntry(t, dp, svc); s.Lifetime-s.Created != 10 || s.Flags&CTTxClosing == 0 || s.Flags&CTRxClosing != 0 {
		t.Errorf("service entry after FIN: %v", s)
	}
	p.fin, p.rst = false, true
	run(t, dp.FromContainer, p.bytes(t), nil).assertVerdict(t, tcActOK)
	if s := ctEntry(t, dp, svc); s.Flags&CTTxClosing == 0 || s.Flags&CTRxClosing == 0 {
		t.Errorf("service entry after RST: %v", s)
	}
}

// A connection pod4 opens to pod1 (pod1 enforcing both directions, ingress
// admitting it): pod1's replies leave as CT_REPLY although pod1's egress
// policy is empty, and an ICMP error pod1 sends about the connection is
// RELATED; the lookups of the egress direction find the entry to-container
// created for ingress.
func TestEgressRepliesAndErrorsOfInboundConnections(t *testing.T) {
	dp := loadDatapath(t)
	events := openEvents(t, dp)
	addEndpoint(t, dp, pod1, true, true)
	must(t, dp.Policy.Allow(L3L4Key(pod1.id, Ingress, pod4ID, 8080, ProtoTCP)))
	must(t, dp.Policy.Allow(L3L4Key(pod1.id, Ingress, pod4ID, 5353, ProtoUDP)))

	syn := pkt{srcMAC: torMAC, dstMAC: bond0MAC, src: pod4IP, dst: pod1.addr(), ttl: 62,
		proto: ProtoTCP, sport: 50000, dport: 8080, syn: true}
	run(t, dp.FromNetdev, syn.bytes(t), nil).assertVerdict(t, tcActRedirect)
	synAck := fromPod(pod1, pod4IP, 50000)
	synAck.sport, synAck.ack = 8080, true
	run(t, dp.FromContainer, synAck.bytes(t), nil).assertVerdict(t, tcActOK)
	drain(t, events)

	udp := syn
	udp.proto, udp.dport, udp.syn = ProtoUDP, 5353, false
	udpIn := udp.bytes(t)
	run(t, dp.FromNetdev, udpIn, nil).assertVerdict(t, tcActRedirect)
	drain(t, events)
	// pod1 answers port unreachable, quoting the datagram it got.
	unreach := icmpErrorFrom(t, pod1, pod4IP, 3, udpIn)
	run(t, dp.FromContainer, unreach, nil).assertVerdict(t, tcActOK)
	tr := traces(drain(t, events))
	if len(tr) == 0 || tr[len(tr)-1].Reason != TraceReasonCTRelated {
		t.Fatalf("pod1's port unreachable: traces %v, want ct=related", tr)
	}
	if m := metric(t, dp, DropPolicy, Egress); m.Packets != 0 {
		t.Errorf("egress policy drops %+v", m)
	}
}

// A TCP connection first seen without SYN (picked up mid-stream) is
// established at once: SeenNonSyn and the established lifetime. A UDP
// entry never carries TCP state.
func TestCTCreatedMidStream(t *testing.T) {
	dp := loadDatapath(t)
	p := fromPod(pod1, pod4IP, 8080)
	p.syn, p.ack = false, true
	run(t, dp.FromContainer, p.bytes(t), nil).assertVerdict(t, tcActOK)
	e := ctEntry(t, dp, CTKey{Src: ap(pod1.addr(), 40000), Dst: ap(pod4IP, 8080), Proto: ProtoTCP, Flags: TupleOut})
	if e.Flags&CTSeenNonSyn == 0 || e.Lifetime-e.Created != 21600 {
		t.Errorf("mid-stream ACK: %v", e)
	}
	u := fromPod(pod1, pod4IP, 5353)
	u.proto = ProtoUDP
	run(t, dp.FromContainer, u.bytes(t), nil).assertVerdict(t, tcActOK)
	e = ctEntry(t, dp, CTKey{Src: ap(pod1.addr(), 40000), Dst: ap(pod4IP, 5353), Proto: ProtoUDP, Flags: TupleOut})
	if e.Flags != 0 || e.Lifetime-e.Created != 60 {
		t.Errorf("UDP entry: %v", e)
	}
}

// monoSecond returns the current second of CLOCK_MONOTONIC, and whether
// the coarse clock (which the datapath may read instead) agrees.
func monoSecond(t *testing.T) (uint32, bool) {
	var fine, coarse unix.Timespec
	must(t, unix.ClockGettime(unix.CLOCK_MONOTONIC, &fine))
	must(t, unix.ClockGettime(unix.CLOCK_MONOTONIC_COARSE, &coarse))
	return uint32(fine.Sec), fine.Sec == coarse.Sec
}

// withinOneSecond runs fn with the current second until both monotonic
// clocks stayed in that second all along (a second boundary during fn
// makes its observation meaningless), and reports the problems fn found
// in that run.
func withinOneSecond(t *testing.T, fn func(now uint32) []string) {
	t.Helper()
	for range 20 {
		now, ok := monoSecond(t)
		if !ok {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		problems := fn(now)
		if after, ok := monoSecond(t); ok && after == now {
			for _, p := range problems {
				t.Error(p)
			}
			return
		}
	}
	t.Fatal("could not run within one second of the monotonic clock")
}

// An entry lives through the second its lifetime names, for the
// connection's lookup and for the ICMP errors related to it; the next
// second it is gone.
func TestCTEntryLivesThroughItsLastSecond(t *testing.T) {
	key := CTKey{Src: ap(pod1.addr(), 40000), Dst: ap(pod4IP, 8080), Proto: ProtoTCP, Flags: TupleOut}
	ack := fromPod(pod1, pod4IP, 8080)
	ack.syn, ack.ack = false, true
	for _, tc := range []struct {
		name  string
		delta int64 // lifetime relative to now
		live  bool
	}{{"expires this second", 0, true}, {"expired a second ago", -1, false}} {
		t.Run(tc.name, func(t *testing.T) {
			dp := loadDatapath(t)
			events := openEvents(t, dp)
			addEndpoint(t, dp, pod1, true, true) // no policy: only CT lets packets through
			withinOneSecond(t, func(now uint32) (problems []string) {
				must(t, dp.CT.Flush())
				drain(t, events)
				must(t, dp.CT.Put(CTEntry{Key: key, Lifetime: uint32(int64(now) + tc.delta), Created: now - 10, Flags: CTSeenNonSyn}))
				want := map[bool]uint32{true: tcActOK, false: tcActShot}[tc.live]
				if res := run(t, dp.FromContainer, ack.bytes(t), nil); res.ret != want {
					problems = append(problems, fmt.Sprintf("ACK of the flow: verdict %d, want %d", res.ret, want))
				}
				// An ICMP error about it, from the wire.
				must(t, dp.CT.Put(CTEntry{Key: key, Lifetime: uint32(int64(now) + tc.delta), Created: now - 10, Flags: CTSeenNonSyn}))
				want = map[bool]uint32{true: tcActRedirect, false: tcActShot}[tc.live]
				if res := run(t, dp.FromNetdev, icmpError(t, "10.255.2.1", 3, fromPod(pod1, pod4IP, 8080).bytes(t)), nil); res.ret != want {
					problems = append(problems, fmt.Sprintf("ICMP error about the flow: verdict %d, want %d", res.ret, want))
				}
				return problems
			})
		})
	}
}

// A service entry keeps its flow on the pinned backend through the second
// its lifetime names: 8 flows pinned to backend 1 of 4 stay there (a
// reselection would move most of them).
func TestServiceEntryLivesThroughItsLastSecond(t *testing.T) {
	dp := loadDatapath(t)
	backends := fourBackends()
	must(t, dp.Services.Upsert(webService(backends...)))
	withinOneSecond(t, func(now uint32) (problems []string) {
		must(t, dp.CT.Flush())
		for i := range 8 {
			sport := uint16(41000 + i)
			must(t, dp.CT.Put(CTEntry{Key: CTKey{Src: ap(pod1.addr(), sport), Dst: ap(vip, 80), Proto: ProtoTCP, Flags: TupleService},
				Lifetime: now, Created: now - 10, Flags: CTService | CTSeenNonSyn, RevNAT: 1, BackendID: 1,
				Backend: ap(backends[0].Addr, 8080)}))
			p := fromPod(pod1, vip, 80)
			p.sport, p.syn, p.ack = sport, false, true
			if got := backendOf(t, run(t, dp.FromContainer, p.bytes(t), nil).out); got != ap(backends[0].Addr, 8080) {
				problems = append(problems, fmt.Sprintf("flow %d went to %v, its service entry pins %v until the end of this second", i, got, backends[0].Addr))
			}
		}
		return problems
	})
}
