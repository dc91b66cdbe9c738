package journey

import (
	"bytes"
	"encoding/json"
	"flag"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// golden compares got with testdata/name, rewriting it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run with -update to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

var (
	macPod1 = mac("0a:01:01:01:01:0a")
	macLXC1 = mac("0e:01:01:01:01:0a")
	macBnd1 = mac("52:54:00:00:01:01")
	macTor1 = mac("52:55:00:00:01:01")
	macTor2 = mac("52:55:00:00:02:01")
	macBnd2 = mac("52:54:00:00:02:01")
	macLXC4 = mac("0e:02:02:02:02:28")
	macPod4 = mac("0a:02:02:02:02:28")
	t0      = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
)

func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// tcpFrame builds an Ethernet/IPv4/TCP SYN.
func tcpFrame(t testing.TB, src, dst net.HardwareAddr, sip, dip string, sport, dport uint16, ttl uint8, id uint16) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: src, DstMAC: dst, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: ttl, Id: id, Protocol: layers.IPProtocolTCP, SrcIP: net.ParseIP(sip).To4(), DstIP: net.ParseIP(dip).To4()}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), SYN: true, Window: 64240}
	_ = tcp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, tcp); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// referenceObservations is the reference journey of DESIGN.md as the
// collector would see it, one observation per hop, in path order.
func referenceObservations(t testing.TB) []Observation {
	const id = 0x4d01
	type step struct {
		src      string
		node     string
		point    Point
		dev      string
		s, d     net.HardwareAddr
		dip      string
		dport    uint16
		ttl      uint8
		verdict  Verdict
		reason   string
		pod      string
		timeStep int
	}
	steps := []step{
		{"pod:pod1", "node1", PodEgress, "pod1:eth0", macPod1, macLXC1, "10.224.1.1", 80, 64, Forwarded, "", "", 0},
		{"datapath:node1", "node1", FromContainer, "lxc1a2b3c", macPod1, macLXC1, "10.224.1.1", 80, 64, Forwarded, "", "", 1},
		{"datapath:node1", "node1", ToStack, "lxc1a2b3c", macPod1, macLXC1, "10.1.2.40", 8080, 64, Forwarded, "", "", 1},
		{"datapath:node1", "node1", ToNetdev, "bond0", macBnd1, macTor1, "10.1.2.40", 8080, 63, Forwarded, "", "", 2},
		{"link:node1", "node1", Wire, "eth0", macBnd1, macTor1, "10.1.2.40", 8080, 63, Forwarded, "", "", 3},
		{"link:tor", "tor", Router, "node2", macTor2, macBnd2, "10.1.2.40", 8080, 62, Forwarded, "", "", 4},
		{"link:node2", "node2", Wire, "eth1", macTor2, macBnd2, "10.1.2.40", 8080, 62, Forwarded, "", "", 5},
		{"datapath:node2", "node2", FromNetdev, "bond0", macTor2, macBnd2, "10.1.2.40", 8080, 62, Forwarded, "", "", 6},
		{"datapath:node2", "node2", ToContainer, "lxc4d5e6f", macLXC4, macPod4, "10.1.2.40", 8080, 61, Forwarded, "", "", 7},
		{"pod:pod4", "node2", PodIngress, "pod4:eth0", macLXC4, macPod4, "10.1.2.40", 8080, 61, Forwarded, "", "pod4", 8},
	}
	var out []Observation
	for _, s := range steps {
		o := NewObservation(s.src, t0.Add(time.Duration(s.timeStep)*time.Millisecond), s.node, s.point, s.dev,
			tcpFrame(t, s.s, s.d, "10.1.1.10", s.dip, 40000, s.dport, s.ttl, id))
		o.Hop.Verdict, o.Hop.DropReason, o.Pod = s.verdict, s.reason, s.pod
		out = append(out, o)
	}
	return out
}

func referencePacket(t testing.TB) Packet {
	inj := Injected{Index: 0, Time: t0, Key: mustKey(t, tcpFrame(t, macPod1, macLXC1, "10.1.1.10", "10.224.1.1", 40000, 80, 64, 0x4d01))}
	js, _ := Merge([]Injected{inj}, referenceObservations(t))
	p := js[0]
	p.CT = []CTEntry{
		{Node: "node1", Tuple: "TCP OUT 10.1.1.10:40000 -> 10.1.2.40:8080", Flags: "SYN_SEEN", RevNAT: "10.224.1.1:80"},
		{Node: "node2", Tuple: "TCP IN 10.1.1.10:40000 -> 10.1.2.40:8080", Flags: "SYN_SEEN"},
	}
	return p
}

func mustKey(t testing.TB, frame []byte) FlowKey {
	t.Helper()
	k, ok := KeyFromFrame(frame)
	if !ok {
		t.Fatal("no flow key")
	}
	return k
}

func TestJSONContract(t *testing.T) {
	r := Report{Kernel: "6.1.192", Packets: []Packet{referencePacket(t), {Index: 1, Verdict: Dropped, DropReason: "Policy denied"}}}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "report.json", string(b)+"\n")
	// Every key of DESIGN.md's example, nothing else, and [] for nil slices.
	var generic struct {
		Packets []map[string]json.RawMessage `json:"packets"`
	}
	if err := json.Unmarshal(b, &generic); err != nil {
		t.Fatal(err)
	}
	keys := func(m map[string]json.RawMessage) string {
		var ks []string
		for k := range m {
			ks = append(ks, k)
		}
		return strings.Join(sortStrings(ks), ",")
	}
	if got, want := keys(generic.Packets[1]), "ct,delivered_to,drop_reason,hops,index,verdict"; got != want {
		t.Errorf("packet keys %s, want %s", got, want)
	}
	if string(generic.Packets[1]["hops"]) != "[]" || string(generic.Packets[1]["ct"]) != "[]" {
		t.Errorf("nil slices marshal as %s / %s", generic.Packets[1]["hops"], generic.Packets[1]["ct"])
	}
	var hops []map[string]json.RawMessage
	json.Unmarshal(generic.Packets[0]["hops"], &hops)
	if got, want := keys(hops[0]), "device,dport,drop_reason,eth_dst,eth_src,ip_dst,ip_src,node,point,proto,sport,ttl,verdict"; got != want {
		t.Errorf("hop keys %s, want %s", got, want)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if d := Diff(r.Packets[0], back.Packets[0]); !d.Equal() {
		t.Errorf("round trip:\n%s", d)
	}
}

func sortStrings(s []string) []string {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s
}

func TestHopFromPacket(t *testing.T) {
	h := HopFromPacket("node1", FromContainer, "lxc1", tcpFrame(t, macPod1, macLXC1, "10.1.1.10", "10.1.2.40", 40000, 8080, 63, 7))
	want := Hop{Node: "node1", Point: FromContainer, Device: "lxc1", EthSrc: macPod1.String(), EthDst: macLXC1.String(),
		IPSrc: "10.1.1.10", IPDst: "10.1.2.40", TTL: 63, Proto: "tcp", Sport: 40000, Dport: 8080}
	if h != want {
		t.Errorf("TCP hop\n got %+v\nwant %+v", h, want)
	}

	buf := gopacket.NewSerializeBuffer()
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolICMPv4, SrcIP: net.IP{10, 1, 1, 10}, DstIP: net.IP{10, 1, 2, 40}}
	gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		&layers.Ethernet{SrcMAC: macPod1, DstMAC: macLXC1, EthernetType: layers.EthernetTypeIPv4}, ip,
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 7, Seq: 1})
	icmp := HopFromPacket("node1", PodEgress, "pod1:eth0", buf.Bytes())
	if icmp.Proto != "icmp" || icmp.Sport != 0 || icmp.TTL != 64 {
		t.Errorf("ICMP hop %+v", icmp)
	}
	if k, ok := KeyFromFrame(buf.Bytes()); !ok || k.Src.Port() != 7 || k.Proto != 1 {
		t.Errorf("ICMP key %v %v", k, ok)
	}

	buf = gopacket.NewSerializeBuffer()
	udp := &layers.UDP{SrcPort: 5000, DstPort: 53}
	ip.Protocol = layers.IPProtocolUDP
	udp.SetNetworkLayerForChecksum(ip)
	gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		&layers.Ethernet{SrcMAC: macPod1, DstMAC: macLXC1, EthernetType: layers.EthernetTypeIPv4}, ip, udp)
	if u := HopFromPacket("n", PodEgress, "d", buf.Bytes()); u.Proto != "udp" || u.Sport != 5000 || u.Dport != 53 {
		t.Errorf("UDP hop %+v", u)
	}

	buf = gopacket.NewSerializeBuffer()
	gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true},
		&layers.Ethernet{SrcMAC: macPod1, DstMAC: layers.EthernetBroadcast, EthernetType: layers.EthernetTypeARP},
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4, Operation: 1,
			SourceHwAddress: macPod1, SourceProtAddress: []byte{10, 1, 1, 10}, DstHwAddress: make([]byte, 6), DstProtAddress: []byte{10, 1, 1, 1}})
	if a := HopFromPacket("n", PodEgress, "d", buf.Bytes()); a.Proto != "arp" || a.IPSrc != "" {
		t.Errorf("ARP hop %+v", a)
	}
	for _, short := range [][]byte{nil, {1, 2, 3}, tcpFrame(t, macPod1, macLXC1, "10.1.1.10", "10.1.2.40", 1, 2, 3, 4)[:20]} {
		_ = HopFromPacket("n", Wire, "d", short) // must not panic
		_, _ = KeyFromFrame(short)
	}
}

func TestRenderReference(t *testing.T) {
	var b bytes.Buffer
	if err := Render(&b, Report{Kernel: "6.1.192", Packets: []Packet{referencePacket(t)}}); err != nil {
		t.Fatal(err)
	}
	golden(t, "reference.golden", b.String())
}

func TestRenderDropped(t *testing.T) {
	p := Packet{Index: 3, Verdict: Dropped, DropReason: "Policy denied", Hops: []Hop{
		{Node: "node2", Point: FromNetdev, Device: "bond0", EthSrc: macTor2.String(), EthDst: macBnd2.String(), IPSrc: "10.1.1.30", IPDst: "10.1.2.40", TTL: 62, Proto: "tcp", Sport: 40000, Dport: 8080, Verdict: Forwarded},
		{Node: "node2", Point: ToContainer, Device: "lxc4d5e6f", EthSrc: macTor2.String(), EthDst: macBnd2.String(), IPSrc: "10.1.1.30", IPDst: "10.1.2.40", TTL: 62, Proto: "tcp", Sport: 40000, Dport: 8080, Verdict: Dropped, DropReason: "Policy denied"},
	}}
	golden(t, "dropped.golden", RenderPacket(p))
}

func TestDiffMarksDifferences(t *testing.T) {
	got := referencePacket(t)
	want := referencePacket(t)
	if d := Diff(want, got); !d.Equal() {
		t.Fatalf("identical journeys differ:\n%s", d)
	}
	// Expectation: partial (wildcards), one wrong TTL, one wrong DNAT port,
	// a hop that is not there, a different drop reason and a missing CT.
	want = Packet{Verdict: Delivered, DeliveredTo: "pod4", Hops: []Hop{
		{Node: "node1", Point: PodEgress, IPDst: "10.224.1.1", Dport: 80},
		{Node: "node1", Point: FromContainer, IPDst: "10.224.1.1"},
		{Node: "node1", Point: ToStack, IPDst: "10.1.2.40", Dport: 9090},
		{Node: "node1", Point: ToNetdev, TTL: 63},
		{Node: "node1", Point: Wire},
		{Node: "tor", Point: Router, TTL: 61},
		{Node: "node2", Point: Wire},
		{Node: "node2", Point: FromNetdev},
		{Node: "node2", Point: ToOverlay},
		{Node: "node2", Point: ToContainer, TTL: 61, EthDst: macPod4.String()},
		{Node: "node2", Point: PodIngress},
	}, CT: []CTEntry{{Node: "node1", RevNAT: "10.224.1.1:80", Tuple: "TCP OUT 10.1.1.10:40000 -> 10.1.2.40:8080"}, {Node: "node2", Tuple: "TCP IN 1.2.3.4:1 -> 5.6.7.8:2"}}}
	d := Diff(want, got)
	if d.Equal() {
		t.Fatal("no difference found")
	}
	if len(d.Diffs) != 4 {
		t.Errorf("%d diffs, want 4: %v", len(d.Diffs), d.Diffs)
	}
	golden(t, "diff.golden", d.String())

	// Extra observed hops fail unless allowed.
	short := Packet{Hops: []Hop{{Point: PodEgress}, {Point: PodIngress}}}
	if Diff(short, got).Equal() {
		t.Error("extra hops accepted without AllowExtraHops")
	}
	if d := Diff(short, got, AllowExtraHops()); !d.Equal() {
		t.Errorf("AllowExtraHops:\n%s", d)
	}
}

func TestMergeOrdersAndMatches(t *testing.T) {
	obs := referenceObservations(t)
	obs[3].Hop.Point = "to-network" // Cilium's name, normalised by Merge
	// Scramble: sources deliver in their own order, and clocks disagree
	// across sources (the datapath events carry guest clocks).
	scrambled := []Observation{obs[8], obs[3], obs[6], obs[0], obs[4], obs[9], obs[7], obs[1], obs[5], obs[2]}
	for i := range scrambled {
		if strings.HasPrefix(scrambled[i].Source, "datapath:node2") {
			scrambled[i].Time = scrambled[i].Time.Add(-time.Hour)
		}
	}
	// A reply from pod4 (kernel-chosen IP ID 0) and a second injected
	// packet of another flow that shares the IP ID.
	reply := NewObservation("pod:pod4", t0, "node2", PodEgress, "pod4:eth0", tcpFrame(t, macPod4, macLXC4, "10.1.2.40", "10.1.1.10", 8080, 40000, 64, 0))
	other := tcpFrame(t, macPod1, macLXC1, "10.1.1.10", "10.224.1.1", 40001, 80, 64, 0x4d01)
	otherObs := NewObservation("pod:pod1", t0.Add(time.Second), "node1", PodEgress, "pod1:eth0", other)
	inj := []Injected{
		{Index: 0, Time: t0, Key: mustKey(t, tcpFrame(t, macPod1, macLXC1, "10.1.1.10", "10.224.1.1", 40000, 80, 64, 0x4d01))},
		{Index: 1, Time: t0.Add(time.Second), Key: mustKey(t, other)},
	}
	js, unmatched := Merge(inj, append(scrambled, reply, otherObs))
	if len(js) != 2 || len(unmatched) != 1 || unmatched[0].Source != "pod:pod4" {
		t.Fatalf("journeys %d, unmatched %+v", len(js), unmatched)
	}
	var points []string
	for _, h := range js[0].Hops {
		points = append(points, h.Node+"/"+string(h.Point))
	}
	want := "node1/pod-egress node1/from-container node1/to-stack node1/to-netdev node1/wire tor/router node2/wire node2/from-netdev node2/to-container node2/pod-ingress"
	if got := strings.Join(points, " "); got != want {
		t.Errorf("order\n got %s\nwant %s", got, want)
	}
	if js[0].Verdict != Delivered || js[0].DeliveredTo != "pod4" {
		t.Errorf("verdict %s to %q", js[0].Verdict, js[0].DeliveredTo)
	}
	if len(js[1].Hops) != 1 || js[1].Verdict != Lost {
		t.Errorf("second packet: %+v", js[1])
	}

	// A drop at to-container makes the journey DROPPED with the reason.
	dropped := referenceObservations(t)[:9]
	dropped[8].Hop.Verdict, dropped[8].Hop.DropReason = Dropped, "Policy denied"
	js, _ = Merge(inj[:1], dropped)
	if js[0].Verdict != Dropped || js[0].DropReason != "Policy denied" || js[0].DeliveredTo != "" {
		t.Errorf("dropped journey: %s %q %q", js[0].Verdict, js[0].DropReason, js[0].DeliveredTo)
	}

	// The datapath traces from-container on entry and reports the drop
	// later: one hop, DROPPED, with the drop event's packet.
	ref := referenceObservations(t)
	drop := ref[1]
	drop.Source, drop.Time = "datapath-drop:node1", drop.Time.Add(time.Microsecond)
	drop.Hop.Verdict, drop.Hop.DropReason = Dropped, "Service backend not found"
	js, _ = Merge(inj[:1], []Observation{ref[0], drop, ref[1]})
	if n := len(js[0].Hops); n != 2 || js[0].Hops[1].Verdict != Dropped || js[0].Verdict != Dropped {
		t.Errorf("trace + drop at from-container: %d hops, %+v", n, js[0])
	}
}

func TestPointVocabulary(t *testing.T) {
	if len(Points()) != 16 {
		t.Fatalf("%d points", len(Points()))
	}
	for i, p := range Points() {
		if p.Rank() != i {
			t.Errorf("%s rank %d", p, p.Rank())
		}
	}
	if p, ok := Canonical("to-network"); !ok || p != ToNetdev {
		t.Errorf("to-network → %s %v", p, ok)
	}
	if p, ok := Canonical("to-proxy"); !ok || p != Proxy {
		t.Errorf("to-proxy → %s %v", p, ok)
	}
	if Proxy.Rank() <= FromOverlay.Rank() || Proxy.Rank() >= ToContainer.Rank() {
		t.Errorf("proxy rank %d: between from-overlay and to-container", Proxy.Rank())
	}
	if _, ok := Canonical("to-crypto"); ok {
		t.Error("to-crypto is not in the vocabulary")
	}
}

func TestDecodeReport(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := DecodeReport(bytes.NewReader(b))
	if err != nil || r.Kernel != "6.1.192" || len(r.Packets) != 2 || len(r.Packets[0].Hops) != 10 {
		t.Fatalf("DecodeReport: %v %+v", err, r)
	}
	if _, err := DecodeReport(strings.NewReader(`{"kernel":"6.1","packets":[{"index":0,"colour":"red"}]}`)); err == nil {
		t.Error("unknown key accepted")
	}
}

// Each field of an expected CT entry is compared: a different rev-NAT
// address or flags is a difference, a wildcard is not, and an entry
// on another node or tuple is missing.
func TestDiffCTFields(t *testing.T) {
	tuple := "TCP OUT 10.1.1.10:40000 -> 10.1.2.40:8080"
	got := Packet{Verdict: Delivered, CT: []CTEntry{{Node: "node1", Tuple: tuple, Flags: "SYN_SEEN", RevNAT: "10.224.1.1:80"}}}
	for _, tc := range []struct {
		name  string
		want  CTEntry
		field string // "" for no difference
	}{
		{"equal", CTEntry{Node: "node1", Tuple: tuple, Flags: "SYN_SEEN", RevNAT: "10.224.1.1:80"}, ""},
		{"wildcards", CTEntry{Node: "node1", Tuple: tuple}, ""},
		{"rev-NAT address", CTEntry{Node: "node1", Tuple: tuple, RevNAT: "10.224.1.2:80"}, "ct " + FieldRevNAT},
		{"rev-NAT port", CTEntry{Node: "node1", Tuple: tuple, RevNAT: "10.224.1.1:81"}, "ct " + FieldRevNAT},
		{"flags", CTEntry{Node: "node1", Tuple: tuple, Flags: "ESTABLISHED"}, "ct " + FieldFlags},
		{"other node", CTEntry{Node: "node2", Tuple: tuple}, "ct"},
		{"other tuple", CTEntry{Node: "node1", Tuple: "TCP IN 1.2.3.4:1 -> 5.6.7.8:2"}, "ct"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Diff(Packet{CT: []CTEntry{tc.want}}, got)
			if tc.field == "" {
				if !d.Equal() {
					t.Fatalf("differences %v, want none", d.Diffs)
				}
				return
			}
			if len(d.Diffs) != 1 || d.Diffs[0].Field != tc.field {
				t.Fatalf("differences %v, want one in %q", d.Diffs, tc.field)
			}
			// The rendering marks the entry's differing field, or lists
			// the missing entry.
			if s := d.String(); !strings.Contains(s, "(want "+d.Diffs[0].Want+")") && !strings.Contains(s, "ct !MISSING") {
				t.Errorf("rendering lacks the mark of %s:\n%s", d.Diffs[0], s)
			}
		})
	}
}

// Packet-level fields are compared on their own: a journey whose hops all
// match still differs in verdict, drop reason or destination pod.
func TestDiffPacketFields(t *testing.T) {
	got := Packet{Verdict: Dropped, DropReason: "Policy denied", DeliveredTo: "", Hops: []Hop{{Node: "node1", Point: FromContainer}}}
	for _, tc := range []struct {
		want  Packet
		field string
	}{
		{Packet{Verdict: Delivered}, FieldVerdict},
		{Packet{DropReason: "TTL exceeded"}, FieldDropReason},
		{Packet{DeliveredTo: "pod4"}, FieldDeliveredTo},
	} {
		d := Diff(tc.want, got, AllowExtraHops())
		if len(d.Diffs) != 1 || d.Diffs[0].Field != tc.field || d.Diffs[0].Hop != -1 {
			t.Errorf("want %+v: differences %v, want one in %s", tc.want, d.Diffs, tc.field)
		}
	}
	if d := Diff(Packet{Verdict: Dropped, DropReason: "Policy denied"}, got, AllowExtraHops()); !d.Equal() {
		t.Errorf("equal fields differ: %v", d.Diffs)
	}
	// The rendering marks the differing field with what was expected.
	if s := Diff(Packet{Verdict: Delivered}, got, AllowExtraHops()).String(); !strings.Contains(s, "!DROPPED (want DELIVERED)") {
		t.Errorf("rendering lacks the verdict mark:\n%s", s)
	}
}

// Expected hops match the first observed hop that fits, in order: two
// expected wire hops match two observed ones.
func TestDiffMatchesHopsInOrder(t *testing.T) {
	got := Packet{Verdict: Delivered, Hops: []Hop{{Node: "node1", Point: Wire, TTL: 63}, {Node: "tor", Point: Router, TTL: 62}, {Node: "node2", Point: Wire, TTL: 62}}}
	want := Packet{Hops: []Hop{{Point: Wire, TTL: 63}, {Point: Wire, TTL: 62}}}
	if d := Diff(want, got, AllowExtraHops()); !d.Equal() {
		t.Errorf("two wire hops: %v", d.Diffs)
	}
}

// A difference names the hop by index and point, hop 0 included, or the
// packet; an equal journey lists no differences.
func TestDifferenceRendering(t *testing.T) {
	if s := (FieldDiff{Hop: 0, Point: PodEgress, Field: "ttl", Want: "64", Got: "63"}).String(); s != "hop 0 (pod-egress): ttl: got 63, want 64" {
		t.Errorf("hop 0: %q", s)
	}
	if s := (FieldDiff{Hop: -1, Field: FieldVerdict, Want: "DELIVERED", Got: "DROPPED"}).String(); s != "packet: verdict: got DROPPED, want DELIVERED" {
		t.Errorf("packet: %q", s)
	}
	p := Packet{Verdict: Delivered, Hops: []Hop{{Node: "node1", Point: PodEgress}}}
	if s := Diff(p, p).String(); strings.Contains(s, "difference(s)") {
		t.Errorf("an equal journey renders a difference count:\n%s", s)
	}
}

// An expected hop missing after the last observed one is a difference too
// (a journey that stops early is not equal to a longer expectation).
func TestDiffMissingLastHop(t *testing.T) {
	got := Packet{Verdict: Lost, Hops: []Hop{{Node: "node1", Point: FromContainer}, {Node: "node1", Point: ToNetdev}}}
	want := Packet{Hops: []Hop{{Point: FromContainer}, {Point: ToNetdev}, {Point: Router}}}
	d := Diff(want, got)
	if len(d.Diffs) != 1 || d.Diffs[0].Hop != 2 || d.Diffs[0].Want == "" {
		t.Fatalf("differences %v, want the router hop missing at 2", d.Diffs)
	}
	if !strings.Contains(d.String(), "MISSING") || !strings.Contains(d.String(), "1 difference(s):") {
		t.Errorf("rendering lacks the missing hop or the count:\n%s", d)
	}
}

// An expected CT entry is compared with the first observed entry it fits.
func TestDiffCTFirstFit(t *testing.T) {
	got := Packet{CT: []CTEntry{{Node: "node1", Tuple: "a", Flags: "SYN_SEEN"}, {Node: "node1", Tuple: "b", Flags: "ESTABLISHED"}}}
	if d := Diff(Packet{CT: []CTEntry{{Node: "node1", Flags: "SYN_SEEN"}}}, got); !d.Equal() {
		t.Errorf("first fit: %v", d.Diffs)
	}
}

// Empty lists are JSON arrays, never null: a report without packets, a
// packet without hops or CT entries.
func TestJSONEmptyListsAreArrays(t *testing.T) {
	b, err := json.Marshal(Report{Kernel: "6.1"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"packets":[]`) {
		t.Errorf("report: %s", b)
	}
	b, err = json.Marshal(Packet{Verdict: Lost})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"hops":[]`) || !strings.Contains(string(b), `"ct":[]`) {
		t.Errorf("packet: %s", b)
	}
}
