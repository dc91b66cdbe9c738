package lab

import (
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/hoplab/hoplab/internal/journey"
	"github.com/hoplab/hoplab/topologies"
	"github.com/hoplab/hoplab/vmtest/cluster"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

func testLab(t *testing.T) *Lab {
	t.Helper()
	top, err := topologies.Builtin("pod-to-service")
	if err != nil {
		t.Fatal(err)
	}
	return &Lab{Topology: top}
}

func TestFrame(t *testing.T) {
	l := testLab(t)
	f, err := l.Frame(Packet{From: "pod1", To: netip.MustParseAddrPort("10.224.1.1:80"), Sport: 40000, ID: 0x1234, TTL: 7})
	if err != nil {
		t.Fatal(err)
	}
	if f.Point != (cluster.InjectPoint{Kind: cluster.AtPod, Pod: "pod1", Node: "node1"}) {
		t.Errorf("point %+v", f.Point)
	}
	h := journey.HopFromPacket("node1", journey.PodEgress, "pod1:eth0", f.Data)
	pod1 := l.Topology.Pod("pod1")
	want := journey.Hop{Node: "node1", Point: journey.PodEgress, Device: "pod1:eth0", EthSrc: pod1.MAC.String(), EthDst: pod1.LXCMAC.String(),
		IPSrc: "10.1.1.10", IPDst: "10.224.1.1", TTL: 7, Proto: "tcp", Sport: 40000, Dport: 80}
	if h != want {
		t.Errorf("frame decodes as %+v, want %+v", h, want)
	}
	p := gopacket.NewPacket(f.Data, layers.LayerTypeEthernet, gopacket.Default)
	if tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP); tcp == nil || !tcp.SYN || tcp.ACK {
		t.Errorf("not a SYN: %v", p)
	}
	if k, ok := journey.KeyFromFrame(f.Data); !ok || k.IPID != 0x1234 {
		t.Errorf("key %v %v", k, ok)
	}
	if _, err := l.Frame(Packet{From: "pod1", To: netip.MustParseAddrPort("10.224.1.1:53"), Proto: "udp", Sport: 40053}); err != nil {
		t.Errorf("udp: %v", err)
	}
	if _, err := l.Frame(Packet{From: "pod9", To: netip.MustParseAddrPort("10.224.1.1:80")}); err == nil {
		t.Error("unknown pod: no error")
	}
	if _, err := l.Frame(Packet{From: "pod1", To: netip.MustParseAddrPort("10.224.1.1:80"), Proto: "sctp"}); err == nil {
		t.Error("sctp: no error")
	}
}

// TestMatchReply: MatchReply picks the reply equal to the expectation, else
// the nearest one, and reports an empty list.
func TestMatchReply(t *testing.T) {
	synAck := journey.Packet{Index: 0, Verdict: journey.Delivered, DeliveredTo: "pod1", Hops: []journey.Hop{
		{Point: journey.PodEgress, Device: "pod4:eth0"},
		{Point: journey.ToContainer, IPSrc: "10.224.1.1", Sport: 80},
		{Point: journey.PodIngress, Device: "pod1:eth0"},
	}}
	rst := journey.Packet{Index: 1, Verdict: journey.Lost, Hops: []journey.Hop{
		{Point: journey.PodEgress, Device: "pod4:eth0"},
		{Point: journey.ToContainer, IPSrc: "10.224.1.1", Sport: 80},
	}}
	want := journey.Packet{Verdict: journey.Delivered, DeliveredTo: "pod1", Hops: []journey.Hop{
		{Point: journey.PodEgress}, {Point: journey.ToContainer, IPSrc: "10.224.1.1", Sport: 80}, {Point: journey.PodIngress},
	}}
	got, ok := MatchReply(want, []journey.Packet{rst, synAck})
	if !ok || got.Index != 0 {
		t.Errorf("MatchReply picked %d (%v)", got.Index, ok)
	}
	want.DeliveredTo = "pod9"
	if got, ok := MatchReply(want, []journey.Packet{synAck, rst}); !ok || got.Index != 0 {
		t.Errorf("MatchReply without a match: want the closest (0), got %d (%v)", got.Index, ok)
	}
	if _, ok := MatchReply(want, nil); ok {
		t.Error("MatchReply(nil): ok")
	}
}

func TestEventFilters(t *testing.T) {
	l := testLab(t)
	syn, err := l.Frame(Packet{From: "pod1", To: netip.MustParseAddrPort("10.1.2.40:8080"), Sport: 40000, ID: 7})
	if err != nil {
		t.Fatal(err)
	}
	other, err := l.Frame(Packet{From: "pod1", To: netip.MustParseAddrPort("10.1.2.40:8080"), Sport: 40000, ID: 8})
	if err != nil {
		t.Fatal(err)
	}
	events := []cluster.Event{
		{Kind: cluster.EventDatapath, Datapath: &nodeapi.DatapathEvent{Node: "node2", Point: "from-network", Frame: syn.Data}},
		{Kind: cluster.EventDatapath, Datapath: &nodeapi.DatapathEvent{Node: "node2", Point: "from-netdev", Frame: other.Data}},
		{Kind: cluster.EventDatapath, Datapath: &nodeapi.DatapathEvent{Node: "node1", Point: "from-netdev", Frame: syn.Data}},
		{Kind: cluster.EventPod, Pod: &nodeapi.PodPacket{Node: "node2", Pod: "pod4", Direction: nodeapi.PodIngress, Frame: syn.Data}},
		{Kind: cluster.EventPod, Pod: &nodeapi.PodPacket{Node: "node2", Pod: "pod4", Direction: nodeapi.PodEgress, Frame: syn.Data}},
	}
	k, _ := journey.KeyFromFrame(syn.Data)
	if n := len(DatapathEvents(events, "node2", journey.FromNetdev, k)); n != 1 {
		t.Errorf("with the IPv4 ID: %d events, want 1 (Cilium's from-network counts)", n)
	}
	k.IPID = 0
	if n := len(DatapathEvents(events, "node2", journey.FromNetdev, k)); n != 2 {
		t.Errorf("without the IPv4 ID: %d events, want 2", n)
	}
	if n := len(DatapathEvents(events, "node2", journey.FromNetdev, journey.FlowKey{})); n != 2 {
		t.Errorf("any flow: %d events, want 2", n)
	}
	if n := len(PodFrames(events, "pod4", nodeapi.PodIngress, k)); n != 1 {
		t.Errorf("pod frames: %d, want 1", n)
	}
}

// TestDirection: the NodePort connection's SYN and SYN-ACK share IPv4 ID
// 0; direction keeps each journey to its own packets across DNAT, SNAT
// and their reversals.
func TestDirection(t *testing.T) {
	ob := func(src, dst string) journey.Observation {
		return journey.Observation{HasKey: true, Key: journey.FlowKey{Proto: 6, Src: netip.MustParseAddrPort(src), Dst: netip.MustParseAddrPort(dst)}}
	}
	fwd := []journey.Observation{
		ob("192.0.2.50:40000", "10.255.1.11:30080"), // laptop sends
		ob("192.0.2.50:40000", "10.1.2.40:8080"),    // node1 DNAT
		ob("10.255.1.11:40000", "10.1.2.40:8080"),   // node1 SNAT
	}
	back := []journey.Observation{
		ob("10.1.2.40:8080", "10.255.1.11:40000"),   // pod4 answers
		ob("10.1.2.40:8080", "192.0.2.50:40000"),    // node1 reverse SNAT
		ob("10.255.1.11:30080", "192.0.2.50:40000"), // node1 reverse DNAT
	}
	all := []journey.Observation{back[2], fwd[2], back[0], fwd[0], back[1], fwd[1]}
	for _, tc := range []struct {
		from journey.Observation
		want []journey.Observation
	}{{fwd[0], fwd}, {back[1], back}} {
		got := direction(all, tc.from)
		if len(got) != len(tc.want) {
			t.Fatalf("from %v: %d observations, want %d: %v", tc.from.Key, len(got), len(tc.want), got)
		}
		for _, w := range tc.want {
			found := false
			for _, g := range got {
				found = found || g.Key == w.Key
			}
			if !found {
				t.Errorf("from %v: %v missing", tc.from.Key, w.Key)
			}
		}
	}
}
