package journey

import (
	"testing"
	"time"

	"github.com/google/gopacket/layers"
)

// A service conversation for the reply tests: pod1 (10.1.1.10:40000)
// talks to the Service 10.224.1.1:80, DNATed to pod4 (10.1.2.40:8080);
// pod4's replies are reverse-NATed back at pod1.
const (
	pod1Addr = "10.1.1.10"
	vipAddr  = "10.224.1.1"
	pod4Addr = "10.1.2.40"
)

// tcpSeg is a TCP segment of the conversation with the given fields.
type tcpSeg struct {
	seq, ack         uint32
	syn, isACK, fin  bool
	rst              bool
	payload          int
	id               uint16
	fromPod4, natted bool // pod4 → pod1 (else pod1 → pod4); addresses as pod4 sees them (else as pod1 does)
}

func (s tcpSeg) frame(t *testing.T) []byte {
	t.Helper()
	client, server := pod1Addr, vipAddr
	var cport, sport layers.TCPPort = 40000, 80
	if s.natted {
		server, sport = pod4Addr, 8080
	}
	tcp := &layers.TCP{Seq: s.seq, Ack: s.ack, SYN: s.syn, ACK: s.isACK, FIN: s.fin, RST: s.rst, Window: 64240}
	src, dst := client, server
	tcp.SrcPort, tcp.DstPort = cport, sport
	if s.fromPod4 {
		src, dst = server, client
		tcp.SrcPort, tcp.DstPort = sport, cport
	}
	return frame(t, src, dst, s.id, tcp, make([]byte, s.payload))
}

// sentSeg is an injected segment from pod1 and the sightings of it: pod1's
// eth0, and pod4's eth0 after DNAT.
func sentSeg(t *testing.T, index int, at time.Time, s tcpSeg) (Sent, []Sighting) {
	t.Helper()
	f := s.frame(t)
	sent := NewSent(Injected{Index: index, Time: at, Key: mustKey(t, f)}, f)
	egress := NewObservation("pod:pod1", at, "node1", PodEgress, "pod1:eth0", f)
	s.natted = true
	g := s.frame(t)
	ingress := NewObservation("pod:pod4", at.Add(time.Millisecond), "node2", PodIngress, "pod4:eth0", g)
	return sent, []Sighting{NewSighting(egress, f), NewSighting(ingress, g)}
}

// replySeg is a segment pod4 sends in reply and its sightings: pod4's eth0
// at at, and pod1's eth0 after reverse NAT, seen ingress later.
func replySeg(t *testing.T, at time.Time, ingress time.Duration, s tcpSeg) []Sighting {
	t.Helper()
	s.fromPod4, s.natted = true, true
	f := s.frame(t)
	egress := NewObservation("pod:pod4", at, "node2", PodEgress, "pod4:eth0", f)
	s.natted = false
	g := s.frame(t)
	in := NewObservation("pod:pod1", at.Add(ingress), "node1", PodIngress, "pod1:eth0", g)
	return []Sighting{NewSighting(egress, f), NewSighting(in, g)}
}

// A TCP reply answers the packet whose sequence space it acknowledges, not
// merely the first one of its flow not yet answered: the SYN, not the pure
// ACK injected before it with the same end (a pure ACK takes no sequence
// space), and the data segment, not the pure ACK. Replies sharing IPv4 ID 0
// stay apart by their TCP fields, and each gathers its reverse-NATed
// sighting at pod1.
func TestMergeRepliesTCPAcknowledged(t *testing.T) {
	var sent []Sent
	var seen []Sighting
	add := func(s Sent, sg []Sighting) {
		sent = append(sent, s)
		seen = append(seen, sg...)
	}
	// 0: a stray pure ACK ending at 1001 (takes no sequence space).
	add(sentSeg(t, 0, t0, tcpSeg{seq: 1001, ack: 1, isACK: true, id: 0x10}))
	// 1: the SYN, seq 1000: its sequence space ends at 1001 too.
	add(sentSeg(t, 1, t0.Add(10*time.Millisecond), tcpSeg{seq: 1000, syn: true, id: 0x11}))
	// 2: 5 bytes of data from 1001: acknowledged by 1006.
	add(sentSeg(t, 2, t0.Add(20*time.Millisecond), tcpSeg{seq: 1001, ack: 5001, isACK: true, payload: 5, id: 0x12}))
	// pod4's answers, all with IPv4 ID 0, in the order sent: the SYN-ACK
	// (acks 1001) and the ACK of the data (acks 1006). Both reach pod1 after
	// pod4 sent the second: times cannot tell their sightings apart.
	seen = append(seen, replySeg(t, t0.Add(30*time.Millisecond), 10*time.Millisecond, tcpSeg{seq: 5000, ack: 1001, syn: true, isACK: true})...)
	seen = append(seen, replySeg(t, t0.Add(32*time.Millisecond), 10*time.Millisecond, tcpSeg{seq: 5001, ack: 1006, isACK: true})...)

	pkts, reps := MergeReplies(sent, seen)
	if len(pkts) != 3 {
		t.Fatalf("%d journeys, want 3", len(pkts))
	}
	for i, p := range pkts {
		if p.Index != i || p.Verdict != Delivered || p.DeliveredTo != "pod4" || len(p.Hops) != 2 {
			t.Errorf("packet %d: index %d, %s to %q, %d hops", i, p.Index, p.Verdict, p.DeliveredTo, len(p.Hops))
		}
	}
	if len(reps) != 2 {
		t.Fatalf("%d replies, want 2: %+v", len(reps), reps)
	}
	for k, want := range []int{1, 2} {
		r := reps[k]
		if r.InReplyTo != want {
			t.Errorf("reply %d answers packet %d, want %d", k, r.InReplyTo, want)
		}
		if r.Journey.Index != k || r.Journey.Verdict != Delivered || r.Journey.DeliveredTo != "pod1" || len(r.Journey.Hops) != 2 {
			t.Errorf("reply %d: index %d, %s to %q, %d hops", k, r.Journey.Index, r.Journey.Verdict, r.Journey.DeliveredTo, len(r.Journey.Hops))
		}
		if h := r.Journey.Hops; len(h) == 2 && (h[0].Point != PodEgress || h[0].IPSrc != pod4Addr || h[1].Point != PodIngress || h[1].IPSrc != vipAddr) {
			t.Errorf("reply %d hops: %+v", k, h)
		}
	}
}

// Packets pods send that answer nothing injected are not replies: a DNS
// query of pod4's, and a segment of pod4's on another flow; neither are the
// injected packets' own sightings, even the SYN-ACK a capture holds, which
// pod4 is made to send in reply to the injected SYN.
func TestMergeRepliesWithoutRequest(t *testing.T) {
	sent, seen := sentSeg(t, 0, t0, tcpSeg{seq: 1000, syn: true, id: 0x11})
	synack := tcpSeg{seq: 5000, ack: 1001, syn: true, isACK: true, id: 0x21, fromPod4: true, natted: true}.frame(t)
	at := t0.Add(10 * time.Millisecond)
	sent2 := NewSent(Injected{Index: 1, Time: at, Key: mustKey(t, synack)}, synack)
	seen = append(seen, NewSighting(NewObservation("pod:pod4", at, "node2", PodEgress, "pod4:eth0", synack), synack))
	dns := frame(t, pod4Addr, "10.96.0.10", 0x99, &layers.UDP{SrcPort: 33333, DstPort: 53}, []byte("q"))
	seen = append(seen, NewSighting(NewObservation("pod:pod4", t0.Add(time.Second), "node2", PodEgress, "pod4:eth0", dns), dns))
	other := frame(t, pod4Addr, pod1Addr, 0, &layers.TCP{SrcPort: 8080, DstPort: 40001, Seq: 7, Ack: 1001, SYN: true, ACK: true}, nil)
	seen = append(seen, NewSighting(NewObservation("pod:pod4", t0.Add(time.Second), "node2", PodEgress, "pod4:eth0", other), other))
	// No pod-egress sighting: nothing starts a reply.
	ingressOnly := replySeg(t, t0.Add(2*time.Second), time.Millisecond, tcpSeg{seq: 5000, ack: 1001, syn: true, isACK: true})[1:]
	seen = append(seen, ingressOnly...)

	pkts, reps := MergeReplies([]Sent{sent, sent2}, seen)
	if len(pkts) != 2 || len(pkts[0].Hops) != 2 || len(pkts[1].Hops) != 1 {
		t.Fatalf("journeys %+v", pkts)
	}
	if reps == nil || len(reps) != 0 {
		t.Errorf("replies %+v, want none (and not nil)", reps)
	}
}

// Replies without TCP answer, among the packets of their flow, the first
// not yet answered, then the last; they are ordered by the time pods sent
// them, whatever order the sightings came in.
func TestMergeRepliesUDPInOrder(t *testing.T) {
	udp := func(src, dst string, sport, dport layers.UDPPort, id uint16) []byte {
		return frame(t, src, dst, id, &layers.UDP{SrcPort: sport, DstPort: dport}, []byte("ping"))
	}
	var sent []Sent
	var seen []Sighting
	for i := range 2 {
		at := t0.Add(time.Duration(i) * 10 * time.Millisecond)
		f := udp(pod1Addr, "10.1.2.20", 40000, 7, uint16(0x20+i))
		sent = append(sent, NewSent(Injected{Index: i, Time: at, Key: mustKey(t, f)}, f))
		seen = append(seen, NewSighting(NewObservation("pod:pod1", at, "node1", PodEgress, "pod1:eth0", f), f))
		seen = append(seen, NewSighting(NewObservation("pod:pod2", at.Add(time.Millisecond), "node1", PodIngress, "pod2:eth0", f), f))
	}
	var echoes []Sighting
	for k := range 3 {
		f := udp("10.1.2.20", pod1Addr, 7, 40000, uint16(0x30+k))
		f[14+8] = uint8(60 + k) // the TTL tells the echoes apart
		at := t0.Add(time.Second + time.Duration(k)*10*time.Millisecond)
		echoes = append(echoes, NewSighting(NewObservation("pod:pod2", at, "node1", PodEgress, "pod2:eth0", f), f))
	}
	seen = append(seen, echoes[2], echoes[0], echoes[1]) // out of order

	_, reps := MergeReplies(sent, seen)
	if len(reps) != 3 {
		t.Fatalf("%d replies, want 3", len(reps))
	}
	for k, want := range []int{0, 1, 1} {
		if reps[k].InReplyTo != want || reps[k].Journey.Index != k {
			t.Errorf("reply %d: answers %d (want %d), index %d", k, reps[k].InReplyTo, want, reps[k].Journey.Index)
		}
		if h := reps[k].Journey.Hops; len(h) != 1 || h[0].TTL != uint8(60+k) {
			t.Errorf("reply %d is not echo %d: hops %+v", k, k, h)
		}
	}
}
