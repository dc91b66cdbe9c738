package roles

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/hoplab/hoplab/bgp"
	"github.com/hoplab/hoplab/datapath"
	"github.com/hoplab/hoplab/topologies"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// Update applies a changed topology in place, without reloading programs
// and without touching CT (existing flows keep their backend): new policy
// entries first, then pods removed and added (namespace, veth, attachment,
// endpoint, policy program), endpoints and listeners changed, old policy
// entries removed, services and backends upserted and removed, ipcache
// entries upserted and removed. It returns one line per change. A watch
// capturing pods is restarted when pods came or went, so that it captures
// the new set.
func (n *Node) Update(ctx context.Context, u nodeapi.Update) (nodeapi.UpdateResult, error) {
	res, err := n.update(ctx, u)
	if err != nil || !slices.ContainsFunc(res.Changes, func(c string) bool { return strings.HasPrefix(c, "pod: ") }) {
		return res, err
	}
	n.mu.Lock()
	w := n.watch
	n.mu.Unlock()
	if w != nil && w.req.Pods {
		if _, err := n.Watch(ctx, w.req); err != nil {
			return res, err
		}
	}
	return res, nil
}

func (n *Node) update(_ context.Context, u nodeapi.Update) (nodeapi.UpdateResult, error) {
	res := nodeapi.UpdateResult{Changes: []string{}}
	top, err := topologies.Parse(u.File, []byte(u.Topology))
	if err != nil {
		return res, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return res, errors.New("node closed")
	}
	if top.Node(n.name()) == nil {
		return res, fmt.Errorf("this node is not in the new topology %s", top.Name)
	}
	if top.SocketLB != n.st.top.SocketLB {
		return res, fmt.Errorf("%s: socketLB %v: socket-level LB is switched only by a new setup", u.File, top.SocketLB)
	}
	if top.Mode != n.st.top.Mode {
		return res, fmt.Errorf("%s: mode %s: a node set up in %s mode changes mode only by a new setup", u.File, top.Mode, n.st.top.Mode)
	}
	old := n.st
	nw, err := desired(top, n.name(), n.ids)
	if err != nil {
		return res, err
	}
	add := func(format string, args ...any) { res.Changes = append(res.Changes, fmt.Sprintf(format, args...)) }
	podName := func(s *state, id uint16) string {
		for name, p := range s.pods {
			if p.EndpointID == id {
				return name
			}
		}
		return fmt.Sprint(id)
	}
	fail := func(err error) (nodeapi.UpdateResult, error) {
		n.devices.Clear()
		return res, err
	}

	// The L7 proxy takes the new rules, and listens on new ports, before
	// any entry redirects there.
	l7, err := n.updateProxy(top)
	if err != nil {
		return fail(err)
	}
	res.Changes = append(res.Changes, l7...)

	// Policy entries that appear, or change their proxy port (flows
	// already tracked keep theirs: CT recorded it).
	for _, k := range sortedPolicy(nw.policy) {
		op, had := old.policy[k]
		if had && op == nw.policy[k] {
			continue
		}
		if err := n.dp.Policy.AllowProxy(k, nw.policy[k]); err != nil {
			return fail(err)
		}
		switch {
		case !had:
			add("policy: %s +%v%s", podName(nw, k.Endpoint), k, proxyNote(nw.policy[k]))
		default:
			add("policy: %s %v proxy port %d -> %d", podName(nw, k.Endpoint), k, op, nw.policy[k])
		}
	}

	// Pods that go, or whose network identity changed (recreated).
	var recreate []string
	for _, name := range old.podNames() {
		op, np := old.pods[name], nw.pods[name]
		if np != nil && op.IP == np.IP && op.MAC == np.MAC && op.LXCName == np.LXCName &&
			op.LXCMAC == np.LXCMAC && op.EndpointID == np.EndpointID {
			continue
		}
		if err := n.removePod(name, op.EndpointID, op.IP); err != nil {
			return fail(err)
		}
		if np != nil {
			recreate = append(recreate, name)
			add("pod: %s recreated (%v)", name, np.IP)
		} else {
			add("pod: -%s (%v)", name, op.IP)
		}
	}
	n.st = nw
	for _, name := range nw.podNames() {
		if old.pods[name] != nil && !slices.Contains(recreate, name) {
			continue
		}
		if err := n.addPod(name); err != nil {
			return fail(err)
		}
		if !slices.Contains(recreate, name) {
			add("pod: +%s (%v)", name, nw.pods[name].IP)
		}
	}

	// Pods that stay: endpoint values and listeners.
	for _, name := range nw.podNames() {
		op := old.pods[name]
		if op == nil || slices.Contains(recreate, name) {
			continue
		}
		oe, ne := old.endpoints[name], nw.endpoints[name]
		if oe.Identity != ne.Identity || oe.EnforceIngress != ne.EnforceIngress || oe.EnforceEgress != ne.EnforceEgress {
			ne.IfIndex = n.pods[name].HostIndex
			if err := n.dp.Endpoints.Upsert(ne); err != nil {
				return fail(fmt.Errorf("pod %s: %w", name, err))
			}
			add("endpoint: %s identity %d ingress-enforcement %v egress-enforcement %v", name, ne.Identity, ne.EnforceIngress, ne.EnforceEgress)
		}
		np := nw.pods[name]
		for _, l := range op.Listen {
			if !slices.Contains(np.Listen, l) {
				if wl := n.listeners[name][l]; wl != nil {
					if err := wl.Close(); err != nil {
						return fail(fmt.Errorf("pod %s: stop %v: %w", name, l, err))
					}
					delete(n.listeners[name], l)
				}
				add("listen: %s -%v", name, l)
			}
		}
		for _, l := range np.Listen {
			if !slices.Contains(op.Listen, l) {
				if err := n.listen(name, l); err != nil {
					return fail(err)
				}
				add("listen: %s +%v", name, l)
			}
		}
	}

	// Policy entries that go.
	for _, k := range sortedPolicy(old.policy) {
		if _, keep := nw.policy[k]; !keep {
			if err := n.dp.Policy.Delete(k); err != nil {
				return fail(err)
			}
			add("policy: %s -%v", podName(old, k.Endpoint), k)
		}
	}
	res.Changes = append(res.Changes, n.pruneProxy()...)

	// Services: upsert new and changed ones, then delete the gone ones and
	// the backends nothing uses any more.
	for _, s := range nw.sortedServices() {
		k := svcKey{s.VIP, s.Port, s.Proto}
		o, had := old.services[k]
		if had && slices.Equal(o.Backends, s.Backends) {
			continue
		}
		if err := n.dp.Services.Upsert(s); err != nil {
			return fail(err)
		}
		if !had {
			add("service: +%v (id %d) %s", k, s.ID, backendList(nw.top, s.Backends))
			continue
		}
		for _, b := range s.Backends {
			if !slices.Contains(o.Backends, b) {
				add("service backend: %v +%s", k, backendName(nw.top, b))
			}
		}
		for _, b := range o.Backends {
			if !slices.Contains(s.Backends, b) {
				add("service backend: %v -%s", k, backendName(old.top, b))
			}
		}
	}
	for _, s := range old.sortedServices() {
		k := svcKey{s.VIP, s.Port, s.Proto}
		if _, ok := nw.services[k]; ok {
			continue
		}
		if err := n.dp.Services.Delete(s.VIP, s.Port, s.Proto); err != nil {
			return fail(err)
		}
		add("service: -%v (id %d)", k, s.ID)
	}
	used := map[uint32]bool{}
	for _, s := range nw.services {
		for _, b := range s.Backends {
			used[b.ID] = true
		}
	}
	var gone []uint32
	for _, s := range old.services {
		for _, b := range s.Backends {
			if !used[b.ID] && !slices.Contains(gone, b.ID) {
				gone = append(gone, b.ID)
			}
		}
	}
	sort.Slice(gone, func(i, j int) bool { return gone[i] < gone[j] })
	for _, id := range gone {
		if err := n.dp.Backends.Delete(id); err != nil {
			return fail(err)
		}
	}
	n.ids.forget(nw)

	// ipcache.
	for _, p := range sortedPrefixes(nw.ipcache) {
		o, had := old.ipcache[p]
		e := nw.ipcache[p]
		if had && o == e {
			continue
		}
		if err := n.dp.IPCache.Upsert(p, e); err != nil {
			return fail(err)
		}
		if had {
			add("ipcache: %v identity %d -> %d", p, o.Identity, e.Identity)
		} else {
			add("ipcache: +%v identity %d", p, e.Identity)
		}
	}
	for _, p := range sortedPrefixes(old.ipcache) {
		if _, ok := nw.ipcache[p]; ok {
			continue
		}
		if err := n.dp.IPCache.Delete(p); err != nil {
			return fail(err)
		}
		add("ipcache: -%v", p)
	}
	n.devices.Clear()
	n.log.Info("node updated", "changes", len(res.Changes))
	return res, nil
}

// proxyNote is " (proxy port P)" for an entry that redirects, else "".
func proxyNote(port uint16) string {
	if port == 0 {
		return ""
	}
	return fmt.Sprintf(" (proxy port %d)", port)
}

func backendName(top *topologies.Topology, b datapath.Backend) string {
	a := netip.AddrPortFrom(b.Addr, b.Port)
	if p := top.PodByIP(b.Addr); p != nil {
		return fmt.Sprintf("%s:%d (%v)", p.Name, b.Port, a)
	}
	return a.String()
}

func backendList(top *topologies.Topology, bs []datapath.Backend) string {
	out := "["
	for i, b := range bs {
		if i > 0 {
			out += " "
		}
		out += backendName(top, b)
	}
	return out + "]"
}

// Update applies a changed topology to the router: sessions with new
// nodes are added, those with removed nodes closed (their routes go).
func (r *Router) Update(ctx context.Context, u nodeapi.Update) (nodeapi.UpdateResult, error) {
	res := nodeapi.UpdateResult{Changes: []string{}}
	top, err := topologies.Parse(u.File, []byte(u.Topology))
	if err != nil {
		return res, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	want := map[netip.Addr]bgp.Peer{}
	var order []netip.Addr
	for _, n := range top.Nodes {
		a := n.Uplink.Address.Addr()
		want[a] = bgp.Peer{Address: a, ASN: n.ASN}
		order = append(order, a)
	}
	var keep []bgp.Peer
	for _, p := range r.cfg.Nodes {
		w, ok := want[p.Address]
		if ok && w.ASN == p.ASN {
			keep = append(keep, p)
			continue
		}
		if r.speaker != nil {
			if err := r.speaker.RemovePeer(ctx, p.Address); err != nil {
				return res, err
			}
		}
		res.Changes = append(res.Changes, fmt.Sprintf("bgp peer: -%v (AS %d)", p.Address, p.ASN))
	}
	for _, a := range order {
		if slices.ContainsFunc(keep, func(p bgp.Peer) bool { return p.Address == a }) {
			continue
		}
		p := want[a]
		p.Passive = true
		if r.speaker != nil {
			if err := r.speaker.AddPeer(ctx, p); err != nil {
				return res, err
			}
		}
		keep = append(keep, bgp.Peer{Address: a, ASN: p.ASN})
		res.Changes = append(res.Changes, fmt.Sprintf("bgp peer: +%v (AS %d)", a, p.ASN))
	}
	r.cfg.Nodes = keep
	r.top = top
	return res, nil
}
