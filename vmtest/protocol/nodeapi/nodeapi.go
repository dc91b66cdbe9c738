// Package nodeapi is the contract between the host and the node and router
// roles of the guest agent (package vmtest/agent/roles): method and event names,
// their parameter and result types, and a typed client over
// control.Client.
//
// The guest side registers one handler per Method… constant; the host side
// (package vmtest/cluster, the hoplab CLI, the e2e suites) calls them through
// Client. All values travel as JSON over the control channel.
package nodeapi

import (
	"net/netip"
	"time"

	"github.com/hoplab/hoplab/vmtest/agent/workload"
)

// Methods served by a node's agent once it imports package vmtest/agent/roles.
const (
	// MethodSetup (Setup → SetupResult) builds the node from a topology:
	// forwarding sysctls, pods (netns + veth + hijacked ARP), datapath load
	// and attachment, maps filled, listeners started, BGP speaker started.
	MethodSetup = "node-setup"
	// MethodUpdate (Update → UpdateResult) applies a changed topology to a
	// set-up node or router without reloading programs: pods, services,
	// backends and policies added, changed or removed; CT entries kept.
	MethodUpdate = "node-update"
	// MethodRouterSetup (RouterSetup → RouterSetupResult) makes the VM the
	// ToR: IP forwarding and a BGP speaker peering with every node.
	MethodRouterSetup = "router-setup"
	// MethodReset (Reset → ResetResult) flushes CT and metrics (between specs).
	MethodReset = "node-reset"

	// MethodClient (ClientAction → ClientResult) runs client actions from a pod.
	MethodClient = "pod-client"
	// MethodInject (Inject → Injected) sends raw Ethernet frames out of a
	// pod's eth0, as if the pod had sent them.
	MethodInject = "pod-inject"

	// MethodWatch (Watch → WatchResult) starts or stops the event stream:
	// EventDatapath and EventPodPacket events until unwatched.
	MethodWatch = "watch"

	// MethodCTList (CTListRequest → []CTRow) dumps the CT map.
	MethodCTList = "ct-list"
	// MethodNATList (empty → []NATRow) dumps the SNAT table.
	MethodNATList = "nat-list"
	// MethodCTStats (empty → CTStats) counts the CT map's entries.
	MethodCTStats = "ct-stats"
	// MethodLBList (empty → []ServiceRow) dumps services and backends.
	MethodLBList = "lb-list"
	// MethodEndpointList (empty → []EndpointRow) dumps the endpoint map.
	MethodEndpointList = "endpoint-list"
	// MethodPolicyGet (PolicyGet → []PolicyRow) dumps one endpoint's policy.
	MethodPolicyGet = "policy-get"
	// MethodIPCacheList (empty → []IPCacheRow) dumps the ipcache.
	MethodIPCacheList = "ipcache-list"
	// MethodMetrics (empty → []MetricRow) dumps the metrics map.
	MethodMetrics = "metrics"

	// MethodBGPPeers (empty → []bgp.PeerStatus) lists the speaker's sessions.
	MethodBGPPeers = "bgp-peers"
	// MethodBGPRoutes (empty → []bgp.Route) lists the speaker's RIB.
	MethodBGPRoutes = "bgp-routes"
	// MethodBGPStop (empty → empty) stops the speaker: its routes are
	// withdrawn from the peers (the session goes down).
	MethodBGPStop = "bgp-stop"
	// MethodBGPStart (empty → empty) starts the stopped speaker again with
	// the same configuration.
	MethodBGPStart = "bgp-start"
	// MethodKernelRoutes (empty → []KernelRoute) lists the main routing table.
	MethodKernelRoutes = "kernel-routes"
	// MethodTCList (empty → []TCFilterRow) lists the BPF programs attached
	// at the tc hooks of every device of the node's namespace.
	MethodTCList = "tc-list"
	// MethodVerifierStats (empty → []datapath.ProgramStats) loads the
	// datapath once more, on its own and with the verifier's statistics,
	// and reports each program's size and processed instructions. It
	// serves on any VM, set up or not; a rejected program fails the call
	// with the verifier log attached (see control.Message.Files).
	MethodVerifierStats = "verifier-stats"
)

// Events the node role emits while watched.
const (
	// EventDatapath carries a DatapathEvent.
	EventDatapath = "datapath-event"
	// EventPodPacket carries a PodPacket.
	EventPodPacket = "pod-packet"
)

// Setup is MethodSetup's request.
type Setup struct {
	// Topology is the topology file's text and File its name (for messages).
	Topology string `json:"topology"`
	File     string `json:"file"`
	// Node is the name of the node this VM is.
	Node string `json:"node"`
	// NoBGP leaves the speaker off (tests of the datapath alone).
	NoBGP bool `json:"no_bgp,omitempty"`
}

// SetupResult is MethodSetup's response.
type SetupResult struct {
	// Endpoints are the node's endpoints as the datapath has them.
	Endpoints []EndpointRow `json:"endpoints"`
	// Programs maps program names to the instruction counts the verifier
	// processed (as logged by the datapath).
	Programs map[string]int `json:"programs,omitempty"`
	// Took is how long the setup took inside the guest.
	Took time.Duration `json:"took"`
}

// RouterSetup is MethodRouterSetup's request.
type RouterSetup struct {
	Topology string `json:"topology"`
	File     string `json:"file"`
}

// RouterSetupResult is MethodRouterSetup's response.
type RouterSetupResult struct {
	Took time.Duration `json:"took"`
}

// Update is MethodUpdate's request: the whole new topology.
type Update struct {
	Topology string `json:"topology"`
	File     string `json:"file"`
}

// UpdateResult is MethodUpdate's response.
type UpdateResult struct {
	// Changes lists what changed, one line each ("service backend: +pod5:8080").
	Changes []string `json:"changes"`
}

// Reset is MethodReset's request.
type Reset struct {
	// KeepCT keeps the CT map (only metrics are cleared).
	KeepCT bool `json:"keep_ct,omitempty"`
}

// ResetResult is MethodReset's response.
type ResetResult struct {
	// CTFlushed counts the CT entries removed.
	CTFlushed int `json:"ct_flushed"`
}

// Client kinds.
const (
	ClientTCP  = "tcp"  // TCP connect, then close
	ClientHTTP = "http" // HTTP GET /
	ClientUDP  = "udp"  // UDP datagram and its echo
	ClientPing = "ping" // ICMP echo
	// ClientHTTPStream holds one connection for Duration and sends HTTP
	// GETs over it back to back; Timeout bounds each answer.
	ClientHTTPStream = "http-stream"
)

// ClientAction is MethodClient's request: Count actions of Kind from Pod to
// Dst, run concurrently.
type ClientAction struct {
	// Pod is the client: a pod of the node, an external host of the
	// router, or HostClient (the node's host namespace).
	Pod  string `json:"pod"`
	Kind string `json:"kind"`
	// Dst is "ip:port" (ip alone for ping).
	Dst string `json:"dst"`
	// Sport, when set, is the client socket's source port (tcp, http,
	// udp; with Count 1), so the flow is known before its first packet.
	Sport uint16 `json:"sport,omitempty"`
	// Payload is the UDP payload (default "hoplab").
	Payload []byte `json:"payload,omitempty"`
	// Count is how many concurrent actions (default 1).
	Count int `json:"count,omitempty"`
	// Timeout bounds each action (default 3 s).
	Timeout time.Duration `json:"timeout,omitempty"`
	// Duration is how long an http-stream runs (required for it, at most
	// MaxStreamDuration of package roles).
	Duration time.Duration `json:"duration,omitempty"`
	// Path is the request path of http and http-stream ("/" when empty).
	Path string `json:"path,omitempty"`
}

// HostClient is ClientAction.Pod for a process in the node's host
// namespace.
const HostClient = "host"

// ClientResult is MethodClient's response.
type ClientResult struct {
	Outcomes []workload.Outcome `json:"outcomes"`
	// Sock holds, per outcome, the socket LB's translation of that
	// action's socket (nil without socket LB or translation).
	Sock []*SockXlate `json:"sock,omitempty"`
}

// SockXlate is a socket-level LB translation (the sock-connect point):
// what a socket asked for and where it was sent instead.
type SockXlate struct {
	// Hook is "connect4" or "sendmsg4".
	Hook string `json:"hook"`
	// Proto is "TCP" or "UDP".
	Proto string `json:"proto"`
	// Service is the VIP:port the socket asked for.
	Service netip.AddrPort `json:"service"`
	// Backend is the backend it went to; invalid with NoBackend.
	Backend netip.AddrPort `json:"backend"`
	// NoBackend says the service had none: the call failed.
	NoBackend bool `json:"no_backend,omitempty"`
	// Cookie is the socket's cookie.
	Cookie uint64 `json:"cookie"`
}

// Inject is MethodInject's request.
type Inject struct {
	Pod string `json:"pod"`
	// Frames are complete Ethernet frames, sent in order.
	Frames [][]byte `json:"frames"`
	// Gaps, when set, holds the pause before each frame (replay --timing).
	Gaps []time.Duration `json:"gaps,omitempty"`
	// SuppressRST drops the TCP RSTs the pod's kernel sends on the frames'
	// flows, which it has no socket for (fixture capability
	// "client-rst-suppression"): from before the first frame until an
	// injection into the pod without it, or MethodReset. Flows accumulate
	// over consecutive injections with it. Injected RSTs are still sent.
	SuppressRST bool `json:"suppress_rst,omitempty"`
	// MaxFlows is how many TCP flows the pod's RST filter holds when this
	// injection creates it (SuppressRST with no filter yet): 0 means
	// DefaultRSTFlows, at most MaxRSTFlows. A filter keeps its size until
	// the suppression ends; a flow beyond it fails the injection.
	MaxFlows int `json:"max_flows,omitempty"`
}

// Sizes of a pod's RST filter (Inject.MaxFlows): the one definition both
// the agent, which sizes the filter's map, and the host, which checks a
// replay's flows against it before anything boots, use.
const (
	// DefaultRSTFlows is the most TCP flows one pod's RST filter holds
	// unless Inject.MaxFlows says otherwise.
	DefaultRSTFlows = 4096
	// MaxRSTFlows is the largest Inject.MaxFlows the agent accepts (the
	// filter's map allocates its entries as flows are added).
	MaxRSTFlows = 1 << 20
)

// DefaultCTEntries is the size of a node's connection-tracking table (an
// LRU map: beyond it the least recently used entries are evicted): the
// agent sizes the table with it, the host compares a replay's flows with
// it.
const DefaultCTEntries = 65536

// Injected is MethodInject's response.
type Injected struct {
	// Sent counts the frames written.
	Sent int `json:"sent"`
	// Times holds the guest's clock at each frame's send.
	Times []time.Time `json:"times"`
}

// Watch is MethodWatch's request.
type Watch struct {
	// Datapath streams EventDatapath; Pods streams EventPodPacket for every
	// pod of the node. Both false stops the stream.
	Datapath bool `json:"datapath"`
	Pods     bool `json:"pods"`
}

// WatchResult is MethodWatch's response.
type WatchResult struct {
	// Pods lists the pods being captured.
	Pods []string `json:"pods,omitempty"`
	// Dropped counts the events the previous watch (the one this request
	// ended) dropped because the host read them too slowly, and Lost the
	// notifications the kernel lost because the agent read them too
	// slowly. Events are never allowed to block the agent.
	Dropped uint64 `json:"dropped,omitempty"`
	Lost    uint64 `json:"lost,omitempty"`
}

// Datapath event types.
const (
	EventTrace = "trace"
	EventDrop  = "drop"
)

// DatapathEvent is one decoded trace or drop notification.
type DatapathEvent struct {
	// Node is the node that emitted it; Time is the guest's receive time.
	Node string    `json:"node"`
	Time time.Time `json:"time"`
	// Type is EventTrace or EventDrop.
	Type string `json:"type"`
	// Point is the journey point (journey.Point vocabulary, "from-container").
	Point string `json:"point"`
	// Device is the interface name behind IfIndex ("lxc1a2b3c", "bond0").
	Device  string `json:"device"`
	IfIndex uint32 `json:"ifindex"`
	// Reason is Cilium's drop reason name for drops ("Policy denied"), and
	// Code its number; empty and 0 for traces.
	Reason string `json:"reason,omitempty"`
	Code   uint8  `json:"code,omitempty"`
	// SrcIdentity and DstIdentity are the identities the program resolved.
	SrcIdentity uint32 `json:"src_identity"`
	DstIdentity uint32 `json:"dst_identity"`
	// Endpoint is the emitting endpoint's id (0 for the netdev).
	Endpoint uint16 `json:"endpoint"`
	// Frame holds the packet's first bytes (at most 128); OrigLen its length.
	Frame   []byte `json:"frame"`
	OrigLen uint32 `json:"orig_len"`
	// CTState is the connection-tracking verdict a trace carries (CTNew,
	// CTEstablished, CTReply, CTRelated); empty for drops and for traces
	// of points that do no CT lookup (from-container, from-netdev,
	// to-netdev).
	CTState string `json:"ct_state,omitempty"`
	// Summary is the datapath's one-line text of the event.
	Summary string `json:"summary"`
}

// Connection-tracking verdicts of DatapathEvent.CTState.
const (
	CTNew         = "new"
	CTEstablished = "established"
	CTReply       = "reply"
	CTRelated     = "related"
)

// Pod packet directions.
const (
	PodEgress  = "egress"  // sent by the pod's eth0 (point pod-egress)
	PodIngress = "ingress" // received by the pod's eth0 (point pod-ingress)
)

// PodPacket is a frame seen on a pod's eth0.
type PodPacket struct {
	Node string `json:"node"`
	Pod  string `json:"pod"`
	// External is set when Pod is an external host on the router Node
	// (point "external"), not a pod.
	External  bool      `json:"external,omitempty"`
	Direction string    `json:"direction"`
	Time      time.Time `json:"time"`
	Frame     []byte    `json:"frame"`
}

// CTStats is MethodCTStats's response.
type CTStats struct {
	// Entries is how many entries the table holds, of Capacity.
	Entries  int `json:"entries"`
	Capacity int `json:"capacity"`
}

// CTListRequest is MethodCTList's request.
type CTListRequest struct{}

// NATRow is one SNAT entry as `cilium bpf nat list` shows it.
type NATRow struct {
	// Entry is "TCP OUT 192.0.2.50:40000 -> 10.1.2.40:8080 XLATE_SRC
	// 10.255.1.11:40000 Created=1234" style text.
	Entry string `json:"entry"`
	// Direction is OUT (the egress entry: source translated) or IN (the
	// reply's entry: destination translated back).
	Direction string         `json:"direction"`
	Src       netip.AddrPort `json:"src"`
	Dst       netip.AddrPort `json:"dst"`
	// Xlate is the translated address: the new source (OUT) or
	// destination (IN).
	Xlate netip.AddrPort `json:"xlate"`
}

// CTRow is one CT entry as `cilium bpf ct list global` shows it.
type CTRow struct {
	// Tuple is "TCP OUT 10.1.1.10:40000 -> 10.1.2.40:8080" style text.
	Tuple       string         `json:"tuple"`
	Proto       string         `json:"proto"`
	Direction   string         `json:"direction"` // OUT, IN, SERVICE
	Src         netip.AddrPort `json:"src"`
	Dst         netip.AddrPort `json:"dst"`
	Expires     int64          `json:"expires"` // seconds left
	TxPackets   uint64         `json:"tx_packets"`
	TxBytes     uint64         `json:"tx_bytes"`
	RxPackets   uint64         `json:"rx_packets"`
	RxBytes     uint64         `json:"rx_bytes"`
	TxFlagsSeen uint8          `json:"tx_flags_seen"`
	RxFlagsSeen uint8          `json:"rx_flags_seen"`
	Flags       string         `json:"flags"` // "rx_closing tx_closing ..."
	RevNAT      uint16         `json:"rev_nat"`
	// RevNATAddr is the rev-NAT index resolved ("10.224.1.1:80").
	RevNATAddr  string `json:"rev_nat_addr,omitempty"`
	BackendID   uint32 `json:"backend_id"`
	SrcIdentity uint32 `json:"src_sec_id"`
	// ProxyPort is the L7 proxy port of a flow its policy sends there.
	ProxyPort uint16 `json:"proxy_port,omitempty"`
}

// ServiceRow is one service with its backends, like `cilium bpf lb list`.
type ServiceRow struct {
	Frontend string `json:"frontend"` // "10.224.1.1:80/TCP"
	ID       uint16 `json:"id"`
	// NodePort marks a NodePort frontend (the node's address).
	NodePort bool         `json:"nodeport,omitempty"`
	Backends []BackendRow `json:"backends"`
}

// BackendRow is one backend of a service.
type BackendRow struct {
	ID      uint32 `json:"id"`
	Address string `json:"address"` // "10.1.2.40:8080"
	Pod     string `json:"pod,omitempty"`
}

// EndpointRow is one local endpoint, like `cilium endpoint list`.
type EndpointRow struct {
	ID             uint16 `json:"id"`
	Pod            string `json:"pod"`
	IP             string `json:"ip"`
	Identity       uint32 `json:"identity"`
	Labels         string `json:"labels"` // "app=backend,..."
	Device         string `json:"device"` // lxc name
	IfIndex        int    `json:"ifindex"`
	LXCMAC         string `json:"lxc_mac"`
	PodMAC         string `json:"pod_mac"`
	IngressEnforce bool   `json:"ingress_enforcement"`
	EgressEnforce  bool   `json:"egress_enforcement"`
}

// PolicyGet is MethodPolicyGet's request: a pod name or endpoint id.
type PolicyGet struct {
	Endpoint string `json:"endpoint"`
}

// PolicyRow is one policy map entry, like `cilium bpf policy get`.
type PolicyRow struct {
	Direction string `json:"direction"` // Ingress, Egress
	Identity  uint32 `json:"identity"`  // 0 = any (L4-only / allow-all)
	Port      uint16 `json:"port"`      // 0 = any
	Proto     string `json:"proto"`     // TCP, UDP, ANY
	Level     string `json:"level"`     // L3L4, L4-only, L3-only, allow-all
	Deny      bool   `json:"deny,omitempty"`
	// ProxyPort, when not 0, redirects the entry's flows to the node's L7
	// proxy on that port.
	ProxyPort uint16 `json:"proxy_port,omitempty"`
	Packets   uint64 `json:"packets"`
	Bytes     uint64 `json:"bytes"`
}

// IPCacheRow is one ipcache entry.
type IPCacheRow struct {
	Prefix   string `json:"prefix"`
	Identity uint32 `json:"identity"`
	Tunnel   string `json:"tunnel_endpoint,omitempty"`
}

// MetricRow is one metrics counter, like `cilium bpf metrics list`, or
// with L7 set a counter of the node's L7 proxy.
type MetricRow struct {
	Reason    string `json:"reason"` // "Forwarded", "Policy denied", ...
	Code      uint8  `json:"code"`
	Direction string `json:"direction"` // INGRESS, EGRESS
	Packets   uint64 `json:"packets"`
	Bytes     uint64 `json:"bytes"`
	// L7 marks a counter of HTTP requests the L7 proxy answered (Cilium's
	// cilium_policy_l7_total): Packets counts the requests of Direction
	// with Verdict (L7Forwarded, L7Dropped, L7Error) and HTTP Status;
	// Reason is "L7 forwarded", "L7 denied" or "L7 error".
	L7      bool   `json:"l7,omitempty"`
	Verdict string `json:"verdict,omitempty"`
	Status  int    `json:"status,omitempty"`
}

// tc hooks of TCFilterRow.
const (
	TCIngress = "ingress"
	TCEgress  = "egress"
)

// TCFilterRow is one BPF program attached at a device's tc hook, like a
// line of `bpftool net show`.
type TCFilterRow struct {
	// Device is the device's name ("lxc7485d3", "bond0").
	Device string `json:"device"`
	// Hook is TCIngress or TCEgress (the clsact parent).
	Hook string `json:"hook"`
	// Program is the program's name in the journey vocabulary
	// ("from-container", "from-netdev", "to-netdev").
	Program string `json:"program"`
	// ID is the kernel's program id and Tag its hex tag.
	ID  uint32 `json:"id"`
	Tag string `json:"tag"`
}

// KernelRoute is one route of the guest's main table.
type KernelRoute struct {
	Dst      string `json:"dst"`
	Gateway  string `json:"gateway,omitempty"`
	Device   string `json:"device"`
	Protocol string `json:"protocol"` // "bgp" for routes the speaker installed
}
