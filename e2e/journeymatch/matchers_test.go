package journeymatch

import (
	"strings"
	"testing"

	"github.com/onsi/gomega"
	"github.com/onsi/gomega/types"

	"github.com/hoplab/hoplab/internal/journey"
)

// Addresses of the reference journey used by the tests.
const (
	pod1MAC = "0a:01:01:01:01:0a"
	lxc1MAC = "0e:01:01:01:01:0a"
	bond1   = "52:54:00:00:01:01"
	torTo1  = "52:55:00:00:01:01"
	torTo2  = "52:55:00:00:02:01"
	bond2   = "52:54:00:00:02:01"
	lxc4MAC = "0e:02:02:02:02:28"
	pod4MAC = "0a:02:02:02:02:28"
)

func hop(node string, p journey.Point, dev, esrc, edst, dst string, ttl uint8, dport uint16) journey.Hop {
	return journey.Hop{Node: node, Point: p, Device: dev, EthSrc: esrc, EthDst: edst,
		IPSrc: "10.1.1.10", IPDst: dst, TTL: ttl, Proto: "tcp", Sport: 40000, Dport: dport, Verdict: journey.Forwarded}
}

// reference is the reference journey of DESIGN.md: pod1 → 10.224.1.1:80 →
// pod4:8080 on node2.
func reference() journey.Packet {
	return journey.Packet{Index: 0, Verdict: journey.Delivered, DeliveredTo: "pod4", Hops: []journey.Hop{
		hop("node1", journey.PodEgress, "pod1:eth0", pod1MAC, lxc1MAC, "10.224.1.1", 64, 80),
		hop("node1", journey.FromContainer, "lxc1a2b3c", pod1MAC, lxc1MAC, "10.224.1.1", 64, 80),
		hop("node1", journey.ToStack, "lxc1a2b3c", pod1MAC, lxc1MAC, "10.1.2.40", 64, 8080),
		hop("node1", journey.ToNetdev, "bond0", bond1, torTo1, "10.1.2.40", 63, 8080),
		hop("node1", journey.Wire, "node1-0", bond1, torTo1, "10.1.2.40", 63, 8080),
		hop("tor", journey.Router, "node2", torTo2, bond2, "10.1.2.40", 62, 8080),
		hop("node2", journey.Wire, "node2-1", torTo2, bond2, "10.1.2.40", 62, 8080),
		hop("node2", journey.FromNetdev, "bond0", torTo2, bond2, "10.1.2.40", 62, 8080),
		hop("node2", journey.ToContainer, "lxc4d5e6f", lxc4MAC, pod4MAC, "10.1.2.40", 61, 8080),
		hop("node2", journey.PodIngress, "pod4:eth0", lxc4MAC, pod4MAC, "10.1.2.40", 61, 8080),
	}, CT: []journey.CTEntry{{Node: "node1", Tuple: "TCP OUT 10.1.1.10:40000 -> 10.1.2.40:8080", Flags: "SYN_SEEN", RevNAT: "10.224.1.1:80"}}}
}

// dropped is pod1 → pod4:9999, dropped by node2's to-container.
func dropped() journey.Packet {
	p := reference()
	p.Hops = p.Hops[:9]
	p.Hops[8].Verdict, p.Hops[8].DropReason = journey.Dropped, "Policy denied"
	p.Verdict, p.DropReason, p.DeliveredTo = journey.Dropped, "Policy denied", ""
	return p
}

// match runs m on actual and returns the verdict and the message Gomega
// would print (the failure message when it failed, else the negated one).
func match(t *testing.T, m types.GomegaMatcher, actual any) (bool, string) {
	t.Helper()
	ok, err := m.Match(actual)
	if err != nil {
		t.Fatalf("Match: %v", err)
	}
	if ok {
		return ok, m.NegatedFailureMessage(actual)
	}
	return ok, m.FailureMessage(actual)
}

func wantMatch(t *testing.T, m types.GomegaMatcher, actual any) {
	t.Helper()
	if ok, msg := match(t, m, actual); !ok {
		t.Fatalf("want a match, got:\n%s", msg)
	}
}

// wantMismatch checks that m fails on actual and that the failure message
// holds every string of want (and the whole journey: its last hop).
func wantMismatch(t *testing.T, m types.GomegaMatcher, actual journey.Packet, want ...string) {
	t.Helper()
	ok, msg := match(t, m, actual)
	if ok {
		t.Fatalf("want no match, matched; negated message:\n%s", msg)
	}
	want = append(want, journey.Legend)
	if n := len(actual.Hops); n > 0 {
		last := actual.Hops[n-1]
		want = append(want, string(last.Point)+" "+last.Device)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("failure message lacks %q:\n%s", w, msg)
		}
	}
	t.Logf("failure message:\n%s", msg)
}

func TestHaveHop(t *testing.T) {
	ref := reference()
	wantMatch(t, HaveHop(journey.FromContainer), ref)
	wantMatch(t, HaveHop(journey.FromContainer, OnNode("node1"), WithDevice("lxc1a2b3c"), WithEth(pod1MAC, lxc1MAC), WithTTL(64), Forwarded()), ref)
	wantMatch(t, HaveHop(journey.ToStack, OnNode("node1"), WithDNAT("10.1.2.40", 8080), WithIPs("10.1.1.10", ""), WithPorts(40000, 0), WithProto("TCP")), &ref)
	// Two wire hops: the second one matches.
	wantMatch(t, HaveHop(journey.Wire, WithEth(torTo2, bond2), WithTTL(62)), ref)
	wantMatch(t, HaveHop(journey.ToNetdev, WithEth(strings.ToUpper(bond1), strings.ToUpper(torTo1))), ref)

	wantMismatch(t, HaveHop(journey.ToStack, WithDNAT("10.1.2.40", 9090)),
		ref, "to have a to-stack hop (DNAT to 10.1.2.40:9090)", "!*8080 (want 9090)", "hop 2 (to-stack): dport: got 8080, want 9090")
	wantMismatch(t, HaveHop(journey.Router, WithTTL(61)), ref, "!*62 (want 61)", "hop 5 (router): ttl: got 62, want 61")
	// The closest candidate is marked: node2's wire hop differs in TTL only.
	wantMismatch(t, HaveHop(journey.Wire, WithEth(torTo2, bond2), WithTTL(61)), ref, "hop 6 (wire): ttl: got 62, want 61")
	wantMismatch(t, HaveHop(journey.ToOverlay, OnNode("node1")), ref, "!MISSING node1 to-overlay", "hop: got missing, want node1 to-overlay")
	wantMismatch(t, HaveHop(journey.FromContainer, OnNode("node2")), ref, "!MISSING node2 from-container")
	wantMismatch(t, HaveHop(journey.ToContainer, Forwarded()), dropped(), "!*DROPPED (want FORWARDED)")
}

// WithOuter asserts a tunnelled hop's outer headers (zero fields are
// wildcards) and fails on a hop without encapsulation.
func TestHaveHopWithOuter(t *testing.T) {
	ref := reference()
	ref.Hops[4].Outer = &journey.Outer{IPSrc: "10.255.1.11", IPDst: "10.255.2.12", TTL: 64, Proto: "udp", Sport: 40001, Dport: 8472, VNI: 38586}
	wantMatch(t, HaveHop(journey.Wire, OnNode("node1"), WithOuter(journey.Outer{IPDst: "10.255.2.12", Dport: 8472, VNI: 38586})), ref)
	wantMismatch(t, HaveHop(journey.Wire, OnNode("node1"), WithOuter(journey.Outer{VNI: 5})), ref,
		"to have a wire hop (on node1, outer * > * udp 0 vni 5)", "outer.vni: got 38586, want 5")
	wantMismatch(t, HaveHop(journey.Router, WithOuter(journey.Outer{Dport: 8472})), ref, "outer.dport: got -, want 8472")
}

func TestHaveHopBadOptions(t *testing.T) {
	for name, m := range map[string]types.GomegaMatcher{
		"ttl 0":         HaveHop(journey.Router, WithTTL(0)),
		"ttl 256":       HaveHop(journey.Router, WithTTL(256)),
		"empty node":    HaveHop(journey.Router, OnNode("")),
		"empty device":  HaveHop(journey.Router, WithDevice("")),
		"dnat no port":  HaveHop(journey.ToStack, WithDNAT("10.1.2.40", 0)),
		"unknown point": HaveHop("to-moon"),
		"empty outer":   HaveHop(journey.Wire, WithOuter(journey.Outer{})),
	} {
		if _, err := m.Match(reference()); err == nil {
			t.Errorf("%s: Match gave no error", name)
		}
	}
	if _, err := HaveHop(journey.Router).Match("not a journey"); err == nil || !strings.Contains(err.Error(), "string") {
		t.Errorf("Match(string) = %v, want an error naming the type", err)
	}
	if _, err := BeDeliveredTo("pod4").Match((*journey.Packet)(nil)); err == nil {
		t.Error("Match(nil *Packet) gave no error")
	}
}

func TestBeDroppedAt(t *testing.T) {
	wantMatch(t, BeDroppedAt(journey.ToContainer, "Policy denied"), dropped())
	wantMismatch(t, BeDroppedAt(journey.ToContainer, "Policy denied"), reference(),
		"to be dropped at to-container (Policy denied)", "!DELIVERED (want DROPPED)", "!FORWARDED (want DROPPED)")
	wantMismatch(t, BeDroppedAt(journey.FromContainer, "Policy denied"), dropped(),
		"hop 1 (from-container): verdict: got FORWARDED, want DROPPED")
	wantMismatch(t, BeDroppedAt(journey.ToContainer, "Service backend not found"), dropped(),
		"drop_reason: got Policy denied, want Service backend not found")
	// A hop after the drop: the packet was not dropped there.
	p := dropped()
	p.Hops = append(p.Hops, reference().Hops[9])
	wantMismatch(t, BeDroppedAt(journey.ToContainer, "Policy denied"), p, "!UNEXPECTED", "hop 9 (pod-ingress): hop: got node2 pod-ingress pod4:eth0, want no such hop")
	if _, err := BeDroppedAt(journey.ToContainer, "").Match(dropped()); err == nil {
		t.Error("empty reason: no error")
	}
}

func TestBeDeliveredTo(t *testing.T) {
	wantMatch(t, BeDeliveredTo("pod4"), reference())
	wantMismatch(t, BeDeliveredTo("pod5"), reference(), "to be delivered to pod5", "to !pod4 (want pod5)", "!MISSING - pod-ingress pod5:eth0")
	wantMismatch(t, BeDeliveredTo("pod4"), dropped(), "!DROPPED (want DELIVERED)", "hop: got missing, want pod-ingress pod4:eth0")
	lost := reference()
	lost.Hops, lost.Verdict, lost.DeliveredTo = lost.Hops[:5], journey.Lost, ""
	wantMismatch(t, BeDeliveredTo("pod4"), lost, "!LOST (want DELIVERED)")
	// The pod-ingress hop must end the journey: a hop after it fails.
	after := reference()
	extra := after.Hops[len(after.Hops)-2]
	after.Hops = append(after.Hops, extra)
	wantMismatch(t, BeDeliveredTo("pod4"), after, string(extra.Point))
}

func TestEqualJourney(t *testing.T) {
	ref := reference()
	wantMatch(t, EqualJourney(ref), ref)
	// Wildcards: only the asserted fields count.
	wantMatch(t, EqualJourney(journey.Packet{Verdict: journey.Delivered, Hops: []journey.Hop{{Point: journey.PodIngress, TTL: 61}}}, journey.AllowExtraHops()), ref)

	want := reference()
	want.Hops[5].TTL = 61
	want.CT = append(want.CT, journey.CTEntry{Node: "node2", Tuple: "TCP IN 10.1.1.10:40000 -> 10.1.2.40:8080"})
	wantMismatch(t, EqualJourney(want), ref, "to equal the expected journey", "!*62 (want 61)",
		"ct !MISSING node2  TCP IN 10.1.1.10:40000 -> 10.1.2.40:8080", "2 difference(s)")
	// Without AllowExtraHops every observed hop must be expected.
	short := journey.Packet{Verdict: journey.Delivered, Hops: []journey.Hop{{Point: journey.PodIngress}}}
	wantMismatch(t, EqualJourney(short), ref, "!UNEXPECTED", "hop 0 (pod-egress): hop: got node1 pod-egress pod1:eth0, want no such hop")
}

// TestGomega runs the matchers through Gomega as the suites do.
func TestGomega(t *testing.T) {
	g := gomega.NewWithT(t)
	g.Expect(reference()).To(HaveHop(journey.FromNetdev, OnNode("node2"), WithDevice("bond0"), WithTTL(62)))
	g.Expect(reference()).NotTo(BeDroppedAt(journey.ToContainer, "Policy denied"))
	g.Expect(dropped()).To(BeDroppedAt(journey.ToContainer, "Policy denied"))
	g.Expect(reference()).To(BeDeliveredTo("pod4"))
	g.Expect(reference()).To(EqualJourney(reference()))

	neg := BeDeliveredTo("pod4")
	if ok, _ := neg.Match(reference()); !ok {
		t.Fatal("no match")
	}
	msg := neg.NegatedFailureMessage(reference())
	for _, w := range []string{"not to be delivered to pod4", "09 node2 pod-ingress pod4:eth0"} {
		if !strings.Contains(msg, w) {
			t.Errorf("negated message lacks %q:\n%s", w, msg)
		}
	}
}

func TestHaveHopWithL7(t *testing.T) {
	p := reference()
	p.Hops = append(p.Hops[:len(p.Hops)-2], journey.Hop{Node: "node2", Point: journey.Proxy, Device: "bond0", Verdict: journey.Forwarded,
		L7: &journey.L7{Method: "GET", Path: "/public/a", Status: 200, Rule: "r"}})
	wantMatch(t, HaveHop(journey.Proxy, OnNode("node2"), WithL7("GET", "/public/a", 200), Forwarded()), p)
	wantMatch(t, HaveHop(journey.Proxy, WithL7("", "", 200)), p)
	wantMismatch(t, HaveHop(journey.Proxy, WithL7("GET", "/public/a", 403)), p, "l7.status")
	wantMismatch(t, HaveHop(journey.ToContainer, WithL7("GET", "", 0)), reference())
	if _, err := HaveHop(journey.Proxy, WithL7("", "", 0)).Match(p); err == nil || !strings.Contains(err.Error(), "WithL7: no field given") {
		t.Errorf("empty WithL7: %v", err)
	}
}
