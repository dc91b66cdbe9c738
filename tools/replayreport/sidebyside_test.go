package replayreport

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/hoplab/hoplab/internal/journey"
)

// differingPair returns the reference journey (fixture tcp-syn-vip on
// pod-to-service) as a 5.10 run, and as a 7.2 run whose node1 routes with
// one TTL decrement too many from to-netdev on (hop 03 sees ttl 62 and a
// different ToR MAC), whose node2 wire capture is missing, whose packet is
// then dropped at to-container, and whose node2 CT entry has other flags.
func differingPair(t *testing.T) (a, b KernelRun) {
	t.Helper()
	rep, _, _ := expected(t, "tcp-syn-vip")
	a = KernelRun{Name: "5.10", Report: journey.Report{Kernel: "5.10.0-46-cloud-amd64", Packets: rep.Packets}}
	p := rep.Packets[0]
	q := p
	q.Hops = slices.Clone(p.Hops)
	q.CT = slices.Clone(p.CT)
	for i := 3; i < len(q.Hops); i++ {
		q.Hops[i].TTL--
	}
	q.Hops[3].EthDst = "52:55:71:f1:2b:99"
	q.Hops = slices.Delete(q.Hops, 6, 7) // node2 wire
	q.Hops[7].Verdict, q.Hops[7].DropReason = journey.Dropped, "Policy denied"
	q.Hops = q.Hops[:8]
	q.Verdict, q.DropReason, q.DeliveredTo = journey.Dropped, "Policy denied", ""
	q.CT[1].Flags = "SYN_SEEN"
	b = KernelRun{Name: "7.2", Report: journey.Report{Kernel: "7.2.12+deb14-cloud-amd64", Packets: []journey.Packet{q}}}
	return a, b
}

// Two kernels' journeys of one packet are aligned hop by hop: the first
// differing hop is the first row with a differing field (hop 03's ttl and
// eth_dst, not the equal hops before it), a hop one side lacks is a row of
// its own, and the packet and CT fields that differ are listed.
func TestComparePackets(t *testing.T) {
	a, b := differingPair(t)
	d := ComparePackets(a.Report.Packets[0], b.Report.Packets[0])
	if d.Equal() {
		t.Fatal("differing journeys compare equal")
	}
	if d.First != 3 || !slices.Equal(d.Rows[3].Fields, []string{"eth_dst", "ttl"}) {
		t.Errorf("first differing row %d, fields %v; want 3, [eth_dst ttl]", d.First, d.Rows[d.First].Fields)
	}
	for i := 0; i < 3; i++ {
		if len(d.Rows[i].Fields) != 0 || d.Rows[i].A != i || d.Rows[i].B != i {
			t.Errorf("row %d: %+v, want hop %d beside hop %d, alike", i, d.Rows[i], i, i)
		}
	}
	if r := d.Rows[6]; r.A != 6 || r.B != -1 || !slices.Equal(r.Fields, []string{"hop"}) {
		t.Errorf("row 6: %+v, want node2 wire on 5.10 only", r)
	}
	if r := d.Rows[8]; r.A != 8 || r.B != 7 || !slices.Equal(r.Fields, []string{"ttl", "verdict", "drop_reason"}) {
		t.Errorf("row 8 (to-container): %+v", r)
	}
	if !slices.Equal(d.Packet, []string{"verdict", "drop_reason", "delivered_to"}) {
		t.Errorf("packet fields %v", d.Packet)
	}
	if len(d.CT) != 2 || len(d.CT[0].Fields) != 0 || !slices.Equal(d.CT[1].Fields, []string{"flags"}) {
		t.Errorf("CT %+v", d.CT)
	}
	// An equal pair, and one differing only in the outer source port (a
	// per-boot hash), are alike.
	if d := ComparePackets(a.Report.Packets[0], a.Report.Packets[0]); !d.Equal() || d.First != -1 {
		t.Errorf("a journey and itself: %+v", d)
	}
	x := journey.Packet{Hops: []journey.Hop{{Node: "node1", Point: journey.ToNetdev, Outer: &journey.Outer{Sport: 1, VNI: 7}}}}
	y := journey.Packet{Hops: []journey.Hop{{Node: "node1", Point: journey.ToNetdev, Outer: &journey.Outer{Sport: 2, VNI: 7}}}}
	if d := ComparePackets(x, y); !d.Equal() {
		t.Errorf("outer source ports count: %+v", d.Rows)
	}
	y.Hops[0].Outer.VNI = 8
	if d := ComparePackets(x, y); d.Equal() || !slices.Equal(d.Rows[0].Fields, []string{"outer.vni"}) {
		t.Errorf("outer VNI: %+v", d.Rows)
	}
	// A proxy hop's HTTP request and answer count.
	px := func(status int) journey.Packet {
		return journey.Packet{Hops: []journey.Hop{{Node: "node2", Point: journey.Proxy, Device: "lo",
			L7: &journey.L7{Method: "GET", Path: "/private", Status: status, Rule: "GET /public/.*"}}}}
	}
	if d := ComparePackets(px(403), px(200)); d.Equal() || !slices.Equal(d.Rows[0].Fields, []string{"l7.status"}) {
		t.Errorf("L7 status: %+v", d.Rows)
	}
	var l7 bytes.Buffer
	if err := WriteSideBySide(&l7, KernelRun{Name: "a", Report: journey.Report{Packets: []journey.Packet{px(403)}}},
		KernelRun{Name: "b", Report: journey.Report{Packets: []journey.Packet{px(200)}}}); err != nil || !strings.Contains(l7.String(), "   l7  GET /private -> !403 rule GET /public/.* |    l7  GET /private -> !200 rule GET /public/.*") {
		t.Errorf("L7 side by side (%v):\n%s", err, l7.String())
	}
	// A frame may leave on either link of its node's bond: the bonding
	// driver's hash picks it (it differs between kernels, and covers a
	// tunnelled frame's per-boot outer source port). Another node's wire
	// is another hop.
	wire := func(node, link string, sport uint16, outer bool) journey.Packet {
		h := journey.Hop{Node: node, Point: journey.Wire, Device: link, IPSrc: "10.1.1.10", Verdict: journey.Forwarded}
		if outer {
			h.Outer = &journey.Outer{IPSrc: "10.255.1.11", Sport: sport, Dport: 8472, VNI: 38586}
		}
		return journey.Packet{Hops: []journey.Hop{h}}
	}
	if d := ComparePackets(wire("node1", "node1-0", 37582, true), wire("node1", "node1-1", 40497, true)); !d.Equal() {
		t.Errorf("tunnelled frames on either link: %+v", d.Rows)
	}
	if d := ComparePackets(wire("node1", "node1-0", 0, false), wire("node1", "node1-1", 0, false)); !d.Equal() {
		t.Errorf("frames on either link: %+v", d.Rows)
	}
	if d := ComparePackets(wire("node1", "node1-0", 0, false), wire("node2", "node2-0", 0, false)); d.Equal() || len(d.Rows) != 2 {
		t.Errorf("wires of two nodes compare alike: %+v", d.Rows)
	}
}

// A differing packet is printed side by side (golden file): the header
// names the first differing hop and its fields, '>' marks that hop, '!'
// every differing value on both sides, a missing hop shows on the other
// side, and the differences are listed. An equal packet is one line.
func TestWriteSideBySide(t *testing.T) {
	a, b := differingPair(t)
	var out bytes.Buffer
	if err := WriteSideBySide(&out, a, b); err != nil {
		t.Fatal(err)
	}
	golden(t, "sidebyside-differ.txt", out.String())
	s := out.String()
	for _, want := range []string{
		"packet 0 differs between 5.10 and 7.2, first at hop 03 (node1 to-netdev bond0): eth_dst, ttl\n",
		"> 03 node1 to-netdev bond0",
		"   eth 52:54:71:f1:2b:01 -> !52:55:71:f1:2b:01",
		"| 03 node1 to-netdev bond0",
		"|    eth 52:54:71:f1:2b:01 -> !52:55:71:f1:2b:99",
		"|    (no such hop)\n",
		"    hop 03 (node1 to-netdev bond0): ttl: 63 on 5.10, 62 on 7.2\n",
		"    hop 06 (node2 wire): only on 5.10\n",
		"    hop 08 on 5.10, 07 on 7.2 (node2 to-container lxc35598c): verdict: FORWARDED on 5.10, DROPPED on 7.2\n",
		"    packet: verdict: DELIVERED on 5.10, DROPPED on 7.2\n",
		"    ct node2 TCP IN 10.1.1.10:40000 -> 10.1.2.40:8080: flags: - on 5.10, SYN_SEEN on 7.2\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("side by side lacks %q:\n%s", want, s)
		}
	}
	// Above the first differing hop nothing is marked.
	before, _, _ := strings.Cut(s, "> 03")
	if strings.Contains(before[strings.Index(before, "00 node1"):], "!") {
		t.Errorf("a mark before the first differing hop:\n%s", before)
	}

	out.Reset()
	if err := WriteSideBySide(&out, a, KernelRun{Name: "7.2", Report: a.Report}); err != nil {
		t.Fatal(err)
	}
	if want := "packet 0: the same journey on 5.10 and 7.2: DELIVERED to pod4, 10 hops, 2 CT entries\n"; out.String() != want {
		t.Errorf("equal pair:\n%s\nwant\n%s", out.String(), want)
	}
}

// A kernel that gave fewer journeys: the packet is compared with nothing.
func TestCompareReportsMissingPacket(t *testing.T) {
	a, _ := differingPair(t)
	ds := CompareReports(a.Report, journey.Report{})
	if len(ds) != 1 || !ds[0].MissingB || ds[0].Equal() {
		t.Fatalf("%+v", ds)
	}
	if got := FirstLine(ds[0], "5.10", "7.2"); got != "packet 0 differs between 5.10 and 7.2: only 5.10 has a journey for it" {
		t.Errorf("first line %q", got)
	}
}
