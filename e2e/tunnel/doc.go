// Package tunnel holds the e2e suite of tunnel mode
// (topologies/tunnel.yaml): the reference journey — pod1 on node1 to
// Service 10.224.1.1:80, backend pod4:8080 on node2 — with the nodes
// carrying pod traffic in VXLAN (UDP 8472) between their uplink addresses.
// Its specs (label "tunnel") follow the encapsulated packet hop by hop,
// outer and inner headers, the identity carried in the VNI, CT on both
// nodes, a real HTTP client, a policy drop decided on the VNI's identity,
// and BGP announcing no PodCIDR. They need QEMU and carry the build tag
// vm: run them with `make e2e`.
package tunnel
