package cluster

import (
	"bytes"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/hoplab/hoplab/fixtures"
	"github.com/hoplab/hoplab/internal/errtext"
	"github.com/hoplab/hoplab/internal/journey"
	"github.com/hoplab/hoplab/topologies"
	"github.com/hoplab/hoplab/vmtest"
)

func builtin(t *testing.T, name string) *topologies.Topology {
	t.Helper()
	top, err := topologies.Builtin(name)
	if err != nil {
		t.Fatal(err)
	}
	return top
}

func TestEncodeRoundTrip(t *testing.T) {
	for _, name := range topologies.Names() {
		t.Run(name, func(t *testing.T) {
			top := builtin(t, name)
			text, err := Encode(top)
			if err != nil {
				t.Fatal(err)
			}
			back, err := topologies.Parse(top.File, text)
			if err != nil {
				t.Fatalf("encoded topology does not parse: %v\n%s", err, text)
			}
			again, err := Encode(back)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(text, again) {
				t.Fatalf("encoding is not stable:\n%s\n---\n%s", text, again)
			}
			if back.Name != top.Name || back.Kernel != top.Kernel || back.Mode != top.Mode || back.SocketLB != top.SocketLB || back.Router.Name != top.Router.Name || back.Router.ASN != top.Router.ASN {
				t.Fatalf("header differs: %+v vs %+v", back, top)
			}
			if len(back.Externals) != len(top.Externals) {
				t.Fatalf("%d externals, want %d", len(back.Externals), len(top.Externals))
			}
			for i, e := range top.Externals {
				f, g := *back.Externals[i], *e
				f.Pos, g.Pos = topologies.Pos{}, topologies.Pos{}
				if f != g {
					t.Errorf("external %s differs: %+v vs %+v", e.Name, f, g)
				}
			}
			for i, n := range top.Nodes {
				m := back.Nodes[i]
				if n.Name != m.Name || n.ASN != m.ASN || n.PodCIDR != m.PodCIDR || n.Uplink != m.Uplink || n.NICMACs != m.NICMACs || n.TorNICMACs != m.TorNICMACs || n.RouterIP != m.RouterIP {
					t.Errorf("node %s differs: %+v vs %+v", n.Name, n, m)
				}
			}
			for i, p := range top.Pods {
				q := back.Pods[i]
				if p.Name != q.Name || p.Node != q.Node || p.IP != q.IP || p.MAC != q.MAC || p.LXCName != q.LXCName || p.LXCMAC != q.LXCMAC ||
					p.EndpointID != q.EndpointID || p.Identity != q.Identity || p.Labels.String() != q.Labels.String() || len(p.Listen) != len(q.Listen) {
					t.Errorf("pod %s differs: %+v vs %+v", p.Name, p, q)
				}
				a, err1 := top.EndpointPolicy(p.Name)
				b, err2 := back.EndpointPolicy(p.Name)
				if err1 != nil || err2 != nil {
					t.Fatal(err1, err2)
				}
				if a.IngressEnforced != b.IngressEnforced || a.EgressEnforced != b.EgressEnforced || len(a.Entries) != len(b.Entries) {
					t.Errorf("pod %s policy differs: %+v vs %+v", p.Name, a, b)
				}
				for j := range a.Entries {
					if j < len(b.Entries) && a.Entries[j].PolicyKey != b.Entries[j].PolicyKey {
						t.Errorf("pod %s policy entry %d: %v vs %v", p.Name, j, a.Entries[j].PolicyKey, b.Entries[j].PolicyKey)
					}
				}
			}
			if len(back.Services) != len(top.Services) || len(back.Policies) != len(top.Policies) {
				t.Fatalf("services/policies differ")
			}
			for i, s := range top.Services {
				u := back.Services[i]
				if s.Name != u.Name || s.VIP != u.VIP || s.Port != u.Port || s.Protocol != u.Protocol || s.NodePort != u.NodePort || len(s.Backends) != len(u.Backends) {
					t.Errorf("service %s differs", s.Name)
				}
			}
		})
	}
}

// TestEncodeDefaultDeny checks the edit the VM tests make: the ingress
// rule replaced by an empty one keeps enforcement on and allows nothing.
func TestEncodeDefaultDeny(t *testing.T) {
	top := builtin(t, "pod-to-service")
	top.Policies[0].Ingress = []topologies.Rule{{}}
	text, err := Encode(top)
	if err != nil {
		t.Fatal(err)
	}
	back, err := topologies.Parse("edited", text)
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	ep, err := back.EndpointPolicy("pod4")
	if err != nil {
		t.Fatal(err)
	}
	if !ep.IngressEnforced || len(ep.Entries) != 0 {
		t.Fatalf("pod4 policy after the edit: %+v\n%s", ep, text)
	}
	if !strings.Contains(string(text), "policies[0]") && !strings.Contains(string(text), "- {}") {
		t.Logf("%s", text)
	}
}

func TestFabricSpecMACs(t *testing.T) {
	top := builtin(t, "pod-to-service")
	s := FabricSpec(top)
	if s.Router != "tor" || len(s.Nodes) != 2 {
		t.Fatalf("spec %+v", s)
	}
	n1 := s.Nodes[0]
	if n1.Name != "node1" || n1.Address.String() != "10.255.1.11/24" || n1.Gateway.String() != "10.255.1.1" || n1.Bond != "balance-xor" {
		t.Fatalf("node1 %+v", n1)
	}
	// The values the fixtures' expectations carry.
	if got := s.NodeMAC(0, 0).String(); got != "52:54:71:f1:2b:01" {
		t.Errorf("node1 NIC 0 MAC %s", got)
	}
	if got := s.RouterMAC(1, 0).String(); got != "52:55:1a:36:09:01" {
		t.Errorf("ToR NIC toward node2 %s", got)
	}
	for i, n := range top.Nodes {
		for j := range vmtest.UplinkNICs {
			if !bytes.Equal(s.NodeMAC(i, j), n.NICMACs[j][:]) || !bytes.Equal(s.RouterMAC(i, j), n.TorNICMACs[j][:]) {
				t.Errorf("node %s uplink %d: %s/%s vs %s/%s", n.Name, j, s.NodeMAC(i, j), s.RouterMAC(i, j), n.NICMACs[j], n.TorNICMACs[j])
			}
		}
		cfg := s.NodeConfig(i)
		if cfg.Links[0].MAC != n.BondMAC.String() {
			t.Errorf("node %s bond0 takes %s, topology says %s", n.Name, cfg.Links[0].MAC, n.BondMAC)
		}
	}
	r := s.RouterConfig()
	if r.Links[2].MAC != top.Nodes[1].TorBondMAC.String() || r.Bonds[1].Slaves[0] != r.Links[2].Name {
		t.Errorf("router config %+v", r)
	}
}

func TestParsePoint(t *testing.T) {
	top := builtin(t, "pod-to-service")
	for in, want := range map[string]InjectPoint{
		"pod1":        {Kind: AtPod, Pod: "pod1", Node: "node1"},
		"pod4":        {Kind: AtPod, Pod: "pod4", Node: "node2"},
		"node2:bond0": {Kind: AtNode, Node: "node2"},
		"tor:node2":   {Kind: AtRouter, Node: "node2", Router: "tor"},
	} {
		got, err := ParsePoint(top, in)
		if err != nil || got != want {
			t.Errorf("ParsePoint(%q) = %+v, %v; want %+v", in, got, err, want)
		}
		if got.String() != in {
			t.Errorf("%+v renders as %q", got, got.String())
		}
	}
	for in, msg := range map[string]string{
		"pod9":        `bad injection point "pod9": no such pod in topology pod-to-service (pods: pod1, pod4)`,
		"node2":       `bad injection point "node2": that is a node; say node2:bond0`,
		"node2:eth0":  `bad injection point "node2:eth0": frames enter a node only on bond0`,
		"tor:node7":   `bad injection point "tor:node7": the router has no port toward "node7" (nodes: node1, node2)`,
		"spine:node1": `bad injection point "spine:node1": want POD, NODE:bond0 or tor:NODE`,
		"":            `bad injection point "": no such pod in topology pod-to-service (pods: pod1, pod4)`,
	} {
		_, err := ParsePoint(top, in)
		errtext.Check(t, err, msg)
		if !errors.Is(err, ErrBadPoint) {
			t.Errorf("ParsePoint(%q) error %v is not ErrBadPoint", in, err)
		}
	}
}

// frameOf builds an IPv4 frame (TCP, UDP or ICMP echo) with valid checksums.
func frameOf(t *testing.T, src, dst string, proto string, sport, dport uint16, ttl uint8) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: ttl, Id: 0x4242, SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}
	var l4 gopacket.SerializableLayer
	switch proto {
	case "tcp":
		ip.Protocol = layers.IPProtocolTCP
		tcp := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), SYN: true, Window: 1024}
		tcp.SetNetworkLayerForChecksum(ip)
		l4 = tcp
	case "udp":
		ip.Protocol = layers.IPProtocolUDP
		udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
		udp.SetNetworkLayerForChecksum(ip)
		l4 = udp
	default:
		ip.Protocol = layers.IPProtocolICMPv4
		l4 = &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0), Id: 1, Seq: 1}
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, l4, gopacket.Payload("x")); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDefaultPoint(t *testing.T) {
	top := builtin(t, "pod-to-service")
	for _, c := range []struct {
		frame []byte
		want  string
	}{
		{frameOf(t, "10.1.1.10", "10.224.1.1", "tcp", 40000, 80, 64), "pod1"},
		{frameOf(t, "10.1.2.40", "10.1.1.10", "udp", 53, 40000, 64), "pod4"},
		{frameOf(t, "192.0.2.7", "10.1.2.40", "tcp", 40000, 8080, 64), "tor:node2"},
		{frameOf(t, "192.0.2.7", "10.1.1.99", "icmp", 0, 0, 64), "tor:node1"},
		{frameOf(t, "192.0.2.7", "10.255.2.12", "tcp", 40000, 30080, 64), "tor:node2"},
	} {
		p, err := DefaultPoint(top, c.frame)
		if err != nil || p.String() != c.want {
			t.Errorf("DefaultPoint(%s) = %v, %v; want %s", keyOf(c.frame), p, err, c.want)
		}
	}
	if _, err := DefaultPoint(top, frameOf(t, "192.0.2.7", "198.51.100.1", "tcp", 1, 2, 64)); !errors.Is(err, ErrBadPoint) || !strings.Contains(err.Error(), "name the point") {
		t.Errorf("no owner: %v", err)
	}
	arp := make([]byte, 42)
	arp[12], arp[13] = 0x08, 0x06
	if _, err := DefaultPoint(top, arp); !errors.Is(err, ErrBadPoint) || !strings.Contains(err.Error(), "not an IPv4 frame") {
		t.Errorf("ARP: %v", err)
	}
	// A VXLAN frame enters where it travels: the ToR port facing the node
	// of its outer destination, whatever the inner source.
	inner := frameOf(t, "10.1.1.10", "10.1.2.40", "tcp", 40000, 8080, 64)
	to := func(dst string) []byte {
		return encapsulate(t, inner, journey.Outer{EthSrc: "02:00:00:00:00:01", EthDst: "02:00:00:00:00:02", IPSrc: "10.255.1.11", IPDst: dst, TTL: 64, Dport: 8472, VNI: 38586})
	}
	if p, err := DefaultPoint(top, to("10.255.2.12")); err != nil || p.String() != "tor:node2" {
		t.Errorf("VXLAN to node2: %v, %v", p, err)
	}
	if _, err := DefaultPoint(top, to("192.0.2.9")); !errors.Is(err, ErrBadPoint) || !strings.Contains(err.Error(), "VXLAN to 192.0.2.9, which is no node's address") {
		t.Errorf("VXLAN to no node: %v", err)
	}
}

func keyOf(frame []byte) string {
	k, _ := journey.KeyFromFrame(frame)
	return k.String()
}

func TestRewriteL2(t *testing.T) {
	top := builtin(t, "pod-to-service")
	pkts, err := fixtures.Packets("tcp-syn-vip")
	if err != nil {
		t.Fatal(err)
	}
	orig := pkts[0].Data
	point := func(s string) InjectPoint {
		p, err := ParsePoint(top, s)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct {
		point    string
		src, dst string
	}{
		// The fixture carries pod1's real MACs, so rewriting changes nothing.
		{"pod1", "0a:95:7a:12:68:13", "0e:6b:0c:06:a5:cb"},
		{"pod4", "0a:86:f4:ea:d5:80", "0e:b6:f2:73:c5:89"},
		{"node2:bond0", "52:55:1a:36:09:01", "52:54:1a:36:09:01"},
		{"tor:node1", "52:54:71:f1:2b:01", "52:55:71:f1:2b:01"},
	} {
		got, err := RewriteL2(top, point(c.point), orig)
		if err != nil {
			t.Fatal(err)
		}
		if s, d := net.HardwareAddr(got[6:12]).String(), net.HardwareAddr(got[0:6]).String(); s != c.src || d != c.dst {
			t.Errorf("%s: %s > %s; want %s > %s", c.point, s, d, c.src, c.dst)
		}
		if !bytes.Equal(got[12:], orig[12:]) {
			t.Errorf("%s: bytes above L2 changed", c.point)
		}
	}
	if !bytes.Equal(orig, pkts[0].Data) {
		t.Error("RewriteL2 changed its input")
	}
	if _, err := RewriteL2(top, point("pod1"), orig[:10]); err == nil {
		t.Error("10-byte frame accepted")
	}
}

// TestExternalPoints: an external host is an injection point by name and,
// for frames from its address, by default; its frames are rewritten to
// its MAC → the router's end of its veth; a point that misplaces it fails.
func TestExternalPoints(t *testing.T) {
	top := builtin(t, "nodeport")
	e := top.External("laptop")
	want := InjectPoint{Kind: AtExternal, Pod: "laptop", Node: "tor", Router: "tor"}
	got, err := ParsePoint(top, "laptop")
	if err != nil || got != want || got.String() != "laptop" {
		t.Fatalf("ParsePoint(laptop) = %+v, %v", got, err)
	}
	frame := frameOf(t, "192.0.2.50", "10.255.1.11", "tcp", 40000, 30080, 64)
	if got, err := DefaultPoint(top, frame); err != nil || got != want {
		t.Fatalf("DefaultPoint = %+v, %v", got, err)
	}
	out, err := RewriteL2(top, want, frame)
	if err != nil || !bytes.Equal(out[0:6], e.RouterMAC[:]) || !bytes.Equal(out[6:12], e.MAC[:]) || !bytes.Equal(out[12:], frame[12:]) {
		t.Fatalf("RewriteL2: % x, %v", out[:12], err)
	}
	if err := checkPoint(top, want); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []InjectPoint{{Kind: AtExternal, Pod: "laptop", Node: "node1", Router: "tor"}, {Kind: AtExternal, Pod: "phone", Node: "tor", Router: "tor"}} {
		if err := checkPoint(top, bad); !errors.Is(err, ErrBadPoint) {
			t.Errorf("checkPoint(%+v) = %v", bad, err)
		}
	}
	_, err = ParsePoint(top, "phone")
	errtext.Check(t, err, `bad injection point "phone": no such pod or external host in topology nodeport (pods: pod1, pod2, pod4; externals: laptop)`)
}
