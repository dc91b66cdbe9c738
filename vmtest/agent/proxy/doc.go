// Package proxy is a node's L7 proxy: a transparent HTTP/1.1 proxy in the
// node agent that enforces the topology's HTTP rules, as Cilium's proxy
// does for its L7 policies.
//
// The datapath hands it the flows whose policy entry names a proxy port:
// the BPF program marks the packet (MarkToProxy: magic 0x0200 and the port
// in the upper 16 bits, Cilium's MARK_MAGIC_TO_PROXY) and passes it to the
// stack, where an ip rule on the magic (SetupRouting) looks up a table
// whose only route is "local 0.0.0.0/0 dev lo": the packet is delivered
// locally although its destination is a pod's address. The proxy listens
// on the flow's destination port with IP_TRANSPARENT (ListenTransparent),
// so the kernel hands it the connection and the original destination
// stays the socket's local address. No TPROXY target is needed, so this
// works on 4.19 kernels built without it.
//
// Each request is decided by the rules of the endpoint whose policy
// redirected the flow (topologies.L7Port.Decide, the same code `hoplab
// policy trace` runs): a denied request is answered with 403 "Access
// denied", an allowed one is forwarded to the original destination over a
// connection of the proxy's own (from the node's address). Every request
// and response gives a record (nodeapi.L7Event) and counts in Metrics.
package proxy
