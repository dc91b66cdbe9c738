package journey

import (
	"net"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

const (
	pod2Addr = "10.1.2.20"
	pod5Addr = "10.1.2.50"
)

// replyShape checks a reply's attribution and its journey: its index, and
// the hops it gathered (pod4's egress, then pod1's ingress when delivered).
func replyShape(t *testing.T, reps []Reply, k, inReplyTo, hops int) {
	t.Helper()
	if k >= len(reps) {
		t.Fatalf("no reply %d: %+v", k, reps)
	}
	r := reps[k]
	if r.InReplyTo != inReplyTo || r.Journey.Index != k || len(r.Journey.Hops) != hops {
		t.Errorf("reply %d: answers %d (want %d), index %d, %d hops (want %d): %+v", k, r.InReplyTo, inReplyTo, r.Journey.Index, len(r.Journey.Hops), hops, r.Journey.Hops)
	}
}

// Which sent packet a TCP reply answers: one whose sequence space it
// acknowledges (segments taking sequence space first, then those taking
// none), the first of them not yet answered, else the last; a reply
// acknowledging none of them, or without ACK, answers the first packet of
// its flow not yet answered, else the last. Every reply shares IPv4 ID 0 and
// keeps its two sightings (pod4's eth0, pod1's eth0 after reverse NAT).
func TestMergeRepliesAckChoice(t *testing.T) {
	type reply struct {
		seg  tcpSeg
		want int
	}
	for _, tc := range []struct {
		name    string
		sent    []tcpSeg
		replies []reply
	}{
		{
			// pod4 answers the retransmitted SYN with a second SYN-ACK
			// (same fields): each SYN gets one.
			name: "retransmitted SYN",
			sent: []tcpSeg{{seq: 1000, syn: true, id: 0x11}, {seq: 1000, syn: true, id: 0x12}},
			replies: []reply{
				{tcpSeg{seq: 5000, ack: 1001, syn: true, isACK: true}, 0},
				{tcpSeg{seq: 5000, ack: 1001, syn: true, isACK: true}, 1},
			},
		},
		{
			// The SYN-ACK retransmitted while pod1's ACK was on its way
			// still answers the SYN, not the ACK that takes no sequence
			// space.
			name: "SYN-ACK retransmitted before the ACK",
			sent: []tcpSeg{{seq: 1000, syn: true, id: 0x11}, {seq: 1001, ack: 5001, isACK: true, id: 0x12}},
			replies: []reply{
				{tcpSeg{seq: 5000, ack: 1001, syn: true, isACK: true}, 0},
				{tcpSeg{seq: 5000, ack: 1001, syn: true, isACK: true}, 0},
			},
		},
		{
			// A replay starting mid-stream: pod1's pure ACK, then its
			// data. pod4's two segments sent before the data arrived
			// acknowledge only the pure ACK: both answer it, not the data.
			name: "only a pure ACK acknowledged",
			sent: []tcpSeg{{seq: 1001, ack: 5001, isACK: true, id: 0x11}, {seq: 1001, ack: 5001, isACK: true, payload: 5, id: 0x12}},
			replies: []reply{
				{tcpSeg{seq: 5001, ack: 1001, isACK: true, payload: 10}, 0},
				{tcpSeg{seq: 5011, ack: 1001, isACK: true, payload: 10}, 0},
			},
		},
		{
			// Two pure ACKs ending at 1001 (pod1 acknowledging more of
			// pod4's data): three segments acknowledging 1001 answer the
			// first, the second, then the last again.
			name: "two pure ACKs acknowledged",
			sent: []tcpSeg{{seq: 1001, ack: 5001, isACK: true, id: 0x11}, {seq: 1001, ack: 5011, isACK: true, id: 0x12}},
			replies: []reply{
				{tcpSeg{seq: 5011, ack: 1001, isACK: true, payload: 10}, 0},
				{tcpSeg{seq: 5021, ack: 1001, isACK: true, payload: 10}, 1},
				{tcpSeg{seq: 5031, ack: 1001, isACK: true, payload: 10}, 1},
			},
		},
		{
			// The ACK of the second segment answers it; a segment whose
			// ack matches no sent packet's end answers the first packet
			// not yet answered.
			name: "acknowledging nothing sent",
			sent: []tcpSeg{{seq: 1001, ack: 5001, isACK: true, payload: 5, id: 0x11}, {seq: 1006, ack: 5001, isACK: true, payload: 5, id: 0x12}},
			replies: []reply{
				{tcpSeg{seq: 5001, ack: 1011, isACK: true}, 1},
				{tcpSeg{seq: 5001, ack: 1003, isACK: true, payload: 1}, 0},
			},
		},
		{
			// A RST without ACK: its ack field (here the second packet's
			// end) means nothing, so it answers the first packet not yet
			// answered.
			name: "RST without ACK",
			sent: []tcpSeg{{seq: 1001, ack: 5001, isACK: true, payload: 5, id: 0x11}, {seq: 1006, ack: 5001, isACK: true, payload: 5, id: 0x12}},
			replies: []reply{
				{tcpSeg{seq: 5001, ack: 1011, rst: true}, 0},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sent []Sent
			var seen []Sighting
			for i, s := range tc.sent {
				sn, sg := sentSeg(t, i, t0.Add(time.Duration(i)*10*time.Millisecond), s)
				sent = append(sent, sn)
				seen = append(seen, sg...)
			}
			for k, r := range tc.replies {
				at := t0.Add(100*time.Millisecond + time.Duration(k)*10*time.Millisecond)
				seen = append(seen, replySeg(t, at, time.Millisecond, r.seg)...)
			}
			pkts, reps := MergeReplies(sent, seen)
			for i, p := range pkts {
				if p.Index != i || len(p.Hops) != 2 || p.DeliveredTo != "pod4" {
					t.Errorf("packet %d: index %d, %d hops, to %q", i, p.Index, len(p.Hops), p.DeliveredTo)
				}
			}
			if len(reps) != len(tc.replies) {
				t.Fatalf("%d replies, want %d: %+v", len(reps), len(tc.replies), reps)
			}
			for k, r := range tc.replies {
				replyShape(t, reps, k, r.want, 2)
				if j := reps[k].Journey; j.Verdict != Delivered || j.DeliveredTo != "pod1" {
					t.Errorf("reply %d: %s to %q", k, j.Verdict, j.DeliveredTo)
				}
			}
		})
	}
}

// Two replies sharing IPv4 ID 0 whose sightings times cannot tell apart
// (both reach pod1 after pod4 sent the second) and whose ends, acks and
// flags agree: a pure ACK from 5001 and a keepalive probe carrying one
// byte from 5000. Only the sequence space the keepalive takes tells them
// apart, and each keeps its own two sightings.
func TestMergeRepliesSequenceSpaceTellsApart(t *testing.T) {
	sent, seen := sentSeg(t, 0, t0, tcpSeg{seq: 1001, ack: 5001, isACK: true, payload: 5, id: 0x11})
	seen = append(seen, replySeg(t, t0.Add(30*time.Millisecond), 10*time.Millisecond, tcpSeg{seq: 5001, ack: 1006, isACK: true})...)
	seen = append(seen, replySeg(t, t0.Add(32*time.Millisecond), 10*time.Millisecond, tcpSeg{seq: 5000, ack: 1006, isACK: true, payload: 1})...)
	_, reps := MergeReplies([]Sent{sent}, seen)
	if len(reps) != 2 {
		t.Fatalf("%d replies, want 2: %+v", len(reps), reps)
	}
	replyShape(t, reps, 0, 0, 2)
	replyShape(t, reps, 1, 0, 2)
}

// tsoFrame is f with an IPv4 total length of 0, as captures of TSO frames
// show: decoders take the frame's length for it (the flow key and hop are
// read), SegmentOf finds no room for a TCP header.
func tsoFrame(f []byte) []byte {
	f = append([]byte(nil), f...)
	f[14+2], f[14+3] = 0, 0
	return f
}

// A reply whose TCP fields are all zero (a NULL probe: seq 0, ack 0, no
// flags) and one whose segment cannot be read, with the same IPv4 ID and
// flow, are different packets: each keeps its own sightings, although the
// NULL probe reaches pod1 after pod4 sent the other one.
func TestMergeRepliesZeroSegmentIsNotNoSegment(t *testing.T) {
	sent, seen := sentSeg(t, 0, t0, tcpSeg{seq: 1000, syn: true, id: 0x11})
	seen = append(seen, replySeg(t, t0.Add(30*time.Millisecond), 10*time.Millisecond, tcpSeg{id: 0x55})...)
	unreadable := tsoFrame(tcpSeg{seq: 5000, ack: 1001, isACK: true, id: 0x55, fromPod4: true, natted: true}.frame(t))
	if _, ok := SegmentOf(unreadable); ok {
		t.Fatal("the TSO frame has a segment")
	}
	o := NewObservation("pod:pod4", t0.Add(35*time.Millisecond), "node2", PodEgress, "pod4:eth0", unreadable)
	if !o.HasKey || o.Hop.Sport != 8080 {
		t.Fatalf("the TSO frame has no flow: %+v", o)
	}
	seen = append(seen, NewSighting(o, unreadable))
	_, reps := MergeReplies([]Sent{sent}, seen)
	if len(reps) != 2 {
		t.Fatalf("%d replies, want 2: %+v", len(reps), reps)
	}
	replyShape(t, reps, 0, 0, 2) // the NULL probe, delivered
	replyShape(t, reps, 1, 0, 1) // the unreadable one, seen only at pod4
}

// A replay may inject packets both ways (a capture of both sides): pod2's
// echo injected as packet 0 and pod1's request as packet 1. The injected
// echo's sightings are packet 0's journey, not a reply to packet 1; only
// the echo pod2 sends answers it.
func TestMergeRepliesInjectedBothWays(t *testing.T) {
	udp := func(src, dst string, sport, dport layers.UDPPort, id uint16, ttl uint8) []byte {
		f := frame(t, src, dst, id, &layers.UDP{SrcPort: sport, DstPort: dport}, []byte("ping"))
		f[14+8] = ttl
		return f
	}
	var sent []Sent
	var seen []Sighting
	flows := []struct {
		src, dst     string
		sport, dport layers.UDPPort
		from, to     string
	}{{pod2Addr, pod1Addr, 7, 40000, "pod2", "pod1"}, {pod1Addr, pod2Addr, 40000, 7, "pod1", "pod2"}}
	for i, fl := range flows {
		at := t0.Add(time.Duration(i) * 10 * time.Millisecond)
		f := udp(fl.src, fl.dst, fl.sport, fl.dport, uint16(0x40+i), 64)
		sent = append(sent, NewSent(Injected{Index: i, Time: at, Key: mustKey(t, f)}, f))
		seen = append(seen,
			NewSighting(NewObservation("pod:"+fl.from, at, "node1", PodEgress, fl.from+":eth0", f), f),
			NewSighting(NewObservation("pod:"+fl.to, at.Add(time.Millisecond), "node1", PodIngress, fl.to+":eth0", f), f))
	}
	echo := udp(pod2Addr, pod1Addr, 7, 40000, 0x50, 63)
	seen = append(seen, NewSighting(NewObservation("pod:pod2", t0.Add(20*time.Millisecond), "node1", PodEgress, "pod2:eth0", echo), echo))

	pkts, reps := MergeReplies(sent, seen)
	for i, want := range []string{"pod1", "pod2"} {
		if p := pkts[i]; len(p.Hops) != 2 || p.DeliveredTo != want {
			t.Errorf("packet %d: %d hops, to %q (want %q)", i, len(p.Hops), p.DeliveredTo, want)
		}
	}
	if len(reps) != 1 {
		t.Fatalf("%d replies, want the echo only: %+v", len(reps), reps)
	}
	replyShape(t, reps, 0, 1, 1)
	if h := reps[0].Journey.Hops; len(h) == 1 && h[0].TTL != 63 {
		t.Errorf("the reply is not pod2's echo: %+v", h)
	}
}

// A reply answers only packets to the pod that sent it: pod5's answer goes
// to the request sent to pod5, not to the earlier one sent to pod4 on the
// same ports, which stays unanswered.
func TestMergeRepliesOtherPodSamePorts(t *testing.T) {
	var sent []Sent
	var seen []Sighting
	for i, dst := range []string{pod4Addr, pod5Addr} {
		at := t0.Add(time.Duration(i) * 10 * time.Millisecond)
		f := frame(t, pod1Addr, dst, uint16(0x20+i), &layers.UDP{SrcPort: 40000, DstPort: 7}, []byte("ping"))
		sent = append(sent, NewSent(Injected{Index: i, Time: at, Key: mustKey(t, f)}, f))
		seen = append(seen, NewSighting(NewObservation("pod:pod1", at, "node1", PodEgress, "pod1:eth0", f), f))
	}
	echo := frame(t, pod5Addr, pod1Addr, 0x30, &layers.UDP{SrcPort: 7, DstPort: 40000}, []byte("ping"))
	seen = append(seen, NewSighting(NewObservation("pod:pod5", t0.Add(time.Second), "node2", PodEgress, "pod5:eth0", echo), echo))
	_, reps := MergeReplies(sent, seen)
	if len(reps) != 1 {
		t.Fatalf("%d replies, want 1: %+v", len(reps), reps)
	}
	replyShape(t, reps, 0, 1, 1)
}

// vxlanBetween is a VXLAN frame from src to dst (UDP 4789 both ways)
// carrying inner.
func vxlanBetween(t *testing.T, src, dst string, id uint16, inner []byte) []byte {
	t.Helper()
	hdr := []byte{0x08, 0, 0, 0, 0, 0x01, 0x23, 0}
	return frame(t, src, dst, id, &layers.UDP{SrcPort: 4789, DstPort: 4789}, append(hdr, inner...))
}

// arpRequest is an Ethernet ARP request for 192.168.0.1.
func arpRequest(t *testing.T) []byte {
	t.Helper()
	hw := net.HardwareAddr{2, 0, 0, 0, 0, 9}
	eth := &layers.Ethernet{SrcMAC: hw, DstMAC: layers.EthernetBroadcast, EthernetType: layers.EthernetTypeARP}
	arp := &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
		Operation: layers.ARPRequest, SourceHwAddress: hw, SourceProtAddress: []byte{192, 168, 0, 2},
		DstHwAddress: make([]byte, 6), DstProtAddress: []byte{192, 168, 0, 1}}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{}, eth, arp); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// A pod's frame without a flow key makes no reply: pod1 and pod4 tunnel to
// each other, and
// of pod4's two VXLAN frames back, the one carrying an ARP request has no
// key (KeyFromFrame reads the inner packet); the one carrying IPv4 answers
// packet 0 (its inner flow reverses the request's: hops describe the inner
// packet, the tunnel is in Hop.Outer) and is tracked to pod1.
func TestMergeRepliesKeylessFrame(t *testing.T) {
	inner := func(src, dst string, id uint16, sport, dport layers.UDPPort) []byte {
		return frame(t, src, dst, id, &layers.UDP{SrcPort: sport, DstPort: dport}, []byte("x"))
	}
	req := vxlanBetween(t, pod1Addr, pod4Addr, 0x60, inner("192.168.0.1", "192.168.0.2", 0x61, 1000, 2000))
	sent := NewSent(Injected{Index: 0, Time: t0, Key: mustKey(t, req)}, req)
	seen := []Sighting{
		NewSighting(NewObservation("pod:pod1", t0, "node1", PodEgress, "pod1:eth0", req), req),
		NewSighting(NewObservation("pod:pod4", t0.Add(time.Millisecond), "node2", PodIngress, "pod4:eth0", req), req),
	}
	arp := vxlanBetween(t, pod4Addr, pod1Addr, 0x70, arpRequest(t))
	if _, ok := KeyFromFrame(arp); ok {
		t.Fatal("the VXLAN-wrapped ARP has a flow key")
	}
	back := vxlanBetween(t, pod4Addr, pod1Addr, 0x71, inner("192.168.0.2", "192.168.0.1", 0x72, 2000, 1000))
	seen = append(seen,
		NewSighting(NewObservation("pod:pod4", t0.Add(10*time.Millisecond), "node2", PodEgress, "pod4:eth0", arp), arp),
		NewSighting(NewObservation("pod:pod1", t0.Add(11*time.Millisecond), "node1", PodIngress, "pod1:eth0", arp), arp),
		NewSighting(NewObservation("pod:pod4", t0.Add(20*time.Millisecond), "node2", PodEgress, "pod4:eth0", back), back),
		NewSighting(NewObservation("pod:pod1", t0.Add(21*time.Millisecond), "node1", PodIngress, "pod1:eth0", back), back))
	pkts, reps := MergeReplies([]Sent{sent}, seen)
	if len(pkts[0].Hops) != 2 || pkts[0].DeliveredTo != "pod4" {
		t.Errorf("packet 0: %+v", pkts[0])
	}
	if len(reps) != 1 {
		t.Fatalf("%d replies, want 1: %+v", len(reps), reps)
	}
	replyShape(t, reps, 0, 0, 2)
	if j := reps[0].Journey; j.DeliveredTo != "pod1" || j.Hops[0].Sport != 2000 || j.Hops[0].Outer == nil || j.Hops[0].Outer.Sport != 4789 {
		t.Errorf("reply: %+v", j)
	}
}

// A reply answers only packets of its protocol: pod1 asks pod4's DNS server
// over TCP (a SYN, packet 0) and over UDP (packet 1) from the same port.
// pod4's UDP answer, although it comes first, answers the UDP query, and
// its SYN-ACK the SYN.
func TestMergeRepliesOtherProtocolSamePorts(t *testing.T) {
	syn := frame(t, pod1Addr, pod4Addr, 0x20, &layers.TCP{SrcPort: 40053, DstPort: 53, Seq: 1000, SYN: true}, nil)
	query := frame(t, pod1Addr, pod4Addr, 0x21, &layers.UDP{SrcPort: 40053, DstPort: 53}, []byte("q"))
	var sent []Sent
	var seen []Sighting
	for i, f := range [][]byte{syn, query} {
		at := t0.Add(time.Duration(i) * 10 * time.Millisecond)
		sent = append(sent, NewSent(Injected{Index: i, Time: at, Key: mustKey(t, f)}, f))
		seen = append(seen, NewSighting(NewObservation("pod:pod1", at, "node1", PodEgress, "pod1:eth0", f), f))
	}
	answer := frame(t, pod4Addr, pod1Addr, 0, &layers.UDP{SrcPort: 53, DstPort: 40053}, []byte("a"))
	synack := frame(t, pod4Addr, pod1Addr, 0, &layers.TCP{SrcPort: 53, DstPort: 40053, Seq: 5000, Ack: 1001, SYN: true, ACK: true}, nil)
	for k, f := range [][]byte{answer, synack} {
		o := NewObservation("pod:pod4", t0.Add(time.Second+time.Duration(k)*10*time.Millisecond), "node2", PodEgress, "pod4:eth0", f)
		seen = append(seen, NewSighting(o, f))
	}
	_, reps := MergeReplies(sent, seen)
	if len(reps) != 2 {
		t.Fatalf("%d replies, want 2: %+v", len(reps), reps)
	}
	replyShape(t, reps, 0, 1, 1)
	replyShape(t, reps, 1, 0, 1)
	if reps[0].Journey.Hops[0].Proto != "udp" || reps[1].Journey.Hops[0].Proto != "tcp" {
		t.Errorf("replies out of order: %+v", reps)
	}
}
