package topologies

import (
	"errors"
	"strings"
	"testing"
)

// base is a valid topology; tests replace or append lines (1-based numbers
// are the YAML line numbers error messages must report).
var base = []string{
	/* 1 */ "name: t",
	/* 2 */ "router: {name: tor, asn: 65000}",
	/* 3 */ "nodes:",
	/* 4 */ "  - name: node1",
	/* 5 */ "    asn: 65001",
	/* 6 */ "    podCIDR: 10.1.1.0/24",
	/* 7 */ "    uplink: {address: 10.255.1.11/24, gateway: 10.255.1.1}",
	/* 8 */ "  - name: node2",
	/* 9 */ "    asn: 65002",
	/* 10 */ "    podCIDR: 10.1.2.0/24",
	/* 11 */ "    uplink: {address: 10.255.2.12/24, gateway: 10.255.2.1}",
	/* 12 */ "pods:",
	/* 13 */ "  - {name: pod1, node: node1, ip: 10.1.1.10, labels: {app: a}}",
	/* 14 */ "  - {name: pod4, node: node2, ip: 10.1.2.40, labels: {app: b}, listen: [\"tcp/8080\"]}",
	/* 15 */ "services:",
	/* 16 */ "  - {name: svc, vip: 10.224.1.1, port: 80, backends: [\"pod4:8080\"]}",
	/* 17 */ "policies:",
	/* 18 */ "  - endpointSelector: {matchLabels: {app: b}}",
	/* 19 */ "    ingress:",
	/* 20 */ "      - fromEndpoints: [{matchLabels: {app: a}}]",
	/* 21 */ "        toPorts: [{ports: [{port: \"8080\", protocol: TCP}]}]",
}

// mutate returns base with the given 1-based lines replaced; a line number
// past the end appends.
func mutate(repl map[int]string) []byte {
	lines := append([]string(nil), base...)
	for n, s := range repl {
		for len(lines) < n {
			lines = append(lines, "")
		}
		lines[n-1] = s
	}
	return []byte(strings.Join(lines, "\n") + "\n")
}

func TestBaseIsValid(t *testing.T) {
	top, err := Parse("t.yaml", mutate(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(top.Warnings) != 0 {
		t.Errorf("warnings: %v", top.Warnings)
	}
}

func TestValidationErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		repl map[int]string
		want string
	}{
		{"unknown top key", map[int]string{22: "extra: 1"}, `t.yaml:22:1: topology: unknown key "extra"`},
		{"external without ip", map[int]string{22: "externals:", 23: "  - {name: laptop}"}, `t.yaml:23:5: external: missing required key "ip"`},
		{"external unknown key", map[int]string{22: "externals:", 23: "  - {name: laptop, ip: 192.0.2.50, mac: 1}"}, `t.yaml:23:36: external: unknown key "mac" (known keys: name, ip)`},
		{"external named like a pod", map[int]string{22: "externals:", 23: "  - {name: pod1, ip: 192.0.2.50}"}, `t.yaml:23:5: external name "pod1" is already used at line 13`},
		{"external in a podCIDR", map[int]string{22: "externals:", 23: "  - {name: laptop, ip: 10.1.1.77}"}, `t.yaml:23:5: external laptop: its network 10.1.1.0/24 overlaps node node1's podCIDR 10.1.1.0/24`},
		{"external in an uplink", map[int]string{22: "externals:", 23: "  - {name: laptop, ip: 10.255.2.99}"}, `external laptop: its network 10.255.2.0/24 overlaps node node2's uplink 10.255.2.0/24`},
		{"external on the router's address", map[int]string{22: "externals:", 23: "  - {name: laptop, ip: 192.0.2.1}"}, `external laptop: IP 192.0.2.1 is the network, broadcast or router (.1) address of 192.0.2.0/24`},
		{"external is a VIP", map[int]string{22: "externals:", 23: "  - {name: laptop, ip: 10.224.1.1}"}, `external laptop: IP 10.224.1.1 is service svc's VIP`},
		{"two externals on one IP", map[int]string{22: "externals:", 23: "  - {name: a, ip: 192.0.2.50}", 24: "  - {name: b, ip: 192.0.2.50}"}, `t.yaml:24:5: external b: IP 192.0.2.50 is already used by external a (line 23)`},
		{"pod named host", map[int]string{13: "  - {name: host, node: node1, ip: 10.1.1.10, labels: {app: a}}"}, `t.yaml:13:5: pod name "host" is reserved: NODE:host names a node's host namespace`},
		{"socketLB not a bool", map[int]string{22: "socketLB: yes"}, `t.yaml:22:11: socketLB: "yes" is not true or false`},
		{"unknown node key", map[int]string{6: "    podCidr: 10.1.1.0/24"}, `t.yaml:6:5: node: unknown key "podCidr" (known keys: name, asn, podCIDR, uplink)`},
		{"missing required key", map[int]string{6: "    asn2: 1"}, `t.yaml:4:5: node: missing required key "podCIDR"`},
		{"duplicate key", map[int]string{6: "    asn: 65003"}, `t.yaml:6:5: node: duplicate key "asn"`},
		{"missing topology name", map[int]string{1: "kernel: \"6.1\""}, `t.yaml:1:1: topology: missing required key "name"`},
		{"bad pod IP", map[int]string{13: "  - {name: pod1, node: node1, ip: 10.1.1.300}"}, `t.yaml:13:35: pod ip: "10.1.1.300" is not an IP address`},
		{"IPv6 pod", map[int]string{13: "  - {name: pod1, node: node1, ip: 'fd00::1'}"}, `t.yaml:13:35: pod ip: fd00::1: only IPv4 is supported`},
		{"pod ip list", map[int]string{13: "  - {name: pod1, node: node1, ip: [1]}"}, `t.yaml:13:35: pod ip: expected a single value, got a list`},
		{"bad CIDR", map[int]string{6: "    podCIDR: 10.1.1.0/33"}, `t.yaml:6:14: node podCIDR: "10.1.1.0/33" is not an address/prefix-length`},
		{"CIDR host bits", map[int]string{6: "    podCIDR: 10.1.1.5/24"}, `t.yaml:6:14: node podCIDR: 10.1.1.5/24 has host bits set (did you mean 10.1.1.0/24?)`},
		{"CIDR too small", map[int]string{6: "    podCIDR: 10.1.1.0/31"}, `t.yaml:6:14: node podCIDR: 10.1.1.0/31 is too small`},
		{"overlapping PodCIDRs", map[int]string{10: "    podCIDR: 10.1.0.0/16"}, `t.yaml:8:5: node node2 podCIDR 10.1.0.0/16 overlaps node node1 podCIDR 10.1.1.0/24 (line 4)`},
		{"overlapping uplinks", map[int]string{11: "    uplink: {address: 10.255.1.12/24, gateway: 10.255.1.1}"}, `t.yaml:8:5: node node2 uplink 10.255.1.0/24 overlaps node node1 uplink 10.255.1.0/24 (line 4)`},
		{"PodCIDR overlaps uplink", map[int]string{6: "    podCIDR: 10.255.0.0/16"}, `node node1 uplink 10.255.1.0/24 overlaps node node1 podCIDR 10.255.0.0/16 (line 4)`},
		{"gateway outside uplink", map[int]string{7: "    uplink: {address: 10.255.1.11/24, gateway: 10.255.9.1}"}, `t.yaml:4:5: node node1: uplink gateway 10.255.9.1 is not in the uplink prefix 10.255.1.0/24`},
		{"gateway is own address", map[int]string{7: "    uplink: {address: 10.255.1.11/24, gateway: 10.255.1.11}"}, `uplink gateway 10.255.1.11 is the node's own address`},
		{"uplink network address", map[int]string{7: "    uplink: {address: 10.255.1.0/24, gateway: 10.255.1.1}"}, `uplink address 10.255.1.0/24 is the network address`},
		{"bad bond", map[int]string{7: "    uplink: {address: 10.255.1.11/24, gateway: 10.255.1.1, bond: round-robin}"}, `t.yaml:7:66: uplink bond: "round-robin" is not a bonding mode (want active-backup, balance-xor or 802.3ad)`},
		{"bad mode", map[int]string{22: "mode: bgp"}, `t.yaml:22:7: mode: "bgp" is not a mode`},
		{"bad kernel", map[int]string{22: "kernel: latest"}, `t.yaml:22:9: kernel: "latest" is not a kernel series`},
		{"pod outside PodCIDR", map[int]string{13: "  - {name: pod1, node: node1, ip: 10.1.2.10}"}, `t.yaml:13:5: pod pod1: IP 10.1.2.10 is outside node node1's podCIDR 10.1.1.0/24`},
		{"pod on router IP", map[int]string{13: "  - {name: pod1, node: node1, ip: 10.1.1.1}"}, `pod pod1: IP 10.1.1.1 is node node1's router IP`},
		{"pod on broadcast", map[int]string{13: "  - {name: pod1, node: node1, ip: 10.1.1.255}"}, `pod pod1: IP 10.1.1.255 is the broadcast address of 10.1.1.0/24`},
		{"pod on unknown node", map[int]string{13: "  - {name: pod1, node: node9, ip: 10.1.1.10}"}, `t.yaml:13:5: pod pod1: unknown node "node9"`},
		{"duplicate pod IP", map[int]string{14: "  - {name: pod4, node: node1, ip: 10.1.1.10, listen: [\"tcp/8080\"]}"}, `t.yaml:14:5: pod pod4: IP 10.1.1.10 is already used by pod pod1 (line 13)`},
		{"duplicate pod name", map[int]string{14: "  - {name: pod1, node: node2, ip: 10.1.2.40}"}, `t.yaml:14:5: pod name "pod1" is already used at line 13`},
		{"pod named like a node", map[int]string{13: "  - {name: node1, node: node1, ip: 10.1.1.10}"}, `t.yaml:13:5: pod name "node1" is already used at line 4`},
		{"node named like router", map[int]string{4: "  - name: tor"}, `t.yaml:4:5: node name "tor" is already used at line 2`},
		{"bad name", map[int]string{13: "  - {name: Pod_1, node: node1, ip: 10.1.1.10}"}, `t.yaml:13:12: pod name: "Pod_1" is not a valid name`},
		{"duplicate pinned MAC", map[int]string{
			13: "  - {name: pod1, node: node1, ip: 10.1.1.10, mac: 0a:00:00:00:00:01}",
			14: "  - {name: pod4, node: node2, ip: 10.1.2.40, mac: 0a:00:00:00:00:01, listen: [\"tcp/8080\"]}",
		}, `t.yaml:14:5: pod pod4: MAC 0a:00:00:00:00:01 is already used by pod pod1 (line 13)`},
		{"multicast MAC", map[int]string{13: "  - {name: pod1, node: node1, ip: 10.1.1.10, mac: 01:00:5e:00:00:01}"}, `t.yaml:13:51: pod mac: 01:00:5e:00:00:01 is a multicast address`},
		{"malformed MAC", map[int]string{13: "  - {name: pod1, node: node1, ip: 10.1.1.10, mac: 0a:00:00:00:00}"}, `pod mac: "0a:00:00:00:00" is not a MAC address`},
		{"listen without slash", map[int]string{14: "  - {name: pod4, node: node2, ip: 10.1.2.40, listen: [\"tcp8080\"]}"}, `t.yaml:14:55: pod listen: "tcp8080" is not PROTO/PORT`},
		{"listen bad proto", map[int]string{14: "  - {name: pod4, node: node2, ip: 10.1.2.40, listen: [\"sctp/1\"]}"}, `pod listen: "sctp/1": unknown protocol "sctp"`},
		{"listen bad port", map[int]string{14: "  - {name: pod4, node: node2, ip: 10.1.2.40, listen: [\"tcp/70000\"]}"}, `pod listen: "70000" is not a port (1..65535)`},
		{"listen twice", map[int]string{14: "  - {name: pod4, node: node2, ip: 10.1.2.40, listen: [\"tcp/8080\", \"http/8080\"]}"}, `pod listen: tcp/8080 is listed twice`},
		{"backend unknown pod", map[int]string{16: "  - {name: svc, vip: 10.224.1.1, port: 80, backends: [\"pod9:8080\"]}"}, `t.yaml:16:55: service svc: backend pod9:8080 names unknown pod "pod9"`},
		{"backend port zero", map[int]string{16: "  - {name: svc, vip: 10.224.1.1, port: 80, backends: [\"pod4:0\"]}"}, `t.yaml:16:55: service backend "pod4:0": "0" is not a port (1..65535)`},
		{"backend without port", map[int]string{16: "  - {name: svc, vip: 10.224.1.1, port: 80, backends: [\"pod4\"]}"}, `service backend: "pod4" is not POD:PORT`},
		{"backend twice", map[int]string{16: "  - {name: svc, vip: 10.224.1.1, port: 80, backends: [\"pod4:8080\", \"pod4:8080\"]}"}, `service svc: backend pod4:8080 is listed twice`},
		{"VIP is a pod IP", map[int]string{16: "  - {name: svc, vip: 10.1.2.40, port: 80}"}, `t.yaml:16:5: service svc: VIP 10.1.2.40 collides with pod pod4's IP`},
		{"VIP in PodCIDR", map[int]string{16: "  - {name: svc, vip: 10.1.1.99, port: 80}"}, `service svc: VIP 10.1.1.99 is inside node node1's podCIDR 10.1.1.0/24`},
		{"VIP in uplink", map[int]string{16: "  - {name: svc, vip: 10.255.1.50, port: 80}"}, `service svc: VIP 10.255.1.50 is inside node node1's uplink 10.255.1.0/24`},
		{"service port", map[int]string{16: "  - {name: svc, vip: 10.224.1.1, port: 65536}"}, `t.yaml:16:40: service port: "65536" is not a port`},
		{"service protocol", map[int]string{16: "  - {name: svc, vip: 10.224.1.1, port: 80, protocol: icmp}"}, `service protocol: "icmp" is not tcp or udp`},
		{"duplicate frontend", map[int]string{17: "  - {name: svc2, vip: 10.224.1.1, port: 80, protocol: TCP}", 18: "policies: []", 19: "", 20: "", 21: ""}, `t.yaml:17:5: service svc2: 10.224.1.1:80/tcp is already service svc (line 16)`},
		{"nodePort range", map[int]string{16: "  - {name: svc, vip: 10.224.1.1, port: 80, nodePort: 8080}"}, `service nodePort: 8080 is outside the NodePort range 30000..32767`},
		{"ASN zero", map[int]string{5: "    asn: 0"}, `t.yaml:5:10: node asn: ASN 0 is reserved`},
		{"ASN not a number", map[int]string{5: "    asn: abc"}, `t.yaml:5:10: node asn: "abc" is not an ASN`},
		{"ASN too large", map[int]string{5: "    asn: 4294967296"}, `node asn: "4294967296" is not an ASN`},
		{"ASN AS_TRANS", map[int]string{5: "    asn: 23456"}, `ASN 23456 is AS_TRANS`},
		{"duplicate ASN", map[int]string{9: "    asn: 65001"}, `t.yaml:8:5: node node2: ASN 65001 is already used by node node1`},
		{"router ASN reused", map[int]string{5: "    asn: 65000"}, `node node1: ASN 65000 is already used by router tor`},
		{"unsupported rule key", map[int]string{20: "      - fromCIDR: [10.0.0.0/8]"}, `t.yaml:20:9: ingress rule: "fromCIDR" is not supported by hoplab: CIDR rules are not modelled`},
		{"matchExpressions", map[int]string{18: "  - endpointSelector: {matchExpressions: []}"}, `t.yaml:18:24: endpointSelector: "matchExpressions" is not supported by hoplab`},
		{"deny policy", map[int]string{19: "    ingressDeny:"}, `t.yaml:19:5: policy: "ingressDeny" is not supported by hoplab`},
		{"named port", map[int]string{21: "        toPorts: [{ports: [{port: http, protocol: TCP}]}]"}, `t.yaml:21:35: port: "http": named ports are not supported`},
		{"wildcard port", map[int]string{21: "        toPorts: [{ports: [{protocol: TCP}]}]"}, `t.yaml:21:28: port: missing required key "port"`},
		{"port range", map[int]string{21: "        toPorts: [{ports: [{port: 80, endPort: 90}]}]"}, `"endPort" is not supported by hoplab`},
		{"policy protocol", map[int]string{21: "        toPorts: [{ports: [{port: 80, protocol: SCTP}]}]"}, `protocol: "SCTP" is not TCP, UDP or ANY`},
		{"L7 kafka rules", map[int]string{21: "        toPorts: [{ports: [{port: 80, protocol: TCP}], rules: {kafka: []}}]"}, `t.yaml:21:64: rules: "kafka" is not supported by hoplab: only HTTP rules are modelled`},
		{"unknown entity", map[int]string{20: "      - fromEntities: [cluster]"}, `fromEntities: "cluster" is not a supported entity`},
		{"empty peers", map[int]string{20: "      - fromEndpoints: []"}, `fromEndpoints: an empty list selects nothing`},
		{"egress key in ingress", map[int]string{20: "      - toEndpoints: [{}]"}, `ingress rule: unknown key "toEndpoints" (known keys: fromEndpoints, fromEntities, toPorts)`},
		{"bad label key", map[int]string{13: "  - {name: pod1, node: node1, ip: 10.1.1.10, labels: {'a b': x}}"}, `pod labels: "a b" is not a valid label key`},
		{"labels as list", map[int]string{13: "  - {name: pod1, node: node1, ip: 10.1.1.10, labels: [a]}"}, `pod labels: expected a mapping of label keys to values, got a list`},
		{"nodes not a list", map[int]string{3: "nodes: 3", 4: "", 5: "", 6: "", 7: "", 8: "", 9: "", 10: "", 11: ""}, `t.yaml:3:8: nodes: expected a list, got "3"`},
		{"duplicate service name", map[int]string{17: "  - {name: svc, vip: 10.224.1.2, port: 80}", 18: "policies: []", 19: "", 20: "", 21: ""}, `t.yaml:17:5: service name "svc" is already used at line 16`},
		{"duplicate nodePort", map[int]string{16: "  - {name: svc, vip: 10.224.1.1, port: 80, nodePort: 30080}", 17: "  - {name: svc2, vip: 10.224.1.2, port: 80, nodePort: 30080}", 18: "policies: []", 19: "", 20: "", 21: ""}, `t.yaml:17:5: service svc2: nodePort 30080/tcp is already used by service svc (line 16)`},
		{"VIP multicast", map[int]string{16: "  - {name: svc, vip: 224.0.0.5, port: 80}"}, `service svc: VIP 224.0.0.5 is not a unicast address`},
		{"duplicate policy name", map[int]string{22: "  - {name: p, endpointSelector: {}}", 23: "  - {name: p, endpointSelector: {}}"}, `t.yaml:23:5: policy name "p" is already used at line 22`},
		{"policy without selector", map[int]string{18: "  - ingress:", 19: "      - {}", 20: "", 21: ""}, `t.yaml:18:5: policy: missing required key "endpointSelector"`},
		{"uplink broadcast", map[int]string{7: "    uplink: {address: 10.255.1.255/24, gateway: 10.255.1.1}"}, `uplink address 10.255.1.255/24 is the broadcast address of its prefix`},
		{"gateway broadcast", map[int]string{7: "    uplink: {address: 10.255.1.11/24, gateway: 10.255.1.255}"}, `uplink gateway 10.255.1.255 is the network or broadcast address of 10.255.1.0/24`},
		{"pod on network address", map[int]string{13: "  - {name: pod1, node: node1, ip: 10.1.1.0}"}, `pod pod1: IP 10.1.1.0 is the network address of 10.1.1.0/24`},
		{"empty entities", map[int]string{20: "      - fromEntities: []"}, `fromEntities: an empty list selects nothing`},
		{"empty toPorts", map[int]string{21: "        toPorts: []"}, `toPorts: an empty list allows no port`},
		{"empty ports", map[int]string{21: "        toPorts: [{ports: []}]"}, `ports: an empty list allows no port`},
		{"bad label value", map[int]string{13: "  - {name: pod1, node: node1, ip: 10.1.1.10, labels: {app: 'a b'}}"}, `pod labels: "a b" is not a valid label value`},
		{"duplicate label", map[int]string{13: "  - {name: pod1, node: node1, ip: 10.1.1.10, labels: {app: a, app: b}}"}, `pod labels: duplicate label "app"`},
		{"duplicate selector label after prefix", map[int]string{18: "  - endpointSelector: {matchLabels: {app: b, 'k8s:app': b}}"}, `endpointSelector matchLabels: duplicate label "app"`},
		{"router missing asn", map[int]string{2: "router: {name: tor}"}, `t.yaml:2:9: router: missing required key "asn"`},
		{"no nodes", map[int]string{3: "nodes: []", 4: "", 5: "", 6: "", 7: "", 8: "", 9: "", 10: "", 11: "", 12: "", 13: "", 14: "", 15: "", 16: "", 17: "", 18: "", 19: "", 20: "", 21: ""}, `t.yaml:3:8: nodes: at least one node is required`},
		{"empty name", map[int]string{1: "name:"}, `t.yaml:1:6: name: value is empty`},
		{"non-scalar key", map[int]string{22: "? [a]", 23: ": b"}, `topology: keys must be plain strings`},
		{"anchors", map[int]string{13: "  - &p {name: pod1, node: node1, ip: 10.1.1.10}"}, `t.yaml:13:5: YAML anchors and aliases are not supported`},
		{"two documents", map[int]string{22: "---", 23: "name: u"}, `t.yaml:22:1: more than one YAML document`},
		{"syntax error", map[int]string{13: "  - {name: pod1, node: node1"}, `t.yaml:13:1: did not find expected ',' or '}'`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			top, err := Parse("t.yaml", mutate(tc.repl))
			if err == nil {
				t.Fatalf("accepted; want error containing %q (warnings %v)", tc.want, top.Warnings)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error:\n%v\nwant substring:\n%s", err, tc.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not match ErrInvalid: %v", err)
			}
		})
	}
}

func TestWholeDocumentErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", "x.yaml:1:1: empty topology"},
		{"comment only", "# nothing\n", "x.yaml:1:1: empty topology"},
		{"list root", "- a\n", "x.yaml:1:1: topology: expected a mapping, got a list"},
		{"scalar root", "hello\n", `x.yaml:1:1: topology: expected a mapping, got "hello"`},
		{"tab indent", "name: t\n\tnodes: []\n", "x.yaml:2:1: found a tab character that violates indentation"},
		{"unclosed list at EOF", "name: t\nnodes: [\n", "x.yaml:3:1: did not find expected node content"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("x.yaml", []byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestSeveralErrorsAreJoinedInFileOrder(t *testing.T) {
	_, err := Parse("t.yaml", mutate(map[int]string{
		5:  "    asn: 0",
		13: "  - {name: pod1, node: node9, ip: 10.1.1.10}",
		16: "  - {name: svc, vip: 10.224.1.1, port: 80, backends: [\"pod9:8080\"]}",
	}))
	if err == nil {
		t.Fatal("accepted")
	}
	msg := err.Error()
	lines := strings.Split(msg, "\n")
	if len(lines) != 1 {
		// asn: 0 is a parse error; semantic checks run only once the file parses.
		t.Fatalf("want only the parse error first, got:\n%s", msg)
	}
	_, err = Parse("t.yaml", mutate(map[int]string{
		13: "  - {name: pod1, node: node9, ip: 10.1.1.10}",
		16: "  - {name: svc, vip: 10.224.1.1, port: 80, backends: [\"pod9:8080\"]}",
	}))
	lines = strings.Split(err.Error(), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "t.yaml:13:") || !strings.HasPrefix(lines[1], "t.yaml:16:") {
		t.Fatalf("want two errors at lines 13 and 16, got:\n%v", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Line != 13 {
		t.Errorf("errors.As: %+v", e)
	}
}

func TestWarnings(t *testing.T) {
	top, err := Parse("t.yaml", mutate(map[int]string{
		14: "  - {name: pod4, node: node2, ip: 10.1.2.40, labels: {app: b}}",
		18: "  - endpointSelector: {matchLabels: {app: nobody}}",
		20: "      - fromEndpoints: [{matchLabels: {app: ghost}}]",
	}))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range top.Warnings {
		got = append(got, w.String())
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{
		"t.yaml:16:55: warning: service svc: backend pod pod4 does not listen on tcp/8080",
		"t.yaml:18:5: warning: policy policies[0]: endpointSelector {app=nobody} selects no pod",
		"t.yaml:20:9: warning: policy policies[0]: peer selector {app=ghost} selects no pod",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("missing warning %q in:\n%s", want, all)
		}
	}
}

func TestDefaults(t *testing.T) {
	top, err := Parse("t.yaml", mutate(nil))
	if err != nil {
		t.Fatal(err)
	}
	if top.Kernel != "6.1" || top.Mode != DirectRouting || top.Nodes[0].Uplink.Bond != BondBalanceXOR || top.Services[0].Protocol != TCP {
		t.Errorf("defaults: kernel %q mode %q bond %q proto %v", top.Kernel, top.Mode, top.Nodes[0].Uplink.Bond, top.Services[0].Protocol)
	}
	if top.Policies[0].Name != "policies[0]" {
		t.Errorf("default policy name %q", top.Policies[0].Name)
	}
}

// Missing names and ASNs are reported as missing, never as duplicates of
// each other; a real duplicate (ASN 1 twice) is.
func TestMissingIsNotDuplicate(t *testing.T) {
	_, err := Parse("t.yaml", mutate(map[int]string{4: "  - name: \"\"", 5: "    asn: 0", 8: "  - name: \"\"", 9: "    asn: 0"}))
	if err == nil {
		t.Fatal("nodes without names and ASNs accepted")
	}
	if strings.Contains(err.Error(), "already used") {
		t.Errorf("missing values reported as duplicates: %v", err)
	}
	_, err = Parse("t.yaml", mutate(map[int]string{5: "    asn: 1", 9: "    asn: 1"}))
	if err == nil || !strings.Contains(err.Error(), "ASN 1 is already used") {
		t.Errorf("ASN 1 twice: %v", err)
	}
}

// An uplink without a gateway is reported once, as missing: the checks
// that relate address and gateway do not run on the missing value.
func TestUplinkWithoutGatewayReportedOnce(t *testing.T) {
	_, err := Parse("t.yaml", mutate(map[int]string{7: "    uplink: {address: 10.255.1.11/24}"}))
	if err == nil {
		t.Fatal("an uplink without a gateway accepted")
	}
	if strings.Contains(err.Error(), "not in the uplink prefix") || strings.Contains(err.Error(), "network or broadcast") {
		t.Errorf("the missing gateway is also checked against the prefix: %v", err)
	}
}

// warningsOf parses the lines into base and returns the warnings' texts.
func warningsOf(t *testing.T, repl map[int]string) string {
	t.Helper()
	top, err := Parse("t.yaml", mutate(repl))
	if err != nil {
		t.Fatal(err)
	}
	var ws []string
	for _, w := range top.Warnings {
		ws = append(ws, w.String())
	}
	return strings.Join(ws, "\n")
}

// The validator's rarer findings, each at its boundary.
func TestValidatorFindings(t *testing.T) {
	// A VIP that is not unicast, each kind.
	for _, vip := range []string{"0.0.0.0", "224.0.0.1", "127.0.0.1", "255.255.255.255"} {
		_, err := Parse("t.yaml", mutate(map[int]string{16: "  - {name: svc, vip: " + vip + ", port: 80, backends: [\"pod4:8080\"]}"}))
		if err == nil || !strings.Contains(err.Error(), "is not a unicast address") {
			t.Errorf("VIP %s: %v", vip, err)
		}
	}
	// Two services on one VIP and port clash; port 1 is a port like any.
	_, err := Parse("t.yaml", mutate(map[int]string{16: "  - {name: svc, vip: 10.224.1.1, port: 1, backends: [\"pod4:8080\"]}",
		17: "  - {name: svc2, vip: 10.224.1.1, port: 1, backends: [\"pod4:8080\"]}", 18: "", 19: "", 20: "", 21: ""}))
	if err == nil || !strings.Contains(err.Error(), "is already service svc") {
		t.Errorf("same VIP and port 1: %v", err)
	}
	// A backend listed twice is reported once, as listed twice, even when
	// its pod is unknown.
	_, err = Parse("t.yaml", mutate(map[int]string{16: "  - {name: svc, vip: 10.224.1.1, port: 80, backends: [\"ghost:8080\", \"ghost:8080\"]}"}))
	if err == nil || strings.Count(err.Error(), "unknown pod") != 1 || strings.Count(err.Error(), "listed twice") != 1 {
		t.Errorf("backend twice: %v", err)
	}
	// A backend listening on the port with another protocol does not
	// listen on the service's.
	if w := warningsOf(t, map[int]string{16: "  - {name: svc, vip: 10.224.1.1, port: 80, protocol: udp, backends: [\"pod4:8080\"]}"}); !strings.Contains(w, "does not listen on udp/8080") {
		t.Errorf("UDP service on a TCP listener: warnings %q", w)
	}
	if w := warningsOf(t, nil); strings.Contains(w, "does not listen") {
		t.Errorf("listening backend warned about: %q", w)
	}
	// A policy without rules enforces nothing.
	if w := warningsOf(t, map[int]string{19: "", 20: "", 21: ""}); !strings.Contains(w, "has no ingress or egress rules and enforces nothing") {
		t.Errorf("policy without rules: warnings %q", w)
	}
}
