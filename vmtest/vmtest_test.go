package vmtest

import (
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/hoplab/hoplab/vmtest/protocol/control"
)

func TestCmdlineIDsAndFDs(t *testing.T) {
	c := &Cmdline{}
	if a, b, n := c.ID("net"), c.ID("net"), c.ID("nic"); a != "net0" || b != "net1" || n != "nic0" {
		t.Fatalf("ids %s %s %s", a, b, n)
	}
	f1, f2 := os.Stdin, os.Stdout
	if c.FD(f1) != 3 || c.FD(f2) != 4 || len(c.Files) != 2 {
		t.Fatalf("fds %v", c.Files)
	}
}

func TestNICRender(t *testing.T) {
	c := &Cmdline{}
	n0 := &NIC{Name: "eth0", MAC: MAC(1, 0), Local: "/r/a.q", Remote: "/r/a.h"}
	n1 := &NIC{Name: "eth1", MAC: MAC(1, 1), Local: "/r/b.q", Remote: "/r/b.h"}
	for _, n := range []*NIC{n0, n1} {
		if err := n.Render(c); err != nil {
			t.Fatal(err)
		}
	}
	got := strings.Join(c.Args, " ")
	if !strings.Contains(got, "id=nic0,mac=02:68:6c:01:00:00,speed=10000,duplex=full") || !strings.Contains(got, "netdev=net1,id=nic1,mac=02:68:6c:01:00:01,speed=10000,duplex=full") {
		t.Fatalf("args %s", got)
	}
	if n0.ID != "nic0" || n1.ID != "nic1" {
		t.Fatalf("ids %s %s", n0.ID, n1.ID)
	}
	if err := (&NIC{Name: "x", Local: "a", Remote: "b"}).Render(c); err == nil {
		t.Fatal("NIC without MAC rendered")
	}
}

func TestChardevRender(t *testing.T) {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c := &Cmdline{}
	for _, d := range []Device{&serialConsole{socketChardev{file: f}}, &qmpMonitor{socketChardev{file: f, server: true}}, &controlPort{socketChardev{file: f}}} {
		if err := d.Render(c); err != nil {
			t.Fatal(err)
		}
	}
	got := c.String()
	for _, want := range []string{
		"-chardev socket,id=con0,fd=3 -serial chardev:con0",
		"-chardev socket,id=qmp0,fd=4,server=on,wait=off -mon chardev=qmp0,mode=control",
		"-chardev socket,id=ctl0,fd=5 -device virtio-serial-pci,id=vser0 -device virtserialport,bus=vser0.0,chardev=ctl0,name=hoplab.ctl",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in %s", want, got)
		}
	}
	r := &Cmdline{Repro: true, ReproDir: "/run/x"}
	for _, d := range []Device{&serialConsole{socketChardev{file: f}}, &controlPort{socketChardev{file: f}}} {
		d.Render(r)
	}
	if got := r.String(); !strings.Contains(got, "-serial stdio") || !strings.Contains(got, "path=/run/x/ctl0.sock,server=on") || len(r.Files) != 0 {
		t.Errorf("repro %s", got)
	}
}

func TestShellQuote(t *testing.T) {
	c := &Cmdline{Args: []string{"-append", "console=ttyS0 quiet", "-name", "a'b"}}
	if got := c.String(); got != `-append 'console=ttyS0 quiet' -name 'a'\''b'` {
		t.Fatalf("quoted %s", got)
	}
}

func TestNewOptions(t *testing.T) {
	t.Setenv(EnvKernel, "/k/bzImage,/k/modules")
	t.Setenv(EnvAccel, "")
	o, err := NewOptions(WithMemory(128))
	if err != nil {
		t.Fatal(err)
	}
	if o.Kernel != "/k/bzImage" || o.MemoryMiB != 128 || o.CPUs != 1 {
		t.Fatalf("options %+v", o)
	}
	if _, err := NewOptions(WithMemory(1024)); err == nil {
		t.Fatal("1024 MiB accepted")
	}
	if _, err := NewOptions(WithAccel("hvf")); err == nil {
		t.Fatal("unknown accelerator accepted")
	}
	t.Setenv(EnvKernel, "")
	if _, err := NewOptions(); err == nil {
		t.Fatal("no kernel accepted")
	}
}

func TestFabricConfigs(t *testing.T) {
	s := FabricSpec{Nodes: []FabricNode{
		{Name: "node1", Address: netip.MustParsePrefix("10.255.1.11/24"), Gateway: netip.MustParseAddr("10.255.1.1")},
		{Name: "a-very-long-node-name", Address: netip.MustParsePrefix("10.255.2.12/24"), Gateway: netip.MustParseAddr("10.255.2.1"), Bond: control.BondActiveBackup},
	}}
	if err := s.validate(); err != nil {
		t.Fatal(err)
	}
	if s.Router != "tor" || s.Nodes[0].Bond != control.BondBalanceXOR {
		t.Fatalf("defaults not applied: %+v", s)
	}
	r := s.RouterConfig()
	if r.Sysctls["net.ipv4.ip_forward"] != "1" || len(r.Bonds) != 2 || len(r.Links) != 4 {
		t.Fatalf("router config %+v", r)
	}
	if b := r.Bonds[0]; b.Name != "node1" || b.Mode != control.BondBalanceXOR || strings.Join(b.Slaves, ",") != "eth0,eth1" {
		t.Fatalf("bond 0 %+v", b)
	}
	if b := r.Bonds[1]; b.Name != "bond2" || b.Mode != control.BondActiveBackup || strings.Join(b.Slaves, ",") != "eth2,eth3" {
		t.Fatalf("bond 1 %+v", b)
	}
	if r.Addresses[1] != (control.Address{Link: "bond2", CIDR: "10.255.2.1/24"}) {
		t.Fatalf("addresses %+v", r.Addresses)
	}
	if r.Links[3].MAC != "02:68:6c:00:00:03" {
		t.Fatalf("links %+v", r.Links)
	}
	n := s.NodeConfig(1)
	if n.Links[1].MAC != "02:68:6c:02:00:01" || n.Bonds[0].Name != NodeBond || n.Routes[0].Gateway != "10.255.2.1" || n.Addresses[0].CIDR != "10.255.2.12/24" {
		t.Fatalf("node config %+v", n)
	}
	dup := FabricSpec{Nodes: []FabricNode{{Name: "tor"}}}
	if err := dup.validate(); err == nil {
		t.Fatal("node named like the router accepted")
	}
}

func TestMACsAreUnique(t *testing.T) {
	seen := map[string]bool{}
	for vm := range 10 {
		for nic := range 8 {
			m := MAC(vm, nic)
			if seen[m.String()] || m[0]&2 == 0 || m[0]&1 != 0 {
				t.Fatalf("MAC %s duplicate or not a local unicast address", m)
			}
			seen[m.String()] = true
		}
	}
}

func TestShortName(t *testing.T) {
	for in, want := range map[string]string{
		"TestBootUname":               "bootuname",
		"TestBoot/6.1-cloud":          "61-cloud",
		"TestAVeryLongTestNameIndeed": "averylongtes",
		"Test/":                       "vm",
	} {
		if got := shortName(in); got != want {
			t.Errorf("shortName(%q) = %q, want %q", in, got, want)
		}
	}
}
