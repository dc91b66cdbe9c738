package journey

import (
	"math/rand"
	"net/netip"
	"testing"
	"time"
)

// TestMergeNodePortPathOrder: an external client's packet to node1's
// NodePort, forwarded by node1 to a backend on node2, visits the ToR twice
// and node1 in both directions. Whatever order the observations arrive
// in, the journey follows the path, because each routing hop lowers the
// TTL and, at equal TTL, the ToR's hop precedes the receiving node's.
func TestMergeNodePortPathOrder(t *testing.T) {
	key := FlowKey{Proto: 6, Src: netip.MustParseAddrPort("192.0.2.50:40000"), Dst: netip.MustParseAddrPort("10.255.1.11:30080"), IPID: 7}
	want := []struct {
		node  string
		point Point
		ttl   uint8
	}{
		{"laptop", External, 64},
		{"tor", Router, 63},
		{"node1", Wire, 63},
		{"node1", FromNetdev, 63},
		{"node1", ToNetdev, 62},
		{"node1", Wire, 62},
		{"tor", Router, 61},
		{"node2", Wire, 61},
		{"node2", FromNetdev, 61},
		{"node2", ToContainer, 60},
		{"node2", PodIngress, 60},
	}
	base := time.Unix(1000, 0)
	checkOrder(t, key, base, want)
	// Without the external host's hop (a capture of node1's wire), the
	// node forwarding in and out of its uplink alone calls for TTL order.
	checkOrder(t, key, base, want[1:])
}

// checkOrder merges the hops of want, shuffled 20 times, and requires them
// back in want's order, delivered to pod4.
func checkOrder(t *testing.T, key FlowKey, base time.Time, want []struct {
	node  string
	point Point
	ttl   uint8
}) {
	t.Helper()
	var obs []Observation
	for i, w := range want {
		obs = append(obs, Observation{Time: base.Add(time.Duration(i) * time.Millisecond), Key: key, HasKey: true,
			Hop: Hop{Node: w.node, Point: w.point, TTL: w.ttl, Verdict: Forwarded, Device: w.node + "-dev"}})
	}
	obs[len(obs)-1].Pod = "pod4"
	rng := rand.New(rand.NewSource(1))
	for round := 0; round < 20; round++ {
		shuffled := append([]Observation(nil), obs...)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		js, _ := Merge([]Injected{{Index: 0, Time: base, Key: key}}, shuffled)
		hops := js[0].Hops
		if len(hops) != len(want) {
			t.Fatalf("round %d: %d hops, want %d", round, len(hops), len(want))
		}
		for i, w := range want {
			if hops[i].Node != w.node || hops[i].Point != w.point || hops[i].TTL != w.ttl {
				t.Fatalf("round %d: hop %d is %s %s ttl %d, want %s %s ttl %d", round, i, hops[i].Node, hops[i].Point, hops[i].TTL, w.node, w.point, w.ttl)
			}
		}
		if js[0].Verdict != Delivered || js[0].DeliveredTo != "pod4" {
			t.Fatalf("round %d: verdict %s to %q", round, js[0].Verdict, js[0].DeliveredTo)
		}
	}
}

// TestMergeReplyToExternal: a reply that reaches the external client is
// delivered to it (its ingress observation names it), and its sending hop
// at the start of a journey does not count as delivery.
func TestMergeReplyToExternal(t *testing.T) {
	key := FlowKey{Proto: 6, Src: netip.MustParseAddrPort("10.1.2.40:8080"), Dst: netip.MustParseAddrPort("192.0.2.50:40000"), IPID: 9}
	obs := []Observation{
		{Key: key, HasKey: true, Pod: "laptop", Hop: Hop{Node: "laptop", Point: External, TTL: 60, Verdict: Forwarded}},
		{Key: key, HasKey: true, Hop: Hop{Node: "node2", Point: PodEgress, TTL: 64, Verdict: Forwarded}},
	}
	js, _ := Merge([]Injected{{Key: key}}, obs)
	if js[0].Verdict != Delivered || js[0].DeliveredTo != "laptop" || js[0].Hops[0].Point != PodEgress {
		t.Fatalf("got %+v", js[0])
	}
	send := []Observation{{Key: key, HasKey: true, Hop: Hop{Node: "laptop", Point: External, TTL: 64, Verdict: Forwarded}}}
	js, _ = Merge([]Injected{{Key: key}}, send)
	if js[0].Verdict != Lost {
		t.Fatalf("a sending external hop made the packet %s", js[0].Verdict)
	}
}
