package journey

import (
	"strings"
	"testing"
)

// renderBranchesWant is the rendering of branchesJourney's difference: a hop
// with addresses and ports, one with only a protocol (ARP-like), one with
// nothing but a verdict, one unexpected, and a missing hop with the fields
// it was wanted with.
const renderBranchesWant = `packet 0: DELIVERED to pod4
  00 node1 from-container lxc1
     eth   0a:00:00:00:00:01 -> 0a:00:00:00:00:02
     ip    10.1.1.10 -> 10.1.2.40  ttl 64  proto tcp
     tcp   40000 -> 8080
     FORWARDED
  01 node1 to-stack lxc1
     eth   0a:00:00:00:00:01 -> 0a:00:00:00:00:02
     proto *arp
     FORWARDED
  02 node1 to-netdev bond0
     eth   *- -> *-
     !FORWARDED (want DROPPED) (!- (want Policy denied))
  !MISSING - router -
     want ttl=62
  03 node2 pod-ingress pod4:eth0  !UNEXPECTED
     eth   - -> -
     ip    !- (want 10.1.1.10) -> -  ttl -  proto -
     -     !- (want 40000) -> -
     FORWARDED
`

func TestRenderBranches(t *testing.T) {
	got := Packet{Verdict: Delivered, DeliveredTo: "pod4", Hops: []Hop{
		{Node: "node1", Point: FromContainer, Device: "lxc1", EthSrc: "0a:00:00:00:00:01", EthDst: "0a:00:00:00:00:02",
			IPSrc: "10.1.1.10", IPDst: "10.1.2.40", TTL: 64, Proto: "tcp", Sport: 40000, Dport: 8080, Verdict: Forwarded},
		{Node: "node1", Point: ToStack, Device: "lxc1", EthSrc: "0a:00:00:00:00:01", EthDst: "0a:00:00:00:00:02", Proto: "arp", Verdict: Forwarded},
		{Node: "node1", Point: ToNetdev, Device: "bond0", Verdict: Forwarded},
		{Node: "node2", Point: PodIngress, Device: "pod4:eth0", Verdict: Forwarded},
	}}
	want := Packet{Hops: []Hop{
		{Point: FromContainer}, {Point: ToStack},
		{Point: ToNetdev, Verdict: Dropped, DropReason: "Policy denied"},
		{Point: Router, TTL: 62},
	}}
	d := Diff(want, got)
	// The unexpected pod-ingress hop also gets wanted values, as an
	// expectation of fields on a hop nobody expected would show them.
	d.marks.hop[3] = map[string]string{FieldIPSrc: "10.1.1.10", FieldSport: "40000"}
	var b strings.Builder
	renderPacket(&b, d.Got, &d.marks)
	if b.String() != renderBranchesWant {
		t.Errorf("rendering:\n%s\nwant:\n%s", b.String(), renderBranchesWant)
	}
}

// Each field alone, observed or wanted, brings its line: the IP line for
// either address, the port line for either port.
func TestRenderHopLines(t *testing.T) {
	for _, tc := range []struct {
		name        string
		h           Hop
		want        map[string]string
		ip, port, p bool // an "ip" line, a port line, a lone "proto" line
	}{
		{"nothing", Hop{Node: "n", Point: Wire}, nil, false, false, false},
		{"source address", Hop{Node: "n", Point: Wire, IPSrc: "10.0.0.1"}, nil, true, false, false},
		{"destination address", Hop{Node: "n", Point: Wire, IPDst: "10.0.0.2"}, nil, true, false, false},
		{"wanted source address", Hop{Node: "n", Point: Wire}, map[string]string{FieldIPSrc: "10.0.0.1"}, true, false, false},
		{"wanted destination address", Hop{Node: "n", Point: Wire}, map[string]string{FieldIPDst: "10.0.0.2"}, true, false, false},
		{"protocol only", Hop{Node: "n", Point: Wire, Proto: "arp"}, nil, false, false, true},
		{"source port", Hop{Node: "n", Point: Wire, Sport: 1}, nil, false, true, false},
		{"destination port", Hop{Node: "n", Point: Wire, Dport: 2}, nil, false, true, false},
		{"wanted source port", Hop{Node: "n", Point: Wire}, map[string]string{FieldSport: "1"}, false, true, false},
		{"wanted destination port", Hop{Node: "n", Point: Wire}, map[string]string{FieldDport: "2"}, false, true, false},
	} {
		var b strings.Builder
		renderHop(&b, 0, tc.h, nil, tc.want, false)
		lines := strings.Split(b.String(), "\n")
		has := func(prefix string) bool {
			for _, l := range lines {
				if strings.HasPrefix(l, prefix) {
					return true
				}
			}
			return false
		}
		if got := has("     ip "); got != tc.ip {
			t.Errorf("%s: ip line %v, want %v:\n%s", tc.name, got, tc.ip, b.String())
		}
		if got := has("     -     ") || has("     tcp ") || has("     arp "); got != tc.port {
			t.Errorf("%s: port line %v, want %v:\n%s", tc.name, got, tc.port, b.String())
		}
		if got := has("     proto "); got != tc.p {
			t.Errorf("%s: proto line %v, want %v:\n%s", tc.name, got, tc.p, b.String())
		}
	}
}
