// Package socketlb holds the e2e suite of socket-level load balancing
// (topologies/socket-lb.yaml, socketLB: true): cgroup/connect4 and
// cgroup/sendmsg4 translate a Service VIP to a backend when a pod or a
// host process connects, so the journey starts with a sock-connect hop
// and from-container does no DNAT. Its specs (label "socket-lb") use real
// TCP and UDP clients from pod1 and node1's host, a policy drop behind a
// translated connection, and a replayed frame (no socket) that the tc path
// still load-balances. Every other suite runs with socketLB off. They need
// QEMU and carry the build tag vm: run them with `make e2e`.
package socketlb
