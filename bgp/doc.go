// Package bgp runs hoplab's embedded BGP speaker: the node role announces the
// node's PodCIDR to the top-of-rack router and installs the routes it learns
// into the kernel; the router (ToR) role peers with every node, re-advertises
// what it learns over eBGP and installs the nodes' PodCIDRs into its own
// kernel so that it forwards pod traffic.
//
// GoBGP does the protocol work. It stays behind [Speaker]: the rest of hoplab
// never imports GoBGP's packages, and everything a caller sees (peers,
// routes, session states) is a plain value of this package.
//
// # Route installation
//
// A [Speaker] watches GoBGP's best-path table. Each learned best path is
// handed to its [RouteInstaller] (Install with the path's next hop); when the
// path is withdrawn, or its peer goes down, the prefix is removed again.
// Prefixes the speaker originates itself are never installed. The
// [NetlinkInstaller] writes kernel routes with protocol [ProtocolBGP] (186,
// "bgp" in iproute2) into a configurable table; the [MemoryInstaller] keeps
// them in memory for tests and dry runs.
//
// # Roles
//
// [NewNode] builds a node speaker: it dials the ToR from the node's uplink
// address (bond0), announces the PodCIDRs and installs learned routes. It does
// not listen. [NewRouter] builds the ToR: it listens, peers passively with
// every node and, because every node has its own ASN (65001, 65002, … with the
// ToR on 65000), plain eBGP re-advertisement carries node1's PodCIDR to node2
// with AS path [65000 65001] and the ToR as next hop. The ToR's own kernel
// gets each PodCIDR via the node's uplink address. IP forwarding is not
// switched on here: the guest agent sets net.ipv4.ip_forward on the ToR.
//
// # Timers
//
// [Peer] timers default to a connect retry of 1 s, so sessions come up within
// a couple of seconds in a test topology (GoBGP never dials before a random
// delay of 1–2 s), and to a hold time of 30 s with a keepalive of 10 s: guests
// under TCG on a loaded 2-core host were seen to stall long enough to expire
// a 9 s hold timer. A peer that
// stops cleanly (Stop, RemovePeer) sends a Cease and its routes go at once; a
// silent peer is taken down when the hold time expires. After a session has
// dropped, GoBGP keeps the neighbour Idle for 5 s (a constant in GoBGP v3)
// before it accepts or dials again, so a restarted node is back after about
// 8 s rather than 2.
//
// # Querying
//
// [Speaker.Peers] and [Speaker.Routes] return a [PeerList] and a [RouteList]
// whose String methods print the tables behind the agent's `bgp peers` and
// `bgp routes`; the values also marshal to JSON with stable snake_case names.
//
// # Known limits
//
// Only unicast IPv4 and IPv6 routes are handled, one family per session (the
// family of the peer's address). Only the best path is installed (no ECMP).
// Routes learned from route-server clients live in per-client RIBs that are
// neither listed by [Speaker.Routes] nor installed; use plain eBGP (as
// [NewRouter] does) when the router must forward. GoBGP's server loop
// goroutine outlives [Speaker.Stop] (GoBGP has no way to end it).
package bgp
