package datapath

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/hoplab/hoplab/internal/netnstest"
	"github.com/hoplab/hoplab/vmtest/agent/pods"
)

// inNS runs fn in ns on the test's locked thread and comes back.
func inNS(t *testing.T, ns netns.NsHandle, fn func()) {
	t.Helper()
	cur, err := netns.Get()
	must(t, err)
	defer cur.Close()
	must(t, netns.Set(ns))
	defer func() { must(t, netns.Set(cur)) }()
	fn()
}

func hostNet(a netip.Addr, bits int) *net.IPNet {
	return &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(bits, 32)}
}

// twoNodePod sets up a node namespace's router address, one pod and the
// pod's endpoint, and attaches from-container to its lxc device.
func twoNodePod(t *testing.T, dp *Datapath, name, lxc string, ep testEndpoint, gw netip.Addr) *pods.Pod {
	t.Helper()
	lo, err := netlink.LinkByName("lo")
	must(t, err)
	must(t, netlink.AddrAdd(lo, &netlink.Addr{IPNet: hostNet(gw, 32)}))
	p, err := pods.Create(pods.Spec{Name: name, IP: ep.addr(), MAC: ep.podMAC(), HostIfName: lxc, HostMAC: ep.lxcMAC(), Gateway: gw})
	must(t, err)
	t.Cleanup(func() { _ = p.Delete() })
	e := ep.endpoint(false, false)
	e.IfIndex = p.HostIndex
	e.EnforceIngress = true
	must(t, dp.Endpoints.Upsert(e))
	must(t, dp.IPCache.Upsert(netip.PrefixFrom(ep.addr(), 32), IPCacheEntry{Identity: ep.identity}))
	must(t, dp.RegisterEndpoint(ep.id))
	must(t, dp.AttachLXC(lxc))
	return p
}

// The reference journey without the ToR and the bond, on real kernel
// networking: node1 and node2 are namespaces joined by a veth standing in
// for the uplink, each with its own datapath. pod1 (node1) connects to
// Service 10.224.1.1:80 backed by pod4:8080 (node2); node1's from-container
// DNATs and hands the packet to the kernel, which routes it to node2; node2's
// from-netdev finds pod4, routes it (TTL-1) and tail-calls pod4's
// to-container, whose ingress policy admits pod1's identity. The reply is
// reverse-NATed in pod1's to-container. TTL 64 arrives as 62: node1's
// kernel and node2's datapath each decrement once.
func TestTwoNodesPodToService(t *testing.T) {
	dp1 := loadDatapath(t)
	dp2, err := Load(Options{CTEntries: 32768})
	must(t, err)
	t.Cleanup(func() { dp2.Close() })
	events2 := openEvents(t, dp2)

	node1 := netnstest.EnterNew(t)
	node2 := netnstest.EnterNew(t)
	pod4 := testEndpoint{ip: "10.1.2.40", id: 4, identity: pod4ID, mac: "0a:00:00:01:02:40", lxc: "0a:00:00:f1:02:40"}
	var server *pods.Pod
	inNS(t, node2, func() {
		server = twoNodePod(t, dp2, podNS("hl-dp2-pod4"), "lxcdp4", pod4, addr("10.1.2.1"))
		must(t, dp2.Policy.Allow(L3L4Key(pod4.id, Ingress, pod1.identity, 8080, ProtoTCP)))
		must(t, dp2.IPCache.Upsert(pfx("10.1.1.0/24"), IPCacheEntry{Identity: pod1.identity}))
	})
	var client *pods.Pod
	inNS(t, node1, func() {
		client = twoNodePod(t, dp1, podNS("hl-dp1-pod1"), "lxcdp1", pod1, addr("10.1.1.1"))
		must(t, dp1.Services.Upsert(webService(Backend{ID: 1, Addr: pod4.addr(), Port: 8080})))
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "uplink1"}, PeerName: "uplink2", PeerNamespace: netlink.NsFd(int(node2))}
		must(t, netlink.LinkAdd(veth))
		up, err := netlink.LinkByName("uplink1")
		must(t, err)
		must(t, netlink.AddrAdd(up, &netlink.Addr{IPNet: hostNet(addr("10.255.0.1"), 24)}))
		must(t, netlink.LinkSetUp(up))
		must(t, netlink.RouteAdd(&netlink.Route{Dst: hostNet(addr("10.1.2.0"), 24), Gw: addr("10.255.0.2").AsSlice()}))
		must(t, dp1.AttachNetdev("uplink1"))
	})
	inNS(t, node2, func() {
		up, err := netlink.LinkByName("uplink2")
		must(t, err)
		must(t, netlink.AddrAdd(up, &netlink.Addr{IPNet: hostNet(addr("10.255.0.2"), 24)}))
		must(t, netlink.LinkSetUp(up))
		must(t, netlink.RouteAdd(&netlink.Route{Dst: hostNet(addr("10.1.1.0"), 24), Gw: addr("10.255.0.1").AsSlice()}))
		must(t, dp2.AttachNetdev("uplink2"))
	})
	// Wait for both uplink ends to be operationally up.
	deadline := time.Now().Add(3 * time.Second)
	for _, n := range []struct {
		ns   netns.NsHandle
		name string
	}{{node1, "uplink1"}, {node2, "uplink2"}} {
		inNS(t, n.ns, func() {
			for {
				l, err := netlink.LinkByName(n.name)
				must(t, err)
				if l.Attrs().OperState == netlink.OperUp || time.Now().After(deadline) {
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}

	local := echoThroughService(t, client, server, "across two nodes")

	t.Log("node2's to-container saw the SYN with TTL 62 from pod1's identity")
	var syn *TraceNotify
	for _, tr := range traces(drain(t, events2)) {
		if tr.ObsPoint == TraceToLXC && syn == nil {
			syn = tr
		}
	}
	if syn == nil {
		t.Fatal("no to-container trace on node2")
	}
	p := gopacket.NewPacket(syn.Data, layers.LayerTypeEthernet, gopacket.Default)
	ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if ip == nil || ip.TTL != 62 || syn.SrcIdentity != pod1.identity || !ip.DstIP.Equal(pod4.addr().AsSlice()) {
		t.Errorf("to-container on node2: %v", syn)
	}
	if e := ctEntry(t, dp1, CTKey{Src: ap(pod1.addr(), uint16(local.Port)), Dst: ap(pod4.addr(), 8080), Proto: ProtoTCP, Flags: TupleOut}); e.RxPackets == 0 {
		t.Errorf("node1 egress entry saw no replies: %v", e)
	}
	ctEntry(t, dp2, CTKey{Src: ap(pod1.addr(), uint16(local.Port)), Dst: ap(pod4.addr(), 8080), Proto: ProtoTCP, Flags: TupleIn})
}

// echoThroughService runs a TCP echo server in server's namespace on
// 10.1.2.40:8080, connects from client to Service 10.224.1.1:80, sends msg
// and requires it back from the Service's address (echoVia); it returns
// the client's address. The listener and the connection stay open until
// the test ends.
func echoThroughService(t *testing.T, client, server *pods.Pod, msg string) *net.TCPAddr {
	t.Helper()
	return net.TCPAddrFromAddrPort(echoVia(t, client, server, netip.MustParseAddrPort("10.1.2.40:8080"), netip.MustParseAddrPort("10.224.1.1:80"), msg))
}
