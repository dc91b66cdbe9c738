package roles

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/hoplab/hoplab/internal/netnstest"
	"github.com/hoplab/hoplab/internal/testreq"
	"github.com/hoplab/hoplab/topologies"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// TestMain removes the pod namespaces that test processes which died
// before their cleanup (interrupted, killed, timed out) left in /run/netns,
// and removes this process's own when it is interrupted.
func TestMain(m *testing.M) { os.Exit(netnstest.Main(m)) }

// topologyText reads a shipped topology's file.
func topologyText(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "topologies", name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// events collects what a Node emits.
type events struct {
	mu   sync.Mutex
	list []any
	kick chan struct{}
}

func newEvents() *events { return &events{kick: make(chan struct{}, 1)} }

func (e *events) emit(name string, data any) error {
	e.mu.Lock()
	e.list = append(e.list, data)
	e.mu.Unlock()
	select {
	case e.kick <- struct{}{}:
	default:
	}
	return nil
}

func (e *events) reset() {
	e.mu.Lock()
	e.list = nil
	e.mu.Unlock()
}

// wait returns the first event for which match holds, failing the test
// after timeout.
func (e *events) wait(t *testing.T, what string, timeout time.Duration, match func(any) bool) any {
	t.Helper()
	deadline := time.After(timeout)
	for {
		e.mu.Lock()
		for _, ev := range e.list {
			if match(ev) {
				e.mu.Unlock()
				return ev
			}
		}
		n := len(e.list)
		e.mu.Unlock()
		select {
		case <-e.kick:
		case <-deadline:
			t.Fatalf("no %s among %d events within %v", what, n, timeout)
		}
	}
}

// testNode builds node of the topology text in a fresh network namespace
// of the host kernel, with a veth bond0 standing in for the bond (the host
// kernel has no bonding). BGP stays off: its sockets would not live in the
// test's namespace.
func testNode(t *testing.T, file, text, node string) (*Node, *topologies.Topology, *events) {
	t.Helper()
	testreq.Root(t)
	top, err := topologies.Parse(file, []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	nodeNamespace(t, top, node)
	ev := newEvents()
	opts := Options{NetNSPrefix: netnstest.Prefix("node"), Emit: ev.emit, CTEntries: 4096}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, res, err := Setup(ctx, opts, nodeapi.Setup{Topology: text, File: file, Node: node, NoBGP: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	t.Logf("%s set up in %v: %d endpoints, programs %v", node, res.Took, len(res.Endpoints), res.Programs)
	return n, top, ev
}

// nodeNamespace moves the test into a fresh network namespace (see
// netnstest.EnterNew) with what the harness gives a node: bond0 with the
// node's uplink address and a default route via its gateway.
func nodeNamespace(t *testing.T, top *topologies.Topology, node string) netns.NsHandle {
	t.Helper()
	ns := netnstest.EnterNew(t)
	tn := top.Node(node)
	// A veth pair: the host kernel has neither bonding nor dummy devices.
	bond := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "bond0", HardwareAddr: tn.BondMAC.HardwareAddr()},
		PeerName: "tor0", PeerHardwareAddr: tn.TorBondMAC.HardwareAddr()}
	must(t, netlink.LinkAdd(bond))
	peer, err := netlink.LinkByName("tor0")
	must(t, err)
	must(t, netlink.LinkSetUp(peer))
	l, err := netlink.LinkByName("bond0")
	must(t, err)
	must(t, netlink.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: tn.Uplink.Address.Addr().AsSlice(), Mask: net.CIDRMask(tn.Uplink.Address.Bits(), 32)}}))
	must(t, netlink.LinkSetUp(l))
	must(t, netlink.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: tn.Uplink.Gateway.AsSlice()}))
	return ns
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func parse(t *testing.T, text string) *topologies.Topology {
	t.Helper()
	top, err := topologies.Parse("test.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return top
}

// vipSYN is a TCP SYN from pod, as its eth0 sends it (its MAC → its lxc
// MAC), from sport to Service 10.224.1.1:80.
func vipSYN(t *testing.T, pod *topologies.Pod, sport uint16) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr(pod.MAC[:]), DstMAC: net.HardwareAddr(pod.LXCMAC[:]), EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: pod.IP.AsSlice(), DstIP: net.IP{10, 224, 1, 1}}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: 80, SYN: true, Seq: 1000, Window: 64240}
	must(t, tcp.SetNetworkLayerForChecksum(ip))
	buf := gopacket.NewSerializeBuffer()
	must(t, gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, tcp))
	return buf.Bytes()
}
