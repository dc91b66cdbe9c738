//go:build vm

package vmtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/hoplab/hoplab/vmtest/protocol/control"
	"github.com/hoplab/hoplab/vmtest/wire"
)

func twoNodeSpec(t *testing.T, mode control.BondMode) FabricSpec {
	return FabricSpec{
		Router: "tor",
		Nodes: []FabricNode{
			{Name: "node1", Address: netip.MustParsePrefix("10.255.1.11/24"), Gateway: netip.MustParseAddr("10.255.1.1"), Bond: mode},
			{Name: "node2", Address: netip.MustParsePrefix("10.255.2.12/24"), Gateway: netip.MustParseAddr("10.255.2.1"), Bond: mode},
		},
		VMOptions: bootOptions(t),
	}
}

// flows returns n UDP flows from node1 to node2 with distinct ports, so
// that layer3+4 hashing spreads them over both slaves.
func flows(n int) ([]control.UDPFlow, []int) {
	var fl []control.UDPFlow
	var ports []int
	for i := range n {
		port := 9000 + i
		ports = append(ports, port)
		fl = append(fl, control.UDPFlow{SrcPort: 40000 + 7*i, Dst: fmt.Sprintf("10.255.2.12:%d", port)})
	}
	return fl, ports
}

// TestFabricBalanceXOR: node1 → ToR → node2 over bond0 in balance-xor;
// frames of the flows cross both uplinks of each node. Injection, capture
// and the control relay are checked on the same fabric.
func TestFabricBalanceXOR(t *testing.T) {
	f := testSpread(t, control.BondBalanceXOR)
	checkInjectAndCapture(t, f)
	checkRelay(t, f)
}

// TestFabric8023AD: the same over LACP bonds, which the fabric waits to
// negotiate before it is ready.
func TestFabric8023AD(t *testing.T) {
	testSpread(t, control.Bond8023AD)
}

// testSpread boots a fabric with bonds in mode and checks that node1's
// flows to node2 spread over both uplinks of each node.
func testSpread(t *testing.T, mode control.BondMode) *Fabric {
	f := StartFabricT(t, twoNodeSpec(t, mode))
	t.Logf("3-VM fabric ready in %v", f.BootTime)
	for _, vm := range f.VMs() {
		r := vm.Ready()
		t.Logf("%s: qemu start→ready %v, kernel handover→ready %v", vm.Name(), vm.BootTime(), r.HandoverToReady())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n1, n2 := f.VM("node1").Agent(), f.VM("node2").Agent()
	fl, ports := flows(8)
	l, err := n2.UDPListen(ctx, control.UDPListen{Ports: ports})
	if err != nil {
		t.Fatal(err)
	}
	const perFlow = 50
	sent, err := n1.UDPSend(ctx, control.UDPSend{Flows: fl, Count: perFlow, Interval: 2 * time.Millisecond, Size: 64})
	if err != nil {
		t.Fatal(err)
	}
	want := perFlow * len(fl)
	got, err := n2.UDPStats(ctx, control.UDPStats{ID: l.ID, WaitTotal: want, Timeout: 10 * time.Second, Stop: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("sent %+v, received %d of %d, per port %v", sent, got.Total, want, got.PerPort)
	// The first datagrams may be lost while ARP resolves.
	if got.Total < want-2*len(fl) {
		t.Fatalf("node2 received %d of %d datagrams", got.Total, want)
	}
	for _, node := range []string{"node1", "node2"} {
		for j := range UplinkNICs {
			c := f.Link(node, j).Counters()
			t.Logf("link %s: from node %+v, from tor %+v", LinkName(node, j), c.FromA, c.FromB)
		}
	}
	// node1 transmits on both slaves; node2 receives on both (the ToR's
	// bond toward node2 hashes the flows too).
	for j := range UplinkNICs {
		if c := f.Link("node1", j).Counters(); c.FromA.Frames < 20 {
			t.Errorf("node1 uplink %d carried only %d frames from node1: %s did not spread the flows", j, c.FromA.Frames, mode)
		}
		if c := f.Link("node2", j).Counters(); c.FromB.Frames < 20 {
			t.Errorf("node2 uplink %d carried only %d frames to node2: %s did not spread the flows", j, c.FromB.Frames, mode)
		}
	}
	return f
}

// TestFabricActiveBackupFailover: the active uplink of node1 is cut at
// both ends mid-stream; the bonds fail over and the stream goes on with a
// bounded loss.
func TestFabricActiveBackupFailover(t *testing.T) {
	f := StartFabricT(t, twoNodeSpec(t, control.BondActiveBackup))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	n1, n2 := f.VM("node1").Agent(), f.VM("node2").Agent()
	fl, ports := flows(1)
	l, err := n2.UDPListen(ctx, control.UDPListen{Ports: ports})
	if err != nil {
		t.Fatal(err)
	}
	// Warm up ARP before the measured stream.
	if _, err := n1.UDPSend(ctx, control.UDPSend{Flows: fl, Count: 5, Interval: 10 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if _, err := n2.UDPStats(ctx, control.UDPStats{ID: l.ID, WaitTotal: 3, Timeout: 5 * time.Second, Stop: true}); err != nil {
		t.Fatal(err)
	}
	l, err = n2.UDPListen(ctx, control.UDPListen{Ports: ports})
	if err != nil {
		t.Fatal(err)
	}

	// 600 datagrams, 5 ms apart: about 3 s of traffic.
	const count, interval = 600, 5 * time.Millisecond
	type result struct {
		sent control.UDPSent
		err  error
	}
	done := make(chan result, 1)
	go func() {
		s, err := n1.UDPSend(ctx, control.UDPSend{Flows: fl, Count: count, Interval: interval})
		done <- result{s, err}
	}()
	// Wait until the stream flows, then cut the active uplink (eth0, the
	// primary) at both ends.
	if _, err := n2.UDPStats(ctx, control.UDPStats{ID: l.ID, WaitTotal: 50, Timeout: 10 * time.Second}); err != nil {
		t.Fatal(err)
	}
	before := f.Link("node1", 1).Counters()
	cutAt := time.Now()
	if err := f.SetLink(ctx, "node1", 0, false); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	got, err := n2.UDPStats(ctx, control.UDPStats{ID: l.ID, WaitTotal: r.sent.Sent, Timeout: 5 * time.Second, Stop: true})
	if err != nil {
		t.Fatal(err)
	}
	after := f.Link("node1", 1).Counters()
	lost := r.sent.Sent - got.Total
	t.Logf("stream ended %v after the cut; sent %d, received %d, lost %d, largest gap %d datagrams (%v)",
		time.Since(cutAt), r.sent.Sent, got.Total, lost, got.MaxSeqGap, time.Duration(got.MaxSeqGap)*interval)
	t.Logf("backup uplink carried %d frames from node1 after the cut", after.FromA.Frames-before.FromA.Frames)
	if after.FromA.Frames-before.FromA.Frames < 100 {
		t.Errorf("the backup uplink carried %d frames: no failover", after.FromA.Frames-before.FromA.Frames)
	}
	// miimon is 50 ms; allow a generous 1 s of loss under TCG.
	const maxLost = 200
	if lost > maxLost || got.MaxSeqGap > maxLost {
		t.Errorf("lost %d datagrams (gap %d) in the failover, want ≤ %d", lost, got.MaxSeqGap, maxLost)
	}
	if err := f.SetLink(ctx, "node1", 0, true); err != nil {
		t.Fatal(err)
	}
}

// udpFrame builds an Ethernet/IPv4/UDP frame carrying payload.
func udpFrame(t *testing.T, srcMAC, dstMAC net.HardwareAddr, src, dst string, sport, dport int, payload []byte) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: srcMAC, DstMAC: dstMAC, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 63, Protocol: layers.IPProtocolUDP, SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	_ = udp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, udp, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// checkInjectAndCapture injects UDP frames on node2's first uplink as if the
// ToR sent them, checks that node2's socket gets them, and that the link's
// pcapng holds them.
func checkInjectAndCapture(t *testing.T, f *Fabric) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n2 := f.VM("node2").Agent()
	l, err := n2.UDPListen(ctx, control.UDPListen{Ports: []int{9100}})
	if err != nil {
		t.Fatal(err)
	}
	w := f.Link("node2", 0)
	// node2's bond0 has its first slave's MAC; the ToR's bond toward node2
	// has the MAC of its first NIC toward node2.
	frame := udpFrame(t, MAC(0, torNIC(1, 0)), MAC(2, 0), "10.255.1.11", "10.255.2.12", 5555, 9100, []byte("injected by the harness"))
	seen := make(chan wire.Frame, 8)
	remove := f.Tap(func(tw *wire.Wire, fr wire.Frame) {
		if fr.Injected && tw == w {
			seen <- fr
		}
	})
	defer remove()
	for range 3 {
		if err := f.InjectToNode("node2", frame); err != nil {
			t.Fatal(err)
		}
	}
	got, err := n2.UDPStats(ctx, control.UDPStats{ID: l.ID, WaitTotal: 3, Timeout: 5 * time.Second, Stop: true})
	if err != nil {
		t.Fatal(err)
	}
	if got.Total != 3 {
		t.Fatalf("node2 received %d of 3 injected datagrams", got.Total)
	}
	if len(seen) != 3 {
		t.Fatalf("taps saw %d of 3 injected frames", len(seen))
	}
	pf, err := os.Open(w.PcapPath())
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	r, err := pcapgo.NewNgReader(pf, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	injected := 0
	for {
		data, _, err := r.ReadPacketData()
		if err != nil {
			break
		}
		if bytes.Equal(data, frame) {
			injected++
		}
	}
	if injected != 3 {
		t.Fatalf("pcapng %s holds %d of the 3 injected frames", w.PcapPath(), injected)
	}
	t.Logf("3 injected frames delivered to node2 and captured in %s", w.PcapPath())
}

// TestFabricDirect: NICs wired straight to each other (no harness in the
// path) carry traffic; there are no wires to capture on.
func TestFabricDirect(t *testing.T) {
	spec := twoNodeSpec(t, control.Bond8023AD)
	spec.Direct = true
	f := StartFabricT(t, spec)
	if len(f.Links()) != 0 || f.Link("node1", 0) != nil {
		t.Fatal("direct fabric has harness wires")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n1, n2 := f.VM("node1").Agent(), f.VM("node2").Agent()
	fl, ports := flows(4)
	l, err := n2.UDPListen(ctx, control.UDPListen{Ports: ports})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	sent, err := n1.UDPSend(ctx, control.UDPSend{Flows: fl, Count: 2000, Size: 1400})
	if err != nil {
		t.Fatal(err)
	}
	got, err := n2.UDPStats(ctx, control.UDPStats{ID: l.ID, WaitTotal: sent.Sent, Timeout: 5 * time.Second, Stop: true})
	if err != nil {
		t.Fatal(err)
	}
	d := time.Since(start)
	t.Logf("802.3ad over direct wires: sent %d, received %d in %v (%.1f Mbit/s of payload)", sent.Sent, got.Total, d, float64(got.Total*1400*8)/d.Seconds()/1e6)
	// Under TCG the receiver drops much of a back-to-back UDP burst.
	if got.Total < sent.Sent/10 {
		t.Fatalf("received %d of %d", got.Total, sent.Sent)
	}
}

// checkRelay serves the agents on unix sockets and reaches node1 through
// the state file, the way `hoplab vm exec` does from another process.
func checkRelay(t *testing.T, f *Fabric) {
	if err := f.ServeControl(); err != nil {
		t.Fatal(err)
	}
	p, err := f.WriteState()
	if err != nil {
		t.Fatal(err)
	}
	s, err := ReadState(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.VMs) != 3 || s.VMs[1].Name != "node1" || len(s.Links) != 4 {
		t.Fatalf("state %+v", s)
	}
	cl, err := DialControl(s.VMs[1].Control)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u, err := cl.Uname(ctx)
	if err != nil || u.Nodename != "node1" {
		t.Fatalf("uname through the relay = %+v, %v", u, err)
	}
}
