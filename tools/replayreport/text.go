package replayreport

import (
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/hoplab/hoplab/internal/journey"
	"github.com/hoplab/hoplab/topologies"
)

// WriteText writes the report's journeys as text (journey.Render) and,
// under every dropped packet, the drop's hop, reason and identities; top may
// be nil, then identities are left out.
func WriteText(w io.Writer, rep journey.Report, top *topologies.Topology) error {
	var b strings.Builder
	fmt.Fprintf(&b, "kernel %s\n%s\n", dashIfEmpty(rep.Kernel), journey.Legend)
	for _, p := range rep.Packets {
		b.WriteByte('\n')
		text := journey.RenderPacket(p)
		text = strings.TrimPrefix(text, journey.Legend+"\n")
		b.WriteString(text)
		if line := DropLine(p, top); line != "" {
			b.WriteString("  " + line + "\n")
		}
		if line := LostLine(p); line != "" {
			b.WriteString("  " + line + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// DropLine describes where and why a dropped packet was dropped, with the
// identities involved ("" for packets that were not dropped).
func DropLine(p journey.Packet, top *topologies.Topology) string {
	if p.Verdict != journey.Dropped {
		return ""
	}
	i := DropHop(p)
	if i < 0 {
		return fmt.Sprintf("drop: %s (no hop reported it)", dashIfEmpty(p.DropReason))
	}
	h := p.Hops[i]
	s := fmt.Sprintf("drop: %s at hop %02d, %s %s %s", dashIfEmpty(h.DropReason), i, h.Node, h.Point, dashIfEmpty(h.Device))
	if h.L7 != nil {
		s += fmt.Sprintf(" (HTTP %s %s answered %d; %s)", h.L7.Method, h.L7.Path, h.L7.Status, dashIfEmpty(h.L7.Rule))
	}
	if top != nil {
		s += fmt.Sprintf("; src %s %s -> dst %s %s", h.IPSrc, identity(top, h.Node, h.IPSrc), h.IPDst, identity(top, h.Node, h.IPDst))
	}
	return s
}

// LostLine says where a lost packet was last seen ("" for packets that
// were not lost).
func LostLine(p journey.Packet) string {
	if p.Verdict != journey.Lost {
		return ""
	}
	if len(p.Hops) == 0 {
		return "lost: never observed after injection"
	}
	i := len(p.Hops) - 1
	h := p.Hops[i]
	return fmt.Sprintf("lost: last seen at hop %02d, %s %s %s; no hop reported a drop (no route, or discarded by a kernel)", i, h.Node, h.Point, dashIfEmpty(h.Device))
}

// DropHop is the index of the first dropping hop, or -1.
func DropHop(p journey.Packet) int {
	for i, h := range p.Hops {
		if h.Verdict == journey.Dropped {
			return i
		}
	}
	return -1
}

// identity renders the identity node's ipcache gives ip:
// "(identity 38586 [app=frontend])".
func identity(top *topologies.Topology, node, ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return "(identity unknown)"
	}
	id, labels := Identity(top, node, a)
	if labels != "" {
		return fmt.Sprintf("(identity %d [%s])", id, labels)
	}
	return fmt.Sprintf("(identity %s)", id)
}

// Identity resolves ip the way node's ipcache does (longest prefix), and
// returns the identity with the label set of the pod owning ip ("" for
// other addresses). A node the topology lacks (the router) resolves like
// the first node.
func Identity(top *topologies.Topology, node string, ip netip.Addr) (topologies.Identity, string) {
	if p := top.PodByIP(ip); p != nil {
		return p.Identity, p.Labels.String()
	}
	if top.Node(node) == nil && len(top.Nodes) > 0 {
		node = top.Nodes[0].Name
	}
	best, id := -1, topologies.IdentityWorld
	for _, e := range top.IPCache(node) {
		if e.Prefix.Contains(ip) && e.Prefix.Bits() > best {
			best, id = e.Prefix.Bits(), e.Identity
		}
	}
	return id, ""
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
