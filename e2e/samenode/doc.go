// Package samenode holds the e2e suite of topologies/same-node.yaml: pod1
// and pod2 share node1, so pod→pod and pod→Service traffic is delivered
// locally by tail call, without a trip through bond0 (label "same-node").
// The specs need QEMU and carry the build tag vm: run them with `make e2e`.
package samenode
