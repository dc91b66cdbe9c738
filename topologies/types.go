package topologies

import (
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"
)

// Topology is a validated topology: a ToR router, nodes bonded to it, pods on
// the nodes, services and policies. Fields marked "derived" are computed by
// the loader and are the single source of truth for them.
type Topology struct {
	// File is the file name the topology was parsed from (used in messages).
	File string
	// Name names the topology.
	Name string
	// Kernel is the default kernel series ("6.1" when omitted).
	Kernel string
	// KernelPos is where the kernel is given (zero when omitted).
	KernelPos Pos
	// Mode is the routing mode (direct-routing when omitted).
	Mode Mode
	// Router is the top-of-rack router all nodes peer with.
	Router Router
	// Nodes are the cluster nodes in file order.
	Nodes []*Node
	// Pods are the pods in file order.
	Pods []*Pod
	// Services are the services in file order.
	Services []*Service
	// Policies are the network policies in file order.
	Policies []*Policy
	// Externals are hosts outside the cluster, behind the router, in file
	// order.
	Externals []*External
	// SocketLB turns on socket-level load balancing (cgroup connect4,
	// sendmsg4, recvmsg4): Service VIPs are translated when a pod or host
	// process connects, not per packet at from-container.
	SocketLB bool
	// Warnings are non-fatal findings (e.g. a policy that selects no pod).
	Warnings []Warning

	nodes      map[string]*Node
	pods       map[string]*Pod
	podsByIP   map[netip.Addr]*Pod
	identities map[string]Identity // canonical label string → identity
}

// Pos is a position in the topology file (1-based line and column).
type Pos struct {
	// Line is the 1-based line.
	Line int `json:"line"`
	// Col is the 1-based column.
	Col int `json:"col"`
}

// Router is the top-of-rack router (the BGP route server of the fabric).
type Router struct {
	// Name is the router's host name.
	Name string
	// ASN is the router's BGP autonomous system number.
	ASN uint32
	// Pos is where the router is declared.
	Pos Pos
}

// Node is a cluster node: a VM with two NICs bonded into bond0 towards the
// router and a PodCIDR announced over BGP.
type Node struct {
	// Name is the node's host name.
	Name string
	// ASN is the node's BGP autonomous system number.
	ASN uint32
	// PodCIDR is the prefix the node's pods get their addresses from.
	PodCIDR netip.Prefix
	// Uplink describes bond0, the node's link to the router.
	Uplink Uplink
	// Pos is where the node is declared.
	Pos Pos

	// RouterIP (derived) is the first address of PodCIDR: the gateway of
	// every pod on the node. Pods may not use it.
	RouterIP netip.Addr
	// NICMACs (derived) are the MACs of the node's two bonded NICs.
	NICMACs [2]MAC
	// BondMAC (derived) is bond0's MAC: that of the first NIC, as Linux
	// gives a bond the MAC of its first slave.
	BondMAC MAC
	// TorNICMACs (derived) are the MACs of the router's two NICs facing
	// this node.
	TorNICMACs [2]MAC
	// TorBondMAC (derived) is the MAC of the router's bond facing this node
	// (that of its first NIC): the destination MAC of the node's uplink
	// traffic and the source MAC of the router's traffic to this node.
	TorBondMAC MAC
}

// Uplink is a node's bonded link to the router.
type Uplink struct {
	// Address is bond0's address with the link's prefix length.
	Address netip.Prefix
	// Gateway is the router's address on this link (the node's default
	// route).
	Gateway netip.Addr
	// Bond is the bonding mode of bond0 (balance-xor when omitted).
	Bond BondMode
}

// Pod is an endpoint: a network namespace with eth0 on one node.
type Pod struct {
	// Name is the pod's name (and its network namespace's).
	Name string
	// Node is the name of the node the pod runs on.
	Node string
	// IP is the pod's address, inside its node's PodCIDR.
	IP netip.Addr
	// MAC is eth0's MAC: pinned in the file or derived from Name.
	MAC MAC
	// MACPinned reports whether MAC was given in the file.
	MACPinned bool
	// Labels are the pod's labels; they determine its security identity.
	Labels Labels
	// Listen are the listeners the pod runs.
	Listen []Listener
	// Pos is where the pod is declared.
	Pos Pos

	// LXCName (derived) is the host-side veth name: "lxc" and 6 hex digits.
	LXCName string
	// LXCMAC (derived) is the host-side veth's MAC, the pod's gateway MAC.
	LXCMAC MAC
	// EndpointID (derived) is the pod's endpoint ID (1..4095), unique in
	// the cluster.
	EndpointID uint16
	// Identity (derived) is the pod's security identity.
	Identity Identity
}

// External is a host outside the cluster: a network namespace on the
// router's VM, linked to the router by a veth, with the router as its
// gateway. Traffic from it reaches nodes through the router, as a client on
// the internet reaches a NodePort.
type External struct {
	// Name is the host's name (and its network namespace's).
	Name string
	// IP is its address; outside every node's PodCIDR and uplink.
	IP netip.Addr
	// Pos is where the external is declared.
	Pos Pos

	// Gateway (derived) is the router's address toward it: the first
	// address of IP's /24 (.1; IP may not be it).
	Gateway netip.Addr
	// MAC (derived) is the external's eth0 MAC, from its name.
	MAC MAC
	// RouterMAC (derived) is the MAC of the router's end of the veth.
	RouterMAC MAC
	// RouterDevice (derived) is the router's end of the veth: "ext" and 6
	// hex digits.
	RouterDevice string
}

// Listener is a server a pod runs, written "tcp/8080", "udp/53" or
// "http/80" (an HTTP responder over TCP).
type Listener struct {
	// Kind is "tcp" (echo), "udp" (echo) or "http".
	Kind string
	// Protocol is the L4 protocol (TCP for tcp and http).
	Protocol Protocol
	// Port is the listening port (1..65535).
	Port uint16
}

// String returns the listener as written in the file, e.g. "tcp/8080".
func (l Listener) String() string { return fmt.Sprintf("%s/%d", l.Kind, l.Port) }

// Service is a load-balanced virtual IP and port.
type Service struct {
	// Name names the service.
	Name string
	// VIP is the service's virtual IP.
	VIP netip.Addr
	// Port is the service port.
	Port uint16
	// Protocol is TCP or UDP (TCP when omitted).
	Protocol Protocol
	// NodePort, if non-zero, also exposes the service on every node's
	// uplink address at this port (30000..32767).
	NodePort uint16
	// Backends are the service's backends in file order; may be empty.
	Backends []Backend
	// Pos is where the service is declared.
	Pos Pos
}

// Backend is a service backend, written "pod:port".
type Backend struct {
	// Pod is the backend pod's name.
	Pod string
	// Port is the backend port on the pod.
	Port uint16
	// Pos is where the backend is written.
	Pos Pos
}

// String returns the backend as written in the file, e.g. "pod4:8080".
func (b Backend) String() string { return fmt.Sprintf("%s:%d", b.Pod, b.Port) }

// Policy is a network policy in the shape of a CiliumNetworkPolicy spec.
type Policy struct {
	// Name names the policy; when omitted it is "policies[i]".
	Name string
	// Description is free text.
	Description string
	// EndpointSelector selects the pods the policy applies to.
	EndpointSelector EndpointSelector
	// Ingress are the ingress rules; a non-empty list turns on ingress
	// enforcement for the selected pods.
	Ingress []Rule
	// Egress are the egress rules; a non-empty list turns on egress
	// enforcement for the selected pods.
	Egress []Rule
	// Pos is where the policy is declared.
	Pos Pos
}

// Rule is one ingress or egress rule. For ingress rules the peers are
// written fromEndpoints/fromEntities, for egress rules toEndpoints/toEntities.
type Rule struct {
	// Endpoints select peer pods by labels; an empty selector selects any
	// peer (wildcard identity 0).
	Endpoints []EndpointSelector
	// Entities select reserved peers: all, host, world, remote-node, health.
	Entities []string
	// ToPorts restrict the rule to destination ports.
	ToPorts []PortRule
	// Pos is where the rule is declared.
	Pos Pos
}

// PortRule is one entry of toPorts.
type PortRule struct {
	// Ports are the allowed destination ports.
	Ports []PortProtocol
	// Rules are the entry's L7 rules (nil without): the ports' flows go
	// through the node's proxy (see L7Port).
	Rules *L7Rules
}

// PortProtocol is a destination port and protocol.
type PortProtocol struct {
	// Port is the destination port (1..65535).
	Port uint16
	// Protocol is TCP, UDP or Any (both).
	Protocol Protocol
}

// EndpointSelector selects pods whose labels include all of MatchLabels. An
// empty selector selects every pod.
type EndpointSelector struct {
	// MatchLabels are the required labels (a "k8s:" or "any:" source
	// prefix in a key is dropped).
	MatchLabels Labels
}

// Matches reports whether l satisfies the selector.
func (s EndpointSelector) Matches(l Labels) bool {
	for k, v := range s.MatchLabels {
		if got, ok := l[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// IsWildcard reports whether the selector selects everything.
func (s EndpointSelector) IsWildcard() bool { return len(s.MatchLabels) == 0 }

// String renders the selector like its labels, "{}" when empty.
func (s EndpointSelector) String() string {
	if s.IsWildcard() {
		return "{}"
	}
	return "{" + s.MatchLabels.String() + "}"
}

// Labels are a pod's labels.
type Labels map[string]string

// String returns the canonical form: "k=v" pairs sorted by key, joined by
// commas. Equal label sets have equal strings.
func (l Labels) String() string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(l[k])
	}
	return b.String()
}

// MAC is an Ethernet address.
type MAC [6]byte

// String formats m as "0a:1b:2c:3d:4e:5f".
func (m MAC) String() string { return net.HardwareAddr(m[:]).String() }

// HardwareAddr returns m as a net.HardwareAddr.
func (m MAC) HardwareAddr() net.HardwareAddr { return net.HardwareAddr(append([]byte(nil), m[:]...)) }

// MarshalText implements encoding.TextMarshaler.
func (m MAC) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// IsZero reports whether m is 00:00:00:00:00:00.
func (m MAC) IsZero() bool { return m == MAC{} }

// BondMode is a Linux bonding mode.
type BondMode string

// Bonding modes.
const (
	BondActiveBackup BondMode = "active-backup"
	BondBalanceXOR   BondMode = "balance-xor"
	Bond8023AD       BondMode = "802.3ad"
)

// Mode is the routing mode between nodes.
type Mode string

// Routing modes.
const (
	// DirectRouting routes pod traffic natively; PodCIDRs are learned over BGP.
	DirectRouting Mode = "direct-routing"
	// Tunnel encapsulates pod traffic in VXLAN between nodes.
	Tunnel Mode = "tunnel"
)

// Protocol is an IP protocol number; 0 means any.
type Protocol uint8

// Protocols.
const (
	Any  Protocol = 0
	ICMP Protocol = 1
	TCP  Protocol = 6
	UDP  Protocol = 17
)

// String returns "tcp", "udp", "icmp", "any" or the number.
func (p Protocol) String() string {
	switch p {
	case Any:
		return "any"
	case ICMP:
		return "icmp"
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	}
	return fmt.Sprintf("proto-%d", uint8(p))
}

// MarshalText implements encoding.TextMarshaler.
func (p Protocol) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// ParseProtocol parses "tcp", "udp", "icmp" or "any" (case-insensitive).
func ParseProtocol(s string) (Protocol, error) {
	switch strings.ToLower(s) {
	case "tcp":
		return TCP, nil
	case "udp":
		return UDP, nil
	case "icmp":
		return ICMP, nil
	case "any":
		return Any, nil
	}
	return 0, fmt.Errorf("unknown protocol %q (want tcp, udp, icmp or any)", s)
}

// Warning is a non-fatal finding about a topology.
type Warning struct {
	// File is the topology's file name.
	File string
	// Line and Col locate the finding (1-based).
	Line, Col int
	// Msg says what was found.
	Msg string
}

// String formats the warning as "file:line:col: warning: msg".
func (w Warning) String() string {
	return fmt.Sprintf("%s:%d:%d: warning: %s", w.File, w.Line, w.Col, w.Msg)
}

// ReservedHostName is the name no pod, node or external may take: a
// node's host namespace is "NODE:host" in client actions and points.
const ReservedHostName = "host"

// Node returns the named node, or nil.
func (t *Topology) Node(name string) *Node { return t.nodes[name] }

// Pod returns the named pod, or nil.
func (t *Topology) Pod(name string) *Pod { return t.pods[name] }

// PodByIP returns the pod with address ip, or nil.
func (t *Topology) PodByIP(ip netip.Addr) *Pod { return t.podsByIP[ip] }

// PodsOn returns the pods on the named node in file order.
func (t *Topology) PodsOn(node string) []*Pod {
	var out []*Pod
	for _, p := range t.Pods {
		if p.Node == node {
			out = append(out, p)
		}
	}
	return out
}

// External returns the named external host, or nil.
func (t *Topology) External(name string) *External {
	for _, e := range t.Externals {
		if e.Name == name {
			return e
		}
	}
	return nil
}

// ExternalByIP returns the external host with address ip, or nil.
func (t *Topology) ExternalByIP(ip netip.Addr) *External {
	for _, e := range t.Externals {
		if e.IP == ip {
			return e
		}
	}
	return nil
}

// Service returns the named service, or nil.
func (t *Topology) Service(name string) *Service {
	for _, s := range t.Services {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// ServiceAt returns the service at vip:port/proto, or nil.
func (t *Topology) ServiceAt(vip netip.Addr, port uint16, proto Protocol) *Service {
	for _, s := range t.Services {
		if s.VIP == vip && s.Port == port && s.Protocol == proto {
			return s
		}
	}
	return nil
}
