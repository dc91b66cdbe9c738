package cluster

import (
	"context"
	"net/netip"

	"github.com/hoplab/hoplab/internal/journey"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// addCT puts into each packet the CT entries of the nodes its hops crossed
// whose tuple is one of the flows the hops show (either direction).
func (c *Cluster) addCT(ctx context.Context, pkts []journey.Packet) error {
	nodes := map[string]bool{}
	for _, p := range pkts {
		for _, h := range p.Hops {
			if c.Topology().Node(h.Node) != nil {
				nodes[h.Node] = true
			}
		}
	}
	rows := map[string][]nodeapi.CTRow{}
	for n := range nodes {
		r, err := c.clients[n].CTList(ctx)
		if err != nil {
			return err
		}
		rows[n] = r
	}
	for i := range pkts {
		pkts[i].CT = ctEntries(pkts[i], rows)
	}
	return nil
}

// ctEntries picks the rows of the packet's flows, on the nodes it crossed,
// in node order of the journey.
func ctEntries(p journey.Packet, rows map[string][]nodeapi.CTRow) []journey.CTEntry {
	type pair struct{ a, b netip.AddrPort }
	flows := map[string]map[pair]bool{}
	var order []string
	for _, h := range p.Hops {
		src, err1 := netip.ParseAddr(h.IPSrc)
		dst, err2 := netip.ParseAddr(h.IPDst)
		if err1 != nil || err2 != nil {
			continue
		}
		if flows[h.Node] == nil {
			flows[h.Node] = map[pair]bool{}
			order = append(order, h.Node)
		}
		s, d := netip.AddrPortFrom(src, h.Sport), netip.AddrPortFrom(dst, h.Dport)
		flows[h.Node][pair{s, d}] = true
		flows[h.Node][pair{d, s}] = true
	}
	out := []journey.CTEntry{}
	for _, n := range order {
		for _, r := range rows[n] {
			if flows[n][pair{r.Src, r.Dst}] {
				out = append(out, journey.CTEntry{Node: n, Tuple: r.Tuple, Flags: r.Flags, RevNAT: r.RevNATAddr})
			}
		}
	}
	return out
}
