package journey

import (
	"encoding/json"
	"fmt"
	"io"
)

// Report is the journey report of one replay: `hoplab replay --json`.
type Report struct {
	// Kernel is the guest kernel release the journeys were observed on.
	Kernel string `json:"kernel"`
	// Packets holds one journey per injected packet, in injection order.
	Packets []Packet `json:"packets"`
}

// Packet is the journey of one injected packet.
type Packet struct {
	// Index is the packet's 0-based index in the injected capture.
	Index int `json:"index"`
	// Verdict is Delivered, Dropped or Lost.
	Verdict Verdict `json:"verdict"`
	// DropReason is Cilium's drop reason name when Verdict is Dropped
	// ("Policy denied", "Service backend not found", ...).
	DropReason string `json:"drop_reason"`
	// DeliveredTo names the pod that received the packet.
	DeliveredTo string `json:"delivered_to"`
	// Hops are the observations of the packet, in path order.
	Hops []Hop `json:"hops"`
	// CT are the connection-tracking entries the packet created or hit.
	CT []CTEntry `json:"ct"`
}

// Hop is the packet as seen at one observation point.
type Hop struct {
	// Node is the node (or router) the point belongs to.
	Node string `json:"node"`
	// Point is the observation point, from the Point vocabulary.
	Point Point `json:"point"`
	// Device is the interface the point is attached to.
	Device string `json:"device"`
	// EthSrc is the source MAC ("0a:58:0a:01:01:0a").
	EthSrc string `json:"eth_src"`
	// EthDst is the destination MAC.
	EthDst string `json:"eth_dst"`
	// IPSrc is the source IP address.
	IPSrc string `json:"ip_src"`
	// IPDst is the destination IP address.
	IPDst string `json:"ip_dst"`
	// TTL is the IPv4 TTL (IPv6 hop limit).
	TTL uint8 `json:"ttl"`
	// Proto is the L4 protocol in lower case ("tcp", "udp", "icmp").
	Proto string `json:"proto"`
	// Sport is the L4 source port (0 without ports).
	Sport uint16 `json:"sport"`
	// Dport is the L4 destination port (0 without ports).
	Dport uint16 `json:"dport"`
	// Verdict is Forwarded or Dropped.
	Verdict Verdict `json:"verdict"`
	// DropReason is Cilium's drop reason name when Verdict is Dropped.
	DropReason string `json:"drop_reason"`
	// Outer holds the outer headers when the point saw the packet
	// encapsulated (VXLAN, tunnel mode); the fields above describe the
	// inner packet.
	Outer *Outer `json:"outer,omitempty"`
	// L7 is set on a proxy hop that handled an HTTP request: what was
	// asked, the answer's status and the rule that decided.
	L7 *L7 `json:"l7,omitempty"`
}

// L7 is what the L7 proxy did with the HTTP request of a flow.
type L7 struct {
	// Method and Path are the request's ("GET", "/public/a").
	Method string `json:"method"`
	Path   string `json:"path"`
	// Status is the answer's HTTP status (403 when the proxy denied it).
	Status int `json:"status"`
	// Rule names the rule that allowed the request, or for a denied one
	// the port whose rules it failed.
	Rule string `json:"rule"`
}

// Outer is the encapsulation of a tunnelled packet: the outer Ethernet,
// IPv4 and UDP headers and the VXLAN network identifier, which carries
// the source's security identity.
type Outer struct {
	EthSrc string `json:"eth_src"`
	EthDst string `json:"eth_dst"`
	IPSrc  string `json:"ip_src"`
	IPDst  string `json:"ip_dst"`
	TTL    uint8  `json:"ttl"`
	// Proto is "udp".
	Proto string `json:"proto"`
	Sport uint16 `json:"sport"`
	Dport uint16 `json:"dport"`
	VNI   uint32 `json:"vni"`
}

// CTEntry is a connection-tracking entry, as `cilium bpf ct list` shows it.
type CTEntry struct {
	// Node is the node whose CT map holds the entry.
	Node string `json:"node"`
	// Tuple is the entry's key ("TCP OUT 10.1.1.10:40000 -> 10.1.2.40:8080").
	Tuple string `json:"tuple"`
	// Flags are the entry's state flags ("SYN_SEEN", ...).
	Flags string `json:"flags"`
	// RevNAT is the service address replies are reverse-NATed to
	// ("10.224.1.1:80"), empty without NAT.
	RevNAT string `json:"rev_nat"`
}

// MarshalJSON writes nil Hops and CT as [] so the contract never has null.
func (p Packet) MarshalJSON() ([]byte, error) {
	type plain Packet
	q := plain(p)
	if q.Hops == nil {
		q.Hops = []Hop{}
	}
	if q.CT == nil {
		q.CT = []CTEntry{}
	}
	return json.Marshal(q)
}

// MarshalJSON writes nil Packets as [].
func (r Report) MarshalJSON() ([]byte, error) {
	type plain Report
	q := plain(r)
	if q.Packets == nil {
		q.Packets = []Packet{}
	}
	return json.Marshal(q)
}

// Verdict is a packet's or a hop's verdict.
type Verdict string

// Packet verdicts (Packet.Verdict) and hop verdicts (Hop.Verdict).
const (
	// Delivered: the packet reached a pod's eth0.
	Delivered Verdict = "DELIVERED"
	// Dropped: a hop dropped the packet (packet and hop verdict).
	Dropped Verdict = "DROPPED"
	// Lost: the packet vanished without a drop event (e.g. no route at the
	// ToR).
	Lost Verdict = "LOST"
	// Forwarded: the hop passed the packet on (Hubble's FORWARDED).
	Forwarded Verdict = "FORWARDED"
)

// Point is an observation point of the vocabulary in DESIGN.md.
type Point string

// The observation points, listed in their canonical path order.
const (
	// SockConnect is the cgroup/connect4 hook (socket-level LB), before any
	// packet exists.
	SockConnect Point = "sock-connect"
	// External is a host outside the cluster (behind the ToR), as it sends
	// or receives.
	External Point = "external"
	// HostEgress is a node's host namespace as it sends (a host process).
	HostEgress Point = "host-egress"
	// PodEgress is a pod's eth0 as the pod sends.
	PodEgress Point = "pod-egress"
	// FromContainer is the lxc tc-ingress program.
	FromContainer Point = "from-container"
	// ToStack is the handover to the node's kernel stack.
	ToStack Point = "to-stack"
	// ToOverlay is the tunnel device's egress (VXLAN mode).
	ToOverlay Point = "to-overlay"
	// ToNetdev is the uplink's (bond0) tc-egress program.
	ToNetdev Point = "to-netdev"
	// Wire is a harness capture on a link between a node and the ToR.
	Wire Point = "wire"
	// Router is the ToR's forwarding.
	Router Point = "router"
	// FromNetdev is the uplink's (bond0) tc-ingress program.
	FromNetdev Point = "from-netdev"
	// FromOverlay is the tunnel device's ingress (VXLAN mode).
	FromOverlay Point = "from-overlay"
	// Proxy is the node's L7 proxy: a flow its policy redirects there
	// (Cilium's to-proxy), and what the proxy did with its HTTP request.
	Proxy Point = "proxy"
	// ToContainer is the endpoint's ingress policy program (tail-called).
	ToContainer Point = "to-container"
	// PodIngress is a pod's eth0 as the pod receives.
	PodIngress Point = "pod-ingress"
	// HostIngress is a node's host namespace as it receives.
	HostIngress Point = "host-ingress"
)

// Points returns the vocabulary in canonical path order.
func Points() []Point {
	return []Point{External, SockConnect, HostEgress, PodEgress, FromContainer, ToStack, ToOverlay, ToNetdev,
		Wire, Router, FromNetdev, FromOverlay, Proxy, ToContainer, PodIngress, HostIngress}
}

// pointAliases maps Cilium's trace observation point names onto the
// vocabulary.
var pointAliases = map[string]Point{
	"to-network":   ToNetdev,
	"from-network": FromNetdev,
	"to-lxc":       ToContainer,
	"from-lxc":     FromContainer,
	"to-endpoint":  ToContainer,
	"to-proxy":     Proxy,
}

// Canonical returns the vocabulary point for s, accepting Cilium's trace
// names ("to-network", "from-network", ...); ok is false for unknown names.
func Canonical(s string) (p Point, ok bool) {
	if a, found := pointAliases[s]; found {
		return a, true
	}
	return Point(s), Point(s).Rank() >= 0
}

// normal is p in the vocabulary: Canonical's point for a name it knows,
// else p unchanged. It is the one place observations' points are
// normalised (NewObservation and Merge).
func normal(p Point) Point {
	if c, ok := Canonical(string(p)); ok {
		return c
	}
	return p
}

// Rank is the point's position in the canonical path order, or -1 for a
// name outside the vocabulary.
func (p Point) Rank() int {
	for i, q := range Points() {
		if p == q {
			return i
		}
	}
	return -1
}

// egressSide reports whether the point is on the sending side of a node.
func (p Point) egressSide() bool {
	r := rank(p)
	return r <= ToNetdev.Rank()
}

// DecodeReport reads a journey report (`hoplab replay --json` output),
// rejecting keys outside the contract.
func DecodeReport(r io.Reader) (Report, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var rep Report
	if err := dec.Decode(&rep); err != nil {
		return Report{}, fmt.Errorf("decode journey report: %w", err)
	}
	return rep, nil
}
