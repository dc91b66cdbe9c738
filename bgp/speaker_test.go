package bgp

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// pair starts two eBGP speakers on loopback, a (AS 65001, 127.0.0.1) and
// b (AS 65002, 127.0.0.2), each with a MemoryInstaller.
func pair(t *testing.T) (a, b *Speaker, ia, ib *MemoryInstaller) {
	t.Helper()
	addrA, addrB := mustAddr("127.0.0.1"), mustAddr("127.0.0.2")
	portA, portB := freePort(t, addrA), freePort(t, addrB)
	ia, ib = &MemoryInstaller{}, &MemoryInstaller{}
	var err error
	a, err = New(Config{
		ASN: 65001, RouterID: addrA, ListenPort: portA, ListenAddrs: []netip.Addr{addrA},
		Logger: testLogger(t, "a"), RouteInstaller: ia,
		Peers: []Peer{{Address: addrB, ASN: 65002, Port: portB, LocalAddress: addrA,
			ConnectRetry: testRetry, HoldTime: testHold, Keepalive: testKeepalive}},
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err = New(Config{
		ASN: 65002, RouterID: addrB, ListenPort: portB, ListenAddrs: []netip.Addr{addrB},
		Logger: testLogger(t, "b"), RouteInstaller: ib,
		Peers: []Peer{{Address: addrA, ASN: 65001, Port: portA, LocalAddress: addrB,
			ConnectRetry: testRetry, HoldTime: testHold, Keepalive: testKeepalive}},
	})
	if err != nil {
		t.Fatal(err)
	}
	start(t, a)
	start(t, b)
	return a, b, ia, ib
}

func TestTwoSpeakersAnnounceWithdraw(t *testing.T) {
	t0 := time.Now()
	a, b, ia, ib := pair(t)
	addrA, addrB := mustAddr("127.0.0.1"), mustAddr("127.0.0.2")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	pod := mustPrefix("10.1.1.0/24")
	if err := a.Announce(ctx, pod, netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	waitEstablished(t, a, addrB)
	waitEstablished(t, b, addrA)
	established := time.Since(t0)
	waitRoute(t, ib, pod, addrA, 10*time.Second)
	t.Logf("convergence on loopback: Established after %v, %v installed after %v", established, pod, time.Since(t0))

	if _, ok := ia.Routes()[pod]; ok {
		t.Errorf("a installed its own prefix %v", pod)
	}
	routes, err := b.Routes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("b routes:\n%v", routes)
	r, ok := findRoute(routes, pod)
	if !ok {
		t.Fatalf("%v not in b's RIB", pod)
	}
	if r.NextHop != addrA || r.Peer != addrA || r.Local || !r.Installed || !slices.Equal(r.ASPath, []uint32{65001}) {
		t.Errorf("b's route = %+v, want via and from %v, AS path [65001], installed", r, addrA)
	}
	aRoutes, err := a.Routes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := findRoute(aRoutes, pod); !ok || !r.Local || r.Installed {
		t.Errorf("a's own route = %+v (found %v), want local and not installed", r, ok)
	}

	peers, err := b.Peers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("b peers:\n%v", peers)
	p, ok := findPeer(peers, addrA)
	if !ok || p.State != StateEstablished || p.ASN != 65001 || p.Received != 1 || p.Accepted != 1 || p.RouterID != addrA {
		t.Errorf("b's peer = %+v, want Established AS65001 with 1 received and accepted", p)
	}
	peersA, err := a.Peers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := findPeer(peersA, addrB); !ok || p.Advertised != 1 {
		t.Errorf("a's peer = %+v, want 1 advertised", p)
	}

	// Withdraw: the route leaves b's RIB and installer.
	if err := a.Withdraw(ctx, pod); err != nil {
		t.Fatal(err)
	}
	waitRoute(t, ib, pod, netip.Addr{}, 5*time.Second)
	if err := a.Withdraw(ctx, pod); !errors.Is(err, ErrNotAnnounced) {
		t.Errorf("second withdraw: %v, want ErrNotAnnounced", err)
	}

	// Announce again, then stop the announcer: the peer goes down and b
	// removes the route.
	if err := a.Announce(ctx, pod, netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	waitRoute(t, ib, pod, addrA, 5*time.Second)
	stopped := time.Now()
	a.Stop()
	waitRoute(t, ib, pod, netip.Addr{}, 5*time.Second)
	t.Logf("route removed %v after the announcer stopped", time.Since(stopped))
	if err := a.Announce(ctx, pod, netip.Addr{}); !errors.Is(err, ErrStopped) {
		t.Errorf("announce after stop: %v, want ErrStopped", err)
	}
}

func TestLearnedRouteOverriddenByOwnAnnouncement(t *testing.T) {
	a, b, _, ib := pair(t)
	addrA := mustAddr("127.0.0.1")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pod := mustPrefix("10.1.9.0/24")
	if err := a.Announce(ctx, pod, netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	waitRoute(t, ib, pod, addrA, 15*time.Second)
	// b now originates the same prefix: its own path wins and the learned
	// route leaves b's installer.
	if err := b.Announce(ctx, pod, netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	waitRoute(t, ib, pod, netip.Addr{}, 5*time.Second)
	// b stops originating it: the learned path is best again and installed.
	if err := b.Withdraw(ctx, pod); err != nil {
		t.Fatal(err)
	}
	waitRoute(t, ib, pod, addrA, 5*time.Second)
}

func TestRemovePeerRemovesRoutes(t *testing.T) {
	a, b, _, ib := pair(t)
	addrA := mustAddr("127.0.0.1")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pod := mustPrefix("10.1.1.0/24")
	if err := a.Announce(ctx, pod, netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	waitRoute(t, ib, pod, addrA, 15*time.Second)
	if err := b.RemovePeer(ctx, addrA); err != nil {
		t.Fatal(err)
	}
	waitRoute(t, ib, pod, netip.Addr{}, 5*time.Second)
	if err := b.WaitEstablished(ctx, addrA); !errors.Is(err, ErrUnknownPeer) {
		t.Errorf("wait for removed peer: %v, want ErrUnknownPeer", err)
	}
}

func TestWaitEstablishedErrors(t *testing.T) {
	s, err := New(Config{ASN: 65001, RouterID: mustAddr("127.0.0.1"), ListenPort: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.WaitEstablished(ctx, mustAddr("127.0.0.9")); !errors.Is(err, ErrNotStarted) {
		t.Errorf("before start: %v, want ErrNotStarted", err)
	}
	start(t, s)
	if err := s.WaitEstablished(ctx, mustAddr("127.0.0.9")); !errors.Is(err, ErrUnknownPeer) {
		t.Errorf("unknown peer: %v, want ErrUnknownPeer", err)
	}
	// A peer nobody answers for: the wait ends with the context.
	if err := s.AddPeer(ctx, Peer{Address: mustAddr("127.0.0.9"), ASN: 65009, Port: freePort(t, mustAddr("127.0.0.9"))}); err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancelShort()
	if err := s.WaitEstablished(short, mustAddr("127.0.0.9")); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("silent peer: %v, want DeadlineExceeded", err)
	}
	// Stop wakes a waiter.
	done := make(chan error, 1)
	go func() { done <- s.WaitEstablished(ctx, mustAddr("127.0.0.9")) }()
	time.Sleep(50 * time.Millisecond)
	s.Stop()
	if err := <-done; !errors.Is(err, ErrStopped) {
		t.Errorf("after stop: %v, want ErrStopped", err)
	}
}

func TestConfigValidation(t *testing.T) {
	id := mustAddr("10.0.0.1")
	for name, cfg := range map[string]Config{
		"no asn":         {RouterID: id},
		"v6 router id":   {ASN: 1, RouterID: mustAddr("::1")},
		"bad port":       {ASN: 1, RouterID: id, ListenPort: -2},
		"peer no asn":    {ASN: 1, RouterID: id, Peers: []Peer{{Address: id}}},
		"peer family":    {ASN: 1, RouterID: id, Peers: []Peer{{Address: id, ASN: 2, LocalAddress: mustAddr("::1")}}},
		"nexthop family": {ASN: 1, RouterID: id, Announcements: []Announcement{{Prefix: mustPrefix("10.1.0.0/16"), NextHop: mustAddr("::1")}}},
	} {
		if _, err := New(cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: New = %v, want ErrInvalidConfig", name, err)
		}
	}
	if _, err := NewRouter(RouterConfig{ASN: 65000, RouterID: id, Nodes: []Peer{
		{Address: mustAddr("10.0.0.11"), ASN: 65001}, {Address: mustAddr("10.0.0.12"), ASN: 65001},
	}}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("nodes sharing an AS: %v, want ErrInvalidConfig", err)
	}
	if _, err := NewRouter(RouterConfig{ASN: 65000, RouterID: id, Nodes: []Peer{{Address: mustAddr("10.0.0.11"), ASN: 65000}}}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("node in the router's AS: %v, want ErrInvalidConfig", err)
	}
}

func TestStartFailsOnBusyPort(t *testing.T) {
	addr := mustAddr("127.0.0.41")
	port := freePort(t, addr)
	first, err := New(Config{ASN: 65001, RouterID: addr, ListenPort: port, ListenAddrs: []netip.Addr{addr}})
	if err != nil {
		t.Fatal(err)
	}
	start(t, first)
	second, err := New(Config{ASN: 65002, RouterID: addr, ListenPort: port, ListenAddrs: []netip.Addr{addr}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := second.Start(ctx); err == nil {
		t.Fatal("second speaker on a busy port started")
	}
	second.Stop() // safe after a failed start
	if _, err := second.Routes(ctx); !errors.Is(err, ErrStopped) {
		t.Errorf("routes after failed start: %v, want ErrStopped", err)
	}
}

func TestAnnounceIPv6(t *testing.T) {
	s, err := New(Config{ASN: 65001, RouterID: mustAddr("127.0.0.42"), ListenPort: -1})
	if err != nil {
		t.Fatal(err)
	}
	start(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pod := mustPrefix("fd00:10:1:1::/64")
	if err := s.Announce(ctx, mustPrefix("fd00:10:1:1::1/64"), mustAddr("fd00:255::11")); err != nil {
		t.Fatal(err)
	}
	routes, err := s.Routes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r, ok := findRoute(routes, pod)
	if !ok || !r.Local || r.NextHop != mustAddr("fd00:255::11") {
		t.Fatalf("routes %v, want local %v via fd00:255::11", routes, pod)
	}
	if err := s.Withdraw(ctx, pod); err != nil {
		t.Fatal(err)
	}
	routes, err = s.Routes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(routes) != 0 {
		t.Errorf("routes after withdraw: %v", routes)
	}
}
