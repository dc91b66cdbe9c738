package bgp

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// fabric is the reference topology's control plane on loopback: a ToR
// (AS 65000, 127.0.0.1) and two nodes (AS 65001 at 127.0.0.11 with
// 10.1.1.0/24, AS 65002 at 127.0.0.12 with 10.1.2.0/24).
type fabric struct {
	tor, node1, node2     *Speaker
	torInst, inst1, inst2 *MemoryInstaller
	torAddr, up1, up2     netip.Addr
	torPort               int
	pod1, pod2            netip.Prefix
}

func (f *fabric) newNode(t *testing.T, name string, asn uint32, uplink netip.Addr, pod netip.Prefix, inst *MemoryInstaller) *Speaker {
	t.Helper()
	n, err := NewNode(NodeConfig{
		ASN: asn, Uplink: uplink, PodCIDRs: []netip.Prefix{pod}, Installer: inst,
		Logger: testLogger(t, name),
		Router: Peer{Address: f.torAddr, ASN: 65000, Port: f.torPort,
			ConnectRetry: testRetry, HoldTime: testHold, Keepalive: testKeepalive},
	})
	if err != nil {
		t.Fatal(err)
	}
	start(t, n)
	return n
}

func newFabric(t *testing.T) *fabric {
	t.Helper()
	f := &fabric{
		torInst: &MemoryInstaller{}, inst1: &MemoryInstaller{}, inst2: &MemoryInstaller{},
		torAddr: mustAddr("127.0.0.1"), up1: mustAddr("127.0.0.11"), up2: mustAddr("127.0.0.12"),
		pod1: mustPrefix("10.1.1.0/24"), pod2: mustPrefix("10.1.2.0/24"),
	}
	f.torPort = freePort(t, f.torAddr)
	timers := Peer{ConnectRetry: testRetry, HoldTime: testHold, Keepalive: testKeepalive}
	n1, n2 := timers, timers
	n1.Address, n1.ASN = f.up1, 65001
	n2.Address, n2.ASN = f.up2, 65002
	tor, err := NewRouter(RouterConfig{
		ASN: 65000, RouterID: f.torAddr, ListenPort: f.torPort, ListenAddrs: []netip.Addr{f.torAddr},
		Nodes: []Peer{n1, n2}, Installer: f.torInst, Logger: testLogger(t, "tor"),
	})
	if err != nil {
		t.Fatal(err)
	}
	start(t, tor)
	f.tor = tor
	f.node1 = f.newNode(t, "node1", 65001, f.up1, f.pod1, f.inst1)
	f.node2 = f.newNode(t, "node2", 65002, f.up2, f.pod2, f.inst2)
	return f
}

func TestRouterReadvertisesBetweenNodes(t *testing.T) {
	t0 := time.Now()
	f := newFabric(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	waitEstablished(t, f.tor, f.up1)
	waitEstablished(t, f.tor, f.up2)
	waitEstablished(t, f.node1, f.torAddr)
	waitEstablished(t, f.node2, f.torAddr)
	established := time.Since(t0)

	// The ToR forwards to each PodCIDR via the node's uplink; each node
	// reaches the other's PodCIDR via the ToR.
	waitRoute(t, f.torInst, f.pod1, f.up1, 10*time.Second)
	waitRoute(t, f.torInst, f.pod2, f.up2, 10*time.Second)
	waitRoute(t, f.inst2, f.pod1, f.torAddr, 10*time.Second)
	waitRoute(t, f.inst1, f.pod2, f.torAddr, 10*time.Second)
	t.Logf("convergence on loopback (ToR + 2 nodes): all Established after %v, all routes installed after %v", established, time.Since(t0))

	for name, m := range map[string]*MemoryInstaller{"node1": f.inst1, "node2": f.inst2} {
		if len(m.Routes()) != 1 {
			t.Errorf("%s installed %v, want only the other node's PodCIDR", name, m.Routes())
		}
	}
	routes, err := f.node2.Routes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("node2 routes:\n%v", routes)
	r, ok := findRoute(routes, f.pod1)
	if !ok || !slices.Equal(r.ASPath, []uint32{65000, 65001}) || r.NextHop != f.torAddr || r.Peer != f.torAddr || !r.Installed {
		t.Errorf("node2's route to %v = %+v, want via the ToR with AS path [65000 65001], installed", f.pod1, r)
	}
	torRoutes, err := f.tor.Routes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("tor routes:\n%v", torRoutes)
	peers, err := f.tor.Peers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("tor peers:\n%v", peers)
	for _, p := range peers {
		if p.State != StateEstablished || p.Received != 1 || p.Advertised != 1 {
			t.Errorf("tor peer %v, want Established, 1 received, 1 advertised", p)
		}
	}

	// Stopping node2's speaker withdraws 10.1.2.0/24 from the ToR and from
	// node1; a new node2 speaker restores it.
	stopped := time.Now()
	f.node2.Stop()
	waitRoute(t, f.torInst, f.pod2, netip.Addr{}, 5*time.Second)
	waitRoute(t, f.inst1, f.pod2, netip.Addr{}, 5*time.Second)
	t.Logf("node2 stopped: %v gone from the ToR and node1 after %v", f.pod2, time.Since(stopped))
	if _, ok := f.inst2.Routes()[f.pod1]; ok {
		t.Errorf("stopped node2 left %v installed", f.pod1)
	}

	restarted := time.Now()
	f.node2 = f.newNode(t, "node2", 65002, f.up2, f.pod2, f.inst2)
	waitRoute(t, f.torInst, f.pod2, f.up2, 15*time.Second)
	waitRoute(t, f.inst1, f.pod2, f.torAddr, 5*time.Second)
	waitRoute(t, f.inst2, f.pod1, f.torAddr, 5*time.Second)
	t.Logf("node2 restarted: routes back after %v", time.Since(restarted))
}
