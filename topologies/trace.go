package topologies

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// ErrUnknownPeer is matched by Trace errors for a source or destination
// that is neither a pod, a node, the router nor an IP address.
var ErrUnknownPeer = errors.New("unknown peer")

// DropPolicyDenied and DropNoBackend are the Cilium drop reason names Trace
// reports.
const (
	DropPolicyDenied = "Policy denied"
	DropNoBackend    = "Service backend not found"
)

// Trace verdicts.
const (
	VerdictAllowed = "ALLOWED" // every path is allowed
	VerdictDenied  = "DENIED"  // every path is denied by policy
	VerdictMixed   = "MIXED"   // some backends are allowed, others denied
	VerdictDropped = "DROPPED" // dropped before policy (service without backends)
)

// PeerKind says what a trace peer is.
type PeerKind string

// Peer kinds.
const (
	PeerPod   PeerKind = "pod"   // an endpoint
	PeerHost  PeerKind = "host"  // a node itself (uplink or router IP)
	PeerWorld PeerKind = "world" // anything else, the router included
)

// Peer is a resolved trace source or destination.
type Peer struct {
	// Kind is pod, host or world.
	Kind PeerKind `json:"kind"`
	// Name is the pod or node name; for world the router's name or "world".
	Name string `json:"name"`
	// IP is the peer's address (a node's uplink address for hosts).
	IP netip.Addr `json:"ip"`
	// Node is the node of a pod or host; empty for world.
	Node string `json:"node,omitempty"`
	// Identity is a pod's identity, or world's; for hosts it depends on
	// the viewpoint (host on its own node, remote-node elsewhere) and is 0.
	Identity Identity `json:"identity"`
	// Labels are a pod's labels.
	Labels Labels `json:"labels,omitempty"`
}

// String describes the peer, e.g. "pod pod1 (10.1.1.10, identity 1234 [app=frontend], node1)".
func (p Peer) String() string {
	switch p.Kind {
	case PeerPod:
		return fmt.Sprintf("pod %s (%s, identity %d [%s], %s)", p.Name, p.IP, uint32(p.Identity), p.Labels, p.Node)
	case PeerHost:
		return fmt.Sprintf("host %s (%s)", p.Name, p.IP)
	}
	if p.IP.IsValid() {
		return fmt.Sprintf("world %s (%s)", p.Name, p.IP)
	}
	return "world " + p.Name
}

// identityAt returns p's identity as seen from node.
func (p Peer) identityAt(node string) Identity {
	switch p.Kind {
	case PeerPod:
		return p.Identity
	case PeerHost:
		if p.Node == node {
			return IdentityHost
		}
		return IdentityRemoteNode
	}
	return IdentityWorld
}

// TraceStep is the policy decision on one side of a path.
type TraceStep struct {
	// Direction is egress (at the source) or ingress (at the destination).
	Direction Direction `json:"direction"`
	// Endpoint is the pod enforcing; empty when that side is not a pod and
	// no endpoint policy applies.
	Endpoint string `json:"endpoint,omitempty"`
	// Point is the datapath program deciding: from-container at egress,
	// to-container at ingress.
	Point string `json:"point,omitempty"`
	// Node is the node the decision is made on.
	Node string `json:"node,omitempty"`
	// RemoteIdentity is the peer identity used in the lookup.
	RemoteIdentity Identity `json:"remote_identity"`
	// Selected are the policies selecting the endpoint.
	Selected []string `json:"selected,omitempty"`
	// Bypass, when set, says why no policy is evaluated on this side
	// although it is an endpoint (e.g. traffic from the local host).
	Bypass string `json:"bypass,omitempty"`
	// Decision is the lookup's result.
	Decision
	// L7 is set when the matching entry redirects the flow to the proxy.
	L7 *TraceL7 `json:"l7,omitempty"`
	// FromProxy names the node whose egress proxy the flow comes from
	// (the peer is then that node, not the source pod).
	FromProxy string `json:"from_proxy,omitempty"`
}

// TracePath is the trace of one destination (one backend for services).
type TracePath struct {
	// Backend is "pod:port" when the destination was a service.
	Backend string `json:"backend,omitempty"`
	// Dst is the resolved destination.
	Dst Peer `json:"dst"`
	// DPort is the destination port after service translation.
	DPort uint16 `json:"dport"`
	// Egress is the decision at the source.
	Egress TraceStep `json:"egress"`
	// Ingress is the decision at the destination.
	Ingress TraceStep `json:"ingress"`
	// Allowed is true when both sides allow.
	Allowed bool `json:"allowed"`
	// DropPoint is where a denied packet is dropped (from-container or
	// to-container).
	DropPoint string `json:"drop_point,omitempty"`
	// DropReason is "Policy denied" when denied.
	DropReason string `json:"drop_reason,omitempty"`
	// HTTPStatus is 403 when the proxy denies the traced request.
	HTTPStatus int `json:"http_status,omitempty"`
}

// TraceService is the service a trace destination was translated through.
type TraceService struct {
	// Name is the service's name.
	Name string `json:"name"`
	// Frontend is "vip:port/proto" (or "node-ip:nodePort/proto").
	Frontend string `json:"frontend"`
}

// TraceResult explains what the policies do to a flow, without booting.
type TraceResult struct {
	// Src is the resolved source.
	Src Peer `json:"src"`
	// DstQuery is the destination as asked.
	DstQuery string `json:"dst_query"`
	// DPort is the destination port as asked (0 for ICMP).
	DPort uint16 `json:"dport"`
	// Proto is the protocol as asked.
	Proto Protocol `json:"proto"`
	// Request is the HTTP request traced through L7 rules, if one was
	// given.
	Request *HTTPRequest `json:"request,omitempty"`
	// Service is set when the destination is a service frontend.
	Service *TraceService `json:"service,omitempty"`
	// Paths hold one trace per backend, or one for a direct destination.
	Paths []TracePath `json:"paths"`
	// Verdict is ALLOWED, DENIED, MIXED or DROPPED.
	Verdict string `json:"verdict"`
	// DropReason is set when Verdict is DROPPED or DENIED.
	DropReason string `json:"drop_reason,omitempty"`
	// DropPoint is where a DROPPED packet is dropped.
	DropPoint string `json:"drop_point,omitempty"`
	// Notes are extra remarks.
	Notes []string `json:"notes,omitempty"`
}

// Resolve resolves a pod name, node name, router name or IPv4 address to a
// peer. An address that belongs to nothing in the topology is world.
func (t *Topology) Resolve(s string) (Peer, error) {
	if p := t.pods[s]; p != nil {
		return podPeer(p), nil
	}
	if n := t.nodes[s]; n != nil {
		return Peer{Kind: PeerHost, Name: n.Name, IP: n.Uplink.Address.Addr(), Node: n.Name}, nil
	}
	if s == t.Router.Name {
		return Peer{Kind: PeerWorld, Name: s, Identity: IdentityWorld}, nil
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return Peer{}, fmt.Errorf("resolve %q: %w (want a pod, node, router or IPv4 address)", s, ErrUnknownPeer)
	}
	if p := t.podsByIP[ip]; p != nil {
		return podPeer(p), nil
	}
	for _, n := range t.Nodes {
		if ip == n.Uplink.Address.Addr() || ip == n.RouterIP {
			return Peer{Kind: PeerHost, Name: n.Name, IP: ip, Node: n.Name}, nil
		}
		if ip == n.Uplink.Gateway {
			return Peer{Kind: PeerWorld, Name: t.Router.Name, IP: ip, Identity: IdentityWorld}, nil
		}
	}
	return Peer{Kind: PeerWorld, Name: "world", IP: ip, Identity: IdentityWorld}, nil
}

func podPeer(p *Pod) Peer {
	return Peer{Kind: PeerPod, Name: p.Name, IP: p.IP, Node: p.Node, Identity: p.Identity, Labels: p.Labels}
}

// Trace evaluates the topology's policies for a flow from src to dst
// (each a pod, node, router name or IP address) with destination port
// dport and protocol proto, without booting: service frontends (VIP:port,
// or a node address and nodePort) are translated to each backend, then the
// egress decision at the source pod (from-container) and the ingress
// decision at the destination pod (to-container) are made with the same
// lookup order as the datapath (see EndpointPolicy.Lookup). Replies of an
// allowed flow pass by connection tracking and are not traced.
func Trace(t *Topology, src, dst string, dport uint16, proto Protocol) (*TraceResult, error) {
	return TraceRequest(t, src, dst, dport, proto, nil)
}

// TraceRequest is Trace with an HTTP request: where an entry redirects the
// flow to the proxy (an L7 port), the proxy's decision for req is traced
// too (L7Port.Decide), and a denied request denies the path at "proxy"
// with HTTP status 403. The proxy forwards an allowed request on a
// connection of its own, from its node: an egress proxy's request reaches
// the destination as that node's (host or remote-node). Without req the
// L7 rules are listed but no request is decided.
func TraceRequest(t *Topology, src, dst string, dport uint16, proto Protocol, req *HTTPRequest) (*TraceResult, error) {
	switch proto {
	case TCP, UDP:
	case ICMP:
		dport = 0
	default:
		return nil, fmt.Errorf("trace: protocol %s: want tcp, udp or icmp", proto)
	}
	s, err := t.Resolve(src)
	if err != nil {
		return nil, fmt.Errorf("trace source: %w", err)
	}
	d, err := t.Resolve(dst)
	if err != nil {
		return nil, fmt.Errorf("trace destination: %w", err)
	}
	res := &TraceResult{Src: s, DstQuery: dst, DPort: dport, Proto: proto, Request: req}
	if svc, front := t.frontend(d, dport, proto); svc != nil {
		res.Service = &TraceService{Name: svc.Name, Frontend: front}
		if len(svc.Backends) == 0 {
			res.Verdict, res.DropReason = VerdictDropped, DropNoBackend
			if s.Kind == PeerPod {
				res.DropPoint = "from-container"
			}
			return res, nil
		}
		for _, b := range svc.Backends {
			path := t.tracePath(s, podPeer(t.pods[b.Pod]), b.Port, proto, req)
			path.Backend = b.String()
			res.Paths = append(res.Paths, path)
			if n := t.proxyAnswersUntranslated(s, path); n != "" {
				res.Notes = append(res.Notes, n)
			}
		}
	} else {
		if t.isVIP(d.IP) {
			res.Notes = append(res.Notes, fmt.Sprintf("%s is a service VIP but no service listens on %d/%s: the packet is not translated", d.IP, dport, proto))
		}
		res.Paths = append(res.Paths, t.tracePath(s, d, dport, proto, req))
	}
	allowed := 0
	for _, p := range res.Paths {
		if p.Allowed {
			allowed++
		}
	}
	switch allowed {
	case len(res.Paths):
		res.Verdict = VerdictAllowed
	case 0:
		res.Verdict, res.DropReason = VerdictDenied, DropPolicyDenied
	default:
		res.Verdict = VerdictMixed
	}
	return res, nil
}

func (t *Topology) isVIP(ip netip.Addr) bool {
	for _, s := range t.Services {
		if s.VIP == ip {
			return true
		}
	}
	return false
}

func (t *Topology) frontend(d Peer, dport uint16, proto Protocol) (*Service, string) {
	if !d.IP.IsValid() {
		return nil, ""
	}
	if s := t.ServiceAt(d.IP, dport, proto); s != nil {
		return s, fmt.Sprintf("%s:%d/%s", d.IP, dport, proto)
	}
	if d.Kind == PeerHost && d.IP == t.nodes[d.Node].Uplink.Address.Addr() {
		for _, s := range t.Services {
			if s.NodePort != 0 && s.NodePort == dport && s.Protocol == proto {
				return s, fmt.Sprintf("%s:%d/%s (nodePort)", d.IP, dport, proto)
			}
		}
	}
	return nil, ""
}

func (t *Topology) tracePath(s, d Peer, dport uint16, proto Protocol, req *HTTPRequest) TracePath {
	path := TracePath{Dst: d, DPort: dport, Allowed: true}
	path.Egress = t.traceStep(Egress, s, d, dport, proto, req)
	from := s
	if path.Egress.L7 != nil {
		// The egress proxy connects to the destination itself.
		from = t.proxyPeer(s.Node)
	}
	path.Ingress = t.traceStep(Ingress, d, from, dport, proto, req)
	if path.Egress.L7 != nil {
		path.Ingress.FromProxy = s.Node
	}
	switch {
	case !path.Egress.Allowed:
		path.Allowed, path.DropPoint, path.DropReason = false, "from-container", DropPolicyDenied
	case path.Egress.L7.denied():
		path.Allowed, path.DropPoint, path.DropReason, path.HTTPStatus = false, "proxy", DropPolicyDenied, 403
	case !path.Ingress.Allowed:
		path.Allowed, path.DropPoint, path.DropReason = false, "to-container", DropPolicyDenied
	case path.Ingress.L7.denied():
		path.Allowed, path.DropPoint, path.DropReason, path.HTTPStatus = false, "proxy", DropPolicyDenied, 403
	}
	return path
}

// traceStep decides at self (the enforcing side) for a flow with peer.
func (t *Topology) traceStep(dir Direction, self, peer Peer, dport uint16, proto Protocol, req *HTTPRequest) TraceStep {
	st := TraceStep{Direction: dir, Node: self.Node}
	if self.Kind != PeerPod {
		st.Allowed = true
		return st
	}
	st.Endpoint = self.Name
	st.Point = "to-container"
	if dir == Egress {
		st.Point = "from-container"
	}
	st.RemoteIdentity = peer.identityAt(self.Node)
	if dir == Ingress && peer.Kind == PeerHost && peer.Node == self.Node {
		// The host's packets to its own pods are routed by the kernel
		// straight out of the lxc device, which has no program on its
		// egress hook: to-container does not run. (Cilium likewise
		// allows the local host by default.)
		st.Bypass = "traffic from the local host reaches the pod without to-container (nothing is attached on the lxc egress hook)"
		st.Allowed = true
		return st
	}
	ep, err := t.EndpointPolicy(self.Name)
	if err != nil { // cannot happen: self was resolved from t
		return st
	}
	st.Selected = ep.Selected
	st.Decision = ep.Lookup(dir, st.RemoteIdentity, dport, proto)
	if st.Allowed && st.ProxyPort != 0 {
		st.L7 = traceL7(ep.L7(dir, dport), self.Node, st.RemoteIdentity, req)
	}
	return st
}

// String renders the result in the spirit of `cilium policy trace`.
func (r *TraceResult) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Tracing From: %s\n", r.Src)
	if r.Proto == ICMP {
		fmt.Fprintf(&b, "         To: %s icmp\n", r.DstQuery)
	} else {
		fmt.Fprintf(&b, "         To: %s port %d/%s\n", r.DstQuery, r.DPort, r.Proto)
	}
	if r.Request != nil {
		fmt.Fprintf(&b, "    Request: %s\n", r.Request)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "Note: %s\n", n)
	}
	if r.Service != nil {
		fmt.Fprintf(&b, "Service %s at %s: %d backend(s)\n", r.Service.Name, r.Service.Frontend, len(r.Paths))
	}
	if r.Verdict == VerdictDropped {
		where := ""
		if r.DropPoint != "" {
			where = " at " + r.DropPoint
		}
		fmt.Fprintf(&b, "No backend: dropped%s (%s)\n", where, r.DropReason)
	}
	for _, p := range r.Paths {
		b.WriteString("\n")
		if p.Backend != "" {
			fmt.Fprintf(&b, "-> Backend %s: %s\n", p.Backend, p.Dst)
		} else {
			fmt.Fprintf(&b, "-> Destination: %s\n", p.Dst)
		}
		writeStep(&b, p.Egress)
		if !p.Egress.Allowed || p.Egress.L7.denied() {
			fmt.Fprintf(&b, "   Ingress: not reached (dropped at egress); had it been:\n")
		}
		writeStep(&b, p.Ingress)
		switch {
		case p.Allowed:
			fmt.Fprintf(&b, "   Verdict: ALLOWED\n")
		case p.HTTPStatus != 0:
			fmt.Fprintf(&b, "   Verdict: DENIED at %s (%s, HTTP %d %s)\n", p.DropPoint, p.DropReason, p.HTTPStatus, AccessDenied)
		default:
			fmt.Fprintf(&b, "   Verdict: DENIED at %s (%s)\n", p.DropPoint, p.DropReason)
		}
	}
	fmt.Fprintf(&b, "\nFinal verdict: %s", r.Verdict)
	if r.DropReason != "" && r.Verdict != VerdictMixed {
		fmt.Fprintf(&b, " (%s)", r.DropReason)
	}
	b.WriteString("\n")
	return b.String()
}

func writeStep(b *strings.Builder, st TraceStep) {
	label := "Egress "
	if st.Direction == Ingress {
		label = "Ingress"
	}
	if st.FromProxy != "" {
		label += " (from " + st.FromProxy + "'s proxy)"
	}
	if st.Endpoint == "" {
		fmt.Fprintf(b, "   %s: not an endpoint, no policy applies: allowed\n", label)
		return
	}
	if st.Bypass != "" {
		fmt.Fprintf(b, "   %s at %s: no policy: %s: allowed\n", label, st.Endpoint, st.Bypass)
		return
	}
	fmt.Fprintf(b, "   %s at %s (%s on %s), remote identity %s:\n", label, st.Endpoint, st.Point, st.Node, st.RemoteIdentity)
	if st.Level == LevelEnforcementOff {
		if len(st.Selected) == 0 {
			fmt.Fprintf(b, "     no policy selects %s: enforcement off: allowed\n", st.Endpoint)
		} else {
			fmt.Fprintf(b, "     selected by %s, none with %s rules: enforcement off: allowed\n", strings.Join(st.Selected, ", "), st.Direction)
		}
		return
	}
	fmt.Fprintf(b, "     selected by %s: %s enforcement on\n", strings.Join(st.Selected, ", "), st.Direction)
	for i, k := range st.Tried {
		found := "not found"
		if st.Allowed && i == len(st.Tried)-1 {
			found = "found (" + k.Level().String() + ")"
		}
		fmt.Fprintf(b, "     lookup %-9s %s: %s\n", k.Level().String(), k, found)
	}
	if st.Allowed {
		for _, r := range st.Rules {
			fmt.Fprintf(b, "     allowed by %s\n", r)
		}
		writeL7(b, st.L7)
		return
	}
	fmt.Fprintf(b, "     no entry matches: default deny: %s\n", DropPolicyDenied)
}
