package replayreport

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/hoplab/hoplab/internal/journey"
)

// KernelRun is the replay of a capture on one kernel.
type KernelRun struct {
	// Name is the kernel as asked for: a series ("5.10") or an image path.
	Name string
	// Report is the replay's journey report (its Kernel is the release).
	Report journey.Report
}

// label names the run in headings: "5.10 (5.10.0-46-cloud-amd64)".
func (k KernelRun) label() string {
	if k.Report.Kernel == "" || k.Report.Kernel == k.Name {
		return k.Name
	}
	return k.Name + " (" + k.Report.Kernel + ")"
}

// SideBySideLegend explains the markers of WriteSideBySide.
const SideBySideLegend = "(! differs between the kernels; > the first differing hop)"

// WriteSideBySide compares the journeys of a and b packet by packet
// (CompareReports). A packet whose journeys are alike gets one line; for
// one that differs both journeys are printed side by side, hop beside
// hop, the first differing hop marked '>' and every differing field '!',
// followed by the list of differences.
func WriteSideBySide(w io.Writer, a, b KernelRun) error {
	var sb strings.Builder
	for i, d := range CompareReports(a.Report, b.Report) {
		if i > 0 {
			sb.WriteByte('\n')
		}
		writePacketPair(&sb, a, b, d)
	}
	_, err := io.WriteString(w, sb.String())
	return err
}

// SameLine is the line of a packet whose journeys are alike.
func SameLine(d PacketDiff, a, b string) string {
	p := d.A
	s := fmt.Sprintf("packet %d: the same journey on %s and %s: %s", d.Index, a, b, p.Verdict)
	if p.DropReason != "" {
		s += " (" + p.DropReason + ")"
	}
	if p.DeliveredTo != "" {
		s += " to " + p.DeliveredTo
	}
	return s + fmt.Sprintf(", %d hops, %d CT entries", len(p.Hops), len(p.CT))
}

// FirstLine says where the journeys of d part: the first differing hop
// and its fields, or the packet-level fields.
func FirstLine(d PacketDiff, a, b string) string {
	s := fmt.Sprintf("packet %d differs between %s and %s", d.Index, a, b)
	switch {
	case d.MissingA:
		return s + ": only " + b + " has a journey for it"
	case d.MissingB:
		return s + ": only " + a + " has a journey for it"
	case d.First >= 0:
		r := d.Rows[d.First]
		if r.B < 0 {
			return s + fmt.Sprintf(", first at hop %02d (%s): only on %s", r.A, hopLabel(d.A.Hops[r.A]), a)
		}
		if r.A < 0 {
			return s + fmt.Sprintf(", first at hop %02d (%s): only on %s", r.B, hopLabel(d.B.Hops[r.B]), b)
		}
		return s + fmt.Sprintf(", first at hop %02d (%s): %s", r.B, hopLabel(d.B.Hops[r.B]), strings.Join(r.Fields, ", "))
	case len(d.Packet) > 0:
		return s + ": " + strings.Join(d.Packet, ", ")
	}
	return s + ": CT entries"
}

func writePacketPair(sb *strings.Builder, a, b KernelRun, d PacketDiff) {
	if d.Equal() {
		sb.WriteString(SameLine(d, a.Name, b.Name) + "\n")
		return
	}
	sb.WriteString(FirstLine(d, a.Name, b.Name) + "\n")
	sb.WriteString("  " + SideBySideLegend + "\n")
	var rows []pairBlock
	rows = append(rows, pairBlock{left: []string{a.label()}, right: []string{b.label()}})
	rows = append(rows, pairBlock{left: []string{verdictText(d.A, d.MissingA, d.Packet)}, right: []string{verdictText(d.B, d.MissingB, d.Packet)}})
	for i, r := range d.Rows {
		gutter := " "
		switch {
		case i == d.First:
			gutter = ">"
		case len(r.Fields) > 0:
			gutter = "!"
		}
		var ha, hb *journey.Hop
		if r.A >= 0 {
			ha = &d.A.Hops[r.A]
		}
		if r.B >= 0 {
			hb = &d.B.Hops[r.B]
		}
		rows = append(rows, pairBlock{gutter: gutter, left: hopLines(r.A, ha, hb, r), right: hopLines(r.B, hb, ha, r)})
	}
	for _, c := range d.CT {
		gutter := " "
		if len(c.Fields) > 0 {
			gutter = "!"
		}
		rows = append(rows, pairBlock{gutter: gutter, left: ctLines(d.A.CT, c.A, c.Fields), right: ctLines(d.B.CT, c.B, c.Fields)})
	}
	width := 0
	for _, r := range rows {
		for _, l := range r.left {
			width = max(width, utf8.RuneCountInString(l))
		}
	}
	for _, r := range rows {
		n := max(len(r.left), len(r.right))
		for i := 0; i < n; i++ {
			g := " "
			if i == 0 {
				g = r.gutter
				if g == "" {
					g = " "
				}
			}
			l, rt := at(r.left, i), at(r.right, i)
			line := fmt.Sprintf("%s %s%s | %s", g, l, strings.Repeat(" ", width-utf8.RuneCountInString(l)), rt)
			sb.WriteString(strings.TrimRight(line, " ") + "\n")
		}
	}
	lines := DiffLines(d, a.Name, b.Name)
	fmt.Fprintf(sb, "  %d difference(s):\n", len(lines))
	for _, l := range lines {
		sb.WriteString("    " + l + "\n")
	}
}

// DiffLines lists the differences of d between kernels a and b, one line
// each, in journey order: packet fields, hops (by their index on each
// side, node, point and device), CT entries.
func DiffLines(d PacketDiff, a, b string) []string {
	var out []string
	pkt := map[string][2]string{
		journey.FieldVerdict:     {string(d.A.Verdict), string(d.B.Verdict)},
		journey.FieldDropReason:  {d.A.DropReason, d.B.DropReason},
		journey.FieldDeliveredTo: {d.A.DeliveredTo, d.B.DeliveredTo},
	}
	for _, f := range d.Packet {
		out = append(out, fmt.Sprintf("packet: %s: %s on %s, %s on %s", f, dashIfEmpty(pkt[f][0]), a, dashIfEmpty(pkt[f][1]), b))
	}
	for _, r := range d.Rows {
		switch {
		case len(r.Fields) == 0:
		case r.B < 0:
			out = append(out, fmt.Sprintf("hop %02d (%s): only on %s", r.A, hopLabel(d.A.Hops[r.A]), a))
		case r.A < 0:
			out = append(out, fmt.Sprintf("hop %02d (%s): only on %s", r.B, hopLabel(d.B.Hops[r.B]), b))
		default:
			where := fmt.Sprintf("hop %02d", r.A)
			if r.A != r.B {
				where = fmt.Sprintf("hop %02d on %s, %02d on %s", r.A, a, r.B, b)
			}
			ha, hb := d.A.Hops[r.A], d.B.Hops[r.B]
			for _, f := range r.Fields {
				out = append(out, fmt.Sprintf("%s (%s): %s: %s on %s, %s on %s", where, hopLabel(hb), f,
					dashIfEmpty(HopValue(ha, f)), a, dashIfEmpty(HopValue(hb, f)), b))
			}
		}
	}
	for _, c := range d.CT {
		switch {
		case len(c.Fields) == 0:
		case c.B < 0:
			out = append(out, fmt.Sprintf("ct %s: only on %s", ctLabel(d.A.CT[c.A]), a))
		case c.A < 0:
			out = append(out, fmt.Sprintf("ct %s: only on %s", ctLabel(d.B.CT[c.B]), b))
		default:
			ca, cb := d.A.CT[c.A], d.B.CT[c.B]
			for _, f := range c.Fields {
				w, g := ca.Flags, cb.Flags
				if f == journey.FieldRevNAT {
					w, g = ca.RevNAT, cb.RevNAT
				}
				out = append(out, fmt.Sprintf("ct %s: %s: %s on %s, %s on %s", ctLabel(cb), f, dashIfEmpty(w), a, dashIfEmpty(g), b))
			}
		}
	}
	return out
}

// pairBlock is a row of the side-by-side: lines of each side, and the
// gutter mark of its first line.
type pairBlock struct {
	gutter      string
	left, right []string
}

func at(lines []string, i int) string {
	if i < len(lines) {
		return lines[i]
	}
	return ""
}

func verdictText(p journey.Packet, missing bool, differ []string) string {
	if missing {
		return "(no journey for this packet)"
	}
	m := func(field, v string) string { return marked(v, slices.Contains(differ, field)) }
	s := m(journey.FieldVerdict, string(p.Verdict))
	if p.DropReason != "" || slices.Contains(differ, journey.FieldDropReason) {
		s += " (" + m(journey.FieldDropReason, p.DropReason) + ")"
	}
	if p.DeliveredTo != "" || slices.Contains(differ, journey.FieldDeliveredTo) {
		s += " to " + m(journey.FieldDeliveredTo, p.DeliveredTo)
	}
	return s
}

// marked renders a value, '!' in front when it differs.
func marked(v string, differs bool) string {
	v = dashIfEmpty(v)
	if differs {
		return "!" + v
	}
	return v
}

// hopLines renders hop h (index i) for one side; other is the hop beside
// it, so both sides have the same lines (an IP, ports or outer line when
// either hop has one). A side without the hop says so.
func hopLines(i int, h, other *journey.Hop, r HopPair) []string {
	if h == nil {
		return []string{"   (no such hop)"}
	}
	o := other
	if o == nil {
		o = h
	}
	m := func(field string) string { return marked(HopValue(*h, field), r.Differs(field)) }
	lines := []string{fmt.Sprintf("%02d %s %s %s", i, dashIfEmpty(h.Node), h.Point, dashIfEmpty(h.Device)),
		fmt.Sprintf("   eth %s -> %s", m(journey.FieldEthSrc), m(journey.FieldEthDst))}
	if h.IPSrc != "" || h.IPDst != "" || o.IPSrc != "" || o.IPDst != "" {
		lines = append(lines, fmt.Sprintf("   ip  %s -> %s ttl %s %s", m(journey.FieldIPSrc), m(journey.FieldIPDst), m(journey.FieldTTL), m(journey.FieldProto)))
	}
	if h.Sport != 0 || h.Dport != 0 || o.Sport != 0 || o.Dport != 0 {
		lines = append(lines, fmt.Sprintf("   %-3s %s -> %s", dashIfEmpty(h.Proto), m(journey.FieldSport), m(journey.FieldDport)))
	}
	if h.Outer != nil || o.Outer != nil {
		sport := ""
		if h.Outer != nil {
			sport = num(int(h.Outer.Sport))
		}
		lines = append(lines,
			fmt.Sprintf("   outer eth %s -> %s", m(journey.FieldOuterEthSrc), m(journey.FieldOuterEthDst)),
			fmt.Sprintf("   outer ip %s -> %s ttl %s %s %s -> %s vni %s", m(journey.FieldOuterIPSrc), m(journey.FieldOuterIPDst),
				m(journey.FieldOuterTTL), m(journey.FieldOuterProto), dashIfEmpty(sport), m(journey.FieldOuterDport), m(journey.FieldOuterVNI)))
	}
	if h.L7 != nil || o.L7 != nil {
		lines = append(lines, fmt.Sprintf("   l7  %s %s -> %s rule %s", m(journey.FieldL7Method), m(journey.FieldL7Path),
			m(journey.FieldL7Status), m(journey.FieldL7Rule)))
	}
	v := "   " + m(journey.FieldVerdict)
	if h.DropReason != "" || r.Differs(journey.FieldDropReason) {
		v += " (" + m(journey.FieldDropReason) + ")"
	}
	return append(lines, v)
}

// ctLines renders CT entry i of one side, or says it has none there.
func ctLines(ct []journey.CTEntry, i int, differ []string) []string {
	if i < 0 {
		return []string{"(no such CT entry)"}
	}
	c := ct[i]
	return []string{fmt.Sprintf("ct %s %s", dashIfEmpty(c.Node), dashIfEmpty(c.Tuple)),
		fmt.Sprintf("   flags %s rev_nat %s", marked(c.Flags, slices.Contains(differ, journey.FieldFlags)), marked(c.RevNAT, slices.Contains(differ, journey.FieldRevNAT)))}
}
