// Package flowline renders datapath trace and drop events as Hubble-style
// flow lines, the way `hubble observe` prints them:
//
//	Nov 23 10:31:15.123 node1 pod1:40000 (ID:38586) -> 10.224.1.1:80 (ID:2) from-container FORWARDED (TCP Flags: SYN)
//	Nov 23 10:31:15.131 node2 pod3:40030 (ID:63713) -> pod4:8080 (ID:19216) to-container DROPPED (Policy denied, TCP Flags: SYN)
//
// Fields: the event's time (guest clock, milliseconds), the node that
// emitted it, source and destination — a pod's name when the address is a
// pod's, a node's name for its uplink address, else the address — with the
// port and the security identity the datapath resolved (from the topology's
// ipcache when the event carries none), the observation point, the verdict
// with the drop reason, and the L4 summary (TCP flags, UDP, ICMP type).
//
// FormatL7 renders the records of a node's L7 proxy the way Hubble prints
// L7 flows: http-request and http-response lines with the HTTP version,
// method and URL, and for responses the status and the latency.
package flowline
