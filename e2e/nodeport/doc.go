// Package nodeport holds the e2e suite of NodePort from outside the
// cluster (topologies/nodeport.yaml): laptop, a host behind the ToR,
// reaches node1's uplink address at a nodePort. node1's from-netdev DNATs
// to the backend; for pod4 on node2 node1 also SNATs to its own address
// (to-netdev) and reverses both translations on the reply; pod2 on node1
// is delivered locally. The specs (label "nodeport") assert every hop of
// both directions, the CT and NAT entries, the identities the backends
// see (remote-node, world) and a policy drop. They need QEMU and carry the
// build tag vm: run them with `make e2e`.
package nodeport
