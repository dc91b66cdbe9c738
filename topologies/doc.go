// Package topologies is hoplab's topology format: the YAML that describes a
// lab (a ToR router, nodes bonded to it, pods, services and Cilium-shaped
// network policies), its loader and validator, the values derived from it
// (MACs, device names, endpoint IDs, security identities), the policy model
// that mirrors the datapath's policy map, a policy trace evaluator, and the
// shipped topologies.
//
// # Loading
//
// Load and Parse return a validated *Topology or an error joining one *Error
// per problem, each "file:line:col: reason" and each matching ErrInvalid.
// Open accepts a path or the name of a shipped topology (Names, Builtin).
// Parsing never panics. Rejected:
//
//   - malformed YAML, several documents, anchors/aliases, unknown or
//     duplicate keys (Cilium keys hoplab does not model are named as such:
//     matchExpressions, ingressDeny, fromCIDR, toFQDNs, L7 rules, endPort,
//     ...), missing required keys, values of the wrong shape;
//   - invalid names (DNS labels), names shared between the router, nodes and
//     pods, duplicate service or policy names;
//   - ASNs that are not 1..4294967294 or are reserved (23456, 65535), ASNs
//     shared between speakers (every speaker is its own AS: eBGP);
//   - non-IPv4 or malformed addresses and prefixes, PodCIDRs with host bits
//     set, prefixes longer than /30 or shorter than /8, overlapping PodCIDRs
//     and uplink prefixes (in any combination), an uplink address that is
//     its prefix's network or broadcast address, a gateway outside the
//     uplink prefix or equal to the node's address;
//   - pods on unknown nodes, outside their node's PodCIDR, on the PodCIDR's
//     network, router (first) or broadcast address, duplicate pod IPs,
//     pinned MACs that are malformed, multicast, zero or duplicated;
//   - listen specs other than tcp|udp|http/PORT, listed twice;
//   - services: bad VIPs (a pod's IP, inside a PodCIDR or uplink prefix,
//     not unicast), ports outside 1..65535, protocols other than tcp/udp,
//     two services on the same VIP:port/proto, nodePort outside
//     30000..32767 or used twice, backends not "pod:port", naming unknown
//     pods, listed twice;
//   - policies: toPorts without a numeric port (wildcard and named ports
//     have no datapath encoding), protocols other than TCP/UDP/ANY, empty
//     peer, entity or port lists, unknown entities.
//
// Warnings (Topology.Warnings, not errors): a policy that selects no pod, a
// peer selector that selects no pod, a policy without rules, a backend pod
// that does not listen on the backend port.
//
// # Derived values
//
// All derived values are hashes (SHA-256) of a kind tag and a name, so they
// are the same run to run and independent of the order of entries in the
// file; a collision is resolved by hashing "name#1", "name#2", ... with the
// entries taken in name order. See the fields of Node and Pod:
//
//   - pod eth0 MAC 0a:xx:xx:xx:xx:xx (unless pinned with mac:), lxc MAC
//     0e:xx:xx:xx:xx:xx, lxc device name "lxc" + 6 hex digits (9 bytes);
//   - node NICs 52:54:hh:hh:hh:01 and :02, the ToR's NICs facing that node
//     52:55:hh:hh:hh:01 and :02 (same hh); bond0 and the ToR-side bond take
//     their first NIC's MAC; all MACs are unique cluster-wide;
//   - a node's router IP (the pods' gateway) is the first address of its
//     PodCIDR;
//   - endpoint IDs are in 1..4095, unique cluster-wide;
//   - security identities: reserved ones as in Cilium (host 1, world 2,
//     unmanaged 3, health 4, init 5, remote-node 6, kube-apiserver 7);
//     a label set gets IdentityOf(labels), a hash of its canonical string
//     into 256..65535, identical in every topology; if two label sets of one
//     topology collide, the one whose canonical string sorts later probes
//     upwards (Topology.IdentityOf).
//
// # Policy model
//
// Topology.EndpointPolicy compiles, per pod, the entries of its policy map
// keyed {direction, remote identity, port, proto} and the per-direction
// enforcement flags, and EndpointPolicy.Lookup decides a packet with the
// datapath's lookup order L3L4 → L4-only → L3-only → allow-all, default
// deny when enforcement is on (as datapath/bpf/lib/policy.h; ICMP is looked
// up with port 0). Trace applies both to a flow (translating service
// frontends to each backend) with the identities of Topology.IPCache and
// explains the verdict. Traffic from a node's own host to its local pods
// bypasses to-container (nothing is attached on the lxc egress hook), so
// Trace reports no ingress policy for it. Deny
// policies, CIDR/FQDN/L7 rules and matchExpressions are not modelled and
// are rejected; entities all, host, world, remote-node, health and
// kube-apiserver are supported.
package topologies
