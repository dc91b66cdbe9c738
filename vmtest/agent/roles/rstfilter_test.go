package roles

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// rstFrom reports whether frame is a TCP RST src → dst.
func rstFrom(frame []byte, src, dst netip.AddrPort) bool {
	p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if ip == nil || tcp == nil || !tcp.RST {
		return false
	}
	s, _ := netip.AddrFromSlice(ip.SrcIP.To4())
	d, _ := netip.AddrFromSlice(ip.DstIP.To4())
	return netip.AddrPortFrom(s, uint16(tcp.SrcPort)) == src && netip.AddrPortFrom(d, uint16(tcp.DstPort)) == dst
}

func rstFilterOf(n *Node, pod string) *rstFilter {
	n.rstMu.Lock()
	defer n.rstMu.Unlock()
	return n.rst[pod]
}

// TestInjectSuppressesRST: pod1's side of a handshake with Service
// 10.224.1.1:80 (pod2:8080) is injected. pod1's kernel has no socket for
// it and answers pod2's SYN-ACK with a RST: with SuppressRST the RST is
// dropped at pod1's eth0 (counted on its flow, never seen leaving eth0)
// while an injected RST still leaves; an injection without the flag
// removes the filter and the kernel's RST leaves again; node-reset
// removes it too.
func TestInjectSuppressesRST(t *testing.T) {
	n, top, ev := testNode(t, "same-node.yaml", topologyText(t, "same-node"), "node1")
	ctx := context.Background()
	_, err := n.Watch(ctx, nodeapi.Watch{Pods: true})
	must(t, err)
	pod1 := top.Pod("pod1")
	svc := netip.MustParseAddrPort("10.224.1.1:80")
	seg := func(sport uint16, syn, rst bool) []byte {
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr(pod1.MAC[:]), DstMAC: net.HardwareAddr(pod1.LXCMAC[:]), EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: pod1.IP.AsSlice(), DstIP: svc.Addr().AsSlice()}
		tcp := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(svc.Port()), SYN: syn, RST: rst, Seq: 1000, Window: 64240}
		must(t, tcp.SetNetworkLayerForChecksum(ip))
		buf := gopacket.NewSerializeBuffer()
		must(t, gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, tcp))
		return buf.Bytes()
	}
	synAckTo := func(src netip.AddrPort) func(any) bool {
		return func(e any) bool {
			p, ok := e.(nodeapi.PodPacket)
			if !ok || p.Pod != "pod1" || p.Direction != nodeapi.PodIngress {
				return false
			}
			info, err := decodeTCP(p.Frame)
			return err == nil && info.Src == svc && info.Dst == src && info.SYN && info.ACK
		}
	}
	rstOut := func(src netip.AddrPort, frame []byte) func(any) bool {
		return func(e any) bool {
			p, ok := e.(nodeapi.PodPacket)
			return ok && p.Pod == "pod1" && p.Direction == nodeapi.PodEgress && rstFrom(p.Frame, src, svc) &&
				(frame == nil || bytes.Equal(p.Frame, frame))
		}
	}
	egressFilters := func() []netlink.Filter {
		t.Helper()
		var fs []netlink.Filter
		must(t, n.pods["pod1"].Do(func() error {
			l, err := netlink.LinkByName("eth0")
			if err != nil {
				return err
			}
			fs, err = netlink.FilterList(l, netlink.HANDLE_MIN_EGRESS)
			return err
		}))
		return fs
	}

	// Suppressed: the kernel's RST is dropped and counted.
	src := netip.AddrPortFrom(pod1.IP, 42000)
	_, err = n.Inject(ctx, nodeapi.Inject{Pod: "pod1", Frames: [][]byte{seg(src.Port(), true, false)}, SuppressRST: true})
	must(t, err)
	ev.wait(t, "pod2's SYN-ACK at pod1", 3*time.Second, synAckTo(src))
	flow := newRSTFlow(src, svc)
	var dropped uint64
	for deadline := time.Now().Add(3 * time.Second); dropped == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		m, err := rstFilterOf(n, "pod1").dropped()
		must(t, err)
		dropped = m[flow]
	}
	if dropped == 0 {
		t.Fatalf("no RST dropped on %s", flow)
	}
	if fs := egressFilters(); len(fs) != 1 || fs[0].(*netlink.BpfFilter).Name != rstFilterName {
		t.Errorf("pod1 eth0 egress filters %+v, want %s", fs, rstFilterName)
	}
	// An injected RST on the suppressed flow is sent; the kernel's was not.
	rst := seg(src.Port(), false, true)
	_, err = n.Inject(ctx, nodeapi.Inject{Pod: "pod1", Frames: [][]byte{rst}, SuppressRST: true})
	must(t, err)
	ev.wait(t, "the injected RST leaving pod1", 3*time.Second, rstOut(src, rst))
	ev.mu.Lock()
	for _, e := range ev.list {
		if rstOut(src, nil)(e) && !bytes.Equal(e.(nodeapi.PodPacket).Frame, rst) {
			t.Errorf("pod1's kernel RST left eth0 although suppressed: %x", e.(nodeapi.PodPacket).Frame)
		}
	}
	ev.mu.Unlock()
	t.Logf("%d kernel RSTs dropped on %s", dropped, flow)

	// Without the flag the filter goes and the kernel's RST leaves.
	src2 := netip.AddrPortFrom(pod1.IP, 42001)
	_, err = n.Inject(ctx, nodeapi.Inject{Pod: "pod1", Frames: [][]byte{seg(src2.Port(), true, false)}})
	must(t, err)
	ev.wait(t, "pod1's kernel RST after the suppression ended", 3*time.Second, rstOut(src2, nil))
	if fs := egressFilters(); len(fs) != 0 || rstFilterOf(n, "pod1") != nil {
		t.Errorf("filter left after an injection without SuppressRST: %+v", fs)
	}

	// node-reset ends the suppression too.
	_, err = n.Inject(ctx, nodeapi.Inject{Pod: "pod1", Frames: nil, SuppressRST: true})
	must(t, err)
	if fs := egressFilters(); len(fs) != 1 {
		t.Fatalf("no filter after an empty injection with SuppressRST: %+v", fs)
	}
	_, err = n.Reset(ctx, nodeapi.Reset{})
	must(t, err)
	if fs := egressFilters(); len(fs) != 0 || rstFilterOf(n, "pod1") != nil {
		t.Errorf("filter left after node-reset: %+v", fs)
	}
}

// TestTCPFlowOf: the filter's key is the flow as the packet carries it;
// other frames have none.
func TestTCPFlowOf(t *testing.T) {
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: net.IP{10, 1, 1, 10}, DstIP: net.IP{10, 224, 1, 1},
		Options: []layers.IPv4Option{{OptionType: 1}, {OptionType: 1}, {OptionType: 1}, {OptionType: 0}}}
	tcp := &layers.TCP{SrcPort: 40010, DstPort: 80, RST: true}
	must(t, tcp.SetNetworkLayerForChecksum(ip))
	buf := gopacket.NewSerializeBuffer()
	must(t, gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, tcp))
	f, ok := tcpFlowOf(buf.Bytes())
	want := newRSTFlow(netip.MustParseAddrPort("10.1.1.10:40010"), netip.MustParseAddrPort("10.224.1.1:80"))
	if !ok || f != want || f.String() != "10.1.1.10:40010 -> 10.224.1.1:80" {
		t.Errorf("flow %v %v, want %v (IPv4 options skipped)", f, ok, want)
	}
	udp := &layers.UDP{SrcPort: 1, DstPort: 2}
	ip.Protocol = layers.IPProtocolUDP
	must(t, udp.SetNetworkLayerForChecksum(ip))
	must(t, gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, udp))
	if _, ok := tcpFlowOf(buf.Bytes()); ok {
		t.Error("a UDP frame has a TCP flow")
	}
	if _, ok := tcpFlowOf([]byte{1, 2, 3}); ok {
		t.Error("a 3-byte frame has a TCP flow")
	}
}

// TestInjectMaxFlowsSizesFilter: pod-inject's MaxFlows sizes the pod's
// RST filter map when it creates it (0 gives nodeapi.DefaultRSTFlows); a
// flow beyond the size fails the injection with an error naming the size,
// and a size outside 1..nodeapi.MaxRSTFlows is refused before any frame
// is sent.
func TestInjectMaxFlowsSizesFilter(t *testing.T) {
	n, top, _ := testNode(t, "same-node.yaml", topologyText(t, "same-node"), "node1")
	ctx := context.Background()
	pod1 := top.Pod("pod1")
	syn := func(sport uint16) []byte { return vipSYN(t, pod1, sport) }
	size := func() uint32 {
		t.Helper()
		f := rstFilterOf(n, "pod1")
		if f == nil {
			t.Fatal("no RST filter on pod1")
		}
		info, err := f.flows.Info()
		must(t, err)
		return info.MaxEntries
	}
	end := func() {
		t.Helper()
		_, err := n.Inject(ctx, nodeapi.Inject{Pod: "pod1"})
		must(t, err)
	}

	_, err := n.Inject(ctx, nodeapi.Inject{Pod: "pod1", SuppressRST: true})
	must(t, err)
	if got := size(); got != nodeapi.DefaultRSTFlows {
		t.Errorf("filter without MaxFlows holds %d flows, want %d", got, nodeapi.DefaultRSTFlows)
	}
	end()

	_, err = n.Inject(ctx, nodeapi.Inject{Pod: "pod1", SuppressRST: true, MaxFlows: 3, Frames: [][]byte{syn(43000), syn(43001), syn(43001), syn(43002)}})
	must(t, err)
	if got := size(); got != 3 {
		t.Errorf("filter with MaxFlows 3 holds %d flows", got)
	}
	// A later injection's MaxFlows does not resize the filter: the fourth
	// flow does not fit.
	res, err := n.Inject(ctx, nodeapi.Inject{Pod: "pod1", SuppressRST: true, MaxFlows: 100, Frames: [][]byte{syn(43003)}})
	if !errors.Is(err, unix.E2BIG) || !strings.Contains(err.Error(), "10.1.1.10:43003 -> 10.224.1.1:80: the filter is full (3 flows") || res.Sent != 0 {
		t.Errorf("a fourth flow in a filter of 3: sent %d, %v", res.Sent, err)
	}
	end()

	for _, bad := range []int{-1, nodeapi.MaxRSTFlows + 1} {
		res, err := n.Inject(ctx, nodeapi.Inject{Pod: "pod1", SuppressRST: true, MaxFlows: bad, Frames: [][]byte{syn(43004)}})
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("rst filter: %d flows outside 1..%d", bad, nodeapi.MaxRSTFlows)) || res.Sent != 0 {
			t.Errorf("MaxFlows %d: sent %d, %v", bad, res.Sent, err)
		}
		if rstFilterOf(n, "pod1") != nil {
			t.Errorf("MaxFlows %d left a filter", bad)
		}
	}
}
