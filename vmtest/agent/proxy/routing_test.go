package proxy

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/hoplab/hoplab/internal/netnstest"
	"github.com/hoplab/hoplab/internal/testreq"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

func TestMain(m *testing.M) { os.Exit(netnstest.Main(m)) }

// markedDial connects from src to dst with the socket's packets marked
// mark (0: unmarked), as the datapath marks a pod's packets for the proxy.
func markedDial(src, dst netip.AddrPort, mark uint32) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: net.TCPAddrFromAddrPort(src), Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(mark)) }); err != nil {
			return err
		}
		return serr
	}}
	return d.DialContext(context.Background(), "tcp4", dst.String())
}

// TestTransparentListenerThroughPolicyRouting runs the real mechanism in a
// namespace of the host kernel: a packet to a foreign address (pod4's
// 10.1.2.40:8080, not an address of this namespace) marked with the magic
// and port is delivered locally by the rule and table SetupRouting adds,
// and the IP_TRANSPARENT listener accepts it with the original destination
// as its local address. Unmarked, the same connect has no route.
func TestTransparentListenerThroughPolicyRouting(t *testing.T) {
	testreq.Root(t)
	be := newBackend(t) // in the host's namespace, where the proxy's goroutines dial
	netnstest.EnterNew(t)
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	// pod1's address, local here so that the answers reach the client.
	if err := h.AddrAdd(lo, &netlink.Addr{IPNet: &net.IPNet{IP: net.IP{10, 1, 1, 10}, Mask: net.CIDRMask(32, 32)}}); err != nil {
		t.Fatal(err)
	}
	must(t, SetupRouting(h))
	must(t, SetupRouting(h)) // idempotent

	rules, err := h.RuleList(netlink.FAMILY_V4)
	must(t, err)
	found := 0
	for _, r := range rules {
		if r.Table == RouteTable && r.Mark == MarkMagicToProxy && r.Mask != nil && *r.Mask == MarkMagicMask && r.Priority == RulePriority {
			found++
		}
	}
	if found != 1 {
		t.Fatalf("%d proxy rules in %+v", found, rules)
	}

	var recs []nodeapi.L7Event
	records := make(chan nodeapi.L7Event, 16)
	p := New(Options{Node: "node2", Emit: func(e nodeapi.L7Event) { records <- e },
		Dial: func(ctx context.Context, dst netip.AddrPort) (net.Conn, error) {
			if dst != netip.MustParseAddrPort("10.1.2.40:8080") {
				return nil, errors.New("wrong destination " + dst.String())
			}
			var d net.Dialer
			return d.DialContext(ctx, "tcp4", be.addr.String())
		}})
	defer p.Close()
	pol, err := FromTopology(mustTopology(t, ""), "node2")
	must(t, err)
	if _, err := p.Update(pol); err != nil { // ListenTransparent, in this namespace
		t.Fatal(err)
	}

	src, dst := netip.MustParseAddrPort("10.1.1.10:40100"), netip.MustParseAddrPort("10.1.2.40:8080")
	if c, err := markedDial(src, dst, 0); err == nil {
		c.Close()
		t.Fatal("unmarked connect to a foreign address succeeded")
	}
	c, err := markedDial(src, dst, MarkToProxy(8080))
	if err != nil {
		t.Fatalf("marked connect: %v", err)
	}
	defer c.Close()
	if got := c.RemoteAddr().String(); got != dst.String() {
		t.Errorf("connected to %s", got)
	}
	cl := &client{c: c, r: bufio.NewReader(c)}
	if status, body := cl.do(t, get("/public/a")); status != 200 || body != "backend GET /public/a ua=" {
		t.Fatalf("allowed: %d %q", status, body)
	}
	if status, _ := cl.do(t, get("/private")); status != 403 {
		t.Fatalf("denied: %d", status)
	}
	for range 4 {
		recs = append(recs, <-records)
	}
	if r := recs[0]; r.Src != src || r.Dst != dst || r.SrcName != "pod1" || r.Endpoint != "pod4" || r.Verdict != nodeapi.L7Forwarded {
		t.Errorf("record %+v", r)
	}
	if recs[3].Status != 403 {
		t.Errorf("record %+v", recs[3])
	}

	must(t, TeardownRouting(h))
	must(t, TeardownRouting(h)) // nothing left: no error
	if c, err := markedDial(netip.MustParseAddrPort("10.1.1.10:40101"), dst, MarkToProxy(8080)); err == nil {
		c.Close()
		t.Fatal("marked connect after the teardown succeeded")
	}
}

func TestMarkToProxy(t *testing.T) {
	if got := MarkToProxy(8080); got != 0x1f900200 {
		t.Errorf("MarkToProxy(8080) = %#x", got)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
