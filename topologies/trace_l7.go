package topologies

import (
	"fmt"
	"sort"
	"strings"
)

// AccessDenied is the body of the proxy's answer to a denied request
// (HTTP 403), as Cilium's proxy answers.
const AccessDenied = "Access denied"

// TraceL7 is the proxy's part of a trace step: the flow's entry redirects
// it to the proxy of Node, which decides each request by Port's rules.
type TraceL7 struct {
	// Node is the node whose proxy receives the flow.
	Node string `json:"node"`
	// ProxyPort is the port the proxy takes the flow on.
	ProxyPort uint16 `json:"proxy_port"`
	// Port is the endpoint's L7 policy on the port.
	Port *L7Port `json:"port"`
	// Decision is the decision for the traced request; nil when no
	// request was given.
	Decision *L7Decision `json:"decision,omitempty"`
}

// denied reports whether the proxy denies the traced request (false
// without L7 or without a request).
func (l *TraceL7) denied() bool {
	return l != nil && l.Decision != nil && !l.Decision.Allowed
}

func traceL7(p *L7Port, node string, remote Identity, req *HTTPRequest) *TraceL7 {
	if p == nil { // cannot happen: entries redirect only on L7 ports
		return nil
	}
	l := &TraceL7{Node: node, ProxyPort: p.Port, Port: p}
	if req != nil {
		d := p.Decide(remote, *req)
		l.Decision = &d
	}
	return l
}

// proxyPeer is the peer a node's proxy connects from: the node itself.
func (t *Topology) proxyPeer(node string) Peer {
	n := t.nodes[node]
	if n == nil {
		return Peer{Kind: PeerWorld, Name: "world", Identity: IdentityWorld}
	}
	return Peer{Kind: PeerHost, Name: n.Name, IP: n.Uplink.Address.Addr(), Node: n.Name}
}

// String renders the request as "GET /public/a" (with the host and the
// headers, sorted, when set).
func (r HTTPRequest) String() string {
	s := r.Method + " " + r.Path
	if r.Host != "" {
		s += " host " + r.Host
	}
	names := make([]string, 0, len(r.Header))
	for k := range r.Header {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		for _, v := range r.Header[k] {
			s += fmt.Sprintf(" header %s: %s", k, v)
		}
	}
	return s
}

func writeL7(b *strings.Builder, l *TraceL7) {
	if l == nil {
		return
	}
	fmt.Fprintf(b, "     redirected to the L7 proxy on %s, port %d; its rules on %d/TCP:\n", l.Node, l.ProxyPort, l.Port.Port)
	for _, a := range l.Port.Allows {
		ids := make([]string, len(a.Peers))
		for i, id := range a.Peers {
			ids[i] = fmt.Sprint(uint32(id))
			if id == IdentityAny {
				ids[i] = "any"
			}
		}
		peers := "identities " + strings.Join(ids, ", ")
		if len(a.HTTP) == 0 {
			fmt.Fprintf(b, "       %s, %s: any request\n", a.lineString(), peers)
			continue
		}
		for i := range a.HTTP {
			fmt.Fprintf(b, "       %s, %s\n", a.httpString(i), peers)
		}
	}
	switch {
	case l.Decision == nil:
		fmt.Fprintf(b, "     the proxy decides each request (trace one with --http-method and --http-path)\n")
	case l.Decision.Allowed:
		fmt.Fprintf(b, "     request allowed by %s: forwarded from %s's proxy\n", l.Decision.Rule, l.Node)
	default:
		fmt.Fprintf(b, "     request denied: %s: the proxy answers 403 %s\n", l.Decision.Rule, AccessDenied)
	}
}

// proxyAnswersUntranslated explains, for a flow to a service frontend that
// a proxy takes, why the client gets no answer when the proxy answers a
// pod on its own node: the answers leave the proxy's node stack straight
// into the client's veth, where nothing reverse-NATs them to the VIP
// (socket-level LB translates at connect() instead). "" when it does not
// apply.
func (t *Topology) proxyAnswersUntranslated(src Peer, p TracePath) string {
	if t.SocketLB || src.Kind != PeerPod {
		return ""
	}
	l := p.Egress.L7
	if l == nil {
		l = p.Ingress.L7
	}
	if l == nil || l.Node != src.Node {
		return ""
	}
	return fmt.Sprintf("backend %s: %s's proxy answers %s from the backend's address straight into its veth, where nothing reverse-NATs it to the service: the connection fails (socketLB: true translates the service at connect())",
		p.Backend, l.Node, src.Name)
}
