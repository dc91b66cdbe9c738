// Package host holds the e2e suite of host-to-pod traffic
// (topologies/host.yaml), the seeds' host→pod trace: real connections
// from node1's host namespace ("node1:host") to pod2 on node1 and pod4 on
// node2, with Cilium's reserved identities (reserved:host 1 on node1,
// reserved:remote-node 6 on node2) in the datapath's events and policy
// verdicts, a policy drop decided on remote-node, and an egress policy
// that admits the host entity only. Its specs (label "host") need QEMU and
// carry the build tag vm: run them with `make e2e`.
package host
