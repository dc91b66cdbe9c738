package bgp

import (
	"context"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/hoplab/hoplab/internal/testreq"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// nodeNS creates a network namespace standing in for a node, with a dummy
// uplink0 (a veth whose peer stays in the namespace) at 10.255.1.1/24, and returns a netlink handle into it. The
// namespace disappears when the test ends (its only references are the
// handles closed in cleanup), whether the test passed or not.
func nodeNS(t *testing.T) *netlink.Handle {
	t.Helper()
	testreq.Root(t)
	ns := func() netns.NsHandle {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		orig, err := netns.Get()
		if err != nil {
			t.Fatalf("current netns: %v", err)
		}
		defer orig.Close()
		ns, err := netns.New()
		if err != nil {
			t.Fatalf("new netns: %v", err)
		}
		if err := netns.Set(orig); err != nil {
			ns.Close()
			// The thread is stuck in the new namespace: keep it locked so
			// the runtime discards it.
			runtime.LockOSThread()
			t.Fatalf("restore netns: %v", err)
		}
		return ns
	}()
	t.Cleanup(func() { ns.Close() })
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatalf("netlink handle in netns: %v", err)
	}
	t.Cleanup(h.Close)
	for _, name := range []string{"lo"} {
		l, err := h.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "uplink0"}, PeerName: "uplink0p"}); err != nil {
		t.Fatalf("add veth uplink0: %v", err)
	}
	peer, err := h.LinkByName("uplink0p")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(peer); err != nil {
		t.Fatal(err)
	}
	l, err := h.LinkByName("uplink0")
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := netlink.ParseAddr("10.255.1.1/24")
	if err := h.AddrAdd(l, addr); err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(l); err != nil {
		t.Fatal(err)
	}
	return h
}

// kernelRoute returns the route for prefix in table, if any.
func kernelRoute(t *testing.T, h *netlink.Handle, table int, prefix netip.Prefix) (netlink.Route, bool) {
	t.Helper()
	routes, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: table, Dst: ipNet(prefix)},
		netlink.RT_FILTER_TABLE|netlink.RT_FILTER_DST)
	if err != nil {
		t.Fatal(err)
	}
	if len(routes) == 0 {
		return netlink.Route{}, false
	}
	return routes[0], true
}

func checkKernelRoute(t *testing.T, h *netlink.Handle, table int, prefix netip.Prefix, nexthop netip.Addr) {
	t.Helper()
	r, ok := kernelRoute(t, h, table, prefix)
	if !ok {
		t.Fatalf("no kernel route for %v in table %d", prefix, table)
	}
	if !r.Gw.Equal(net.IP(nexthop.AsSlice())) || r.Protocol != ProtocolBGP {
		t.Errorf("kernel route %v: via %v proto %d, want via %v proto %d", prefix, r.Gw, r.Protocol, nexthop, ProtocolBGP)
	}
}

func TestNetlinkInstaller(t *testing.T) {
	h := nodeNS(t)
	pod2 := mustPrefix("10.1.2.0/24")
	node2 := mustAddr("10.255.1.12")

	main := &NetlinkInstaller{Handle: h}
	if err := main.Install(pod2, node2); err != nil {
		t.Fatal(err)
	}
	checkKernelRoute(t, h, 254, pod2, node2)
	// Replacing with another next hop.
	if err := main.Install(pod2, mustAddr("10.255.1.13")); err != nil {
		t.Fatal(err)
	}
	checkKernelRoute(t, h, 254, pod2, mustAddr("10.255.1.13"))
	if err := main.Remove(pod2); err != nil {
		t.Fatal(err)
	}
	if r, ok := kernelRoute(t, h, 254, pod2); ok {
		t.Errorf("route left after Remove: %v", r)
	}
	if err := main.Remove(pod2); err != nil {
		t.Errorf("removing a missing route: %v", err)
	}

	// Another table, and an on-link next hop outside every connected subnet.
	onlink := &NetlinkInstaller{Handle: h, Table: 100, Device: "uplink0", OnLink: true}
	far := mustAddr("192.0.2.1")
	if err := main.Install(pod2, far); err == nil {
		t.Errorf("installing via unreachable %v without onlink succeeded", far)
	}
	if err := onlink.Install(pod2, far); err != nil {
		t.Fatal(err)
	}
	checkKernelRoute(t, h, 100, pod2, far)
	if _, ok := kernelRoute(t, h, 254, pod2); ok {
		t.Errorf("table 100 route leaked into main")
	}

	// A route of another protocol is neither removed nor flushed.
	static := mustPrefix("10.1.3.0/24")
	if err := h.RouteAdd(&netlink.Route{Dst: ipNet(static), Gw: net.ParseIP("10.255.1.14"), Table: 100, Protocol: 4}); err != nil {
		t.Fatal(err)
	}
	if err := onlink.Remove(static); err != nil {
		t.Fatal(err)
	}
	if err := onlink.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, ok := kernelRoute(t, h, 100, pod2); ok {
		t.Errorf("Flush left %v", pod2)
	}
	if _, ok := kernelRoute(t, h, 100, static); !ok {
		t.Errorf("static route %v removed by the BGP installer", static)
	}
}

// TestKernelRoutesFollowBGP runs two iBGP speakers on loopback; the receiver
// installs into a node namespace through netlink. iBGP keeps the announced
// next hop, so the kernel route points at the announcer's uplink address.
func TestKernelRoutesFollowBGP(t *testing.T) {
	h := nodeNS(t)
	t0 := time.Now()
	addrA, addrB := mustAddr("127.0.0.21"), mustAddr("127.0.0.22")
	portA, portB := freePort(t, addrA), freePort(t, addrB)
	timers := Peer{ASN: 65001, ConnectRetry: testRetry, HoldTime: testHold, Keepalive: testKeepalive}
	pa, pb := timers, timers
	pa.Address, pa.Port, pa.LocalAddress = addrB, portB, addrA
	pb.Address, pb.Port, pb.LocalAddress = addrA, portA, addrB
	pod1, up1 := mustPrefix("10.1.1.0/24"), mustAddr("10.255.1.11")
	a, err := New(Config{ASN: 65001, RouterID: addrA, ListenPort: portA, ListenAddrs: []netip.Addr{addrA},
		Logger: testLogger(t, "a"), Peers: []Peer{pa}, Announcements: []Announcement{{Prefix: pod1, NextHop: up1}}})
	if err != nil {
		t.Fatal(err)
	}
	seen := &MemoryInstaller{}
	b, err := New(Config{ASN: 65001, RouterID: addrB, ListenPort: portB, ListenAddrs: []netip.Addr{addrB},
		Logger: testLogger(t, "b"), Peers: []Peer{pb}, RouteInstaller: teeInstaller{&NetlinkInstaller{Handle: h}, seen}})
	if err != nil {
		t.Fatal(err)
	}
	start(t, a)
	start(t, b)
	waitEstablished(t, b, addrA)

	waitRoute(t, seen, pod1, up1, 10*time.Second)
	t.Logf("convergence into the kernel: %v", time.Since(t0))
	checkKernelRoute(t, h, 254, pod1, up1)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Withdraw(ctx, pod1); err != nil {
		t.Fatal(err)
	}
	waitRoute(t, seen, pod1, netip.Addr{}, 5*time.Second)
	if r, ok := kernelRoute(t, h, 254, pod1); ok {
		t.Errorf("kernel route left after withdraw: %v", r)
	}

	if err := a.Announce(ctx, pod1, up1); err != nil {
		t.Fatal(err)
	}
	waitRoute(t, seen, pod1, up1, 5*time.Second)
	checkKernelRoute(t, h, 254, pod1, up1)
	b.Stop()
	if r, ok := kernelRoute(t, h, 254, pod1); ok {
		t.Errorf("kernel route left after the speaker stopped: %v", r)
	}
}

// teeInstaller installs with the kernel installer and, once that worked,
// records the route in seen, so tests wait on events instead of polling.
type teeInstaller struct {
	kernel RouteInstaller
	seen   *MemoryInstaller
}

func (ti teeInstaller) Install(p netip.Prefix, nh netip.Addr) error {
	if err := ti.kernel.Install(p, nh); err != nil {
		return err
	}
	return ti.seen.Install(p, nh)
}

func (ti teeInstaller) Remove(p netip.Prefix) error {
	if err := ti.kernel.Remove(p); err != nil {
		return err
	}
	return ti.seen.Remove(p)
}
