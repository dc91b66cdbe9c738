package datapath

import (
	"io"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/hoplab/hoplab/internal/netnstest"
	"github.com/hoplab/hoplab/vmtest/agent/pods"
)

// Real sockets through the attached datapath, in a node namespace with two
// pod namespaces: pod1 connects to Service 10.224.1.1:80, from-container
// on lxc1 DNATs to pod2:8080 and redirects to lxc2, pod2's socket answers,
// and the reply is reverse-NATed on its way into pod1. This exercises what
// BPF_PROG_TEST_RUN cannot: real skbs with CHECKSUM_PARTIAL from veth, and
// bpf_redirect between devices.
func TestRealSocketsThroughService(t *testing.T) {
	dp := loadDatapath(t)
	netnstest.EnterNew(t)
	lo, err := netlink.LinkByName("lo")
	must(t, err)
	gw := netip.MustParseAddr("10.1.1.1")
	must(t, netlink.AddrAdd(lo, &netlink.Addr{IPNet: &net.IPNet{IP: gw.AsSlice(), Mask: net.CIDRMask(32, 32)}}))

	var created []*pods.Pod
	for i, ep := range []testEndpoint{pod1, pod2} {
		p, err := pods.Create(pods.Spec{Name: podNS([]string{"hl-dp-pod1", "hl-dp-pod2"}[i]), IP: ep.addr(), MAC: ep.podMAC(),
			HostIfName: []string{"lxcdp1", "lxcdp2"}[i], HostMAC: ep.lxcMAC(), Gateway: gw})
		must(t, err)
		t.Cleanup(func() { _ = p.Delete() })
		created = append(created, p)
		e := ep.endpoint(false, false)
		e.IfIndex = p.HostIndex
		must(t, dp.Endpoints.Upsert(e))
		must(t, dp.AttachLXC(p.HostIfName))
	}
	client, server := created[0], created[1]
	must(t, dp.Services.Upsert(webService(Backend{ID: 2, Addr: pod2.addr(), Port: 8080})))
	// The pods' sockets hand the lxc devices checksums to finish
	// (CHECKSUM_PARTIAL); with TX checksumming off there, the kernel
	// finishes them when the datapath redirects the packet, from the
	// pseudo-header sum the DNAT (and the reverse NAT) must have updated
	// (BPF_F_PSEUDO_HDR), and the receiving pod verifies them.
	for _, p := range created {
		setTxChecksum(t, p.HostIfName, false)
	}

	var ln net.Listener
	must(t, server.Do(func() (err error) {
		ln, err = net.Listen("tcp4", "10.1.1.20:8080")
		return err
	}))
	defer ln.Close()
	seen := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			seen <- "accept: " + err.Error()
			return
		}
		defer c.Close()
		seen <- c.RemoteAddr().String()
		_, _ = io.Copy(c, c)
	}()

	t.Log("pod1 connects to 10.224.1.1:80 and gets its bytes echoed by pod2")
	var conn net.Conn
	must(t, client.Do(func() (err error) {
		conn, err = net.DialTimeout("tcp4", "10.224.1.1:80", 3*time.Second)
		return err
	}))
	defer conn.Close()
	must(t, conn.SetDeadline(time.Now().Add(3*time.Second)))
	_, err = conn.Write([]byte("hello through the datapath"))
	must(t, err)
	buf := make([]byte, 26)
	_, err = io.ReadFull(conn, buf)
	must(t, err)
	if string(buf) != "hello through the datapath" {
		t.Fatalf("echo %q", buf)
	}
	peer := <-seen
	local := conn.LocalAddr().(*net.TCPAddr)
	if peer != local.String() {
		t.Errorf("pod2 saw the client as %s, want %s", peer, local)
	}

	out := ctEntry(t, dp, CTKey{Src: ap(pod1.addr(), uint16(local.Port)), Dst: ap(pod2.addr(), 8080), Proto: ProtoTCP, Flags: TupleOut})
	if out.RevNAT != 1 || out.TxPackets < 3 || out.RxPackets < 2 {
		t.Errorf("egress entry %v", out)
	}
}

// setTxChecksum switches a device's TX checksum offload (ethtool -K DEV tx
// on|off) in the current network namespace, through the legacy
// ETHTOOL_STXCSUM ioctl.
func setTxChecksum(t *testing.T, dev string, on bool) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	must(t, err)
	defer unix.Close(fd)
	const ethtoolSTxCsum = 0x17
	val := &struct{ cmd, data uint32 }{cmd: ethtoolSTxCsum}
	if on {
		val.data = 1
	}
	ifr := &struct {
		name [unix.IFNAMSIZ]byte
		data unsafe.Pointer
		_    [16]byte
	}{data: unsafe.Pointer(val)}
	copy(ifr.name[:], dev)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(ifr))); errno != 0 {
		t.Fatalf("ethtool -K %s tx %v: %v", dev, on, errno)
	}
	runtime.KeepAlive(val)
}
