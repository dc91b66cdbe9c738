package datapath

import (
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/hoplab/hoplab/internal/netnstest"
	"github.com/hoplab/hoplab/vmtest/agent/pods"
)

// NodePort on real kernel networking, so that the kernel's part is tested
// too: forwarding the DNATed request and the reverse-SNATed reply out of
// the uplink they came in on, and never seeing the node's address as the
// source of a packet it receives. Three namespaces: the ToR routes between
// the client 192.0.2.50 (a pod-like namespace behind it), node1
// (10.255.1.11, uplink n1up) and node2 (10.255.2.12); each node has its
// datapath on its uplink. node1 serves NodePort 30080 (backend pod4:8080
// on node2) and 30081 (backend pod2:8080 on node1). The client connects to
// both and gets its echo from node1:30080 and node1:30081; node2 sees the
// request from node1's address. On the ToR's port facing the client, the
// replies carry node1:nodePort as source, right checksums, and the TTL
// that one decrement per router gives.
func TestNodePortOnTheWire(t *testing.T) {
	dp1 := loadDatapath(t)
	dp2, err := Load(Options{CTEntries: ctTestEntries})
	must(t, err)
	t.Cleanup(func() { dp2.Close() })
	events2 := openEvents(t, dp2)

	tor := netnstest.EnterNew(t)
	node1 := netnstest.EnterNew(t)
	node2 := netnstest.EnterNew(t)
	node2IP := addr("10.255.2.12")
	pod4 := testEndpoint{ip: "10.1.2.40", id: 4, identity: pod4ID, mac: "0a:00:00:01:02:40", lxc: "0a:00:00:f1:02:40"}

	var client, local, remote *pods.Pod
	var capture int
	inNS(t, tor, func() {
		lo, err := netlink.LinkByName("lo")
		must(t, err)
		must(t, netlink.AddrAdd(lo, &netlink.Addr{IPNet: hostNet(addr("192.0.2.1"), 32)}))
		client, err = pods.Create(pods.Spec{Name: podNS("hl-np-client"), IP: clientIP, MAC: mustMAC("0a:00:00:c0:00:50"),
			HostIfName: "torcli", HostMAC: mustMAC("0a:00:00:ff:00:50"), Gateway: addr("192.0.2.1")})
		must(t, err)
		t.Cleanup(func() { _ = client.Delete() })
		capture = openCapture(t, client.HostIndex)
		for _, n := range []struct {
			ns                netns.NsHandle
			tor, node         string
			torAddr, nodeAddr netip.Addr
			podCIDR           string
		}{{node1, "tor1", "n1up", addr("10.255.1.1"), node1IP, "10.1.1.0"}, {node2, "tor2", "n2up", addr("10.255.2.1"), node2IP, "10.1.2.0"}} {
			must(t, netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: n.tor}, PeerName: n.node, PeerNamespace: netlink.NsFd(int(n.ns))}))
			l, err := netlink.LinkByName(n.tor)
			must(t, err)
			must(t, netlink.AddrAdd(l, &netlink.Addr{IPNet: hostNet(n.torAddr, 24)}))
			must(t, netlink.LinkSetUp(l))
			must(t, netlink.RouteAdd(&netlink.Route{Dst: hostNet(addr(n.podCIDR), 24), Gw: n.nodeAddr.AsSlice()}))
		}
	})
	for _, n := range []struct {
		ns       netns.NsHandle
		dp       *Datapath
		dev      string
		nodeAddr netip.Addr
		gw       netip.Addr
	}{{node1, dp1, "n1up", node1IP, addr("10.255.1.1")}, {node2, dp2, "n2up", node2IP, addr("10.255.2.1")}} {
		inNS(t, n.ns, func() {
			l, err := netlink.LinkByName(n.dev)
			must(t, err)
			must(t, netlink.AddrAdd(l, &netlink.Addr{IPNet: hostNet(n.nodeAddr, 24)}))
			must(t, netlink.LinkSetUp(l))
			must(t, netlink.RouteAdd(&netlink.Route{Dst: hostNet(addr("0.0.0.0"), 0), Gw: n.gw.AsSlice()}))
			must(t, n.dp.AttachNetdev(n.dev))
		})
	}
	inNS(t, node2, func() {
		remote = twoNodePod(t, dp2, podNS("hl-np-pod4"), "lxcnp4", pod4, addr("10.1.2.1"))
		// node1 SNATs: node2 sees node1's address, unknown to its
		// ipcache, so WORLD.
		must(t, dp2.Policy.Allow(L3L4Key(pod4.id, Ingress, IdentityWorld, backendPort, ProtoTCP)))
	})
	inNS(t, node1, func() {
		local = twoNodePod(t, dp1, podNS("hl-np-pod2"), "lxcnp2", pod2, addr("10.1.1.1"))
		must(t, dp1.Policy.Allow(L3L4Key(pod2.id, Ingress, IdentityWorld, backendPort, ProtoTCP)))
		must(t, dp1.SetNodeAddress(node1IP))
		must(t, dp1.Services.Upsert(nodePortService(Backend{ID: 4, Addr: pod4.addr(), Port: backendPort})))
		must(t, dp1.Services.Upsert(Service{VIP: node1IP, Port: nodePort + 1, Proto: ProtoTCP, ID: nodePortID + 1, NodePort: true,
			Backends: []Backend{{ID: 2, Addr: pod2.addr(), Port: backendPort}}}))
	})
	waitOperUp(t, node1, "n1up")
	waitOperUp(t, node2, "n2up")
	// Everyone computes final checksums, so that the captured frames
	// show the datapath's.
	for _, p := range []*pods.Pod{client, local, remote} {
		must(t, p.Do(func() error { setTxChecksum(t, "eth0", false); return nil }))
	}

	t.Log("client → node1:30080, backend pod4 on node2")
	c1 := echoVia(t, client, remote, ap(pod4.addr(), backendPort), ap(node1IP, nodePort), "remote backend")
	t.Log("client → node1:30081, backend pod2 on node1")
	c2 := echoVia(t, client, local, ap(pod2.addr(), backendPort), ap(node1IP, nodePort+1), "local backend")

	t.Log("node1's NAT table: the remote backend's connection, translated to a port of node1")
	n, err := dp1.NAT.Entries()
	must(t, err)
	var natPort uint16
	for _, e := range n {
		t.Logf("nat: %v", e)
		if e.Key.Flags == TupleOut && e.Key.Src == c1 && e.Key.Dst == ap(pod4.addr(), backendPort) {
			natPort = e.Xlate.Port()
			if e.Xlate.Addr() != node1IP || natPort < 32768 {
				t.Errorf("egress entry %v", e)
			}
		}
		if e.Key.Src.Addr() == pod2.addr() || e.Key.Dst.Addr() == pod2.addr() {
			t.Errorf("the local backend's connection was SNATed: %v", e)
		}
	}
	if natPort == 0 {
		t.Fatalf("no egress NAT entry for %v", c1)
	}

	t.Log("node2: the SYN from node1:natPort reached pod4's to-container with TTL 60 (ToR, node1, ToR, node2)")
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
	tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if ip == nil || tcp == nil || ip.TTL != 60 || !ip.SrcIP.Equal(node1IP.AsSlice()) || uint16(tcp.SrcPort) != natPort {
		t.Errorf("to-container on node2: %v", p)
	}
	ctEntry(t, dp2, CTKey{Src: ap(node1IP, natPort), Dst: ap(pod4.addr(), backendPort), Proto: ProtoTCP, Flags: TupleIn})
	for _, c := range []struct {
		client netip.AddrPort
		dst    netip.Addr
	}{{c1, pod4.addr()}, {c2, pod2.addr()}} {
		if e := ctEntry(t, dp1, CTKey{Src: c.client, Dst: ap(c.dst, backendPort), Proto: ProtoTCP, Flags: TupleOut}); e.Flags&CTNodePort == 0 || e.RxPackets == 0 {
			t.Errorf("node1's NodePort entry %v: want replies counted", e)
		}
	}

	t.Log("towards the client: SYN-ACKs from node1:30080 (TTL 60) and node1:30081 (TTL 62), right checksums")
	synAcks := map[uint16]*layers.IPv4{}
	for _, f := range readFrames(t, capture) {
		ip, _ := f.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		tcp, _ := f.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if ip == nil || tcp == nil || !tcp.SYN || !tcp.ACK {
			continue
		}
		if !ip.SrcIP.Equal(node1IP.AsSlice()) {
			t.Errorf("a SYN-ACK to the client from %v: %v", ip.SrcIP, f)
			continue
		}
		synAcks[uint16(tcp.SrcPort)] = ip
		if !ipv4ChecksumOK(ip.Contents) {
			t.Errorf("IPv4 checksum of %v", f)
		}
		want := *tcp
		_ = want.SetNetworkLayerForChecksum(ip)
		sb := gopacket.NewSerializeBuffer()
		must(t, gopacket.SerializeLayers(sb, gopacket.SerializeOptions{ComputeChecksums: true}, &want, gopacket.Payload(tcp.Payload)))
		if got := uint16(sb.Bytes()[16])<<8 | uint16(sb.Bytes()[17]); got != tcp.Checksum {
			t.Errorf("TCP checksum %#04x, want %#04x: %v", tcp.Checksum, got, f)
		}
	}
	for port, ttl := range map[uint16]uint8{nodePort: 60, nodePort + 1: 62} {
		if ip := synAcks[port]; ip == nil || ip.TTL != ttl {
			t.Errorf("SYN-ACK from node1:%d: %v, want TTL %d", port, ip, ttl)
		}
	}
}

// echoVia runs a TCP echo server in server's namespace on listen, connects
// from client to dial, requires the echo of msg and a peer address of
// dial, and returns the client's address. Listener and connection stay
// open until the test ends.
func echoVia(t *testing.T, client, server *pods.Pod, listen, dial netip.AddrPort, msg string) netip.AddrPort {
	t.Helper()
	var ln net.Listener
	must(t, server.Do(func() (err error) {
		ln, err = net.Listen("tcp4", listen.String())
		return err
	}))
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, c)
	}()
	var conn net.Conn
	must(t, client.Do(func() (err error) {
		conn, err = net.DialTimeout("tcp4", dial.String(), 5*time.Second)
		return err
	}))
	t.Cleanup(func() { conn.Close() })
	must(t, conn.SetDeadline(time.Now().Add(5*time.Second)))
	_, err := conn.Write([]byte(msg))
	must(t, err)
	buf := make([]byte, len(msg))
	_, err = io.ReadFull(conn, buf)
	must(t, err)
	if string(buf) != msg {
		t.Fatalf("echo %q", buf)
	}
	if peer := conn.RemoteAddr().(*net.TCPAddr).AddrPort(); peer != dial {
		t.Errorf("connected to %v, want %v", peer, dial)
	}
	return conn.LocalAddr().(*net.TCPAddr).AddrPort()
}

// readFrames returns the frames captured on fd until it stays quiet for
// 200 ms.
func readFrames(t *testing.T, fd int) []gopacket.Packet {
	t.Helper()
	var out []gopacket.Packet
	buf := make([]byte, 65536)
	for {
		n, _, err := recvfrom(fd, buf)
		if err == unix.EAGAIN || err == unix.EWOULDBLOCK {
			return out
		}
		must(t, err)
		out = append(out, gopacket.NewPacket(append([]byte(nil), buf[:n]...), layers.LayerTypeEthernet, gopacket.Default))
	}
}
