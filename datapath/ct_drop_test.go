package datapath

import (
	"slices"
	"testing"
)

// A packet the datapath drops leaves no CT entry it created: the checks
// that may drop come before an entry is created where they can (egress
// policy, TTL), and a drop after that (a local destination's ingress
// policy in to-container, a missed tail call) deletes the service and
// egress entries the packet created on its way. Entries that were there
// before the packet stay.

// dnsService is 10.224.1.1:53/UDP with the given backends (rev-NAT id 2).
func dnsService(backends ...Backend) Service {
	return Service{VIP: vip, Port: 53, Proto: ProtoUDP, ID: 2, Backends: backends}
}

// ctKeys lists the keys of every CT entry.
func ctKeys(t *testing.T, dp *Datapath) []CTKey {
	t.Helper()
	entries, err := dp.CT.Entries()
	must(t, err)
	var keys []CTKey
	for _, e := range entries {
		t.Logf("ct: %v", e)
		keys = append(keys, e.Key)
	}
	return keys
}

// assertCT fails unless CT holds exactly the entries of want.
func assertCT(t *testing.T, dp *Datapath, want ...CTKey) {
	t.Helper()
	got := ctKeys(t, dp)
	if len(got) != len(want) {
		t.Fatalf("CT holds %v, want %v", got, want)
	}
	for _, k := range want {
		if !slices.Contains(got, k) {
			t.Fatalf("CT holds %v, want %v", got, want)
		}
	}
}

// assertDrop fails unless the run dropped the packet with one drop event
// of reason, from src to dst identity.
func assertDrop(t *testing.T, res result, events *EventReader, reason DropReason, src, dst Identity) {
	t.Helper()
	res.assertVerdict(t, tcActShot)
	d := drops(drain(t, events))
	if len(d) != 1 || d[0].Reason != reason || d[0].SrcIdentity != src || d[0].DstIdentity != dst {
		t.Fatalf("drops %v, want one %q %d -> %d", d, reason, src, dst)
	}
}

// Case A: from-container's egress stage drops TTL 1 before it creates the
// egress entry, towards another node and a local pod alike; through a
// service, the service entry pinned before the drop goes too.
func TestCTDropTTLLeavesNoEntry(t *testing.T) {
	for _, tc := range []struct {
		name  string
		p     pkt
		dstID Identity
	}{
		{"pod1 → pod4:8080 on another node", fromPod(pod1, pod4IP, 8080), pod4ID},
		{"pod1 → pod2:8080 on this node", fromPod(pod1, pod2.addr(), 8080), pod2.identity},
		{"pod1 → Service 10.224.1.1:80, backend pod4:8080", fromPod(pod1, vip, 80), pod4ID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dp := loadDatapath(t)
			events := openEvents(t, dp)
			must(t, dp.Services.Upsert(webService(Backend{ID: 1, Addr: pod4IP, Port: 8080})))

			t.Log("pod1 sends a SYN with TTL 1")
			tc.p.ttl = 1
			res := run(t, dp.FromContainer, tc.p.bytes(t), nil)

			t.Log("from-container: dropped with TTL exceeded, CT empty")
			assertDrop(t, res, events, DropTTLExceeded, pod1.identity, tc.dstID)
			assertCT(t, dp)
			if m := metric(t, dp, DropTTLExceeded, Egress); m.Packets != 1 {
				t.Errorf("TTL exceeded metric %+v", m)
			}
		})
	}
}

// Case B: pod3 → pod1 UDP 1234→53, pod1 enforcing ingress without a rule
// for pod3: the egress stage creates the egress entry and tail-calls
// pod1's to-container, which drops with "Policy denied" and deletes it.
// Through a service whose backend is pod1, the service entry goes too.
func TestCTDropIngressPolicyOfLocalDestinationLeavesNoEntry(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    pkt
	}{
		{"pod3 → pod1:53", fromPod(pod3, pod1.addr(), 53)},
		{"pod3 → Service 10.224.1.1:53, backend pod1:53", fromPod(pod3, vip, 53)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dp := loadDatapath(t)
			events := openEvents(t, dp)
			addEndpoint(t, dp, pod3, false, false)
			addEndpoint(t, dp, pod1, true, false)
			must(t, dp.Policy.Allow(L3OnlyKey(pod1.id, Ingress, pod2.identity)))
			must(t, dp.Services.Upsert(dnsService(Backend{ID: 3, Addr: pod1.addr(), Port: 53})))

			t.Log("pod3 sends UDP 1234 → 53")
			p := tc.p
			p.proto, p.sport, p.syn = ProtoUDP, 1234, false
			res := run(t, dp.FromContainer, p.bytes(t), nil)

			t.Log("pod1's to-container: dropped with Policy denied, CT empty")
			assertDrop(t, res, events, DropPolicy, pod3.identity, pod1.identity)
			assertCT(t, dp)
		})
	}
}

// Case C: pod3 (enforcing egress, UDP/5353 denied) → Service
// 10.224.1.1:53 whose backend is pod2:5353: lb4_local pins the backend in a
// service entry before the egress stage drops with "Policy deny", which
// deletes it.
func TestCTDropEgressPolicyOfServiceFlowLeavesNoEntry(t *testing.T) {
	dp := loadDatapath(t)
	events := openEvents(t, dp)
	addEndpoint(t, dp, pod3, false, true)
	must(t, dp.Policy.Allow(AllowAllKey(pod3.id, Egress)))
	must(t, dp.Policy.Deny(L4OnlyKey(pod3.id, Egress, 5353, ProtoUDP)))
	must(t, dp.Services.Upsert(dnsService(Backend{ID: 3, Addr: pod2.addr(), Port: 5353})))

	t.Log("pod3 sends UDP 50000 → 10.224.1.1:53")
	p := fromPod(pod3, vip, 53)
	p.proto, p.sport, p.syn = ProtoUDP, 50000, false
	res := run(t, dp.FromContainer, p.bytes(t), nil)

	t.Log("egress stage: dropped with Policy deny after DNAT to pod2:5353, CT empty")
	assertDrop(t, res, events, DropPolicyDeny, pod3.identity, pod2.identity)
	assertCT(t, dp)
}

// A drop after the egress entry is created, other than policy: pod2's
// policy program is missing, so the tail call into its to-container
// misses; the egress entry goes with the packet.
func TestCTDropMissedTailCallLeavesNoEntry(t *testing.T) {
	dp := loadDatapath(t)
	events := openEvents(t, dp)
	must(t, dp.UnregisterEndpoint(pod2.id))
	res := run(t, dp.FromContainer, fromPod(pod1, pod2.addr(), 8080).bytes(t), nil)
	assertDrop(t, res, events, DropMissedTailCall, pod1.identity, pod2.identity)
	assertCT(t, dp)
}

// Only what the dropped packet created goes. An established connection
// through the service whose service entry was lost (evicted) is pinned
// again by its next packet: the new service entry stays when the packet is
// forwarded and goes when it is dropped (TTL 1 towards pod4 on another
// node; a missed tail call towards pod2 on this node), while the
// connection's own entries stay.
func TestCTDropKeepsEntriesOfEarlierPackets(t *testing.T) {
	for _, tc := range []struct {
		name    string
		backend Backend
		drop    func(t *testing.T, dp *Datapath, p *pkt) // makes the next packet drop
		reason  DropReason
		dstID   Identity // from-container knows the destination's identity for local pods only
	}{
		{"backend pod4:8080 on another node, TTL 1", Backend{ID: 1, Addr: pod4IP, Port: 8080},
			func(_ *testing.T, _ *Datapath, p *pkt) { p.ttl = 1 }, DropTTLExceeded, 0},
		{"backend pod2:8080 on this node, its policy program gone", Backend{ID: 2, Addr: pod2.addr(), Port: 8080},
			func(t *testing.T, dp *Datapath, _ *pkt) { must(t, dp.UnregisterEndpoint(pod2.id)) }, DropMissedTailCall, pod2.identity},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dp := loadDatapath(t)
			events := openEvents(t, dp)
			must(t, dp.Services.Upsert(webService(tc.backend)))
			be := ap(tc.backend.Addr, tc.backend.Port)
			conn := []CTKey{{Src: ap(pod1.addr(), 40000), Dst: be, Proto: ProtoTCP, Flags: TupleOut}}
			if tc.backend.Addr == pod2.addr() {
				conn = append(conn, CTKey{Src: ap(pod1.addr(), 40000), Dst: be, Proto: ProtoTCP, Flags: TupleIn})
			}
			svc := CTKey{Src: ap(pod1.addr(), 40000), Dst: ap(vip, 80), Proto: ProtoTCP, Flags: TupleService}

			t.Log("pod1 opens the connection through 10.224.1.1:80")
			p := fromPod(pod1, vip, 80)
			if res := run(t, dp.FromContainer, p.bytes(t), nil); res.ret == tcActShot {
				t.Fatalf("SYN dropped")
			}
			assertCT(t, dp, append(conn, svc)...)

			t.Log("its service entry is lost; the next packet is forwarded and pins the backend again")
			must(t, dp.CT.Delete(svc))
			p.syn, p.ack = false, true
			if res := run(t, dp.FromContainer, p.bytes(t), nil); res.ret == tcActShot {
				t.Fatalf("ACK dropped")
			}
			assertCT(t, dp, append(conn, svc)...)

			t.Log("lost again; the next packet is dropped: the new service entry goes, the connection's entries stay")
			must(t, dp.CT.Delete(svc))
			drain(t, events)
			tc.drop(t, dp, &p)
			assertDrop(t, run(t, dp.FromContainer, p.bytes(t), nil), events, tc.reason, pod1.identity, tc.dstID)
			assertCT(t, dp, conn...)
		})
	}
}

// A packet from bond0 created nothing, whatever skb->cb held when it
// arrived: when pod1's to-container drops it, an egress entry of its
// tuple stays.
func TestCTDropFromNetdevDeletesNothing(t *testing.T) {
	dp := loadDatapath(t)
	events := openEvents(t, dp)
	addEndpoint(t, dp, pod1, true, false)
	in := pkt{srcMAC: torMAC, dstMAC: bond0MAC, src: pod4IP, dst: pod1.addr(), ttl: 62,
		proto: ProtoTCP, sport: 50000, dport: 22, syn: true}
	out := CTKey{Src: ap(pod4IP, 50000), Dst: ap(pod1.addr(), 22), Proto: ProtoTCP, Flags: TupleOut}
	must(t, dp.CT.Put(CTEntry{Key: out, Lifetime: ^uint32(0)}))

	t.Log("pod4 → pod1:22 arrives with every skb->cb bit set")
	cb := [5]uint32{^uint32(0), ^uint32(0), ^uint32(0), ^uint32(0), ^uint32(0)}
	res := run(t, dp.FromNetdev, in.bytes(t), &cb)
	assertDrop(t, res, events, DropPolicy, pod4ID, pod1.identity)
	assertCT(t, dp, out)
}
