// Package roles is the guest side of the node and router roles of the hoplab
// agent: it builds a node from a topology (forwarding sysctls, pods, the
// datapath loaded, attached and filled, listeners, the BGP node speaker),
// makes a VM the ToR (forwarding and the BGP route server), runs client
// actions and injections from pods, streams datapath and pod events, and
// serves the Cilium-style dumps.
//
// The work is done by two types that tests drive directly: [Node] (see
// [Setup]) and [Router] (see [SetupRouter]). The agent registration is the
// only agent-specific part: importing the package registers one handler per
// method of package vmtest/protocol/nodeapi on the default guest agent, backed by one
// role per VM.
//
// Every value the node uses (MACs, lxc names, endpoint IDs, identities,
// policy entries, ipcache entries) comes from the topology's derived fields
// and helpers; service and backend IDs are given in topology order and kept
// for as long as the service or backend exists, so an update never moves
// an existing flow (CT pins backend IDs).
package roles
