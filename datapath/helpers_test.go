package datapath

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/perf"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/hoplab/hoplab/internal/netnstest"
	"github.com/hoplab/hoplab/internal/testreq"
)

// The test node: pod1 and pod2 are local endpoints (pod3 too, where a
// test adds it), pod4 lives on node2, the service 10.224.1.1:80/TCP (and
// :53/UDP) is backed by pod4 and pod5.
var (
	pod1 = testEndpoint{ip: "10.1.1.10", id: 1, ifindex: 11, identity: 1001, mac: "0a:00:00:01:01:10", lxc: "0a:00:00:f1:01:10"}
	pod2 = testEndpoint{ip: "10.1.1.20", id: 2, ifindex: 12, identity: 1002, mac: "0a:00:00:01:01:20", lxc: "0a:00:00:f1:01:20"}
	pod3 = testEndpoint{ip: "10.1.1.30", id: 3, ifindex: 13, identity: 1003, mac: "0a:00:00:01:01:30", lxc: "0a:00:00:f1:01:30"}

	// node1PodCIDR holds pod1–pod3.
	node1PodCIDR = netip.MustParsePrefix("10.1.1.0/24")

	pod4IP   = netip.MustParseAddr("10.1.2.40")
	pod5IP   = netip.MustParseAddr("10.1.2.50")
	pod4ID   = Identity(2004)
	node1IP  = netip.MustParseAddr("10.255.1.11")
	vip      = netip.MustParseAddr("10.224.1.1")
	worldIP  = netip.MustParseAddr("192.0.2.7")
	torMAC   = mustMAC("0a:00:00:ff:00:01")
	bond0MAC = mustMAC("0a:00:00:b0:01:00")
)

type testEndpoint struct {
	ip       string
	id       uint16
	ifindex  int
	identity Identity
	mac, lxc string
}

func (e testEndpoint) addr() netip.Addr         { return netip.MustParseAddr(e.ip) }
func (e testEndpoint) podMAC() net.HardwareAddr { return mustMAC(e.mac) }
func (e testEndpoint) lxcMAC() net.HardwareAddr { return mustMAC(e.lxc) }

func (e testEndpoint) endpoint(ingress, egress bool) Endpoint {
	return Endpoint{IP: e.addr(), ID: e.id, IfIndex: e.ifindex, LXCMAC: e.lxcMAC(), PodMAC: e.podMAC(),
		Identity: e.identity, EnforceIngress: ingress, EnforceEgress: egress}
}

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// loadDatapath loads a fresh datapath with the test node's endpoints,
// ipcache and services, no policy enforcement.
// ctTestEntries sizes the tests' CT table: 32,768 entries hold every
// test's flows (the largest opens 4,000 with two entries each) and load far
// faster than the default table.
const ctTestEntries = 32768

func loadDatapath(t testing.TB) *Datapath {
	t.Helper()
	testreq.Root(t)
	dp, err := Load(Options{CTEntries: ctTestEntries})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	t.Cleanup(func() { dp.Close() })
	// As the agent sets it up: every local endpoint in node1's PodCIDR.
	must(t, dp.SetPodCIDR(node1PodCIDR))
	for _, ep := range []testEndpoint{pod1, pod2} {
		addEndpoint(t, dp, ep, false, false)
	}
	must(t, dp.IPCache.Upsert(netip.MustParsePrefix("10.1.2.0/24"), IPCacheEntry{Identity: pod4ID}))
	must(t, dp.IPCache.Upsert(netip.PrefixFrom(node1IP, 32), IPCacheEntry{Identity: IdentityHost}))
	return dp
}

func addEndpoint(t testing.TB, dp *Datapath, ep testEndpoint, ingress, egress bool) {
	t.Helper()
	must(t, dp.Endpoints.Upsert(ep.endpoint(ingress, egress)))
	must(t, dp.IPCache.Upsert(netip.PrefixFrom(ep.addr(), 32), IPCacheEntry{Identity: ep.identity}))
	must(t, dp.RegisterEndpoint(ep.id))
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// pkt describes a test packet; the zero values of the optional fields
// give a TCP SYN with TTL 64.
type pkt struct {
	srcMAC, dstMAC net.HardwareAddr
	src, dst       netip.Addr
	ttl            uint8
	proto          Proto
	sport, dport   uint16
	syn, ack       bool
	fin, rst       bool
	icmpType       uint8
	icmpID         uint16
	payload        []byte
	udpNoCsum      bool
}

// fromPod1 is pod1's packet to dst:dport as it leaves pod1's eth0.
func fromPod(ep testEndpoint, dst netip.Addr, dport uint16) pkt {
	return pkt{srcMAC: ep.podMAC(), dstMAC: ep.lxcMAC(), src: ep.addr(), dst: dst, ttl: 64,
		proto: ProtoTCP, sport: 40000, dport: dport, syn: true, payload: []byte("hello")}
}

func (p pkt) layers() []gopacket.SerializableLayer {
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: p.ttl, Id: 1, Flags: layers.IPv4DontFragment,
		SrcIP: p.src.AsSlice(), DstIP: p.dst.AsSlice()}
	eth := &layers.Ethernet{SrcMAC: p.srcMAC, DstMAC: p.dstMAC, EthernetType: layers.EthernetTypeIPv4}
	ls := []gopacket.SerializableLayer{eth, ip}
	switch p.proto {
	case ProtoTCP:
		ip.Protocol = layers.IPProtocolTCP
		tcp := &layers.TCP{SrcPort: layers.TCPPort(p.sport), DstPort: layers.TCPPort(p.dport),
			SYN: p.syn, ACK: p.ack, FIN: p.fin, RST: p.rst, Seq: 1000, Window: 64240}
		if p.ack {
			tcp.Ack = 2000
		}
		_ = tcp.SetNetworkLayerForChecksum(ip)
		ls = append(ls, tcp)
	case ProtoUDP:
		ip.Protocol = layers.IPProtocolUDP
		udp := &layers.UDP{SrcPort: layers.UDPPort(p.sport), DstPort: layers.UDPPort(p.dport)}
		_ = udp.SetNetworkLayerForChecksum(ip)
		ls = append(ls, udp)
	case ProtoICMP:
		ip.Protocol = layers.IPProtocolICMPv4
		ls = append(ls, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(p.icmpType, 0), Id: p.icmpID, Seq: 1})
	}
	return append(ls, gopacket.Payload(p.payload))
}

// bytes serializes the packet with correct lengths and checksums.
func (p pkt) bytes(t testing.TB) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, p.layers()...); err != nil {
		t.Fatalf("serialize: %v", err)
	}
	b := buf.Bytes()
	if p.udpNoCsum && p.proto == ProtoUDP {
		b[14+20+6], b[14+20+7] = 0, 0
	}
	return append([]byte(nil), b...)
}

// skbContext is the prefix of struct __sk_buff that BPF_PROG_TEST_RUN
// accepts as input context; only cb is set.
type skbContext struct {
	Len, PktType, Mark, QueueMapping, Protocol, VlanPresent, VlanTCI, VlanProto uint32
	Priority, IngressIfindex, Ifindex, TCIndex                                  uint32
	CB                                                                          [5]uint32
}

// result is what one program run produced.
type result struct {
	ret uint32
	out []byte
}

// run runs prog once on in, with skb->cb set from cb if given.
func run(t testing.TB, prog *ebpf.Program, in []byte, cb *[5]uint32) result {
	t.Helper()
	opts := &ebpf.RunOptions{Data: in, DataOut: make([]byte, len(in)+512), Repeat: 1}
	if cb != nil {
		opts.Context = skbContext{CB: *cb}
	}
	ret, err := prog.Run(opts)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return result{ret: ret, out: opts.DataOut}
}

// tc verdicts.
const (
	tcActOK       = 0
	tcActShot     = 2
	tcActRedirect = 7
)

// assertVerdict fails unless the run returned want.
func (r result) assertVerdict(t testing.TB, want uint32) {
	t.Helper()
	if r.ret != want {
		t.Fatalf("verdict %d, want %d", r.ret, want)
	}
}

// assertPacket compares the output byte for byte with want, and on a
// mismatch shows both decoded.
func (r result) assertPacket(t testing.TB, want []byte) {
	t.Helper()
	if string(r.out) != string(want) {
		t.Fatalf("packet mismatch\n got: %x\n      %v\nwant: %x\n      %v", r.out,
			gopacket.NewPacket(r.out, layers.LayerTypeEthernet, gopacket.Default),
			want, gopacket.NewPacket(want, layers.LayerTypeEthernet, gopacket.Default))
	}
}

// openEvents opens an event reader for the test.
func openEvents(t testing.TB, dp *Datapath) *EventReader {
	t.Helper()
	r, err := dp.NewEventReader(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// drain returns every event emitted so far.
func drain(t testing.TB, r *EventReader) []Event {
	t.Helper()
	var evs []Event
	for {
		r.SetDeadline(time.Now().Add(20 * time.Millisecond))
		ev, err := r.Read()
		if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, perf.ErrFlushed) {
			return evs
		}
		if err != nil {
			t.Fatalf("read event: %v", err)
		}
		t.Logf("event: %v", ev)
		evs = append(evs, ev)
	}
}

func drops(evs []Event) []*DropNotify {
	var out []*DropNotify
	for _, e := range evs {
		if d, ok := e.(*DropNotify); ok {
			out = append(out, d)
		}
	}
	return out
}

func traces(evs []Event) []*TraceNotify {
	var out []*TraceNotify
	for _, e := range evs {
		if d, ok := e.(*TraceNotify); ok {
			out = append(out, d)
		}
	}
	return out
}

// metric reads one counter.
func metric(t testing.TB, dp *Datapath, reason DropReason, dir Direction) MetricValue {
	t.Helper()
	v, err := dp.Metrics.Get(reason, dir)
	must(t, err)
	return v
}

// ctEntry reads one CT entry, failing the test when it is missing.
func ctEntry(t testing.TB, dp *Datapath, k CTKey) CTEntry {
	t.Helper()
	e, err := dp.CT.Lookup(k)
	if err != nil {
		t.Fatalf("CT entry %v: %v", k, err)
	}
	t.Logf("ct: %v", e)
	return e
}

func ap(a netip.Addr, port uint16) netip.AddrPort { return netip.AddrPortFrom(a, port) }

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }

// podNS names a pod's network namespace for this test process: named
// namespaces are global, and two test processes (make mutants runs two) must
// not share one; the name carries the process (netnstest.Prefix), so a
// later test process removes what an interrupted one left.
func podNS(base string) string { return netnstest.Prefix(base) + "ns" }

// TestMain removes the namespaces of test processes that died, and this
// one's on SIGINT or SIGTERM (netnstest.Main).
func TestMain(m *testing.M) { os.Exit(netnstest.Main(m)) }

// recvfrom is unix.Recvfrom without flags, called again when a signal
// interrupts it (the Go runtime preempts goroutines with one).
func recvfrom(fd int, buf []byte) (int, unix.Sockaddr, error) {
	for {
		n, from, err := unix.Recvfrom(fd, buf, 0)
		if err != unix.EINTR {
			return n, from, err
		}
	}
}
