// Package multibackend holds the e2e suite of topologies/multi-backend.yaml:
// Service 10.224.1.2:80 with four HTTP backends spread over both nodes, one
// of them on the client's node (label "client"). The specs need QEMU and
// carry the build tag vm: run them with `make e2e`.
package multibackend
