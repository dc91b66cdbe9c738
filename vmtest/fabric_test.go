package vmtest

import (
	"net"
	"net/netip"
	"strings"
	"testing"
)

func mustMAC(t *testing.T, s string) net.HardwareAddr {
	t.Helper()
	m, err := net.ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestFabricTopologyMACs checks that MACs given per node reach the QEMU
// command lines of both ends and the configurations that rename the NICs,
// and that nodes without them keep the default scheme.
func TestFabricTopologyMACs(t *testing.T) {
	s := FabricSpec{Nodes: []FabricNode{
		{Name: "node1", Address: netip.MustParsePrefix("10.255.1.11/24"), Gateway: netip.MustParseAddr("10.255.1.1"),
			NICMACs:    []net.HardwareAddr{mustMAC(t, "52:54:71:f1:2b:01"), mustMAC(t, "52:54:71:f1:2b:02")},
			TorNICMACs: []net.HardwareAddr{mustMAC(t, "52:55:71:f1:2b:01"), mustMAC(t, "52:55:71:f1:2b:02")}},
		{Name: "node2", Address: netip.MustParsePrefix("10.255.2.12/24"), Gateway: netip.MustParseAddr("10.255.2.1")},
	}}
	if err := s.validate(); err != nil {
		t.Fatal(err)
	}
	render := func(nics ...*NIC) string {
		c := &Cmdline{}
		for _, n := range nics {
			n.Local, n.Remote = "/run/l", "/run/r"
			if err := n.Render(c); err != nil {
				t.Fatal(err)
			}
		}
		return c.String()
	}
	n10, t10 := s.uplinkNICs(0, 0)
	n11, t11 := s.uplinkNICs(0, 1)
	n20, t20 := s.uplinkNICs(1, 0)
	n21, t21 := s.uplinkNICs(1, 1)
	for _, c := range []struct {
		args string
		want []string
	}{
		{render(n10, n11), []string{"virtio-net-pci,netdev=net0,id=nic0,mac=52:54:71:f1:2b:01,", "virtio-net-pci,netdev=net1,id=nic1,mac=52:54:71:f1:2b:02,"}},
		{render(n20, n21), []string{"id=nic0,mac=02:68:6c:02:00:00,", "id=nic1,mac=02:68:6c:02:00:01,"}},
		{render(t10, t11, t20, t21), []string{"id=nic0,mac=52:55:71:f1:2b:01,", "id=nic1,mac=52:55:71:f1:2b:02,", "id=nic2,mac=02:68:6c:00:00:02,", "id=nic3,mac=02:68:6c:00:00:03,"}},
	} {
		for _, w := range c.want {
			if !strings.Contains(c.args, w) {
				t.Errorf("QEMU args %q lack %q", c.args, w)
			}
		}
	}
	if t20.Name != "eth2" || n21.Name != "eth1" {
		t.Errorf("NIC names %s %s", t20.Name, n21.Name)
	}
	n := s.NodeConfig(0)
	if n.Links[0].MAC != "52:54:71:f1:2b:01" || n.Links[1].MAC != "52:54:71:f1:2b:02" {
		t.Errorf("node1 config links %+v", n.Links)
	}
	r := s.RouterConfig()
	var macs []string
	for _, l := range r.Links {
		macs = append(macs, l.Name+"="+l.MAC)
	}
	if got := strings.Join(macs, " "); got != "eth0=52:55:71:f1:2b:01 eth1=52:55:71:f1:2b:02 eth2=02:68:6c:00:00:02 eth3=02:68:6c:00:00:03" {
		t.Errorf("router config links %s", got)
	}

	bad := FabricSpec{NoConfigure: true, Nodes: []FabricNode{{Name: "n", NICMACs: []net.HardwareAddr{mustMAC(t, "52:54:00:00:00:01")}}}}
	if err := bad.validate(); err == nil || !strings.Contains(err.Error(), "1 MACs for 2 NICs") {
		t.Errorf("one MAC for two NICs: %v", err)
	}
}
