package roles

import (
	"context"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"

	"github.com/hoplab/hoplab/internal/netnstest"
	"github.com/hoplab/hoplab/internal/testreq"
	"github.com/hoplab/hoplab/vmtest/agent/workload"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// baselineTopology is the study's shape: a client and a server on node1,
// another server on node2.
const baselineTopology = `name: study
mode: direct-routing
router: {name: tor, asn: 65000}
nodes:
  - {name: node1, asn: 65001, podCIDR: 10.1.1.0/24, uplink: {address: 10.255.1.11/24, gateway: 10.255.1.1}}
  - {name: node2, asn: 65002, podCIDR: 10.1.2.0/24, uplink: {address: 10.255.2.12/24, gateway: 10.255.2.1}}
pods:
  - {name: client, node: node1, ip: 10.1.1.10, labels: {app: client}}
  - {name: local, node: node1, ip: 10.1.1.20, labels: {app: server}}
  - {name: remote, node: node2, ip: 10.1.2.40, labels: {app: server}}
`

// TestRuleExprsAreIPTablesNFT: each rule is what iptables-nft installs for
// "-s C/32 -d S/32 -p tcp --dport P -j ACCEPT", on consecutive ports from
// 20000 that skip the measured port; the match variant starts with
// "-s NET -d NET -j ACCEPT" and still counts Count rules.
func TestRuleExprsAreIPTablesNFT(t *testing.T) {
	base := nodeapi.BaselineRules{Variant: nodeapi.RulesNoMatch, Count: 3,
		Client: netip.MustParseAddr("10.1.1.10"), Server: netip.MustParseAddr("10.1.1.20"), Port: 20001,
		PodNetwork: netip.MustParsePrefix("10.1.0.0/16")}
	rules, err := ruleExprs(base)
	if err != nil {
		t.Fatal(err)
	}
	want := []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{10, 1, 1, 10}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{10, 1, 1, 20}},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{6}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0x4e, 0x20}}, // 20000
		&expr.Verdict{Kind: expr.VerdictAccept},
	}
	if len(rules) != 3 || !reflect.DeepEqual(rules[0], want) {
		t.Fatalf("no-match rules: %d, first %#v", len(rules), rules[0])
	}
	var ports []int
	for _, r := range rules {
		d := r[7].(*expr.Cmp).Data
		ports = append(ports, int(d[0])<<8|int(d[1]))
	}
	if !reflect.DeepEqual(ports, []int{20000, 20002, 20003}) {
		t.Errorf("ports %v, want 20000 20002 20003 (the measured 20001 skipped)", ports)
	}

	m := base
	m.Variant = nodeapi.RulesMatch
	rules, err = ruleExprs(m)
	if err != nil {
		t.Fatal(err)
	}
	mask, net10 := []byte{255, 255, 0, 0}, []byte{10, 1, 0, 0}
	wantTop := []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: net10},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: net10},
		&expr.Verdict{Kind: expr.VerdictAccept},
	}
	if len(rules) != 3 || !reflect.DeepEqual(rules[0], wantTop) || len(rules[1]) != 9 {
		t.Fatalf("match rules: %d, top %#v", len(rules), rules[0])
	}
	if rules, err := ruleExprs(nodeapi.BaselineRules{Variant: nodeapi.RulesMatch}); err != nil || len(rules) != 0 {
		t.Errorf("count 0: %d rules, %v", len(rules), err)
	}

	for name, r := range map[string]nodeapi.BaselineRules{
		"variant":      {Variant: "some", Count: 1, Client: base.Client, Server: base.Server, Port: 1},
		"negative":     {Variant: nodeapi.RulesNoMatch, Count: -1},
		"too many":     {Variant: nodeapi.RulesNoMatch, Count: MaxBaselineRules + 1, Client: base.Client, Server: base.Server, Port: 1},
		"no client":    {Variant: nodeapi.RulesNoMatch, Count: 1, Server: base.Server, Port: 1},
		"no port":      {Variant: nodeapi.RulesNoMatch, Count: 1, Client: base.Client, Server: base.Server},
		"net too thin": {Variant: nodeapi.RulesMatch, Count: 1, Client: base.Client, Server: base.Server, Port: 1, PodNetwork: netip.MustParsePrefix("10.1.1.16/28")},
	} {
		if _, err := ruleExprs(r); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// testBaseline sets node up as a baseline node in a fresh namespace of
// the host kernel (bond0 a veth, no BGP).
func testBaseline(t *testing.T, node string) *Baseline {
	t.Helper()
	testreq.Root(t)
	top := parse(t, baselineTopology)
	nodeNamespace(t, top, node)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, res, err := SetupBaseline(ctx, Options{NetNSPrefix: netnstest.Prefix("bl")},
		nodeapi.BaselineSetup{Topology: baselineTopology, File: "study.yaml", Node: node, NoBGP: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	t.Logf("%s: %+v", node, res)
	return b
}

// TestBaselineBridgesPodsThroughForward: node1's pods are ports of the
// bridge, which holds the router IP, with no BPF program on any device;
// a same-node TCP_RR between them is bridged and goes through the FORWARD
// chain (br_netfilter): with a drop policy the no-match rules stop it,
// the match variant's top rule lets both directions through, and the
// chain holds the rules asked for.
func TestBaselineBridgesPodsThroughForward(t *testing.T) {
	b := testBaseline(t, "node1")
	br, err := netlink.LinkByName(BaselineBridge)
	must(t, err)
	addrs, err := netlink.AddrList(br, netlink.FAMILY_V4)
	must(t, err)
	if len(addrs) != 1 || addrs[0].IPNet.String() != "10.1.1.1/24" {
		t.Errorf("bridge addresses %v, want 10.1.1.1/24", addrs)
	}
	top := parse(t, baselineTopology)
	links, err := netlink.LinkList()
	must(t, err)
	for _, l := range links {
		filters, _ := netlink.FilterList(l, netlink.HANDLE_MIN_INGRESS)
		egress, _ := netlink.FilterList(l, netlink.HANDLE_MIN_EGRESS)
		if len(filters)+len(egress) > 0 {
			t.Errorf("%s has tc filters: %v %v", l.Attrs().Name, filters, egress)
		}
	}
	for _, name := range []string{"client", "local"} {
		lxc, err := netlink.LinkByName(top.Pod(name).LXCName)
		must(t, err)
		if lxc.Attrs().MasterIndex != br.Attrs().Index {
			t.Errorf("%s's %s is not a port of %s", name, lxc.Attrs().Name, BaselineBridge)
		}
	}
	server, err := b.pod("local")
	must(t, err)
	s, err := workload.ServePerf(server, "local", 5201)
	must(t, err)
	defer s.Close()
	client, err := b.pod("client")
	must(t, err)
	rr := func() (workload.PerfResult, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return workload.RR(ctx, client, netip.MustParseAddrPort("10.1.1.20:5201"), 100*time.Millisecond, 0, 0)
	}
	if r, err := rr(); err != nil {
		t.Fatalf("rr across the bridge: %v", err)
	} else {
		t.Logf("rr across the bridge: %.0f/s", r.TransactionsPerSecond)
	}
	if _, err := b.pod("remote"); err == nil || !strings.Contains(err.Error(), "runs on node2") {
		t.Errorf("pod remote: %v", err)
	}

	b.setBaselinePolicy(nftables.ChainPolicyDrop)
	rules := nodeapi.BaselineRules{Client: netip.MustParseAddr("10.1.1.10"), Server: netip.MustParseAddr("10.1.1.20"),
		Port: 5201, PodNetwork: netip.MustParsePrefix("10.1.0.0/16")}
	for _, c := range []struct {
		variant string
		count   int
		passes  bool
	}{
		{nodeapi.RulesNoMatch, 5, false},
		{nodeapi.RulesMatch, 5, true},
		{nodeapi.RulesMatch, 0, false},
		{nodeapi.RulesNoMatch, 1200, false}, // more than one batch
	} {
		rules.Variant, rules.Count = c.variant, c.count
		res, err := b.Rules(context.Background(), rules)
		must(t, err)
		if res.Rules != c.count {
			t.Errorf("%s %d: chain holds %d rules", c.variant, c.count, res.Rules)
		}
		_, err = rr()
		if (err == nil) != c.passes {
			t.Errorf("%s %d rules, drop policy: rr error %v, want passing %v", c.variant, c.count, err, c.passes)
		}
	}
	b.setBaselinePolicy(nftables.ChainPolicyAccept)
	rules.Variant, rules.Count = nodeapi.RulesNoMatch, 5
	_, err = b.Rules(context.Background(), rules)
	must(t, err)
	if _, err := rr(); err != nil {
		t.Errorf("no-match rules, accept policy: %v", err)
	}
}

// TestBaselineMAC: the bridge's MAC is locally administered and unicast.
func TestBaselineMAC(t *testing.T) {
	m := BaselineMAC(netip.MustParseAddr("10.1.2.1"))
	if m.String() != "0a:5b:0a:01:02:01" || m[0]&2 == 0 || m[0]&1 != 0 {
		t.Errorf("MAC %v", m)
	}
	_ = net.HardwareAddr(m)
}
