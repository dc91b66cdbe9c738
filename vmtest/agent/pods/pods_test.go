package pods

import (
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/hoplab/hoplab/internal/netnstest"
	"github.com/hoplab/hoplab/internal/testreq"
	"github.com/vishvananda/netlink"
)

// inNodeNS puts the test in a fresh node namespace that owns the router IP.

// TestMain removes the namespaces of test processes that died, and this
// one's on SIGINT or SIGTERM (netnstest.Main).
func TestMain(m *testing.M) { os.Exit(netnstest.Main(m)) }

func inNodeNS(t *testing.T) {
	t.Helper()
	netnstest.EnterNew(t)
	lo, _ := netlink.LinkByName("lo")
	if err := netlink.AddrAdd(lo, &netlink.Addr{IPNet: hostPrefix(netip.MustParseAddr("10.1.1.1"))}); err != nil {
		t.Fatal(err)
	}
}

func spec(name, ip, host string, last byte) Spec {
	return Spec{
		Name: name, IP: netip.MustParseAddr(ip), Gateway: netip.MustParseAddr("10.1.1.1"),
		MAC:        net.HardwareAddr{0x0a, 0x58, 0, 0, 0, last},
		HostIfName: host, HostMAC: net.HardwareAddr{0x0a, 0x59, 0, 0, 0, last},
	}
}

func TestPodWiringAndKernelForwarding(t *testing.T) {
	testreq.Root(t)
	inNodeNS(t)
	prefix := netnstest.Prefix("pods")
	s1 := spec(prefix+"pod1", "10.1.1.10", "lxctest1", 1)
	s2 := spec(prefix+"pod2", "10.1.1.20", "lxctest2", 2)
	p1, err := Create(s1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p1.Delete() })
	p2, err := Create(s2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p2.Delete() })

	// Inside pod1: the gateway neighbour is permanent and points at lxc's MAC,
	// and the only non-link route is the default via the gateway.
	err = p1.Do(func() error {
		neighs, err := netlink.NeighList(p1.PodIndex, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		if len(neighs) != 1 || !neighs[0].IP.Equal(net.ParseIP("10.1.1.1")) ||
			neighs[0].HardwareAddr.String() != s1.HostMAC.String() || neighs[0].State != netlink.NUD_PERMANENT {
			t.Errorf("pod1 neighbours = %+v, want one permanent 10.1.1.1 → %v", neighs, s1.HostMAC)
		}
		routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		var defaults int
		for _, r := range routes {
			if r.Dst == nil || r.Dst.String() == "0.0.0.0/0" {
				defaults++
				if !r.Gw.Equal(net.ParseIP("10.1.1.1")) {
					t.Errorf("default route via %v, want 10.1.1.1", r.Gw)
				}
			}
		}
		if defaults != 1 {
			t.Errorf("pod1 has %d default routes, want 1: %+v", defaults, routes)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// A UDP datagram from pod1 reaches pod2 through the node's kernel.
	var server *net.UDPConn
	if err := p2.Do(func() (err error) {
		server, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP("10.1.1.20"), Port: 7000})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	var client *net.UDPConn
	if err := p1.Do(func() (err error) {
		client, err = net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.ParseIP("10.1.1.20"), Port: 7000})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if _, err := client.Write([]byte("hello pod2")); err != nil {
		t.Fatal(err)
	}
	_ = server.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	n, from, err := server.ReadFromUDP(buf)
	if err != nil {
		t.Fatalf("pod2 did not receive: %v", err)
	}
	if string(buf[:n]) != "hello pod2" || from.IP.String() != "10.1.1.10" {
		t.Errorf("pod2 got %q from %v, want \"hello pod2\" from 10.1.1.10", buf[:n], from)
	}

	if err := p1.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := netlink.LinkByName("lxctest1"); err == nil {
		t.Error("lxctest1 still exists after Delete")
	}
	if _, err := os.Stat(p1.NetNSPath()); !os.IsNotExist(err) {
		t.Errorf("netns %s still exists after Delete (stat err %v)", p1.NetNSPath(), err)
	}
}

func TestCreateRejectsBadSpecs(t *testing.T) {
	bad := spec("p", "10.1.1.10", "lxc-name-too-long-x", 1)
	if _, err := Create(bad); err == nil {
		t.Fatal("Create accepted a 19-byte interface name")
	}
	bad = spec("p", "10.1.1.10", "lxc1", 1)
	bad.MAC = nil
	if _, err := Create(bad); err == nil {
		t.Fatal("Create accepted an empty MAC")
	}
}
