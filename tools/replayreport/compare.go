package replayreport

import (
	"slices"
	"strconv"
	"strings"

	"github.com/hoplab/hoplab/internal/journey"
)

// PacketDiff is one packet's journeys on two kernels, aligned hop by hop
// and compared field by field. Both sides count alike (unlike
// journey.Diff, where an empty expected field is a wildcard).
type PacketDiff struct {
	// Index is the packet's index in the capture.
	Index int
	// A and B are the two journeys; a side that has no journey for the
	// packet (fewer packets on that kernel) is the zero Packet.
	A, B journey.Packet
	// MissingA and MissingB say which side had no journey at all
	// (CompareReports).
	MissingA, MissingB bool
	// Packet lists the packet-level fields that differ (verdict,
	// drop_reason, delivered_to).
	Packet []string
	// Rows align the hops: matched pairs (same node, point and device, in
	// path order) and hops only one side has.
	Rows []HopPair
	// First is the index in Rows of the first differing hop, -1 when the
	// hops are alike.
	First int
	// CT aligns the CT entries by node and tuple.
	CT []CTPair
}

// HopPair is one row: hop A of journey A beside hop B of journey B; -1 on
// the side without the hop.
type HopPair struct {
	A, B int
	// Fields are the fields that differ, by their JSON names
	// ("ttl", "eth_dst", "outer.vni"); "hop" when one side lacks the hop.
	Fields []string
}

// CTPair is one CT entry on each side, -1 on a side without it.
type CTPair struct {
	A, B int
	// Fields are the differing fields ("flags", "rev_nat"); "ct" when one
	// side lacks the entry.
	Fields []string
}

// Equal reports whether the two journeys are alike.
func (d PacketDiff) Equal() bool {
	if len(d.Packet) > 0 || d.First >= 0 || d.MissingA || d.MissingB {
		return false
	}
	for _, c := range d.CT {
		if len(c.Fields) > 0 {
			return false
		}
	}
	return true
}

// Differs reports whether field differs in row r.
func (r HopPair) Differs(field string) bool { return slices.Contains(r.Fields, field) }

// hopKey is what makes two hops the same hop of a path: node, point and
// device, except a wire hop's link. Which of a bond's links a frame leaves
// on is the kernel's bonding driver's choice, by a hash that differs
// between kernels (the reference ICMP echo leaves node1 on node1-0 on
// 4.19.304 and on node1-1 on 5.10 and 7.2) and, for a tunnelled frame,
// covers the outer UDP source port, itself a per-boot hash.
func hopKey(h journey.Hop) string {
	dev := h.Device
	if h.Point == journey.Wire {
		dev = ""
	}
	return h.Node + "|" + string(h.Point) + "|" + dev
}

// ComparePackets aligns and compares one packet's journeys on two kernels.
// The outer UDP source port of tunnelled hops is not compared: the kernel
// takes it from the flow's hash, whose seed is random at every boot; nor
// is the bond link a frame leaves on (see hopKey).
func ComparePackets(a, b journey.Packet) PacketDiff {
	d := PacketDiff{Index: a.Index, A: a, B: b, First: -1}
	if a.Verdict == "" && len(a.Hops) == 0 {
		d.Index = b.Index
	}
	for _, f := range []struct{ name, a, b string }{
		{journey.FieldVerdict, string(a.Verdict), string(b.Verdict)},
		{journey.FieldDropReason, a.DropReason, b.DropReason},
		{journey.FieldDeliveredTo, a.DeliveredTo, b.DeliveredTo},
	} {
		if f.a != f.b {
			d.Packet = append(d.Packet, f.name)
		}
	}
	d.Rows = alignHops(a.Hops, b.Hops)
	for i := range d.Rows {
		r := &d.Rows[i]
		if r.A < 0 || r.B < 0 {
			r.Fields = []string{"hop"}
		} else {
			r.Fields = differingFields(a.Hops[r.A], b.Hops[r.B])
		}
		if len(r.Fields) > 0 && d.First < 0 {
			d.First = i
		}
	}
	d.CT = alignCT(a.CT, b.CT)
	return d
}

// CompareReports compares two kernels' reports packet by packet, in
// order; the longer report's extra packets are compared with nothing.
func CompareReports(a, b journey.Report) []PacketDiff {
	var out []PacketDiff
	for i := 0; i < max(len(a.Packets), len(b.Packets)); i++ {
		var pa, pb journey.Packet
		if i < len(a.Packets) {
			pa = a.Packets[i]
		}
		if i < len(b.Packets) {
			pb = b.Packets[i]
		}
		d := ComparePackets(pa, pb)
		d.MissingA, d.MissingB = i >= len(a.Packets), i >= len(b.Packets)
		out = append(out, d)
	}
	return out
}

// alignHops pairs the hops of two journeys: the longest common
// subsequence of (node, point, device), the hops outside it on their own
// rows, each where it belongs in path order.
func alignHops(a, b []journey.Hop) []HopPair {
	n, m := len(a), len(b)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if hopKey(a[i]) == hopKey(b[j]) {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var rows []HopPair
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && hopKey(a[i]) == hopKey(b[j]):
			rows = append(rows, HopPair{A: i, B: j})
			i, j = i+1, j+1
		case j >= m || (i < n && lcs[i+1][j] >= lcs[i][j+1]):
			rows = append(rows, HopPair{A: i, B: -1})
			i++
		default:
			rows = append(rows, HopPair{A: -1, B: j})
			j++
		}
	}
	return rows
}

// hopField is one comparable field of a hop.
type hopField struct {
	name  string
	value func(journey.Hop) string
}

func num(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

func l7Of(h journey.Hop) journey.L7 {
	if h.L7 == nil {
		return journey.L7{}
	}
	return *h.L7
}

func outerOf(h journey.Hop) journey.Outer {
	if h.Outer == nil {
		return journey.Outer{}
	}
	return *h.Outer
}

// comparedFields are the fields compared between two kernels' hops, in
// display order. Node, point and device make the hop (alignHops); the
// outer source port is left out (a per-boot hash).
var comparedFields = []hopField{
	{journey.FieldEthSrc, func(h journey.Hop) string { return h.EthSrc }},
	{journey.FieldEthDst, func(h journey.Hop) string { return h.EthDst }},
	{journey.FieldIPSrc, func(h journey.Hop) string { return h.IPSrc }},
	{journey.FieldIPDst, func(h journey.Hop) string { return h.IPDst }},
	{journey.FieldTTL, func(h journey.Hop) string { return num(int(h.TTL)) }},
	{journey.FieldProto, func(h journey.Hop) string { return h.Proto }},
	{journey.FieldSport, func(h journey.Hop) string { return num(int(h.Sport)) }},
	{journey.FieldDport, func(h journey.Hop) string { return num(int(h.Dport)) }},
	{journey.FieldVerdict, func(h journey.Hop) string { return string(h.Verdict) }},
	{journey.FieldDropReason, func(h journey.Hop) string { return h.DropReason }},
	{journey.FieldOuterEthSrc, func(h journey.Hop) string { return outerOf(h).EthSrc }},
	{journey.FieldOuterEthDst, func(h journey.Hop) string { return outerOf(h).EthDst }},
	{journey.FieldOuterIPSrc, func(h journey.Hop) string { return outerOf(h).IPSrc }},
	{journey.FieldOuterIPDst, func(h journey.Hop) string { return outerOf(h).IPDst }},
	{journey.FieldOuterTTL, func(h journey.Hop) string { return num(int(outerOf(h).TTL)) }},
	{journey.FieldOuterProto, func(h journey.Hop) string { return outerOf(h).Proto }},
	{journey.FieldOuterDport, func(h journey.Hop) string { return num(int(outerOf(h).Dport)) }},
	{journey.FieldOuterVNI, func(h journey.Hop) string { return num(int(outerOf(h).VNI)) }},
	{journey.FieldL7Method, func(h journey.Hop) string { return l7Of(h).Method }},
	{journey.FieldL7Path, func(h journey.Hop) string { return l7Of(h).Path }},
	{journey.FieldL7Status, func(h journey.Hop) string { return num(l7Of(h).Status) }},
	{journey.FieldL7Rule, func(h journey.Hop) string { return l7Of(h).Rule }},
}

// HopValue is the value of a compared field of h, "" when absent.
func HopValue(h journey.Hop, field string) string {
	for _, f := range comparedFields {
		if f.name == field {
			return f.value(h)
		}
	}
	return ""
}

func differingFields(a, b journey.Hop) []string {
	var out []string
	for _, f := range comparedFields {
		if f.value(a) != f.value(b) {
			out = append(out, f.name)
		}
	}
	return out
}

// alignCT pairs CT entries by node and tuple: A's in order, then B's that
// A lacks.
func alignCT(a, b []journey.CTEntry) []CTPair {
	key := func(c journey.CTEntry) string { return c.Node + "|" + c.Tuple }
	used := make([]bool, len(b))
	var out []CTPair
	for i, ca := range a {
		j := slices.IndexFunc(b, func(cb journey.CTEntry) bool { return key(cb) == key(ca) })
		if j >= 0 && used[j] {
			j = -1
		}
		if j < 0 {
			out = append(out, CTPair{A: i, B: -1, Fields: []string{"ct"}})
			continue
		}
		used[j] = true
		p := CTPair{A: i, B: j}
		if ca.Flags != b[j].Flags {
			p.Fields = append(p.Fields, journey.FieldFlags)
		}
		if ca.RevNAT != b[j].RevNAT {
			p.Fields = append(p.Fields, journey.FieldRevNAT)
		}
		out = append(out, p)
	}
	for j := range b {
		if !used[j] {
			out = append(out, CTPair{A: -1, B: j, Fields: []string{"ct"}})
		}
	}
	return out
}

// FieldDiffs lists the differences as journey.FieldDiff, in journey
// order: Want is A's value, Got B's; Hop is the hop's index in B's
// journey (in A's when B lacks it), -1 for packet fields and CT entries.
func (d PacketDiff) FieldDiffs() []journey.FieldDiff {
	var out []journey.FieldDiff
	pkt := map[string][2]string{
		journey.FieldVerdict:     {string(d.A.Verdict), string(d.B.Verdict)},
		journey.FieldDropReason:  {d.A.DropReason, d.B.DropReason},
		journey.FieldDeliveredTo: {d.A.DeliveredTo, d.B.DeliveredTo},
	}
	for _, f := range d.Packet {
		out = append(out, journey.FieldDiff{Hop: -1, Field: f, Want: pkt[f][0], Got: pkt[f][1]})
	}
	for _, r := range d.Rows {
		switch {
		case r.B < 0:
			h := d.A.Hops[r.A]
			out = append(out, journey.FieldDiff{Hop: r.A, Point: h.Point, Field: "hop", Want: hopLabel(h), Got: "missing"})
		case r.A < 0:
			h := d.B.Hops[r.B]
			out = append(out, journey.FieldDiff{Hop: r.B, Point: h.Point, Field: "hop", Want: "no such hop", Got: hopLabel(h)})
		default:
			for _, f := range r.Fields {
				out = append(out, journey.FieldDiff{Hop: r.B, Point: d.B.Hops[r.B].Point, Field: f,
					Want: HopValue(d.A.Hops[r.A], f), Got: HopValue(d.B.Hops[r.B], f)})
			}
		}
	}
	for _, c := range d.CT {
		switch {
		case c.B < 0:
			out = append(out, journey.FieldDiff{Hop: -1, Field: "ct", Want: ctLabel(d.A.CT[c.A]), Got: "missing"})
		case c.A < 0:
			out = append(out, journey.FieldDiff{Hop: -1, Field: "ct", Want: "missing", Got: ctLabel(d.B.CT[c.B])})
		default:
			ca, cb := d.A.CT[c.A], d.B.CT[c.B]
			for _, f := range c.Fields {
				w, g := ca.Flags, cb.Flags
				if f == journey.FieldRevNAT {
					w, g = ca.RevNAT, cb.RevNAT
				}
				out = append(out, journey.FieldDiff{Hop: -1, Field: "ct " + f, Want: w, Got: g})
			}
		}
	}
	return out
}

func hopLabel(h journey.Hop) string {
	return strings.TrimSpace(h.Node + " " + string(h.Point) + " " + h.Device)
}

func ctLabel(c journey.CTEntry) string { return strings.TrimSpace(c.Node + " " + c.Tuple) }
