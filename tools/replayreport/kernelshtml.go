package replayreport

import (
	_ "embed"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/hoplab/hoplab/internal/journey"
)

//go:embed kernels.html.tmpl
var kernelsText string

var kernelsTmpl = parsePage("kernels", kernelsText)

type kernelsPage struct {
	Title, Capture, Topology string
	A, B                     string
	Notes                    []string
	Same, Differ             int
	Packets                  []pairView
}

// pairView is one packet on the kernels page.
type pairView struct {
	Index   int
	Equal   bool
	Summary string
	Diffs   []string
	Sides   [2]sideView
}

// sideView is one kernel's journey of the packet.
type sideView struct {
	Label                             string
	Missing                           bool
	Verdict, Reason, DeliveredTo      string
	VerdictDiffers                    bool
	Fig                               figure
	Rows                              []diffRowView
	CT                                []ctView
	HasFig                            bool
	DropLine                          string
	ReasonDiffers, DeliveredToDiffers bool
}

// diffRowView is a row of a side's hop table, aligned with the other
// side's row: a hop (cells marked where they differ) or the absence of
// the hop the other side has.
type diffRowView struct {
	rowView
	Absent, First, Differs, OuterDiffers, L7Differs bool
}

// ctView is a CT entry, or its absence, with its differing fields.
type ctView struct {
	journey.CTEntry
	Absent                    bool
	FlagsDiffer, RevNATDiffer bool
}

// cellOfField is the hop table column (hopRow's cells) of each compared
// field.
var cellOfField = map[string]int{
	journey.FieldEthSrc: 3, journey.FieldEthDst: 4, journey.FieldIPSrc: 5, journey.FieldIPDst: 6,
	journey.FieldTTL: 7, journey.FieldProto: 8, journey.FieldSport: 9, journey.FieldDport: 10,
	journey.FieldVerdict: 11, journey.FieldDropReason: 11,
}

// WriteKernelsHTML writes one self-contained page comparing the journeys
// of a and b packet by packet (CompareReports): for a packet that
// differs, the two paths drawn side by side (the figure of WriteHTML),
// the first differing hop and the differing hops outlined, and the two
// hop tables aligned row by row with the differing cells highlighted;
// a packet whose journeys are alike gets one line, its paths folded.
func WriteKernelsHTML(w io.Writer, a, b KernelRun, opts HTMLOptions) error {
	pg := kernelsPage{Title: opts.Title, Capture: opts.Capture, A: a.label(), B: b.label(), Notes: opts.Notes}
	if pg.Title == "" {
		pg.Title = "hoplab replay: " + a.Name + " and " + b.Name
	}
	router := ""
	if opts.Topology != nil {
		pg.Topology = opts.Topology.Name
		router = opts.Topology.Router.Name
	}
	for _, d := range CompareReports(a.Report, b.Report) {
		pv := pairView{Index: d.Index, Equal: d.Equal()}
		if pv.Equal {
			pg.Same++
			pv.Summary = SameLine(d, a.Name, b.Name)
		} else {
			pg.Differ++
			pv.Summary = FirstLine(d, a.Name, b.Name)
			pv.Diffs = DiffLines(d, a.Name, b.Name)
		}
		pv.Sides[0] = side(d, 0, pg.A, router, opts)
		pv.Sides[1] = side(d, 1, pg.B, router, opts)
		pg.Packets = append(pg.Packets, pv)
	}
	if err := kernelsTmpl.Execute(w, pg); err != nil {
		return fmt.Errorf("write html: %w", err)
	}
	return nil
}

// side builds the view of side s (0: A, 1: B) of d.
func side(d PacketDiff, s int, label, router string, opts HTMLOptions) sideView {
	p, missing := d.A, d.MissingA
	idx := func(r HopPair) int { return r.A }
	other := func(r HopPair) int { return r.B }
	ctIdx := func(c CTPair) int { return c.A }
	if s == 1 {
		p, missing = d.B, d.MissingB
		idx, other = other, idx
		ctIdx = func(c CTPair) int { return c.B }
	}
	v := sideView{Label: label, Missing: missing}
	if missing {
		return v
	}
	differs := func(f string) bool { return slices.Contains(d.Packet, f) }
	v.Verdict, v.Reason, v.DeliveredTo = string(p.Verdict), p.DropReason, p.DeliveredTo
	v.VerdictDiffers, v.ReasonDiffers, v.DeliveredToDiffers = differs(journey.FieldVerdict), differs(journey.FieldDropReason), differs(journey.FieldDeliveredTo)
	v.DropLine = DropLine(p, opts.Topology) + LostLine(p)
	if len(p.Hops) > 0 {
		v.Fig, v.HasFig = layout(p, router), true
	}
	for ri, r := range d.Rows {
		i := idx(r)
		if i < 0 {
			// The other side has the hop (every row has one side).
			o := d.A.Hops
			if s == 0 {
				o = d.B.Hops
			}
			h := o[other(r)]
			v.Rows = append(v.Rows, diffRowView{Absent: true, First: ri == d.First,
				rowView: rowView{Index: -1, Cells: []cellView{{Text: h.Node}, {Text: string(h.Point)}, {Text: dashIfEmpty(h.Device)}, {Text: "no such hop on this kernel"}}}})
			continue
		}
		var prev *journey.Hop
		if i > 0 {
			prev = &p.Hops[i-1]
		}
		row := diffRowView{rowView: hopRow(i, prev, p.Hops[i]), First: ri == d.First, Differs: len(r.Fields) > 0}
		for _, f := range r.Fields {
			if c, ok := cellOfField[f]; ok {
				row.Cells[c].Differs = true
			}
			if strings.HasPrefix(f, "outer.") {
				row.OuterDiffers = true
			}
			if strings.HasPrefix(f, "l7.") {
				row.L7Differs = true
			}
		}
		v.Rows = append(v.Rows, row)
		for k := range v.Fig.Hops {
			if v.Fig.Hops[k].Index == i {
				v.Fig.Hops[k].Differs = row.Differs
				v.Fig.Hops[k].First = row.First
			}
		}
	}
	for _, c := range d.CT {
		i := ctIdx(c)
		if i < 0 {
			v.CT = append(v.CT, ctView{Absent: true})
			continue
		}
		cv := ctView{CTEntry: p.CT[i]}
		for _, f := range c.Fields {
			cv.FlagsDiffer = cv.FlagsDiffer || f == journey.FieldFlags || f == "ct"
			cv.RevNATDiffer = cv.RevNATDiffer || f == journey.FieldRevNAT || f == "ct"
		}
		v.CT = append(v.CT, cv)
	}
	return v
}
