// Package policy holds the e2e suite of topologies/policy.yaml: ingress
// policies at every lookup level of the datapath's policy map (L3L4,
// L4-only, L3-only, allow-all), a default-deny endpoint, an egress policy,
// and the replies of allowed flows (label "policy"). The specs need QEMU
// and carry the build tag vm: run them with `make e2e`.
package policy
