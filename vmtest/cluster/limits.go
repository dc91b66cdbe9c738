package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/hoplab/hoplab/topologies"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// ErrFlowLimit is matched by a *FlowLimitError.
var ErrFlowLimit = errors.New("more flows than a per-run map holds")

// FlowLimitError is CheckLimits's error: a pod's RST filter
// (ReplayOptions.SuppressRST) cannot hold the TCP flows a replay injects
// from the pod.
type FlowLimitError struct {
	// Pod is the injecting pod.
	Pod string
	// Flows counts the distinct TCP flows injected from it.
	Flows int
	// Limit is the filter's size: ReplayOptions.MaxFlows, or
	// nodeapi.DefaultRSTFlows.
	Limit int
}

// Error reads "9000 TCP flows from pod1 exceed the RST filter's 4096".
func (e *FlowLimitError) Error() string {
	return fmt.Sprintf("%d TCP flows from %s exceed the RST filter's %d", e.Flows, e.Pod, e.Limit)
}

// Is maps the error onto ErrFlowLimit.
func (e *FlowLimitError) Is(target error) bool { return target == ErrFlowLimit }

// RSTFilterSize is the size of the pods' RST filters for
// ReplayOptions.MaxFlows: nodeapi.DefaultRSTFlows for 0, else maxFlows,
// which must be in 1..nodeapi.MaxRSTFlows.
func RSTFilterSize(maxFlows int) (int, error) {
	switch {
	case maxFlows == 0:
		return nodeapi.DefaultRSTFlows, nil
	case maxFlows < 0 || maxFlows > nodeapi.MaxRSTFlows:
		return 0, fmt.Errorf("%d flows outside 1..%d", maxFlows, nodeapi.MaxRSTFlows)
	}
	return maxFlows, nil
}

// CheckLimits checks a planned replay against the maps that hold state per
// flow, before anything is injected: `hoplab replay` calls it before the
// cluster boots and Trace before it injects.
//
//   - With opts.SuppressRST each injecting pod's RST filter must hold the
//     distinct TCP flows injected from that pod (as the agent counts them:
//     IPv4, first fragments, source and destination address and port). A
//     pod with more is a *FlowLimitError, for the first such pod by name.
//     A replay ends the suppression (and its filters) when it ends, so
//     flows of earlier replays do not count.
//   - Each node's CT table (nodeapi.DefaultCTEntries, an LRU map) gets one
//     entry per flow a node's pod sends (egress), one more when it goes to
//     a service (the service entry), and one per flow delivered to a pod of
//     the node (ingress; for a service, counted on every backend's node).
//     A node that may need more gets a note: its table evicts the least
//     recently used entries, so some journeys may show no CT entry. Flows
//     are counted once whichever way their packets go.
//
// The notes are one line each and name the nodes; the caller names the
// capture.
func CheckLimits(t *topologies.Topology, plan []Planned, opts ReplayOptions) (notes []string, err error) {
	size, err := RSTFilterSize(opts.MaxFlows)
	if err != nil {
		return nil, fmt.Errorf("rst filter: %w", err)
	}
	if opts.SuppressRST {
		perPod := map[string]map[[12]byte]struct{}{}
		for _, p := range plan {
			if p.Point.Kind != AtPod && p.Point.Kind != AtExternal {
				continue
			}
			fl, ok := rstFlowOf(p.Data)
			if !ok {
				continue
			}
			m := perPod[p.Point.Pod]
			if m == nil {
				m = map[[12]byte]struct{}{}
				perPod[p.Point.Pod] = m
			}
			m[fl] = struct{}{}
		}
		names := make([]string, 0, len(perPod))
		for name := range perPod {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			if n := len(perPod[name]); n > size {
				return nil, &FlowLimitError{Pod: name, Flows: n, Limit: size}
			}
		}
	}
	return ctNotes(t, plan), nil
}

// ctNotes returns a note per node whose CT table the replay's flows may
// overflow (see CheckLimits).
func ctNotes(t *topologies.Topology, plan []Planned) []string {
	type flow struct {
		proto uint8
		a, b  netip.AddrPort
	}
	seen := map[flow]bool{}
	entries := map[string]int{} // node → CT entries it may need
	flows := map[string]int{}   // node → flows through it
	for _, p := range plan {
		k := p.Key
		if !k.Src.IsValid() {
			continue
		}
		f := flow{k.Proto, k.Src, k.Dst}
		if seen[f] || seen[flow{k.Proto, k.Dst, k.Src}] {
			continue // a flow seen before, this way or the other
		}
		seen[f] = true
		touched := map[string]bool{}
		add := func(node string, n int) {
			entries[node] += n
			touched[node] = true
		}
		if src := t.PodByIP(k.Src.Addr()); src != nil {
			add(src.Node, 1) // egress
		}
		if svc := t.ServiceAt(k.Dst.Addr(), k.Dst.Port(), topologies.Protocol(k.Proto)); svc != nil {
			if src := t.PodByIP(k.Src.Addr()); src != nil {
				add(src.Node, 1) // service
			}
			backends := map[string]bool{}
			for _, b := range svc.Backends {
				if pod := t.Pod(b.Pod); pod != nil && !backends[pod.Node] {
					backends[pod.Node] = true
					add(pod.Node, 1) // ingress, whichever backend is picked
				}
			}
		} else if dst := t.PodByIP(k.Dst.Addr()); dst != nil {
			add(dst.Node, 1) // ingress
		}
		for node := range touched {
			flows[node]++
		}
	}
	var notes []string
	for _, n := range t.Nodes {
		if e := entries[n.Name]; e > nodeapi.DefaultCTEntries {
			notes = append(notes, fmt.Sprintf("%d flows through %s may need up to %d CT entries, more than its CT table's %d: the least recently used are evicted, so some journeys may show no CT entry",
				flows[n.Name], n.Name, e, nodeapi.DefaultCTEntries))
		}
	}
	return notes
}

// rstFlowOf returns the key a pod's RST filter holds for an Ethernet +
// IPv4 + TCP frame (source and destination address, then ports, as in the
// packet), and false for any other frame and for fragments after the
// first: the agent's rule (vmtest/agent/roles tcpFlowOf).
func rstFlowOf(frame []byte) ([12]byte, bool) {
	var f [12]byte
	if len(frame) < 14+20 || binary.BigEndian.Uint16(frame[12:14]) != 0x0800 {
		return f, false
	}
	ip := frame[14:]
	ihl := int(ip[0]&0x0f) * 4
	if ip[0]>>4 != 4 || ip[9] != 6 || ihl < 20 || len(ip) < ihl+4 || binary.BigEndian.Uint16(ip[6:8])&0x1fff != 0 {
		return f, false
	}
	copy(f[0:8], ip[12:20])
	copy(f[8:12], ip[ihl:ihl+4])
	return f, true
}
