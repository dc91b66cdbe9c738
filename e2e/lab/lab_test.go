package lab

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/hoplab/hoplab/tools/journey"
	"github.com/hoplab/hoplab/topologies"
	"github.com/hoplab/hoplab/vmtest/cluster"
	"github.com/hoplab/hoplab/vmtest/nodeapi"
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

// synAck builds pod4's answer as pod4 sends it (src 10.1.2.40:8080), or as
// pod1 receives it after reverse NAT (src 10.224.1.1:80).
func synAck(t *testing.T, src netip.AddrPort, rst bool) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: []byte{2, 0, 0, 0, 0, 4}, DstMAC: []byte{2, 0, 0, 0, 0, 1}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: src.Addr().AsSlice(), DstIP: []byte{10, 1, 1, 10}}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(src.Port()), DstPort: 40000, SYN: !rst, ACK: !rst, RST: rst}
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, tcp); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestReplies: pod4 answers pod1's SYN twice with IPv4 ID 0 (SYN-ACK, then
// RST); both cross node1's to-container to pod1. Replies tells them apart
// by order and leaves out the injected SYN's own observations.
func TestReplies(t *testing.T) {
	l := testLab(t)
	syn, err := l.Frame(Packet{From: "pod1", To: netip.MustParseAddrPort("10.224.1.1:80"), Sport: 40000, ID: 0x4d01})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	pod4 := netip.MustParseAddrPort("10.1.2.40:8080")
	vip := netip.MustParseAddrPort("10.224.1.1:80")
	obs := []journey.Observation{
		journey.NewObservation("pod:pod1", at(0), "node1", journey.PodEgress, "pod1:eth0", syn.Data),
		journey.NewObservation("pod:pod4", at(10), "node2", journey.PodEgress, "pod4:eth0", synAck(t, pod4, false)),
		journey.NewObservation("datapath:node1", at(12), "node1", journey.ToContainer, "lxc1", synAck(t, vip, false)),
		journey.NewObservation("pod:pod1", at(13), "node1", journey.PodIngress, "pod1:eth0", synAck(t, vip, false)),
		journey.NewObservation("pod:pod4", at(20), "node2", journey.PodEgress, "pod4:eth0", synAck(t, pod4, true)),
		journey.NewObservation("datapath:node1", at(22), "node1", journey.ToContainer, "lxc1", synAck(t, vip, true)),
	}
	replies := Replies([]cluster.Frame{syn}, obs)
	if len(replies) != 2 {
		t.Fatalf("%d replies, want 2: %+v", len(replies), replies)
	}
	if r := replies[0]; r.Verdict != journey.Delivered || r.DeliveredTo != "pod1" || len(r.Hops) != 3 {
		t.Errorf("first reply:\n%s", journey.RenderPacket(r))
	}
	if r := replies[1]; r.Verdict != journey.Lost || len(r.Hops) != 2 || r.Index != 1 {
		t.Errorf("second reply:\n%s", journey.RenderPacket(r))
	}
	for _, r := range replies {
		if r.Hops[0].Point != journey.PodEgress || r.Hops[0].Device != "pod4:eth0" {
			t.Errorf("reply starts at %s %s", r.Hops[0].Point, r.Hops[0].Device)
		}
	}
	want := journey.Packet{Verdict: journey.Delivered, DeliveredTo: "pod1", Hops: []journey.Hop{
		{Point: journey.PodEgress}, {Point: journey.ToContainer, IPSrc: "10.224.1.1", Sport: 80}, {Point: journey.PodIngress},
	}}
	got, ok := MatchReply(want, []journey.Packet{replies[1], replies[0]})
	if !ok || got.Index != 0 {
		t.Errorf("MatchReply picked %d (%v)", got.Index, ok)
	}
	want.DeliveredTo = "pod9"
	if got, ok := MatchReply(want, replies); !ok || got.Index != 0 {
		t.Errorf("MatchReply without a match: want the closest (0), got %d (%v)", got.Index, ok)
	}
	if _, ok := MatchReply(want, nil); ok {
		t.Error("MatchReply(nil): ok")
	}
	if r := Replies([]cluster.Frame{syn}, obs[:1]); len(r) != 0 {
		t.Errorf("no replies expected, got %d", len(r))
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
