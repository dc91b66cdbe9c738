// Package journey is the journey report model shared by `hoplab replay` and
// the e2e suites: what happened to each injected packet at every hop.
//
// The types marshal to the JSON contract of DESIGN.md ("hoplab replay
// --json"): a [Report] holds one [Packet] per injected packet, each with its
// [Hop]s in path order and the connection-tracking entries ([CTEntry]) it
// created. Field names are stable; nil slices marshal as [].
//
// Conventions the producers (datapath events, harness link captures, pod
// captures) follow:
//
//   - A hop records the packet as observed at that point, following the
//     datapath's trace points: from-container and from-netdev trace it as it
//     arrives; to-stack (after from-container's DNAT), to-container (after
//     local routing and reverse NAT) and to-netdev as it leaves; the ToR's
//     router hop as the ToR forwards it. A drop event becomes the hop of the
//     point whose program dropped the packet (see Merge).
//   - Node is the node the point belongs to (for pod points: the node hosting
//     the pod; for the ToR: the router's name; for wire hops: the node whose
//     uplink the capture was taken on).
//   - Device is the interface: "lxc…" for the host-side veth, "bond0",
//     "<pod>:eth0" for a pod's eth0, "<node>" for the ToR port facing a node.
//   - Proto is lower case: "tcp", "udp", "icmp", "icmpv6", "sctp", or the
//     protocol number in decimal; non-IP frames carry the Ethertype name
//     ("arp"). ICMP has no ports (Sport and Dport are 0).
//
// The text renderer ([Render], [RenderPacket]) prints one block per hop in the
// spirit of VPP's packet trace, marking with '*' every field that changed
// since the previous hop. [Diff] compares an expected journey (zero-valued
// fields are wildcards) with an observed one and renders the whole observed
// journey with the differing fields marked, for the e2e matchers. [Merge]
// turns hop observations from several sources into one ordered journey per
// injected packet, matching observations to packets by flow and IPv4 ID;
// [MergeReplies] also builds the journeys of the packets pods sent in
// response and attributes each to the injected packet it answers, telling
// them apart by the TCP sequence fields ([Segment]) of their frames.
package journey
