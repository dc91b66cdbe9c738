package datapath

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
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

// The tunnel on real kernel networking: node1 and node2 are namespaces
// joined by a veth standing in for the underlay, each with its datapath and
// a collect-metadata VXLAN device (AddVXLANDevice) carrying from-overlay.
// No route leads to the other node's PodCIDR: only the tunnel does. pod1
// (node1) connects to Service 10.224.1.1:80 backed by pod4:8080 (node2).
// node2's ipcache gives node1's PodCIDR an identity pod4 does not admit,
// so the connection only works if node2 takes pod1's identity from the
// VNI. An AF_PACKET socket on node2's underlay end captures the frames:
// outer Ethernet and IPv4 between the nodes' underlay addresses with a
// right header checksum, UDP to 8472 with no checksum (zero, as Cilium
// sends), the VXLAN header with the I flag and VNI = the sender's identity,
// and inside it the packet as the pod sent it, DNATed, TTL 64, with right
// checksums.
func TestTunnelOnTheWire(t *testing.T) {
	dp1 := loadDatapath(t)
	dp2, err := Load(Options{CTEntries: 32768})
	must(t, err)
	t.Cleanup(func() { dp2.Close() })
	events2 := openEvents(t, dp2)

	node1 := netnstest.EnterNew(t)
	node2 := netnstest.EnterNew(t)
	underlay1, underlay2 := addr("10.255.0.1"), addr("10.255.0.2")
	pod4 := testEndpoint{ip: "10.1.2.40", id: 4, identity: pod4ID, mac: "0a:00:00:01:02:40", lxc: "0a:00:00:f1:02:40"}
	const otherID = Identity(9999)

	var server, client *pods.Pod
	var capture int
	var mac1, mac2 net.HardwareAddr
	inNS(t, node2, func() {
		server = twoNodePod(t, dp2, podNS("hl-tun2-pod4"), "lxctun4", pod4, addr("10.1.2.1"))
		must(t, dp2.Policy.Allow(L3L4Key(pod4.id, Ingress, pod1.identity, 8080, ProtoTCP)))
		must(t, dp2.IPCache.Upsert(pfx("10.1.1.0/24"), IPCacheEntry{Identity: otherID, TunnelEndpoint: underlay1}))
		vx, err := AddVXLANDevice("vxlan2", 0)
		must(t, err)
		must(t, dp2.SetTunnelDevice(vx))
		must(t, dp2.AttachOverlay("vxlan2"))
	})
	inNS(t, node1, func() {
		client = twoNodePod(t, dp1, podNS("hl-tun1-pod1"), "lxctun1", pod1, addr("10.1.1.1"))
		must(t, dp1.Services.Upsert(webService(Backend{ID: 1, Addr: pod4.addr(), Port: 8080})))
		must(t, dp1.IPCache.Upsert(pfx("10.1.2.0/24"), IPCacheEntry{Identity: pod4ID, TunnelEndpoint: underlay2}))
		vx, err := AddVXLANDevice("vxlan1", 0)
		must(t, err)
		must(t, dp1.SetTunnelDevice(vx))
		must(t, dp1.AttachOverlay("vxlan1"))
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "underlay1"}, PeerName: "underlay2", PeerNamespace: netlink.NsFd(int(node2))}
		must(t, netlink.LinkAdd(veth))
		up, err := netlink.LinkByName("underlay1")
		must(t, err)
		mac1 = up.Attrs().HardwareAddr
		must(t, netlink.AddrAdd(up, &netlink.Addr{IPNet: hostNet(underlay1, 24)}))
		must(t, netlink.LinkSetUp(up))
	})
	inNS(t, node2, func() {
		up, err := netlink.LinkByName("underlay2")
		must(t, err)
		mac2 = up.Attrs().HardwareAddr
		must(t, netlink.AddrAdd(up, &netlink.Addr{IPNet: hostNet(underlay2, 24)}))
		must(t, netlink.LinkSetUp(up))
		capture = openCapture(t, up.Attrs().Index)
	})
	waitOperUp(t, node1, "underlay1")
	waitOperUp(t, node2, "underlay2")
	// The pods compute their checksums themselves, so that the inner
	// packets on the wire carry final ones.
	for _, p := range []*pods.Pod{client, server} {
		must(t, p.Do(func() error { setTxChecksum(t, "eth0", false); return nil }))
	}

	local := echoThroughService(t, client, server, "through the tunnel")

	t.Log("on the underlay: pod1's SYN with VNI = pod1's identity, pod4's SYN-ACK with VNI = pod4's")
	var syn, synAck *capturedVXLAN
	for _, f := range readCapture(t, capture) {
		in := f.inner
		tcp, _ := in.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if tcp == nil || !tcp.SYN {
			continue
		}
		if tcp.ACK && synAck == nil {
			synAck = f
		} else if !tcp.ACK && syn == nil {
			syn = f
		}
	}
	if syn == nil || synAck == nil {
		t.Fatalf("captured SYN %v, SYN-ACK %v: want both encapsulated", syn, synAck)
	}
	syn.check(t, mac1, mac2, underlay1, underlay2, pod1.identity)
	synAck.check(t, mac2, mac1, underlay2, underlay1, pod4ID)
	ip, _ := syn.inner.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	tcp, _ := syn.inner.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if !ip.SrcIP.Equal(pod1.addr().AsSlice()) || !ip.DstIP.Equal(pod4.addr().AsSlice()) || ip.TTL != 64 ||
		int(tcp.SrcPort) != local.Port || tcp.DstPort != 8080 {
		t.Errorf("inner SYN %v: want pod1 → pod4:8080 (DNATed), TTL 64", syn.inner)
	}
	ip, _ = synAck.inner.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if !ip.SrcIP.Equal(pod4.addr().AsSlice()) || ip.TTL != 64 {
		t.Errorf("inner SYN-ACK %v: want from pod4:8080 before reverse NAT, TTL 64", synAck.inner)
	}

	t.Log("node2: from-overlay then to-container, with pod1's identity from the VNI, TTL 63")
	var fromOverlay, toContainer *TraceNotify
	for _, tr := range traces(drain(t, events2)) {
		switch {
		case tr.ObsPoint == TraceFromOverlay && fromOverlay == nil:
			fromOverlay = tr
		case tr.ObsPoint == TraceToLXC && toContainer == nil:
			toContainer = tr
		}
	}
	if fromOverlay == nil || toContainer == nil {
		t.Fatalf("node2 traces: from-overlay %v, to-container %v", fromOverlay, toContainer)
	}
	p := gopacket.NewPacket(toContainer.Data, layers.LayerTypeEthernet, gopacket.Default)
	if ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ip == nil || ip.TTL != 63 ||
		fromOverlay.SrcIdentity != pod1.identity || toContainer.SrcIdentity != pod1.identity {
		t.Errorf("node2: from-overlay %v, to-container %v", fromOverlay, toContainer)
	}
	t.Log("pod1 → node2's own address: through the tunnel into node2's stack")
	inNS(t, node1, func() {
		must(t, dp1.IPCache.Upsert(netip.PrefixFrom(underlay2, 32), IPCacheEntry{Identity: otherID, TunnelEndpoint: underlay2}))
	})
	var sink net.PacketConn
	inNS(t, node2, func() {
		// No route leads back to pod1 here: reverse-path filtering off.
		for _, dev := range []string{"all", "default", "vxlan2"} {
			must(t, os.WriteFile("/proc/sys/net/ipv4/conf/"+dev+"/rp_filter", []byte("0"), 0o644))
		}
		sink, err = net.ListenPacket("udp4", "10.255.0.2:9999")
		must(t, err)
	})
	defer sink.Close()
	must(t, client.Do(func() error {
		c, err := net.Dial("udp4", "10.255.0.2:9999")
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("to node2"))
		return err
	}))
	must(t, sink.SetReadDeadline(time.Now().Add(3*time.Second)))
	buf := make([]byte, 64)
	n, from, err := sink.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "to node2" || from.(*net.UDPAddr).IP.String() != pod1.ip {
		t.Errorf("node2's socket got %q from %v, %v; want \"to node2\" from pod1", buf[:n], from, err)
	}

	flow := CTKey{Src: ap(pod1.addr(), uint16(local.Port)), Dst: ap(pod4.addr(), 8080), Proto: ProtoTCP}
	out := flow
	out.Flags = TupleOut
	if e := ctEntry(t, dp1, out); e.RxPackets == 0 || e.RevNAT != 1 {
		t.Errorf("node1 egress entry: %v", e)
	}
	in := flow
	in.Flags = TupleIn
	if e := ctEntry(t, dp2, in); e.SrcIdentity != pod1.identity {
		t.Errorf("node2 ingress entry %v: want source identity %d (the VNI's), not %d (the ipcache's)", e, pod1.identity, otherID)
	}
}

// waitOperUp waits up to 3 s for the device name of ns to be
// operationally up.
func waitOperUp(t *testing.T, ns netns.NsHandle, name string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	inNS(t, ns, func() {
		for {
			l, err := netlink.LinkByName(name)
			must(t, err)
			if l.Attrs().OperState == netlink.OperUp || time.Now().After(deadline) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// openCapture opens an AF_PACKET socket on ifindex (in the calling
// thread's namespace) that sees every frame in and out.
func openCapture(t *testing.T, ifindex int) int {
	t.Helper()
	proto := int(htons(unix.ETH_P_ALL))
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
	must(t, err)
	t.Cleanup(func() { unix.Close(fd) })
	must(t, unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: uint16(proto), Ifindex: ifindex}))
	must(t, unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 200000}))
	return fd
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// capturedVXLAN is a captured VXLAN frame: the outer headers as captured and
// the decoded inner frame.
type capturedVXLAN struct {
	raw   []byte
	eth   *layers.Ethernet
	ip    *layers.IPv4
	udp   *layers.UDP
	flags uint8
	vni   uint32
	inner gopacket.Packet
}

func (f *capturedVXLAN) String() string {
	return gopacket.NewPacket(f.raw, layers.LayerTypeEthernet, gopacket.Default).String()
}

// readCapture returns the UDP frames to or from VXLANPort captured on fd
// until it stays quiet for 200 ms.
func readCapture(t *testing.T, fd int) []*capturedVXLAN {
	t.Helper()
	var out []*capturedVXLAN
	buf := make([]byte, 65536)
	for {
		n, _, err := recvfrom(fd, buf)
		if err == unix.EAGAIN || err == unix.EWOULDBLOCK {
			return out
		}
		must(t, err)
		raw := append([]byte(nil), buf[:n]...)
		p := gopacket.NewPacket(raw, layers.LayerTypeEthernet, gopacket.Default)
		eth, _ := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		udp, _ := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if eth == nil || ip == nil || udp == nil || (udp.DstPort != VXLANPort && udp.SrcPort != VXLANPort) || len(udp.Payload) < 8 {
			continue
		}
		hdr := udp.Payload
		out = append(out, &capturedVXLAN{raw: raw, eth: eth, ip: ip, udp: udp, flags: hdr[0],
			vni:   binary.BigEndian.Uint32(hdr[4:8]) >> 8,
			inner: gopacket.NewPacket(hdr[8:], layers.LayerTypeEthernet, gopacket.Default)})
	}
}

// check asserts the outer headers (MACs, addresses, TTL 64, right IPv4
// checksum, UDP to VXLANPort without checksum, VXLAN I flag and VNI) and
// the inner packet's IPv4 and TCP checksums.
func (f *capturedVXLAN) check(t *testing.T, srcMAC, dstMAC net.HardwareAddr, src, dst netip.Addr, vni Identity) {
	t.Helper()
	t.Logf("captured: %v > %v, VNI %d, inner %v", f.ip.SrcIP, f.ip.DstIP, f.vni, f.inner)
	if f.eth.SrcMAC.String() != srcMAC.String() || f.eth.DstMAC.String() != dstMAC.String() {
		t.Errorf("outer MACs %v > %v, want %v > %v", f.eth.SrcMAC, f.eth.DstMAC, srcMAC, dstMAC)
	}
	if !f.ip.SrcIP.Equal(src.AsSlice()) || !f.ip.DstIP.Equal(dst.AsSlice()) || f.ip.TTL != 64 || f.ip.Protocol != layers.IPProtocolUDP {
		t.Errorf("outer IPv4 %v > %v TTL %d proto %v, want %v > %v TTL 64 UDP", f.ip.SrcIP, f.ip.DstIP, f.ip.TTL, f.ip.Protocol, src, dst)
	}
	if !ipv4ChecksumOK(f.ip.Contents) {
		t.Errorf("outer IPv4 header checksum %#04x is wrong", f.ip.Checksum)
	}
	if f.udp.DstPort != VXLANPort || f.udp.Checksum != 0 {
		t.Errorf("outer UDP to port %d checksum %#04x, want port %d, no checksum (0)", f.udp.DstPort, f.udp.Checksum, VXLANPort)
	}
	if f.flags != 0x08 || f.vni != uint32(vni) {
		t.Errorf("VXLAN flags %#02x VNI %d, want 0x08 (I) and VNI %d", f.flags, f.vni, vni)
	}
	ip, _ := f.inner.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	tcp, _ := f.inner.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if ip == nil || tcp == nil {
		t.Fatalf("inner frame is no TCP/IPv4: %v", f.inner)
	}
	if !ipv4ChecksumOK(ip.Contents) {
		t.Errorf("inner IPv4 header checksum %#04x is wrong", ip.Checksum)
	}
	want := *tcp
	_ = want.SetNetworkLayerForChecksum(ip)
	sb := gopacket.NewSerializeBuffer()
	must(t, gopacket.SerializeLayers(sb, gopacket.SerializeOptions{ComputeChecksums: true}, &want, gopacket.Payload(tcp.Payload)))
	if got := binary.BigEndian.Uint16(sb.Bytes()[16:18]); got != tcp.Checksum {
		t.Errorf("inner TCP checksum %#04x, want %#04x", tcp.Checksum, got)
	}
}

// ipv4ChecksumOK reports whether an IPv4 header sums to 0xffff.
func ipv4ChecksumOK(h []byte) bool {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(h[i])<<8 | uint32(h[i+1])
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return sum == 0xffff
}
