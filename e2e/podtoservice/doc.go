// Package podtoservice holds the e2e suite of the reference topology
// (topologies/pod-to-service.yaml): pod1 on node1 talks to Service
// 10.224.1.1:80, whose only backend is pod4:8080 on node2. Its specs follow
// the reference journey hop by hop (label "journey"), the reply path and
// connection tracking ("reply"), a real HTTP client ("client"), the drops
// of this topology ("drops"), the bonded uplinks ("bond") and BGP ("bgp").
// They need QEMU and carry the build tag vm: run them with `make e2e`.
package podtoservice
