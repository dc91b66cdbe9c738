package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hoplab/hoplab/bgp"
	"github.com/hoplab/hoplab/topologies"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// convergePoll is how often WaitConverged asks the agents; BGP state has no
// event in the node API.
const convergePoll = 200 * time.Millisecond

// WaitConverged waits until every BGP session (the ToR's and every node's)
// is Established and, in direct routing, every node's PodCIDR is in the
// ToR's kernel routes and in every other node's. When ctx ends first, the error wraps
// ErrNotConverged and says what was still missing.
func (c *Cluster) WaitConverged(ctx context.Context) error {
	tick := time.NewTicker(convergePoll)
	defer tick.Stop()
	var missing []string
	var err error
	for {
		m, e := c.converged(ctx)
		if e == nil && len(m) == 0 {
			return nil
		}
		for _, vm := range c.fabric.VMs() {
			if err := vm.Err(); err != nil {
				return fmt.Errorf("%w: %w", ErrNotConverged, err) // a VM died: no use waiting
			}
		}
		if ctx.Err() == nil || (missing == nil && err == nil) {
			// The answer of a poll the deadline did not cut short.
			missing, err = m, e
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("%w: %w", ErrNotConverged, err)
			}
			return fmt.Errorf("%w: %s", ErrNotConverged, strings.Join(missing, "; "))
		case <-tick.C:
		}
	}
}

// converged lists what is missing for convergence.
func (c *Cluster) converged(ctx context.Context) ([]string, error) {
	t := c.Topology()
	names := append([]string{t.Router.Name}, nodeNames(t)...)
	type state struct {
		peers  bgp.PeerList
		routes []nodeapi.KernelRoute
		err    error
	}
	states := make([]state, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := c.clients[name]
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			s := &states[i]
			if s.peers, s.err = cl.BGPPeers(cctx); s.err == nil {
				s.routes, s.err = cl.KernelRoutes(cctx)
			}
		}()
	}
	wg.Wait()
	var missing []string
	var errs []error
	for i, name := range names {
		s := states[i]
		if s.err != nil {
			errs = append(errs, s.err)
			continue
		}
		if len(s.peers) == 0 {
			missing = append(missing, name+": no BGP peers")
		}
		for _, p := range s.peers {
			if p.State != bgp.StateEstablished {
				missing = append(missing, fmt.Sprintf("%s: session to %s %s", name, p.Address, p.State))
			}
		}
		have := map[string]bool{}
		for _, r := range s.routes {
			have[r.Dst] = true
		}
		for _, n := range t.Nodes {
			if n.Name == name || t.Mode == topologies.Tunnel {
				// In tunnel mode nobody announces PodCIDRs: the sessions
				// alone make convergence.
				continue
			}
			if !have[n.PodCIDR.String()] {
				missing = append(missing, fmt.Sprintf("%s: no route to %s (%s)", name, n.PodCIDR, n.Name))
			}
		}
	}
	return missing, errors.Join(errs...)
}

func nodeNames(t *topologies.Topology) []string {
	var out []string
	for _, n := range t.Nodes {
		out = append(out, n.Name)
	}
	return out
}

// Reset flushes the CT map and the metrics of every node (between specs).
func (c *Cluster) Reset(ctx context.Context) error {
	return c.eachNode(ctx, func(ctx context.Context, cl *nodeapi.Client) error {
		_, err := cl.Reset(ctx, nodeapi.Reset{})
		return err
	})
}

func (c *Cluster) eachNode(ctx context.Context, fn func(context.Context, *nodeapi.Client) error) error {
	t := c.Topology()
	errs := make([]error, len(t.Nodes))
	var wg sync.WaitGroup
	for i, n := range t.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(ctx, c.clients[n.Name])
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Update applies a changed topology to every node (services, backends,
// policies, pods; CT entries are kept). The router and the set of nodes
// cannot change. t may be a modified copy of Topology(): it is encoded and
// parsed again, so its derived fields need not be up to date.
func (c *Cluster) Update(ctx context.Context, t *topologies.Topology) error {
	text, err := Encode(t)
	if err != nil {
		return fmt.Errorf("cluster update: %w", err)
	}
	nt, err := topologies.Parse(t.File, text)
	if err != nil {
		return fmt.Errorf("cluster update: %w", err)
	}
	old := c.Topology()
	if err := sameFabric(old, nt); err != nil {
		return fmt.Errorf("cluster update: %w", err)
	}
	var mu sync.Mutex
	var changes []string
	err = c.eachNode(ctx, func(ctx context.Context, cl *nodeapi.Client) error {
		r, err := cl.Update(ctx, nodeapi.Update{Topology: string(text), File: t.File})
		mu.Lock()
		for _, ch := range r.Changes {
			changes = append(changes, cl.Name+": "+ch)
		}
		mu.Unlock()
		return err
	})
	sort.Strings(changes)
	c.log.Info("cluster updated", "changes", changes)
	if err != nil {
		return fmt.Errorf("cluster update: %w", err)
	}
	c.mu.Lock()
	c.top = nt
	c.mu.Unlock()
	return nil
}

// sameFabric rejects updates that would need other VMs or wiring.
func sameFabric(a, b *topologies.Topology) error {
	if a.Router.Name != b.Router.Name || a.Router.ASN != b.Router.ASN {
		return fmt.Errorf("the router cannot change (%s AS%d → %s AS%d)", a.Router.Name, a.Router.ASN, b.Router.Name, b.Router.ASN)
	}
	if len(a.Nodes) != len(b.Nodes) {
		return fmt.Errorf("the nodes cannot change (%d → %d nodes)", len(a.Nodes), len(b.Nodes))
	}
	for i, n := range a.Nodes {
		m := b.Nodes[i]
		if n.Name != m.Name || n.ASN != m.ASN || n.PodCIDR != m.PodCIDR || n.Uplink != m.Uplink {
			return fmt.Errorf("node %s cannot change (name, ASN, podCIDR, uplink)", n.Name)
		}
	}
	return nil
}

// Run runs client actions from a pod on the pod's node, from an external
// host on the router, or from "NODE:host", a process in the node's host
// namespace.
func (c *Cluster) Run(ctx context.Context, a nodeapi.ClientAction) (nodeapi.ClientResult, error) {
	t := c.Topology()
	if e := t.External(a.Pod); e != nil {
		return c.clients[t.Router.Name].Run(ctx, a)
	}
	if node, host, ok := strings.Cut(a.Pod, ":"); ok && host == nodeapi.HostClient && t.Node(node) != nil {
		a.Pod = nodeapi.HostClient
		return c.clients[node].Run(ctx, a)
	}
	p := t.Pod(a.Pod)
	if p == nil {
		return nodeapi.ClientResult{}, fmt.Errorf("cluster run: %w: %q", topologies.ErrUnknownPod, a.Pod)
	}
	return c.clients[p.Node].Run(ctx, a)
}

// podNode returns the node hosting the pod with address ip.
func podNode(t *topologies.Topology, ip netip.Addr) string {
	if p := t.PodByIP(ip); p != nil {
		return p.Node
	}
	return ""
}
