// Package l7 holds the e2e suite of topologies/l7.yaml (label "l7"): HTTP
// rules enforced by the nodes' L7 proxies. The datapath marks the flows an
// L7 rule covers and hands them to the proxy of the node whose policy
// names the rule (node2's for pod4's ingress rules, node1's for pod2's
// egress rules); the proxy forwards allowed requests (200 from the pod)
// and answers the others with 403 "Access denied". The specs check the
// answers, the journeys' proxy hop, the proxy's records and observe's
// lines (against testdata/observe.golden), that an identity without any
// L7 allowance is still dropped at L4, that node-update changes the rules
// without breaking established L4 flows, and that `policy trace` decides
// every request as the proxy did. A spec labelled "bench-l7" measures
// requests per second and the latency of a proxied GET against the same
// GET without an L7 rule (HOPLAB_L7_BENCH sets each side's duration,
// default 1s; `make bench-l7` runs it alone for 10s each).
//
// The specs need QEMU and carry the build tag vm: run them with `make e2e`
// (E2E_LABELS=l7 for them alone).
package l7
