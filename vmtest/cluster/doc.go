// Package cluster runs a topology (package topologies) in VMs: it boots the
// ToR and the nodes as a vmtest fabric wired with the topology's MACs
// (FabricSpec), sets up the router and node roles of the agent (package
// vmtest/protocol/nodeapi) with the topology's text (Encode), waits for BGP to
// converge (every session Established, every PodCIDR in the ToR's and the
// other nodes' kernel routes), and offers what the e2e suites, the hoplab
// CLI and the VM tests need on top:
//
//   - the agents' typed clients ([Cluster.Node]), client actions from pods
//     ([Cluster.Run]), topology updates ([Cluster.Update]) and resets
//     between specs ([Cluster.Reset]), and the step durations of the
//     bring-up ([Cluster.Timings]);
//   - a live stream of observations ([Cluster.Subscribe]): datapath trace and
//     drop events of every node, packets on every pod's eth0, and frames on
//     the harness wires, each convertible to journey observations
//     ([Event.Observations]);
//   - packet replay ([Cluster.Replay], [Cluster.Trace]): frames injected at a
//     named point ([ParsePoint]: "pod1", "node2:bond0", "tor:node2"; by
//     default [DefaultPoint]) with their Ethernet addresses rewritten to what
//     that point really sends ([RewriteL2]; ReplayOptions.KeepL2 keeps them),
//     the observations collected until they settle and merged into one
//     journey per frame (journey.Merge) with the CT entries of its flow;
//     Trace also returns the journeys of the pods' replies. [Plan] is the
//     planning of a replay (points, L2 rewriting, gaps), usable without a
//     VM; [Gaps] derives the frames' gaps from capture times.
//
// The replay code is split by job: plan.go (planning), inject.go
// (injection and RST suppression), replay.go (orchestration: subscribe,
// inject, settle, merge), ct.go (CT enrichment), ackrewrite.go (TCP ack
// rewriting).
//
// # Hops from the harness wires
//
// Each uplink wire belongs to the node at its A side. A frame the node sends
// (side A) is that node's "wire" hop. A frame the ToR sends toward a node
// (side B) is both the ToR's "router" hop (device: the ToR's bond toward the
// node, named like the node) and the node's "wire" hop. Frames the harness
// injected are only wire hops: the ToR did not forward them. A frame
// injected at the ToR's port facing a node starts its journey on that
// node's wire.
//
// A packet the ToR cannot route (its PodCIDR withdrawn) ends LOST, its last
// hop being the sending node's wire toward the ToR.
//
// # Replies
//
// Every frame a pod sends that no injected packet explains starts a reply;
// the observations with the same IPv4 ID and TCP sequence fields are merged
// into it. A reply is kept when its flow, reversed, is that of an injected
// packet at one of its hops; a TCP reply answers the packet whose sequence
// space it acknowledges. The attribution needs no VM: it is
// journey.MergeReplies, fed with every observation and its frame's TCP
// segment. ReplayOptions.TCPAckRewrite shifts the acks of a
// replayed client to the live server's ISN (fixture capability
// "tcp-ack-rewrite"); ReplayOptions.SuppressRST drops the RSTs the
// injecting pod's kernel sends on the injected flows, which it has no
// socket for ("client-rst-suppression").
//
// # Another process
//
// [Cluster.Serve] makes a cluster reachable from other processes (`hoplab vm
// up` holds it, `hoplab replay`, `observe`, dumps and `vm exec` use it): the
// agents' relays of [vmtest.Fabric.ServeControl], the fabric's state file,
// and a socket of this package in the run directory (replay, client
// actions, resets and the observation stream, over package vmtest/protocol/control's
// protocol), described by a state file ([State]). [CurrentStateFile] finds
// the state file of the cluster this user serves
// ($XDG_RUNTIME_DIR/hoplab/current, else /tmp/hoplab-UID/current) and
// [Attach] opens a [Remote] from it. [Handle] is what a Cluster and a
// Remote have in common.
//
// # Tests
//
// Unit tests (no tag) cover the topology encoding, the fabric MACs, the
// injection points, L2 rewriting, the ack rewriting, and the conversion of
// observations into every fixture's expected journeys and replies. The VM
// tests (go test -tags vm ./vmtest/cluster/, kernel HOPLAB_SERIES or the
// topology's) are issue 4's acceptance on pod-to-service and the replay of
// every fixture in every topology its expectation names.
package cluster
