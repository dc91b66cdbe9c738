package replayreport

import (
	"fmt"
	"strings"

	"github.com/hoplab/hoplab/internal/journey"
)

// Figure geometry, in SVG user units.
const (
	colW    = 250 // node box width
	colGap  = 80  // space between node boxes
	margin  = 20
	headH   = 34 // node box title band
	rowH    = 86 // distance between hop rows
	hopW    = 210
	hopH    = 62
	padding = 14 // node box padding below the last row
)

// figure is the SVG picture of one journey.
type figure struct {
	Width, Height int
	Boxes         []nodeBox
	Hops          []hopBox
	Arrows        []arrow
}

// nodeBox is a node (or the router) the packet crossed.
type nodeBox struct {
	X, Y, W, H int
	Title      string
	Router     bool
}

// hopBox is one hop: a device with its hook.
type hopBox struct {
	X, Y, W, H int
	Index      int
	Device     string
	Point      string
	Note       string // what changed, short
	Pod        bool
	// Proxy marks the L7 proxy's hop.
	Proxy   bool
	Dropped bool
	// Differs and First mark a hop that differs from the other kernel's
	// journey, and the first such hop (the kernels page).
	Differs, First bool
	// TX, TY place the texts.
	TX, TY1, TY2, TY3 int
}

// arrow joins two consecutive hops.
type arrow struct {
	X1, Y1, X2, Y2 int
	Dropped        bool
}

// segment is a run of consecutive hops on one node.
type segment struct {
	node  string
	first int
	n     int
}

func segments(hops []journey.Hop) []segment {
	var segs []segment
	for i, h := range hops {
		if len(segs) > 0 && segs[len(segs)-1].node == h.Node {
			segs[len(segs)-1].n++
			continue
		}
		segs = append(segs, segment{node: h.Node, first: i, n: 1})
	}
	return segs
}

// layout places a journey's hops: one column per node in path order; the
// sending node's hops top-down, the receiving node's bottom-up, nodes in
// between at the bottom (the shape of the "life of a packet" figures:
// down through the sender's stack, across the fabric, up to the pod).
func layout(p journey.Packet, router string) figure {
	segs := segments(p.Hops)
	rows := 1
	for _, s := range segs {
		rows = max(rows, s.n)
	}
	f := figure{
		Width:  2*margin + len(segs)*colW + max(0, len(segs)-1)*colGap,
		Height: 2*margin + headH + rows*rowH + padding,
	}
	rowOf := func(si, j int) int {
		s := segs[si]
		switch {
		case len(segs) == 1 || si == 0:
			return j
		case si == len(segs)-1:
			return rows - 1 - j
		default:
			return rows - s.n + j
		}
	}
	drop := DropHop(p)
	for si, s := range segs {
		x := margin + si*(colW+colGap)
		title := s.node
		isRouter := s.node == router
		if isRouter {
			title += " (router)"
		}
		box := nodeBox{X: x, Y: margin, W: colW, H: headH + rows*rowH + padding, Title: title, Router: isRouter}
		if len(segs) > 1 && si > 0 && si < len(segs)-1 {
			// Nodes in between hug their hops at the bottom.
			box.Y += (rows - s.n) * rowH
			box.H -= (rows - s.n) * rowH
		}
		f.Boxes = append(f.Boxes, box)
		for j := 0; j < s.n; j++ {
			i := s.first + j
			h := p.Hops[i]
			hx := x + (colW-hopW)/2
			hy := margin + headH + rowOf(si, j)*rowH + (rowH-hopH)/2
			var prev *journey.Hop
			if i > 0 {
				prev = &p.Hops[i-1]
			}
			f.Hops = append(f.Hops, hopBox{
				X: hx, Y: hy, W: hopW, H: hopH, Index: i,
				Device: dashIfEmpty(h.Device), Point: string(h.Point), Note: changeNote(prev, h),
				Pod: strings.HasSuffix(h.Device, ":eth0"), Proxy: h.Point == journey.Proxy, Dropped: i == drop,
				TX: hx + 10, TY1: hy + 20, TY2: hy + 37, TY3: hy + 53,
			})
		}
	}
	for i := 1; i < len(f.Hops); i++ {
		a, b := f.Hops[i-1], f.Hops[i]
		var ar arrow
		switch {
		case a.X == b.X && b.Y > a.Y:
			ar = arrow{X1: a.X + a.W/2, Y1: a.Y + a.H, X2: b.X + b.W/2, Y2: b.Y}
		case a.X == b.X:
			ar = arrow{X1: a.X + a.W/2, Y1: a.Y, X2: b.X + b.W/2, Y2: b.Y + b.H}
		default:
			ar = arrow{X1: a.X + a.W, Y1: a.Y + a.H/2, X2: b.X, Y2: b.Y + b.H/2}
		}
		ar.Dropped = b.Dropped
		f.Arrows = append(f.Arrows, ar)
	}
	return f
}

// changeNote summarises what a hop changed: DNAT, SNAT, TTL, MACs; at a
// proxy hop, the HTTP request and its status.
func changeNote(prev *journey.Hop, h journey.Hop) string {
	if h.Verdict == journey.Dropped {
		if h.L7 != nil {
			return fmt.Sprintf("DROP: %s, HTTP %d", dashIfEmpty(h.DropReason), h.L7.Status)
		}
		return "DROP: " + dashIfEmpty(h.DropReason)
	}
	if h.L7 != nil {
		return fmt.Sprintf("%s %s → %d", h.L7.Method, h.L7.Path, h.L7.Status)
	}
	if prev == nil {
		return fmt.Sprintf("%s %s", h.Proto, hostPort(h.IPDst, h.Dport))
	}
	var parts []string
	if changed(prev.IPDst, h.IPDst) || (prev.Dport != 0 && h.Dport != 0 && prev.Dport != h.Dport) {
		parts = append(parts, "dst→"+hostPort(h.IPDst, h.Dport))
	}
	if changed(prev.IPSrc, h.IPSrc) || (prev.Sport != 0 && h.Sport != 0 && prev.Sport != h.Sport) {
		parts = append(parts, "src→"+hostPort(h.IPSrc, h.Sport))
	}
	if prev.TTL != 0 && h.TTL != 0 && prev.TTL != h.TTL {
		parts = append(parts, fmt.Sprintf("ttl %d", h.TTL))
	}
	if changed(prev.EthSrc, h.EthSrc) || changed(prev.EthDst, h.EthDst) {
		parts = append(parts, "MACs")
	}
	if len(parts) == 0 {
		return "unchanged"
	}
	return strings.Join(parts, ", ")
}

func changed(a, b string) bool { return a != "" && b != "" && a != b }

func hostPort(ip string, port uint16) string {
	if port == 0 {
		return dashIfEmpty(ip)
	}
	return fmt.Sprintf("%s:%d", dashIfEmpty(ip), port)
}
