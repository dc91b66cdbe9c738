package replayreport

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"strconv"

	"github.com/hoplab/hoplab/internal/journey"
	"github.com/hoplab/hoplab/topologies"
)

// HTMLOptions add context to WriteHTML's page.
type HTMLOptions struct {
	// Title heads the page (default "hoplab replay").
	Title string
	// Capture names the replayed capture file.
	Capture string
	// Topology, when set, names the topology and resolves the identities
	// of drops; its router's column is drawn as the router.
	Topology *topologies.Topology
	// Files are the per-hop captures to link to (WritePcaps' result,
	// written next to the page).
	Files []HopFile
	// Notes are remarks shown above the journeys (skipped packets...).
	Notes []string
}

var (
	//go:embed report.html.tmpl
	pageText string
	// figureText draws a journey's path (the figure value of layout);
	// styleText is the pages' CSS. Both pages share them.
	//go:embed figure.svg.tmpl
	figureText string
	//go:embed style.css.tmpl
	styleText string
)

var pageTmpl = parsePage("report", pageText)

// parsePage parses a page with the shared figure and style templates.
func parsePage(name, text string) *template.Template {
	return template.Must(template.Must(template.Must(template.New(name).Parse(text)).Parse(figureText)).Parse(styleText))
}

type page struct {
	Title, Capture, Topology, Kernel string
	Notes                            []string
	Files                            []HopFile
	Packets                          []packetView
	Delivered, Dropped, Lost         int
}

type packetView struct {
	Index       int
	Verdict     string
	Reason      string
	DeliveredTo string
	DropLine    string
	Fig         figure
	Rows        []rowView
	CT          []journey.CTEntry
}

type rowView struct {
	Index   int
	Cells   []cellView
	Dropped bool
	// Outer describes the encapsulation of a tunnelled hop, else "".
	Outer string
	// L7 describes what the L7 proxy did with a proxy hop's request, else
	// "".
	L7 string
}

type cellView struct {
	Text    string
	Changed bool
	// Differs marks a cell that differs from the other kernel's (the
	// kernels page).
	Differs bool
}

// WriteHTML writes the report as one self-contained HTML page: for every
// packet a figure of its path and a table of its hops.
func WriteHTML(w io.Writer, rep journey.Report, opts HTMLOptions) error {
	pg := page{Title: opts.Title, Capture: opts.Capture, Kernel: rep.Kernel, Notes: opts.Notes, Files: opts.Files}
	if pg.Title == "" {
		pg.Title = "hoplab replay"
	}
	router := ""
	if opts.Topology != nil {
		pg.Topology = opts.Topology.Name
		router = opts.Topology.Router.Name
	}
	for _, p := range rep.Packets {
		switch p.Verdict {
		case journey.Delivered:
			pg.Delivered++
		case journey.Dropped:
			pg.Dropped++
		default:
			pg.Lost++
		}
		pv := packetView{Index: p.Index, Verdict: string(p.Verdict), Reason: p.DropReason, DeliveredTo: p.DeliveredTo,
			DropLine: DropLine(p, opts.Topology) + LostLine(p), Fig: layout(p, router), CT: p.CT}
		for i, h := range p.Hops {
			var prev *journey.Hop
			if i > 0 {
				prev = &p.Hops[i-1]
			}
			pv.Rows = append(pv.Rows, hopRow(i, prev, h))
		}
		pg.Packets = append(pg.Packets, pv)
	}
	if err := pageTmpl.Execute(w, pg); err != nil {
		return fmt.Errorf("write html: %w", err)
	}
	return nil
}

// hopRow renders a hop's table row, marking the cells whose value changed
// since the previous hop.
func hopRow(i int, prev *journey.Hop, h journey.Hop) rowView {
	var p journey.Hop
	if prev != nil {
		p = *prev
	}
	num := func(n int) string {
		if n == 0 {
			return "-"
		}
		return strconv.Itoa(n)
	}
	c := func(text, before string) cellView {
		return cellView{Text: dashIfEmpty(text), Changed: prev != nil && text != "" && before != "" && text != before}
	}
	n := func(v, before int) cellView {
		return cellView{Text: num(v), Changed: prev != nil && v != 0 && before != 0 && v != before}
	}
	verdict := string(h.Verdict)
	if h.DropReason != "" {
		verdict += " (" + h.DropReason + ")"
	}
	return rowView{Index: i, Dropped: h.Verdict == journey.Dropped, Cells: []cellView{
		{Text: dashIfEmpty(h.Node)}, {Text: string(h.Point)}, {Text: dashIfEmpty(h.Device)},
		c(h.EthSrc, p.EthSrc), c(h.EthDst, p.EthDst),
		c(h.IPSrc, p.IPSrc), c(h.IPDst, p.IPDst),
		n(int(h.TTL), int(p.TTL)), {Text: dashIfEmpty(h.Proto)},
		n(int(h.Sport), int(p.Sport)), n(int(h.Dport), int(p.Dport)),
		{Text: dashIfEmpty(verdict), Changed: h.Verdict == journey.Dropped},
	}, Outer: outerText(h.Outer), L7: l7Text(h.L7)}
}

// l7Text describes a proxy hop's HTTP request in one line, "" without.
func l7Text(l *journey.L7) string {
	if l == nil {
		return ""
	}
	return fmt.Sprintf("L7 proxy: HTTP %s %s → %d, %s", l.Method, l.Path, l.Status, dashIfEmpty(l.Rule))
}

// outerText describes a hop's VXLAN encapsulation in one line, "" without.
func outerText(o *journey.Outer) string {
	if o == nil {
		return ""
	}
	return fmt.Sprintf("in VXLAN: %s → %s, %s → %s, ttl %d, %s %d → %d, VNI %d (the sender's identity)",
		o.EthSrc, o.EthDst, o.IPSrc, o.IPDst, o.TTL, o.Proto, o.Sport, o.Dport, o.VNI)
}
