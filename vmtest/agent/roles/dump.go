package roles

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/hoplab/hoplab/datapath"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// CTList dumps the CT table, rev-NAT indexes resolved to the service
// address, ordered by tuple text.
func (n *Node) CTList(context.Context) ([]nodeapi.CTRow, error) {
	entries, err := n.dp.CT.Entries()
	if err != nil {
		return nil, err
	}
	now := monotonicSeconds()
	out := make([]nodeapi.CTRow, 0, len(entries))
	for _, e := range entries {
		r := nodeapi.CTRow{
			Tuple: e.Key.String(), Proto: e.Key.Proto.String(), Direction: ctDirection(e.Key.Flags),
			Src: e.Key.Src, Dst: e.Key.Dst, Expires: int64(e.Lifetime) - now,
			TxPackets: e.TxPackets, TxBytes: e.TxBytes, RxPackets: e.RxPackets, RxBytes: e.RxBytes,
			TxFlagsSeen: e.TxFlagsSeen, RxFlagsSeen: e.RxFlagsSeen, Flags: ctFlags(e.Flags),
			RevNAT: e.RevNAT, BackendID: e.BackendID, SrcIdentity: uint32(e.SrcIdentity), ProxyPort: e.ProxyPort,
		}
		if e.RevNAT != 0 {
			if a, err := n.dp.RevNAT.Lookup(e.RevNAT); err == nil {
				r.RevNATAddr = a.String()
			}
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Tuple < out[j].Tuple })
	return out, nil
}

// CTStats counts the CT table's entries.
func (n *Node) CTStats(context.Context) (nodeapi.CTStats, error) {
	entries, capacity, err := n.dp.CT.Count()
	return nodeapi.CTStats{Entries: entries, Capacity: capacity}, err
}

func ctDirection(f datapath.TupleFlags) string {
	switch f {
	case datapath.TupleOut:
		return "OUT"
	case datapath.TupleIn:
		return "IN"
	case datapath.TupleService:
		return "SERVICE"
	case datapath.TupleRelated:
		return "RELATED"
	}
	return f.String()
}

// ctFlags renders CT state flags as Cilium's lower-case names.
func ctFlags(f datapath.CTFlags) string {
	var out []string
	for _, x := range []struct {
		f    datapath.CTFlags
		name string
	}{
		{datapath.CTRxClosing, "rx_closing"}, {datapath.CTTxClosing, "tx_closing"},
		{datapath.CTSeenNonSyn, "seen_non_syn"}, {datapath.CTService, "service"},
	} {
		if f&x.f != 0 {
			out = append(out, x.name)
		}
	}
	return strings.Join(out, " ")
}

// monotonicSeconds is CLOCK_MONOTONIC in seconds, the clock of CT
// lifetimes.
func monotonicSeconds() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Sec
}

// LBList dumps services and their backends, backends named by their pod.
func (n *Node) LBList(context.Context) ([]nodeapi.ServiceRow, error) {
	svcs, err := n.dp.Services.List()
	if err != nil {
		return nil, err
	}
	top := n.topology()
	out := make([]nodeapi.ServiceRow, 0, len(svcs))
	for _, s := range svcs {
		row := nodeapi.ServiceRow{
			Frontend: fmt.Sprintf("%v/%v", netip.AddrPortFrom(s.VIP, s.Port), s.Proto),
			ID:       s.ID, NodePort: s.NodePort, Backends: []nodeapi.BackendRow{},
		}
		for _, b := range s.Backends {
			br := nodeapi.BackendRow{ID: b.ID, Address: netip.AddrPortFrom(b.Addr, b.Port).String()}
			if p := top.PodByIP(b.Addr); p != nil {
				br.Pod = p.Name
			}
			row.Backends = append(row.Backends, br)
		}
		out = append(out, row)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// NATList dumps the SNAT table (NodePort connections to backends on other
// nodes), sorted by entry.
func (n *Node) NATList(context.Context) ([]nodeapi.NATRow, error) {
	entries, err := n.dp.NAT.Entries()
	if err != nil {
		return nil, err
	}
	out := make([]nodeapi.NATRow, 0, len(entries))
	for _, e := range entries {
		out = append(out, nodeapi.NATRow{Entry: e.String(), Direction: ctDirection(e.Key.Flags), Src: e.Key.Src, Dst: e.Key.Dst, Xlate: e.Xlate})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Entry < out[j].Entry })
	return out, nil
}

// EndpointList dumps the endpoint map, each endpoint with its pod's name,
// labels and lxc device.
func (n *Node) EndpointList(context.Context) ([]nodeapi.EndpointRow, error) {
	eps, err := n.dp.Endpoints.List()
	if err != nil {
		return nil, err
	}
	top := n.topology()
	out := make([]nodeapi.EndpointRow, 0, len(eps))
	for _, e := range eps {
		r := nodeapi.EndpointRow{
			ID: e.ID, IP: e.IP.String(), Identity: uint32(e.Identity), IfIndex: e.IfIndex,
			LXCMAC: e.LXCMAC.String(), PodMAC: e.PodMAC.String(),
			IngressEnforce: e.EnforceIngress, EgressEnforce: e.EnforceEgress,
		}
		if p := top.PodByIP(e.IP); p != nil {
			r.Pod, r.Labels, r.Device = p.Name, p.Labels.String(), p.LXCName
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// PolicyGet dumps the policy entries of one endpoint, given as a pod name
// or an endpoint id.
func (n *Node) PolicyGet(_ context.Context, req nodeapi.PolicyGet) ([]nodeapi.PolicyRow, error) {
	id, err := n.endpointID(req.Endpoint)
	if err != nil {
		return nil, err
	}
	rules, err := n.dp.Policy.Entries()
	if err != nil {
		return nil, err
	}
	out := []nodeapi.PolicyRow{}
	for _, r := range rules {
		if r.Key.Endpoint != id {
			continue
		}
		dir := "Ingress"
		if r.Key.Direction == datapath.Egress {
			dir = "Egress"
		}
		proto := "ANY"
		if r.Key.Proto != 0 {
			proto = strings.ToUpper(r.Key.Proto.String())
		}
		out = append(out, nodeapi.PolicyRow{
			Direction: dir, Identity: uint32(r.Key.Identity), Port: r.Key.Port, Proto: proto,
			Level: policyLevel(r.Key), Deny: r.Entry.Deny, ProxyPort: r.Entry.ProxyPort, Packets: r.Entry.Packets, Bytes: r.Entry.Bytes,
		})
	}
	return out, nil
}

func policyLevel(k datapath.PolicyKey) string {
	switch {
	case k.Identity != 0 && k.Port != 0:
		return "L3L4"
	case k.Port != 0:
		return "L4-only"
	case k.Identity != 0:
		return "L3-only"
	}
	return "allow-all"
}

// endpointID resolves a pod name or endpoint id of this node.
func (n *Node) endpointID(s string) (uint16, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if id, err := strconv.ParseUint(s, 10, 16); err == nil {
		for _, p := range n.st.pods {
			if p.EndpointID == uint16(id) {
				return uint16(id), nil
			}
		}
		return 0, fmt.Errorf("no endpoint %d", id)
	}
	if p := n.st.pods[s]; p != nil {
		return p.EndpointID, nil
	}
	if n.st.top.Pod(s) != nil {
		return 0, n.notHere(s)
	}
	return 0, fmt.Errorf("no pod or endpoint %q", s)
}

// IPCacheList dumps the ipcache.
func (n *Node) IPCacheList(context.Context) ([]nodeapi.IPCacheRow, error) {
	recs, err := n.dp.IPCache.Entries()
	if err != nil {
		return nil, err
	}
	out := make([]nodeapi.IPCacheRow, 0, len(recs))
	for _, r := range recs {
		row := nodeapi.IPCacheRow{Prefix: r.Prefix.String(), Identity: uint32(r.Identity)}
		if r.TunnelEndpoint.IsValid() {
			row.Tunnel = r.TunnelEndpoint.String()
		}
		out = append(out, row)
	}
	return out, nil
}

// Metrics dumps the counters (since the last Reset), ordered by reason
// code and direction.
func (n *Node) Metrics(context.Context) ([]nodeapi.MetricRow, error) {
	all, err := n.dp.Metrics.All()
	if err != nil {
		return nil, err
	}
	out := []nodeapi.MetricRow{}
	for k, v := range all {
		out = append(out, nodeapi.MetricRow{
			Reason: reasonName(k.Reason), Code: uint8(k.Reason), Direction: strings.ToUpper(k.Direction.String()),
			Packets: v.Packets, Bytes: v.Bytes,
		})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Code != out[j].Code {
			return out[i].Code < out[j].Code
		}
		return out[i].Direction > out[j].Direction
	})
	return append(out, n.l7Metrics()...), nil
}

func reasonName(r datapath.DropReason) string {
	if r == datapath.ReasonForwarded {
		return "Forwarded"
	}
	return r.String()
}

// Reset flushes the CT table (unless KeepCT) and zeroes the metrics.
func (n *Node) Reset(_ context.Context, r nodeapi.Reset) (nodeapi.ResetResult, error) {
	var res nodeapi.ResetResult
	if err := n.stopAllRST(true); err != nil {
		return res, err
	}
	if !r.KeepCT {
		entries, err := n.dp.CT.Entries()
		if err != nil {
			return res, err
		}
		for _, e := range entries {
			if err := n.dp.CT.Delete(e.Key); err == nil {
				res.CTFlushed++
			}
		}
		if err := n.dp.NAT.Flush(); err != nil {
			return res, err
		}
	}
	if err := n.dp.Metrics.Reset(); err != nil {
		return res, err
	}
	if n.proxy != nil {
		n.proxy.ResetMetrics()
	}
	return res, nil
}
