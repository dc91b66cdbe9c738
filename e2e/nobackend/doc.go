// Package nobackend holds the e2e suite of topologies/no-backend.yaml: a
// Service without backends, whose packets are dropped at from-container
// with "Service backend not found" (label "drops"), and pod1 → pod4 without
// any policy. The specs need QEMU and carry the build tag vm: run them with
// `make e2e`.
package nobackend
