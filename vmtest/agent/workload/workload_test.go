package workload

import (
	"context"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hoplab/hoplab/internal/netnstest"
	"github.com/hoplab/hoplab/internal/testreq"
	"github.com/hoplab/hoplab/vmtest/agent/pods"
	"github.com/vishvananda/netlink"
)

// TestMain removes the namespaces of test processes that died, and this
// one's on SIGINT or SIGTERM (netnstest.Main).
func TestMain(m *testing.M) { os.Exit(netnstest.Main(m)) }

// twoPods builds a node namespace with a client pod and a server pod.
func twoPods(t *testing.T) (client, server *pods.Pod) {
	t.Helper()
	testreq.Root(t)
	netnstest.EnterNew(t)
	lo, _ := netlink.LinkByName("lo")
	if err := netlink.AddrAdd(lo, &netlink.Addr{IPNet: &net.IPNet{IP: net.IP{10, 1, 1, 1}, Mask: net.CIDRMask(32, 32)}}); err != nil {
		t.Fatal(err)
	}
	mk := func(name, ip, host string, last byte) *pods.Pod {
		p, err := pods.Create(pods.Spec{
			Name: name, IP: netip.MustParseAddr(ip), Gateway: netip.MustParseAddr("10.1.1.1"),
			MAC: net.HardwareAddr{0x0a, 0x58, 0, 0, 1, last}, HostIfName: host,
			HostMAC: net.HardwareAddr{0x0a, 0x59, 0, 0, 1, last},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Delete() })
		return p
	}
	prefix := netnstest.Prefix("wl")
	return mk(prefix+"client", "10.1.1.10", "lxcwl1", 1), mk(prefix+"server", "10.1.1.40", "lxcwl2", 2)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestListenersAnswerAndNameThePod(t *testing.T) {
	client, server := twoPods(t)
	for _, spec := range []string{"tcp/8080", "udp/5353"} {
		proto, port, err := ParseListen(spec)
		if err != nil {
			t.Fatal(err)
		}
		l, err := Listen(server, "pod4", proto, port)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = l.Close() })
	}

	got := HTTPGet(ctx(t), client, netip.MustParseAddrPort("10.1.1.40:8080"))
	if !got.OK || !strings.HasPrefix(got.Reply, "hoplab pod4 10.1.1.40:8080 from 10.1.1.10:") {
		t.Errorf("HTTP GET = %+v, want an answer from pod4 to 10.1.1.10", got)
	}
	got = UDPExchange(ctx(t), client, netip.MustParseAddrPort("10.1.1.40:5353"), []byte("ping"))
	if !got.OK || !strings.HasPrefix(got.Reply, "hoplab pod4 10.1.1.40:5353 from 10.1.1.10:") || !strings.HasSuffix(got.Reply, "\nping") {
		t.Errorf("UDP exchange = %+v, want pod4's answer naming 10.1.1.40:5353 and echoing ping", got)
	}
	got = Ping(ctx(t), client, netip.MustParseAddr("10.1.1.40"))
	if !got.OK || got.Reply != "10.1.1.40" {
		t.Errorf("ping = %+v, want a reply from 10.1.1.40", got)
	}
	got = TCPConnect(ctx(t), client, netip.MustParseAddrPort("10.1.1.40:9999"))
	if got.OK || !strings.Contains(got.Error, "refused") {
		t.Errorf("connect to a closed port = %+v, want connection refused", got)
	}
}

func TestParseListenRejectsMalformed(t *testing.T) {
	for _, s := range []string{"", "tcp", "sctp/80", "tcp/0", "tcp/65536", "udp/x"} {
		if _, _, err := ParseListen(s); err == nil {
			t.Errorf("ParseListen(%q) accepted", s)
		}
	}
}

// TestWithSourcePort: a client bound to a source port sends from it (TCP
// and UDP), so specs know a real connection's flow in advance.
func TestWithSourcePort(t *testing.T) {
	tl, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()
	go func() {
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	ns := WithSourcePort(hereNS{}, 47123)
	out := TCPConnect(context.Background(), ns, netip.MustParseAddrPort(tl.Addr().String()))
	if !out.OK || out.Local != "127.0.0.1:47123" || out.Cookie == 0 {
		t.Fatalf("tcp: %+v", out)
	}
	ul, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ul.Close()
	go func() {
		buf := make([]byte, 64)
		n, from, err := ul.ReadFrom(buf)
		if err == nil {
			_, _ = ul.WriteTo([]byte(from.String()+" "+string(buf[:n])), from)
		}
	}()
	out = UDPExchange(context.Background(), WithSourcePort(hereNS{}, 47124), netip.MustParseAddrPort(ul.LocalAddr().String()), []byte("x"))
	if !out.OK || out.Reply != "127.0.0.1:47124 x" {
		t.Fatalf("udp: %+v", out)
	}
	if WithSourcePort(hereNS{}, 0) != (hereNS{}) {
		t.Error("port 0 wraps the namespace")
	}
}

// hereNS runs functions in the test's own namespace.
type hereNS struct{}

func (hereNS) Do(fn func() error) error { return fn() }
