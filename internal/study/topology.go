package study

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/hoplab/hoplab/topologies"
)

// The study's lab: a client and a server on node1, a server on node2.
const (
	// ClientPod runs the perf clients, on node1.
	ClientPod = "client"
	// LocalServer is the single-host server, on node1.
	LocalServer = "local"
	// RemoteServer is the multi-host server, on node2.
	RemoteServer = "remote"
	// PerfPort is the servers' port (iperf3's).
	PerfPort = 5201
	// otherPorts is the first of the ports of the entries (and rules)
	// that the measured traffic does not use.
	otherPorts = 20000
)

// The study topology's addresses.
var (
	clientIP   = netip.MustParseAddr("10.1.1.10")
	localIP    = netip.MustParseAddr("10.1.1.20")
	remoteIP   = netip.MustParseAddr("10.1.2.40")
	podNetwork = netip.MustParsePrefix("10.1.0.0/16")
)

// TopologyFile is the file name the study's topology is reported under.
const TopologyFile = "study.yaml"

const topologyHead = `# The eBPF-versus-iptables study (hoplab study): a client and a server on
# node1 (single-host), a server on node2 (multi-host), direct routing.
name: study
kernel: "6.1"
mode: direct-routing
router: {name: tor, asn: 65000}
nodes:
  - name: node1
    asn: 65001
    podCIDR: 10.1.1.0/24
    uplink: {address: 10.255.1.11/24, gateway: 10.255.1.1, bond: balance-xor}
  - name: node2
    asn: 65002
    podCIDR: 10.1.2.0/24
    uplink: {address: 10.255.2.12/24, gateway: 10.255.2.1, bond: balance-xor}
pods:
  - {name: client, node: node1, ip: 10.1.1.10, labels: {app: client}}
  - {name: local, node: node1, ip: 10.1.1.20, labels: {app: server, host: node1}}
  - {name: remote, node: node2, ip: 10.1.2.40, labels: {app: server, host: node2}}
`

// TopologyText is the study's topology with n policy entries for each
// server (the destination endpoints): one ingress rule from the client's
// labels to n TCP ports, PerfPort and n-1 others from 20000 on, so each
// server's policy map holds n L3L4 entries {client identity, port, TCP},
// one of which admits the measured traffic. With n = 0 there is no policy:
// enforcement is off.
func TopologyText(n int) string {
	var b strings.Builder
	b.WriteString(topologyHead)
	if n == 0 {
		return b.String()
	}
	fmt.Fprintf(&b, `policies:
  - name: study-%d-entries
    endpointSelector: {matchLabels: {app: server}}
    ingress:
      - fromEndpoints: [{matchLabels: {app: client}}]
        toPorts:
          - ports:
`, n)
	for _, p := range entryPorts(n) {
		fmt.Fprintf(&b, "              - {port: \"%d\", protocol: TCP}\n", p)
	}
	return b.String()
}

// entryPorts are the ports of n entries: PerfPort, then n-1 from 20000.
func entryPorts(n int) []int {
	if n == 0 {
		return nil
	}
	out := []int{PerfPort}
	for p := otherPorts; len(out) < n; p++ {
		out = append(out, p)
	}
	return out
}

// Topology parses TopologyText(n).
func Topology(n int) (*topologies.Topology, error) {
	return topologies.Parse(TopologyFile, []byte(TopologyText(n)))
}
