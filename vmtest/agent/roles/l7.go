package roles

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/hoplab/hoplab/topologies"
	"github.com/hoplab/hoplab/vmtest/agent/proxy"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// startProxy sets up the node's L7 proxy (package proxy): the policy
// routing that delivers the packets the datapath marks for it, and the
// proxy listening on the L7 ports of the node's pods. Sockets are opened,
// and connections dialled, in the node's namespace.
func (n *Node) startProxy() error {
	if err := proxy.SetupRouting(n.nl); err != nil {
		return err
	}
	n.proxyRouting = true
	ns := hostNS{n.ns}
	n.proxy = proxy.New(proxy.Options{
		Node: n.nodeName, Emit: n.emitL7, Logger: n.log,
		Listen: func(port uint16) (ln net.Listener, err error) {
			err = ns.Do(func() (err error) { ln, err = proxy.ListenTransparent(port); return err })
			return ln, err
		},
		Dial: func(ctx context.Context, dst netip.AddrPort) (c net.Conn, err error) {
			var d net.Dialer
			err = ns.Do(func() (err error) { c, err = d.DialContext(ctx, "tcp4", dst.String()); return err })
			return c, err
		},
	})
	_, err := n.updateProxy(n.st.top)
	return err
}

// updateProxy gives the proxy top's rules for this node, opening the
// listeners of new L7 ports (call pruneProxy once the policy entries
// redirecting to removed ports are gone). It returns the change lines
// ("l7: pod4 ingress 8080/TCP: ..."); n.mu is held or the node is being
// set up.
func (n *Node) updateProxy(top *topologies.Topology) ([]string, error) {
	if n.proxy == nil {
		return nil, nil
	}
	pol, err := proxy.FromTopology(top, n.nodeName)
	if err != nil {
		return nil, fmt.Errorf("l7 proxy: %w", err)
	}
	old := n.proxyPolicy.Rules()
	if _, err := n.proxy.Update(pol); err != nil {
		return nil, fmt.Errorf("l7 proxy: %w", err)
	}
	n.proxyPolicy = pol
	var changes []string
	now := pol.Rules()
	for _, r := range now {
		if !slices.Contains(old, r) {
			changes = append(changes, "l7: +"+r)
		}
	}
	for _, r := range old {
		if !slices.Contains(now, r) {
			changes = append(changes, "l7: -"+r)
		}
	}
	return changes, nil
}

// pruneProxy closes the listeners of ports no rule names any more.
func (n *Node) pruneProxy() []string {
	if n.proxy == nil {
		return nil
	}
	var changes []string
	for _, port := range n.proxy.Prune() {
		changes = append(changes, fmt.Sprintf("l7: proxy stops listening on %d", port))
	}
	return changes
}

// closeProxy closes the proxy's listeners and connections and waits for
// them; n.mu must not be held (a connection's record takes it).
func (n *Node) closeProxy() {
	n.mu.Lock()
	p := n.proxy
	n.mu.Unlock()
	if p != nil {
		if err := p.Close(); err != nil {
			n.log.Warn("l7 proxy close", "err", err)
		}
	}
}

// stopProxy closes the proxy (closeProxy has, normally) and removes its
// routing.
func (n *Node) stopProxy() error {
	var errs []error
	if n.proxy != nil {
		errs = append(errs, n.proxy.Close())
		n.proxy = nil
	}
	if n.proxyRouting {
		errs = append(errs, proxy.TeardownRouting(n.nl))
		n.proxyRouting = false
	}
	return errors.Join(errs...)
}

// emitL7 sends a proxy record to the host while a watch streams datapath
// events.
func (n *Node) emitL7(e nodeapi.L7Event) {
	n.mu.Lock()
	w := n.watch
	n.mu.Unlock()
	if w != nil && w.req.Datapath {
		w.pushOpen(nodeapi.EventL7, e)
	}
}

// l7Metrics are the proxy's request counters as metrics rows.
func (n *Node) l7Metrics() []nodeapi.MetricRow {
	if n.proxy == nil {
		return nil
	}
	var out []nodeapi.MetricRow
	for _, c := range n.proxy.Metrics() {
		reason := "L7 forwarded"
		switch c.Verdict {
		case nodeapi.L7Dropped:
			reason = "L7 denied"
		case nodeapi.L7Error:
			reason = "L7 error"
		}
		out = append(out, nodeapi.MetricRow{Reason: reason, Direction: strings.ToUpper(c.Direction), Packets: c.Requests,
			L7: true, Verdict: c.Verdict, Status: c.Status})
	}
	return out
}
