// Package cluster runs a topology (package topologies) in VMs: it boots the
// ToR and the nodes as a vmtest fabric wired with the topology's MACs, sets
// up the node and router roles of the agent (package vmtest/nodeapi), waits
// for BGP to converge, and offers what every consumer needs on top — the
// e2e suites, the hoplab CLI and the VM tests:
//
//   - the agents' typed clients ([Cluster.Node]), client actions from pods
//     ([Cluster.Run]), topology updates and resets between specs;
//   - a live stream of observations ([Cluster.Subscribe]): datapath trace and
//     drop events of every node, packets on every pod's eth0, and frames on
//     the harness wires;
//   - packet replay ([Cluster.Replay]): frames injected at a named point
//     ([ParsePoint]: "pod1", "node2:bond0", "tor:node2"; by default
//     [DefaultPoint]) with their Ethernet addresses rewritten to what that
//     point really sends, and the observations merged into a journey report
//     (package tools/journey).
//
// # Hops from the harness wires
//
// Each uplink wire belongs to the node at its A side. A frame the node sends
// (side A) is that node's "wire" hop. A frame the ToR sends toward a node
// (side B) is both the ToR's "router" hop (device: the ToR's bond toward the
// node, named like the node) and the node's "wire" hop. Frames the harness
// injected are only wire hops: the ToR did not forward them.
//
// # Another process
//
// [Cluster.Serve] makes a cluster reachable from other processes (`hoplab vm
// up` holds it, `hoplab replay`, `observe`, dumps and `vm exec` use it): the
// agents' relays of [vmtest.Fabric.ServeControl], plus a socket of this
// package in the run directory for replay, client actions and the
// observation stream, described by a state file. [Attach] opens a [Remote]
// from that file and [CurrentStateFile] finds the file of the cluster
// running for this user.
package cluster
