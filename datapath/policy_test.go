package datapath

import (
	"fmt"
	"testing"
)

// policyCase is one row of the lookup-order table: the entry installed and
// whether the flow (identity, TCP/8080) is allowed by it.
type policyCase struct {
	name  string
	key   func(ep uint16, dir Direction) PolicyKey
	allow bool
}

func policyCases(remote Identity) []policyCase {
	other := Identity(9999)
	return []policyCase{
		{"L3L4 match", func(ep uint16, d Direction) PolicyKey { return L3L4Key(ep, d, remote, 8080, ProtoTCP) }, true},
		{"L3L4 other port", func(ep uint16, d Direction) PolicyKey { return L3L4Key(ep, d, remote, 9090, ProtoTCP) }, false},
		{"L3L4 other identity", func(ep uint16, d Direction) PolicyKey { return L3L4Key(ep, d, other, 8080, ProtoTCP) }, false},
		{"L4-only match", func(ep uint16, d Direction) PolicyKey { return L4OnlyKey(ep, d, 8080, ProtoTCP) }, true},
		{"L4-only other proto", func(ep uint16, d Direction) PolicyKey { return L4OnlyKey(ep, d, 8080, ProtoUDP) }, false},
		{"L3-only match", func(ep uint16, d Direction) PolicyKey { return L3OnlyKey(ep, d, remote) }, true},
		{"L3-only other identity", func(ep uint16, d Direction) PolicyKey { return L3OnlyKey(ep, d, other) }, false},
		{"allow-all", func(ep uint16, d Direction) PolicyKey { return AllowAllKey(ep, d) }, true},
		{"allow-all other direction", func(ep uint16, d Direction) PolicyKey { return AllowAllKey(ep, 3-d) }, false},
		{"no entry", nil, false},
	}
}

// Egress policy at from-container: pod1 (enforcing egress) opens
// TCP/8080 to pod4; each lookup level allows, near misses deny with
// "Policy denied", the drop event carries both identities.
func TestEgressPolicy(t *testing.T) {
	// One datapath for all cases: each removes its entry, the CT entries,
	// counters and events it made.
	dp := loadDatapath(t)
	events := openEvents(t, dp)
	addEndpoint(t, dp, pod1, false, true)
	for _, tc := range policyCases(pod4ID) {
		t.Run(tc.name, func(t *testing.T) {
			t.Cleanup(func() {
				if tc.key != nil {
					must(t, dp.Policy.Delete(tc.key(pod1.id, Egress)))
				}
				must(t, dp.CT.Flush())
				must(t, dp.Metrics.Reset())
				drain(t, events)
			})
			if tc.key != nil {
				must(t, dp.Policy.Allow(tc.key(pod1.id, Egress)))
			}
			in := fromPod(pod1, pod4IP, 8080).bytes(t)
			res := run(t, dp.FromContainer, in, nil)
			res.assertPacket(t, in)
			d := drops(drain(t, events))
			if tc.allow {
				res.assertVerdict(t, tcActOK)
				if len(d) != 0 {
					t.Fatalf("unexpected drops %v", d)
				}
				pe, err := dp.Policy.Lookup(tc.key(pod1.id, Egress))
				must(t, err)
				if pe.Packets != 1 || pe.Bytes != uint64(len(in)) {
					t.Errorf("policy entry counters %+v", pe)
				}
				return
			}
			res.assertVerdict(t, tcActShot)
			if len(d) != 1 || d[0].Reason != DropPolicy || d[0].SrcIdentity != pod1.identity || d[0].DstIdentity != pod4ID {
				t.Fatalf("drops %v, want Policy denied 1001 -> 2004", d)
			}
			if _, err := dp.CT.Lookup(CTKey{Src: ap(pod1.addr(), 40000), Dst: ap(pod4IP, 8080), Proto: ProtoTCP}); err == nil {
				t.Errorf("a denied flow created a CT entry")
			}
			if m := metric(t, dp, DropPolicy, Egress); m.Packets != 1 {
				t.Errorf("metric %+v", m)
			}
		})
	}
}

// Ingress policy at to-container, reached from bond0: pod1 (enforcing
// ingress) admits TCP/8080 from pod4's identity taken from the ipcache.
func TestIngressPolicy(t *testing.T) {
	// One datapath for all cases: each removes its entry, the CT entries,
	// counters and events it made.
	dp := loadDatapath(t)
	events := openEvents(t, dp)
	addEndpoint(t, dp, pod1, true, false)
	for _, tc := range policyCases(pod4ID) {
		t.Run(tc.name, func(t *testing.T) {
			t.Cleanup(func() {
				if tc.key != nil {
					must(t, dp.Policy.Delete(tc.key(pod1.id, Ingress)))
				}
				must(t, dp.CT.Flush())
				must(t, dp.Metrics.Reset())
				drain(t, events)
			})
			if tc.key != nil {
				must(t, dp.Policy.Allow(tc.key(pod1.id, Ingress)))
			}
			in := pkt{srcMAC: torMAC, dstMAC: bond0MAC, src: pod4IP, dst: pod1.addr(), ttl: 62,
				proto: ProtoTCP, sport: 50000, dport: 8080, syn: true}
			res := run(t, dp.FromNetdev, in.bytes(t), nil)
			d := drops(drain(t, events))
			if tc.allow {
				res.assertVerdict(t, tcActRedirect)
				if len(d) != 0 {
					t.Fatalf("unexpected drops %v", d)
				}
				e := ctEntry(t, dp, CTKey{Src: ap(pod4IP, 50000), Dst: ap(pod1.addr(), 8080), Proto: ProtoTCP, Flags: TupleIn})
				if e.SrcIdentity != pod4ID {
					t.Errorf("CT source identity %d", e.SrcIdentity)
				}
				pe, err := dp.Policy.Lookup(tc.key(pod1.id, Ingress))
				must(t, err)
				if pe.Packets != 1 {
					t.Errorf("policy entry hit %d times", pe.Packets)
				}
				return
			}
			res.assertVerdict(t, tcActShot)
			if len(d) != 1 || d[0].Reason != DropPolicy || d[0].SrcIdentity != pod4ID || d[0].DstIdentity != pod1.identity || d[0].DstID != uint32(pod1.id) {
				t.Fatalf("drops %v, want Policy denied 2004 -> 1001", d)
			}
			if m := metric(t, dp, DropPolicy, Ingress); m.Packets != 1 {
				t.Errorf("metric %+v", m)
			}
		})
	}
}

// Replies of an allowed flow pass through CT although the policy of the
// replying direction is empty.
func TestPolicyRepliesPassViaCT(t *testing.T) {
	dp := loadDatapath(t)
	addEndpoint(t, dp, pod1, true, true)
	must(t, dp.Policy.Allow(L3L4Key(pod1.id, Egress, pod4ID, 8080, ProtoTCP)))
	run(t, dp.FromContainer, fromPod(pod1, pod4IP, 8080).bytes(t), nil).assertVerdict(t, tcActOK)

	reply := pkt{srcMAC: torMAC, dstMAC: bond0MAC, src: pod4IP, dst: pod1.addr(), ttl: 62,
		proto: ProtoTCP, sport: 8080, dport: 40000, syn: true, ack: true}
	run(t, dp.FromNetdev, reply.bytes(t), nil).assertVerdict(t, tcActRedirect)

	t.Log("a new connection from pod4 is still denied at ingress")
	reply.sport = 8081
	run(t, dp.FromNetdev, reply.bytes(t), nil).assertVerdict(t, tcActShot)
}

// A deny entry drops with "Policy deny".
func TestPolicyDenyEntry(t *testing.T) {
	dp := loadDatapath(t)
	events := openEvents(t, dp)
	addEndpoint(t, dp, pod1, false, true)
	must(t, dp.Policy.Deny(L3L4Key(pod1.id, Egress, pod4ID, 8080, ProtoTCP)))
	must(t, dp.Policy.Allow(AllowAllKey(pod1.id, Egress)))
	run(t, dp.FromContainer, fromPod(pod1, pod4IP, 8080).bytes(t), nil).assertVerdict(t, tcActShot)
	if d := drops(drain(t, events)); len(d) != 1 || d[0].Reason != DropPolicyDeny {
		t.Fatalf("drops %v", d)
	}
}

// TestPolicyKeyLess: listings order keys by endpoint, direction, identity,
// port, then protocol.
func TestPolicyKeyLess(t *testing.T) {
	ordered := []PolicyKey{
		L3L4Key(1, Ingress, 300, 80, ProtoTCP),
		L3L4Key(1, Ingress, 300, 80, ProtoUDP),
		L3L4Key(1, Ingress, 300, 443, ProtoTCP),
		L3L4Key(1, Ingress, 400, 0, ProtoTCP),
		L3L4Key(1, Egress, 0, 0, ProtoTCP),
		L3L4Key(2, Ingress, 0, 0, ProtoTCP),
	}
	for i := range ordered {
		for j := range ordered {
			if got, want := ordered[i].Less(ordered[j]), i < j; got != want {
				t.Errorf("%+v.Less(%+v) = %v, want %v", ordered[i], ordered[j], got, want)
			}
		}
	}
}

// With two levels present for the same flow, the more specific one decides
// (L3L4 → L4-only → L3-only → allow-all): its hit counter counts the
// packet and the other's does not, and a deny there wins over an allow
// below it. Every pair, in both directions.
func TestPolicyLookupOrder(t *testing.T) {
	levels := []struct {
		name string
		key  func(ep uint16, d Direction) PolicyKey
	}{
		{"L3L4", func(ep uint16, d Direction) PolicyKey { return L3L4Key(ep, d, pod4ID, 8080, ProtoTCP) }},
		{"L4-only", func(ep uint16, d Direction) PolicyKey { return L4OnlyKey(ep, d, 8080, ProtoTCP) }},
		{"L3-only", func(ep uint16, d Direction) PolicyKey { return L3OnlyKey(ep, d, pod4ID) }},
		{"allow-all", func(ep uint16, d Direction) PolicyKey { return AllowAllKey(ep, d) }},
	}
	// One datapath for all pairs: each case removes its entries and the
	// CT entries its packet made, so the next starts clean.
	dp := loadDatapath(t)
	for hi := range levels {
		for lo := hi + 1; lo < len(levels); lo++ {
			for _, dir := range []Direction{Egress, Ingress} {
				for _, deny := range []bool{false, true} {
					name := fmt.Sprintf("%s over %s %v deny=%v", levels[hi].name, levels[lo].name, dir, deny)
					t.Run(name, func(t *testing.T) {
						addEndpoint(t, dp, pod1, dir == Ingress, dir == Egress)
						hk, lk := levels[hi].key(pod1.id, dir), levels[lo].key(pod1.id, dir)
						t.Cleanup(func() {
							must(t, dp.Policy.Delete(hk))
							must(t, dp.Policy.Delete(lk))
							must(t, dp.CT.Flush())
						})
						if deny {
							must(t, dp.Policy.Deny(hk))
						} else {
							must(t, dp.Policy.Allow(hk))
						}
						must(t, dp.Policy.Allow(lk))
						var res result
						if dir == Egress {
							res = run(t, dp.FromContainer, fromPod(pod1, pod4IP, 8080).bytes(t), nil)
						} else {
							in := pkt{srcMAC: torMAC, dstMAC: bond0MAC, src: pod4IP, dst: pod1.addr(), ttl: 62,
								proto: ProtoTCP, sport: 50000, dport: 8080, syn: true}
							res = run(t, dp.FromNetdev, in.bytes(t), nil)
						}
						want := map[bool]uint32{false: tcActOK, true: tcActShot}[deny]
						if dir == Ingress && !deny {
							want = tcActRedirect
						}
						res.assertVerdict(t, want)
						he, err := dp.Policy.Lookup(hk)
						must(t, err)
						le, err := dp.Policy.Lookup(lk)
						must(t, err)
						if he.Packets != 1 || le.Packets != 0 {
							t.Errorf("hits: %s %d, %s %d; want the %s entry alone", levels[hi].name, he.Packets, levels[lo].name, le.Packets, levels[hi].name)
						}
					})
				}
			}
		}
	}
}
