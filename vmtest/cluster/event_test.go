package cluster

import (
	"cmp"
	"encoding/binary"
	"math/rand"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/hoplab/hoplab/fixtures"
	"github.com/hoplab/hoplab/internal/journey"
	"github.com/hoplab/hoplab/topologies"
	"github.com/hoplab/hoplab/vmtest"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// acking makes a TCP frame acknowledge the sequence space of s (for the
// replies built from the injected packets' frames); ok is false when the
// packet has no TCP segment.
func acking(frame []byte, s journey.Segment, ok bool) []byte {
	if !ok {
		return frame
	}
	tcp := frame[14+int(frame[14]&0x0f)*4:]
	binary.BigEndian.PutUint32(tcp[8:12], s.End())
	tcp[13] |= 0x10
	return frame
}

// withID returns frame with IPv4 ID id (checksums are not checked here).
func withID(frame []byte, id uint16) []byte {
	f := append([]byte(nil), frame...)
	binary.BigEndian.PutUint16(f[14+4:], id)
	return f
}

// hopFrame is the fixture's frame as an expected hop shows it: the hop's
// MACs, addresses, TTL and ports patched in (wildcards keep the original).
func hopFrame(t *testing.T, orig []byte, h journey.Hop) []byte {
	t.Helper()
	f := append([]byte(nil), orig...)
	if h.EthDst != "" {
		m, err := net.ParseMAC(h.EthDst)
		if err != nil {
			t.Fatal(err)
		}
		copy(f[0:6], m)
	}
	if h.EthSrc != "" {
		m, err := net.ParseMAC(h.EthSrc)
		if err != nil {
			t.Fatal(err)
		}
		copy(f[6:12], m)
	}
	ip := f[14:]
	if h.TTL != 0 {
		ip[8] = h.TTL
	}
	if h.IPSrc != "" {
		a := netip.MustParseAddr(h.IPSrc).As4()
		copy(ip[12:16], a[:])
	}
	if h.IPDst != "" {
		a := netip.MustParseAddr(h.IPDst).As4()
		copy(ip[16:20], a[:])
	}
	if h.Proto == "tcp" || h.Proto == "udp" {
		l4 := ip[int(ip[0]&0x0f)*4:]
		if h.Sport != 0 {
			binary.BigEndian.PutUint16(l4[0:2], h.Sport)
		}
		if h.Dport != 0 {
			binary.BigEndian.PutUint16(l4[2:4], h.Dport)
		}
	}
	if o := h.Outer; o != nil {
		return encapsulate(t, f, *o)
	}
	return f
}

// encapsulate wraps inner in VXLAN with the outer headers o (a wildcard
// source port becomes 45437).
func encapsulate(t *testing.T, inner []byte, o journey.Outer) []byte {
	t.Helper()
	mac := func(s string) net.HardwareAddr {
		m, err := net.ParseMAC(s)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	eth := &layers.Ethernet{SrcMAC: mac(o.EthSrc), DstMAC: mac(o.EthDst), EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: o.TTL, Protocol: layers.IPProtocolUDP,
		SrcIP: net.ParseIP(o.IPSrc).To4(), DstIP: net.ParseIP(o.IPDst).To4()}
	udp := &layers.UDP{SrcPort: layers.UDPPort(cmp.Or(o.Sport, 45437)), DstPort: layers.UDPPort(o.Dport)}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	hdr := []byte{0x08, 0, 0, 0, byte(o.VNI >> 16), byte(o.VNI >> 8), byte(o.VNI), 0}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		eth, ip, udp, gopacket.Payload(append(hdr, inner...))); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// eventsFor turns an expected journey into the events the cluster would
// deliver for it: datapath events, pod frames, wire frames (a router hop
// and the next node's wire hop are one frame the ToR sent).
func eventsFor(t *testing.T, top *topologies.Topology, orig []byte, p journey.Packet, t0 time.Time) []Event {
	var out []Event
	for i, h := range p.Hops {
		at := t0.Add(time.Duration(i+1) * time.Millisecond)
		f := hopFrame(t, orig, h)
		switch h.Point {
		case journey.Router:
			continue
		case journey.Wire:
			idx := -1
			for k, n := range top.Nodes {
				if n.Name == h.Node {
					idx = k
				}
			}
			if idx < 0 {
				t.Fatalf("wire hop on unknown node %s", h.Node)
			}
			fromRouter := i > 0 && p.Hops[i-1].Point == journey.Router
			out = append(out, Event{Kind: EventWire, Time: at, Wire: &WireFrame{Link: vmtest.LinkName(h.Node, 1),
				Node: h.Node, Router: top.Router.Name, RouterPort: vmtest.TorBond(h.Node, idx), FromRouter: fromRouter, Frame: f}})
		case journey.External:
			dir := nodeapi.PodEgress
			if i > 0 {
				dir = nodeapi.PodIngress // the host receives: the journey's last hop
			}
			out = append(out, Event{Kind: EventPod, Time: at, Pod: &nodeapi.PodPacket{Node: top.Router.Name, Pod: h.Node, External: true,
				Direction: dir, Frame: f}})
		case journey.PodEgress, journey.PodIngress:
			dir := nodeapi.PodIngress
			if h.Point == journey.PodEgress {
				dir = nodeapi.PodEgress
			}
			pod, _, _ := strings.Cut(h.Device, ":")
			out = append(out, Event{Kind: EventPod, Time: at, Pod: &nodeapi.PodPacket{Node: h.Node, Pod: pod, Direction: dir, Frame: f}})
		default:
			d := &nodeapi.DatapathEvent{Node: h.Node, Type: nodeapi.EventTrace, Point: string(h.Point), Device: h.Device, Frame: f}
			if h.Verdict == journey.Dropped {
				d.Type, d.Reason = nodeapi.EventDrop, h.DropReason
			}
			out = append(out, Event{Kind: EventDatapath, Time: at, Datapath: d})
		}
	}
	return out
}

// TestObservationsFromFixtures feeds, for every fixture case, the events
// its expected journeys imply (in random order) through
// Event.Observations, journey.MergeReplies and the CT selection, and
// compares the result with the expectation.
func TestObservationsFromFixtures(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	cases := 0
	for _, name := range fixtures.Names() {
		exp, err := fixtures.Load(name)
		if err != nil {
			t.Fatal(err)
		}
		pkts, err := fixtures.Packets(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range exp.Cases {
			t.Run(name+"/"+c.Topology, func(t *testing.T) {
				top := builtin(t, c.Topology)
				t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
				var injected []journey.Injected
				var events []Event
				rows := map[string][]nodeapi.CTRow{}
				for i, want := range c.Packets {
					orig := pkts[i].Data
					k, ok := journey.KeyFromFrame(orig)
					if !ok {
						t.Fatalf("packet %d has no flow key", i)
					}
					at := t0.Add(time.Duration(i) * 100 * time.Millisecond)
					injected = append(injected, journey.Injected{Index: i, Time: at, Key: k})
					events = append(events, eventsFor(t, top, orig, want, at)...)
					for _, ct := range want.CT {
						rows[ct.Node] = append(rows[ct.Node], ctRow(t, ct))
					}
				}
				for _, n := range top.Nodes {
					// A flow of another packet on every node: never claimed.
					rows[n.Name] = append(rows[n.Name], ctRow(t, journey.CTEntry{Node: n.Name, Tuple: "UDP OUT 10.9.9.9:1 -> 10.9.9.8:2"}))
				}
				// Replies, all with IPv4 ID 0 like a kernel's SYN-ACKs.
				for k, r := range c.Replies {
					at := t0.Add(time.Second + time.Duration(k)*100*time.Millisecond)
					s, ok := journey.SegmentOf(pkts[r.InReplyTo].Data)
					orig := acking(withID(pkts[r.InReplyTo].Data, 0), s, ok)
					events = append(events, eventsFor(t, top, orig, r.Journey, at)...)
				}
				rng.Shuffle(len(events), func(i, j int) { events[i], events[j] = events[j], events[i] })
				var seen []journey.Sighting
				for _, e := range events {
					for _, o := range e.Observations() {
						seen = append(seen, journey.NewSighting(o, e.frame()))
					}
				}
				var sent []journey.Sent
				for i := range c.Packets {
					sent = append(sent, journey.NewSent(injected[i], pkts[i].Data))
				}
				got, reps := journey.MergeReplies(sent, seen)
				if len(reps) != len(c.Replies) {
					t.Errorf("%d replies, want %d", len(reps), len(c.Replies))
				}
				for k, want := range c.Replies {
					if k >= len(reps) {
						break
					}
					if reps[k].InReplyTo != want.InReplyTo || reps[k].Journey.Index != k {
						t.Errorf("reply %d (%s): in reply to %d, index %d", k, want.What, reps[k].InReplyTo, reps[k].Journey.Index)
					}
					if d := journey.Diff(want.Journey, reps[k].Journey); !d.Equal() {
						t.Errorf("reply %d (%s):\n%s", k, want.What, d)
					}
				}
				for i, want := range c.Packets {
					got[i].CT = ctEntries(got[i], rows)
					if d := journey.Diff(want, got[i]); !d.Equal() {
						t.Errorf("packet %d:\n%s", i, d)
					}
					for _, ct := range got[i].CT {
						if strings.Contains(ct.Tuple, "10.9.9.9") {
							t.Errorf("packet %d claims an unrelated CT entry %s", i, ct.Tuple)
						}
					}
				}
				cases++
			})
		}
	}
	if cases < 10 {
		t.Fatalf("only %d fixture cases", cases)
	}
}

// ctRow builds the CT row an expected CT entry stands for, from its tuple.
func ctRow(t *testing.T, e journey.CTEntry) nodeapi.CTRow {
	t.Helper()
	f := strings.Fields(e.Tuple) // PROTO DIR SRC -> DST
	if len(f) != 5 {
		t.Fatalf("tuple %q", e.Tuple)
	}
	return nodeapi.CTRow{Tuple: e.Tuple, Proto: f[0], Direction: f[1], Src: netip.MustParseAddrPort(f[2]), Dst: netip.MustParseAddrPort(f[4]),
		Flags: "SYN_SEEN", RevNATAddr: e.RevNAT}
}

func TestWireObservations(t *testing.T) {
	f := make([]byte, 60)
	w := WireFrame{Link: "node2-0", Node: "node2", Router: "tor", RouterPort: "node2", Frame: f}
	at := time.Now()
	points := func(w WireFrame) string {
		var s []string
		for _, o := range (Event{Kind: EventWire, Time: at, Wire: &w}).Observations() {
			s = append(s, o.Hop.Node+"/"+string(o.Hop.Point)+"/"+o.Hop.Device)
		}
		return strings.Join(s, " ")
	}
	if got := points(w); got != "node2/wire/node2-0" {
		t.Errorf("frame from the node: %s", got)
	}
	w.FromRouter = true
	if got := points(w); got != "tor/router/node2 node2/wire/node2-0" {
		t.Errorf("frame from the ToR: %s", got)
	}
	w.Injected = true
	if got := points(w); got != "node2/wire/node2-0" {
		t.Errorf("injected toward the node: %s", got)
	}
	w.Dropped = true
	if got := points(w); got != "" {
		t.Errorf("dropped: %s", got)
	}
}

func TestInjectedFirst(t *testing.T) {
	p := journey.Packet{Hops: []journey.Hop{
		{Node: "tor", Point: journey.Router}, {Node: "node1", Point: journey.Wire}, {Node: "node2", Point: journey.Wire},
		{Node: "node2", Point: journey.FromNetdev}, {Node: "node1", Point: journey.Wire},
	}}
	injectedFirst(&p, "node1")
	var got []string
	for _, h := range p.Hops {
		got = append(got, h.Node+"/"+string(h.Point))
	}
	if s := strings.Join(got, " "); s != "node1/wire tor/router node2/wire node2/from-netdev node1/wire" {
		t.Fatal(s)
	}
}

// TestExternalObservations: an external host's frames are its "external"
// hops, with the host as node and "<host>:eth0" as device; what it
// receives is delivered to it.
func TestExternalObservations(t *testing.T) {
	f := frameOf(t, "10.255.1.11", "192.0.2.50", "tcp", 30080, 40000, 61)
	for _, tc := range []struct {
		dir      string
		receives bool
	}{{nodeapi.PodEgress, false}, {nodeapi.PodIngress, true}} {
		obs := Event{Kind: EventPod, Pod: &nodeapi.PodPacket{Node: "tor", Pod: "laptop", External: true, Direction: tc.dir, Frame: f}}.Observations()
		if len(obs) != 1 {
			t.Fatalf("%s: %d observations", tc.dir, len(obs))
		}
		h := obs[0].Hop
		if h.Node != "laptop" || h.Point != journey.External || h.Device != "laptop:eth0" || h.TTL != 61 || (obs[0].Pod == "laptop") != tc.receives {
			t.Errorf("%s: %+v (pod %q)", tc.dir, h, obs[0].Pod)
		}
	}
}
