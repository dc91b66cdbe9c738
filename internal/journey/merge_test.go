package journey

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func key(src, dst string, id uint16) FlowKey {
	return FlowKey{Proto: 6, Src: netip.MustParseAddrPort(src), Dst: netip.MustParseAddrPort(dst), IPID: id}
}

// Which injected packet an observation shows: protocol and IP ID must
// match; both addresses beat one, one beats none; weak matches that tie
// are ambiguous; among equal matches the last injected at or before the
// observation wins.
func TestMergeClaim(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	a := key("10.1.1.10:40000", "10.224.1.1:80", 7)
	dnat := key("10.1.1.10:40000", "10.1.2.40:8080", 7)
	for _, tc := range []struct {
		name     string
		injected []Injected
		obs      Observation
		want     int // index into injected, -1 for unmatched
	}{
		{"no key", []Injected{{Key: a}}, Observation{Key: a}, -1},
		{"same key", []Injected{{Key: a}}, Observation{Key: a, HasKey: true}, 0},
		{"other IP ID", []Injected{{Key: a}}, Observation{Key: key("10.1.1.10:40000", "10.224.1.1:80", 8), HasKey: true}, -1},
		{"other protocol", []Injected{{Key: a}}, Observation{Key: FlowKey{Proto: 17, Src: a.Src, Dst: a.Dst, IPID: 7}, HasKey: true}, -1},
		{"DNATed: source only", []Injected{{Key: a}}, Observation{Key: dnat, HasKey: true}, 0},
		{"both addresses beat one", []Injected{{Key: key("10.1.1.10:40000", "10.9.9.9:1", 7)}, {Key: dnat}}, Observation{Key: dnat, HasKey: true}, 1},
		{"both addresses beat one, first", []Injected{{Key: dnat}, {Key: key("10.1.1.10:40000", "10.9.9.9:1", 7)}}, Observation{Key: dnat, HasKey: true}, 0},
		{"one weak match", []Injected{{Key: key("10.9.9.1:1", "10.9.9.2:2", 7)}}, Observation{Key: dnat, HasKey: true}, 0},
		{"two weak matches are ambiguous", []Injected{{Key: key("10.9.9.1:1", "10.9.9.2:2", 7)}, {Key: key("10.9.9.3:3", "10.9.9.4:4", 7)}},
			Observation{Key: dnat, HasKey: true}, -1},
		{"ambiguous weak, then a strong one", []Injected{{Key: key("10.9.9.1:1", "10.9.9.2:2", 7)}, {Key: key("10.9.9.3:3", "10.9.9.4:4", 7)}, {Key: dnat}},
			Observation{Key: dnat, HasKey: true}, 2},
		{"duplicates: the last before the observation", []Injected{{Key: a, Time: at(1)}, {Key: a, Time: at(3)}}, Observation{Key: a, HasKey: true, Time: at(4)}, 1},
		{"duplicates: the one before the observation", []Injected{{Key: a, Time: at(1)}, {Key: a, Time: at(3)}}, Observation{Key: a, HasKey: true, Time: at(2)}, 0},
		{"duplicates: a later one injected before", []Injected{{Key: a, Time: at(5)}, {Key: a, Time: at(1)}}, Observation{Key: a, HasKey: true, Time: at(2)}, 1},
		{"duplicates: none before, the first", []Injected{{Key: a, Time: at(5)}, {Key: a, Time: at(6)}}, Observation{Key: a, HasKey: true, Time: at(2)}, 0},
		{"duplicates: no observation time, the first", []Injected{{Key: a, Time: at(1)}, {Key: a, Time: at(3)}}, Observation{Key: a, HasKey: true}, 0},
		{"duplicates: no injection time, the first", []Injected{{Key: a, Time: at(1)}, {Key: a}}, Observation{Key: a, HasKey: true, Time: at(4)}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := claim(tc.injected, tc.obs); got != tc.want {
				t.Errorf("claim = %d, want %d", got, tc.want)
			}
		})
	}
}

// Nodes are ordered senders, then routers, then receivers; within a group
// by their earliest observation (unknown times do not count), then name;
// within a node by point, then time.
func TestAssembleOrdersNodes(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	obs := []Observation{
		{Time: at(50), Hop: Hop{Node: "recv-b", Point: FromNetdev}},
		{Time: at(40), Hop: Hop{Node: "recv-a", Point: FromNetdev}},
		{Time: at(30), Hop: Hop{Node: "tor", Point: Router}},
		{Time: at(20), Hop: Hop{Node: "sender", Point: ToNetdev}},
		{Time: at(10), Hop: Hop{Node: "sender", Point: FromContainer}},
		{Hop: Hop{Node: "recv-b", Point: PodIngress}},                // no time: recv-b stays at 50
		{Time: at(60), Hop: Hop{Node: "recv-a", Point: ToContainer}}, // later than recv-b's first
		{Time: at(45), Hop: Hop{Node: "recv-c", Point: FromNetdev}},
		{Time: at(45), Hop: Hop{Node: "recv-0", Point: FromNetdev}}, // same first time: by name
	}
	p := assemble(0, obs)
	var got []string
	for _, h := range p.Hops {
		got = append(got, h.Node+"/"+string(h.Point))
	}
	want := []string{"sender/from-container", "sender/to-netdev", "tor/router", "recv-a/from-netdev", "recv-a/to-container",
		"recv-0/from-netdev", "recv-c/from-netdev", "recv-b/from-netdev", "recv-b/pod-ingress"}
	if len(got) != len(want) {
		t.Fatalf("hops %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("hops %v, want %v", got, want)
		}
	}
	// Within a node, the same point twice: by time.
	p = assemble(0, []Observation{{Time: at(2), Hop: Hop{Node: "n", Point: Wire, TTL: 2}}, {Time: at(1), Hop: Hop{Node: "n", Point: Wire, TTL: 1}}})
	if p.Hops[0].TTL != 1 || p.Hops[1].TTL != 2 {
		t.Errorf("same point: %v", p.Hops)
	}
}

// Every point of the vocabulary is canonical, the first one included, and
// Cilium's names map onto it; other names are not.
func TestCanonicalPoints(t *testing.T) {
	for _, p := range Points() {
		if c, ok := Canonical(string(p)); !ok || c != p {
			t.Errorf("Canonical(%q) = %q, %v", p, c, ok)
		}
	}
	if c, ok := Canonical("to-network"); !ok || c != ToNetdev {
		t.Errorf("Canonical(to-network) = %q, %v", c, ok)
	}
	if _, ok := Canonical("to-nowhere"); ok {
		t.Error("an unknown point is canonical")
	}
}

// A node seen only leaving through to-netdev is a sender, ordered before
// receivers seen earlier.
func TestAssembleToNetdevIsSendingSide(t *testing.T) {
	t0 := time.Unix(1000, 0)
	p := assemble(0, []Observation{
		{Time: t0, Hop: Hop{Node: "recv", Point: FromNetdev}},
		{Time: t0.Add(time.Second), Hop: Hop{Node: "sender", Point: ToNetdev}},
	})
	if p.Hops[0].Node != "sender" {
		t.Errorf("hops %v: the to-netdev node is not first", p.Hops)
	}
}

// A drop event folds into the trace of the same program, on the first hop
// too; devices fold when either is unknown or both are equal.
func TestAssembleFoldsDrops(t *testing.T) {
	t0 := time.Unix(1000, 0)
	trace := func(dev string) Observation {
		return Observation{Time: t0, Hop: Hop{Node: "n1", Point: FromContainer, Device: dev, Verdict: Forwarded}}
	}
	drop := func(dev string) Observation {
		return Observation{Time: t0.Add(time.Millisecond), Hop: Hop{Node: "n1", Point: FromContainer, Device: dev, Verdict: Dropped, DropReason: "Policy denied"}}
	}
	for _, tc := range []struct {
		traceDev, dropDev string
		folds             bool
	}{{"lxc1", "lxc1", true}, {"lxc1", "", true}, {"", "lxc1", true}, {"lxc1", "lxc2", false}} {
		p := assemble(0, []Observation{trace(tc.traceDev), drop(tc.dropDev)})
		if tc.folds && (len(p.Hops) != 1 || p.Hops[0].Verdict != Dropped) {
			t.Errorf("trace %q, drop %q: hops %v, want one DROPPED hop", tc.traceDev, tc.dropDev, p.Hops)
		}
		if !tc.folds && len(p.Hops) != 2 {
			t.Errorf("trace %q, drop %q: hops %v, want two", tc.traceDev, tc.dropDev, p.Hops)
		}
		if p.Verdict != Dropped || p.DropReason != "Policy denied" {
			t.Errorf("verdict %s (%s)", p.Verdict, p.DropReason)
		}
	}
}

// The pod a packet is delivered to is the observation's pod, else the
// device's pod part.
func TestAssembleDeliveredTo(t *testing.T) {
	p := assemble(0, []Observation{{Hop: Hop{Node: "n2", Point: PodIngress, Device: "pod4:eth0"}}})
	if p.Verdict != Delivered || p.DeliveredTo != "pod4" {
		t.Errorf("from the device: %s to %q", p.Verdict, p.DeliveredTo)
	}
	p = assemble(0, []Observation{{Pod: "web", Hop: Hop{Node: "n2", Point: PodIngress, Device: "pod4:eth0"}}})
	if p.DeliveredTo != "web" {
		t.Errorf("from the observation: %q", p.DeliveredTo)
	}
}

// A node's first observation time is its earliest known one, whatever the
// order observations come in, and unknown times never count.
func TestAssembleNodeFirstSeen(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	p := assemble(0, []Observation{
		{Time: at(40), Hop: Hop{Node: "b", Point: FromNetdev}},
		{Time: at(70), Hop: Hop{Node: "c", Point: FromNetdev}}, // c's earliest is 30
		{Time: at(30), Hop: Hop{Node: "c", Point: ToContainer}},
		{Hop: Hop{Node: "a", Point: FromNetdev}}, // a's first observation has no time: its earliest is 50
		{Time: at(50), Hop: Hop{Node: "a", Point: ToContainer}},
	})
	var order []string
	for _, h := range p.Hops {
		if len(order) == 0 || order[len(order)-1] != h.Node {
			order = append(order, h.Node)
		}
	}
	if strings.Join(order, ",") != "c,b,a" {
		t.Errorf("node order %v, want c (30), b (40), a (50)", order)
	}
}

// Equal matches where one injection has no time: the first is kept.
func TestClaimWithoutInjectionTime(t *testing.T) {
	a := key("10.1.1.10:40000", "10.224.1.1:80", 7)
	inj := []Injected{{Key: a}, {Key: a, Time: time.Unix(1001, 0)}}
	if got := claim(inj, Observation{Key: a, HasKey: true, Time: time.Unix(1004, 0)}); got != 0 {
		t.Errorf("claim = %d, want 0", got)
	}
}
