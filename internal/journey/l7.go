package journey

import (
	"net/netip"
	"time"
)

// NewL7Observation is the proxy hop of an HTTP request the L7 proxy of
// node handled on the flow src → dst (the client and the original
// destination): verdict Forwarded, or Dropped with dropReason. It carries
// no packet, so its key has no IPv4 ID: Merge gives it to the injected
// packet of the same flow (see Merge).
func NewL7Observation(source string, t time.Time, node, device string, src, dst netip.AddrPort, verdict Verdict, dropReason string, l7 L7) Observation {
	h := Hop{Node: node, Point: Proxy, Device: device, IPSrc: src.Addr().String(), IPDst: dst.Addr().String(),
		Proto: "tcp", Sport: src.Port(), Dport: dst.Port(), Verdict: verdict, DropReason: dropReason, L7: &l7}
	return Observation{Source: source, Time: t, Hop: h, Key: FlowKey{Proto: 6, Src: src, Dst: dst}, HasKey: true}
}

// claimL7 returns the index into injected of the packet an L7
// observation belongs to: the last one injected at or before it (then the
// lowest index) of its flow — both ends equal, else one of them (the
// other translated) — or -1. IPv4 IDs play no part: a request spans
// packets.
func claimL7(injected []Injected, o Observation) int {
	best, bestScore := -1, 1
	for i, inj := range injected {
		k := inj.Key
		if k.Proto != o.Key.Proto {
			continue
		}
		score := endsMatch(k, o.Key)
		switch {
		case score > bestScore:
			best, bestScore = i, score
		case score == bestScore && best >= 0 && preferLater(injected[best], inj, o.Time):
			best = i
		}
	}
	return best
}

// foldsL7 reports whether an L7 observation's hop completes the proxy hop
// prev (the datapath's to-proxy trace of the same node): prev then takes
// its verdict and L7 fields.
func foldsL7(h, prev Hop) bool {
	return h.L7 != nil && prev.L7 == nil && h.Point == Proxy && prev.Point == Proxy && h.Node == prev.Node
}

// foldL7 completes prev with the L7 observation's hop h.
func foldL7(prev, h Hop) Hop {
	prev.L7, prev.Verdict, prev.DropReason = h.L7, h.Verdict, h.DropReason
	if prev.Device == "" {
		prev.Device = h.Device
	}
	return prev
}
