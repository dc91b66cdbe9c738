package datapath

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// NodePort under BPF_PROG_TEST_RUN. node1 (the test node, address
// node1IP) serves NodePort 30080/TCP; the client 192.0.2.50 is outside the
// cluster (WORLD). The kernel's forwarding between from-netdev and
// to-netdev is played by the test: TTL-1 and bond0's and the ToR's MACs.
const (
	nodePort    = 30080
	nodePortID  = 7
	clientPort  = 40000
	backendPort = 8080
)

var clientIP = netip.MustParseAddr("192.0.2.50")

// nodePortService is node1IP:30080/TCP, a NodePort frontend, with the
// given backends.
func nodePortService(backends ...Backend) Service {
	return Service{VIP: node1IP, Port: nodePort, Proto: ProtoTCP, ID: nodePortID, NodePort: true, Backends: backends}
}

// loadNodePortDatapath is loadDatapath with node1's address set and the
// NodePort service backed by the given backends.
func loadNodePortDatapath(t testing.TB, backends ...Backend) *Datapath {
	t.Helper()
	dp := loadDatapath(t)
	must(t, dp.SetNodeAddress(node1IP))
	must(t, dp.Services.Upsert(nodePortService(backends...)))
	return dp
}

// fromClient is the client's SYN to node1:30080 as it arrives on bond0.
func fromClient() pkt {
	return pkt{srcMAC: torMAC, dstMAC: bond0MAC, src: clientIP, dst: node1IP, ttl: 64,
		proto: ProtoTCP, sport: clientPort, dport: nodePort, syn: true, payload: []byte("hello")}
}

// forwarded is p after node1's kernel routed it out of bond0 towards the
// ToR: TTL-1, bond0's MAC as source, the ToR's as destination.
func forwarded(p pkt) pkt {
	p.ttl--
	p.srcMAC, p.dstMAC = bond0MAC, torMAC
	return p
}

// reply is the answer to p: addresses and ports swapped, SYN-ACK.
func reply(p pkt) pkt {
	p.src, p.dst = p.dst, p.src
	p.sport, p.dport = p.dport, p.sport
	p.srcMAC, p.dstMAC = p.dstMAC, p.srcMAC
	p.syn, p.ack = true, true
	return p
}

// assertValidChecksums decodes the frame and recomputes its IPv4 and L4
// checksums: a translated packet must carry correct ones.
func assertValidChecksums(t testing.TB, frame []byte) {
	t.Helper()
	p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if ip == nil {
		t.Fatalf("no IPv4 in %x", frame)
	}
	want := append([]byte(nil), frame...)
	// Serializing again with checksums computed must give the same bytes.
	ls := []gopacket.SerializableLayer{p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet), ip}
	switch l4 := p.TransportLayer().(type) {
	case *layers.TCP:
		_ = l4.SetNetworkLayerForChecksum(ip)
		ls = append(ls, l4)
	case *layers.UDP:
		_ = l4.SetNetworkLayerForChecksum(ip)
		ls = append(ls, l4)
	default:
		t.Fatalf("no TCP or UDP in %v", p)
	}
	ls = append(ls, gopacket.Payload(p.TransportLayer().LayerPayload()))
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, ls...); err != nil {
		t.Fatalf("serialize: %v", err)
	}
	if got := buf.Bytes(); string(got) != string(want[:len(got)]) {
		t.Fatalf("checksums: frame %x\nrecomputed %x", want, got)
	}
}

// traceAt returns the only trace of point among trs.
func traceAt(t testing.TB, trs []*TraceNotify, point ObsPoint) *TraceNotify {
	t.Helper()
	var found *TraceNotify
	for _, tr := range trs {
		if tr.ObsPoint == point {
			if found != nil {
				t.Fatalf("two %v traces in %v", point, trs)
			}
			found = tr
		}
	}
	if found == nil {
		t.Fatalf("no %v trace in %v", point, trs)
	}
	return found
}

// The client → node1:30080, backend pod2:8080 on node1. from-netdev DNATs
// to pod2:8080 and routes it like any packet for a local pod (TTL-1, MACs,
// pod2's to-container, whose ingress policy admits WORLD on 8080). pod2's
// SYN-ACK goes through the stack; to-netdev rewrites its source back to
// node1:30080 before it leaves (the kernel must not see the node's
// address as source of a packet it receives).
func TestNodePortLocalBackend(t *testing.T) {
	dp := loadNodePortDatapath(t, Backend{ID: 2, Addr: pod2.addr(), Port: backendPort})
	events := openEvents(t, dp)
	addEndpoint(t, dp, pod2, true, false)
	must(t, dp.Policy.Allow(L3L4Key(pod2.id, Ingress, IdentityWorld, backendPort, ProtoTCP)))

	t.Log("the client's SYN to node1:30080 arrives on bond0")
	in := fromClient()
	res := run(t, dp.FromNetdev, in.bytes(t), nil)

	t.Log("from-netdev: DNAT to pod2:8080, TTL-1, pod2's MACs, redirect to its lxc")
	res.assertVerdict(t, tcActRedirect)
	dnat := in
	dnat.dst, dnat.dport = pod2.addr(), backendPort
	want := dnat
	want.ttl, want.srcMAC, want.dstMAC = 63, pod2.lxcMAC(), pod2.podMAC()
	res.assertPacket(t, want.bytes(t))
	assertValidChecksums(t, res.out[:len(want.bytes(t))])

	t.Log("events: from-netdev with the DNATed packet, then pod2's to-container, both WORLD")
	tr := traces(drain(t, events))
	if len(tr) != 2 {
		t.Fatalf("traces %v, want from-netdev and to-container", tr)
	}
	if fn := tr[0]; fn.ObsPoint != TraceFromNetwork || fn.SrcIdentity != IdentityWorld || fn.Reason != TraceReasonPolicy ||
		string(fn.Data) != string(dnat.bytes(t)) {
		t.Errorf("from-netdev trace %+v, want the DNATed packet %x", fn, dnat.bytes(t))
	}
	if tc := tr[1]; tc.ObsPoint != TraceToLXC || tc.SrcIdentity != IdentityWorld || tc.DstID != pod2.id {
		t.Errorf("to-container trace %+v", tc)
	}

	t.Log("CT: the service entry pins backend 2, the NodePort entry holds rev-NAT 7, to-container's ingress entry")
	svc := ctEntry(t, dp, CTKey{Src: ap(clientIP, clientPort), Dst: ap(node1IP, nodePort), Proto: ProtoTCP, Flags: TupleService})
	if svc.BackendID != 2 || svc.RevNAT != nodePortID || svc.Flags&CTService == 0 {
		t.Errorf("service entry %v", svc)
	}
	npKey := CTKey{Src: ap(clientIP, clientPort), Dst: ap(pod2.addr(), backendPort), Proto: ProtoTCP, Flags: TupleOut}
	np := ctEntry(t, dp, npKey)
	if np.Flags&CTNodePort == 0 || np.RevNAT != nodePortID || np.BackendID != 2 || np.SrcIdentity != IdentityWorld || np.TxPackets != 1 {
		t.Errorf("NodePort entry %v", np)
	}
	if !strings.Contains(np.String(), "NodePort") {
		t.Errorf("NodePort entry prints %q", np)
	}
	ctEntry(t, dp, CTKey{Src: ap(clientIP, clientPort), Dst: ap(pod2.addr(), backendPort), Proto: ProtoTCP, Flags: TupleIn})

	t.Log("pod2's SYN-ACK, routed by node1's kernel to bond0, reaches to-netdev")
	back := forwarded(reply(dnat))
	res = run(t, dp.ToNetdev, back.bytes(t), nil)

	t.Log("to-netdev: source back to node1:30080, TTL and MACs untouched")
	res.assertVerdict(t, tcActOK)
	wantBack := back
	wantBack.src, wantBack.sport = node1IP, nodePort
	res.assertPacket(t, wantBack.bytes(t))
	assertValidChecksums(t, res.out[:len(wantBack.bytes(t))])
	tr = traces(drain(t, events))
	if tn := traceAt(t, tr, TraceToNetwork); tn.Reason != TraceReasonCTReply || tn.SrcIdentity != pod2.identity ||
		tn.Source != pod2.id || string(tn.Data) != string(wantBack.bytes(t)) {
		t.Errorf("to-netdev trace %+v, want the restored source node1:30080", tn)
	}
	if np := ctEntry(t, dp, npKey); np.RxPackets != 1 || np.RxFlagsSeen != 0x12 {
		t.Errorf("NodePort entry after the reply %v, want one reply counted", np)
	}
	if n := natEntries(t, dp); len(n) != 0 {
		t.Errorf("a local backend needs no SNAT, NAT table %v", n)
	}
}

// natEntries dumps the NAT table.
func natEntries(t testing.TB, dp *Datapath) []NATEntry {
	t.Helper()
	n, err := dp.NAT.Entries()
	must(t, err)
	for _, e := range n {
		t.Logf("nat: %v", e)
	}
	return n
}

// The client → node1:30080, backend pod4:8080 on node2. from-netdev DNATs
// and leaves routing to the kernel (TTL, MACs untouched); to-netdev SNATs
// the forwarded packet to node1:40000 (the client's port, free and in the
// NAT range) and records both directions in the NAT table. The ACK that
// follows takes the same translation.
func TestNodePortRemoteBackendDNATAndSNAT(t *testing.T) {
	dp := loadNodePortDatapath(t, Backend{ID: 4, Addr: pod4IP, Port: backendPort})
	events := openEvents(t, dp)

	t.Log("the client's SYN to node1:30080 arrives on bond0")
	in := fromClient()
	res := run(t, dp.FromNetdev, in.bytes(t), nil)

	t.Log("from-netdev: DNAT to pod4:8080, to the stack, TTL and MACs untouched")
	res.assertVerdict(t, tcActOK)
	dnat := in
	dnat.dst, dnat.dport = pod4IP, backendPort
	res.assertPacket(t, dnat.bytes(t))
	assertValidChecksums(t, res.out[:len(dnat.bytes(t))])
	if fn := traceAt(t, traces(drain(t, events)), TraceFromNetwork); fn.SrcIdentity != IdentityWorld ||
		fn.Reason != TraceReasonPolicy || string(fn.Data) != string(dnat.bytes(t)) {
		t.Errorf("from-netdev trace %+v, want the DNATed packet", fn)
	}

	t.Log("node1's kernel forwards it to bond0: to-netdev SNATs it to node1:40000")
	fwd := forwarded(dnat)
	res = run(t, dp.ToNetdev, fwd.bytes(t), nil)
	res.assertVerdict(t, tcActOK)
	snat := fwd
	snat.src = node1IP
	res.assertPacket(t, snat.bytes(t))
	assertValidChecksums(t, res.out[:len(snat.bytes(t))])
	if tn := traceAt(t, traces(drain(t, events)), TraceToNetwork); tn.Reason != TraceReasonPolicy ||
		tn.SrcIdentity != IdentityWorld || tn.DstIdentity != pod4ID || string(tn.Data) != string(snat.bytes(t)) {
		t.Errorf("to-netdev trace %+v, want the SNATed packet", tn)
	}

	t.Log("NAT: egress client -> pod4 XLATE_SRC node1:40000, ingress pod4 -> node1:40000 XLATE_DST client")
	n := natEntries(t, dp)
	if len(n) != 2 {
		t.Fatalf("NAT entries %v, want 2", n)
	}
	for i, want := range []string{
		"TCP OUT 192.0.2.50:40000 -> 10.1.2.40:8080 XLATE_SRC 10.255.1.11:40000 Created=",
		"TCP IN 10.1.2.40:8080 -> 10.255.1.11:40000 XLATE_DST 192.0.2.50:40000 Created=",
	} {
		if !strings.HasPrefix(n[i].String(), want) {
			t.Errorf("NAT entry %d: %q, want %q...", i, n[i], want)
		}
	}
	np := ctEntry(t, dp, CTKey{Src: ap(clientIP, clientPort), Dst: ap(pod4IP, backendPort), Proto: ProtoTCP, Flags: TupleOut})
	if np.Flags&CTNodePort == 0 || np.RevNAT != nodePortID || np.BackendID != 4 || np.SrcIdentity != IdentityWorld {
		t.Errorf("NodePort entry %v", np)
	}
	all, err := dp.CT.Entries()
	must(t, err)
	if len(all) != 2 {
		t.Errorf("CT holds %v, want the service and the NodePort entries", all)
	}

	t.Log("the client's ACK: established at from-netdev, same translation at to-netdev")
	ack := in
	ack.syn, ack.ack = false, true
	res = run(t, dp.FromNetdev, ack.bytes(t), nil)
	res.assertVerdict(t, tcActOK)
	dnatAck := ack
	dnatAck.dst, dnatAck.dport = pod4IP, backendPort
	res.assertPacket(t, dnatAck.bytes(t))
	res = run(t, dp.ToNetdev, forwarded(dnatAck).bytes(t), nil)
	res.assertVerdict(t, tcActOK)
	snatAck := forwarded(dnatAck)
	snatAck.src = node1IP
	res.assertPacket(t, snatAck.bytes(t))
	tr := traces(drain(t, events))
	if fn, tn := traceAt(t, tr, TraceFromNetwork), traceAt(t, tr, TraceToNetwork); fn.Reason != TraceReasonCTEstablished ||
		tn.Reason != TraceReasonCTEstablished {
		t.Errorf("ACK traces %v, want established at both points", tr)
	}
	if np := ctEntry(t, dp, np.Key); np.TxPackets != 2 {
		t.Errorf("NodePort entry after the ACK %v", np)
	}
	if n := natEntries(t, dp); len(n) != 2 {
		t.Errorf("NAT entries after the ACK %v, want the same 2", n)
	}
}

// pod4's SYN-ACK to node1:40000 arrives on bond0 (TTL 62: node2's kernel
// and the ToR routed it). from-netdev reverses the SNAT (destination back
// to the client:40000) and hands it to the stack, which forwards it
// (TTL 61); to-netdev reverses the DNAT (source back to node1:30080): the
// client sees its peer as node1:30080.
func TestNodePortRemoteBackendReply(t *testing.T) {
	dp := loadNodePortDatapath(t, Backend{ID: 4, Addr: pod4IP, Port: backendPort})
	events := openEvents(t, dp)
	in := fromClient()
	run(t, dp.FromNetdev, in.bytes(t), nil).assertVerdict(t, tcActOK)
	dnat := in
	dnat.dst, dnat.dport = pod4IP, backendPort
	run(t, dp.ToNetdev, forwarded(dnat).bytes(t), nil).assertVerdict(t, tcActOK)
	drain(t, events)

	t.Log("pod4's SYN-ACK to node1:40000 arrives on bond0")
	back := pkt{srcMAC: torMAC, dstMAC: bond0MAC, src: pod4IP, dst: node1IP, ttl: 62,
		proto: ProtoTCP, sport: backendPort, dport: clientPort, syn: true, ack: true, payload: []byte("hello")}
	res := run(t, dp.FromNetdev, back.bytes(t), nil)

	t.Log("from-netdev: destination back to the client, to the stack, TTL and MACs untouched")
	res.assertVerdict(t, tcActOK)
	revSNAT := back
	revSNAT.dst = clientIP
	res.assertPacket(t, revSNAT.bytes(t))
	assertValidChecksums(t, res.out[:len(revSNAT.bytes(t))])
	if fn := traceAt(t, traces(drain(t, events)), TraceFromNetwork); fn.Reason != TraceReasonCTReply ||
		fn.SrcIdentity != pod4ID || string(fn.Data) != string(revSNAT.bytes(t)) {
		t.Errorf("from-netdev trace %+v, want the reply with the client as destination", fn)
	}

	t.Log("node1's kernel forwards it to bond0 (TTL 61): to-netdev restores node1:30080 as source")
	fwd := forwarded(revSNAT)
	res = run(t, dp.ToNetdev, fwd.bytes(t), nil)
	res.assertVerdict(t, tcActOK)
	out := fwd
	out.src, out.sport = node1IP, nodePort
	res.assertPacket(t, out.bytes(t))
	assertValidChecksums(t, res.out[:len(out.bytes(t))])
	if out.ttl != 61 {
		t.Fatalf("test setup: TTL %d", out.ttl)
	}
	if tn := traceAt(t, traces(drain(t, events)), TraceToNetwork); tn.Reason != TraceReasonCTReply ||
		tn.SrcIdentity != pod4ID || tn.DstIdentity != IdentityWorld || string(tn.Data) != string(out.bytes(t)) {
		t.Errorf("to-netdev trace %+v, want the reply from node1:30080", tn)
	}
	np := ctEntry(t, dp, CTKey{Src: ap(clientIP, clientPort), Dst: ap(pod4IP, backendPort), Proto: ProtoTCP, Flags: TupleOut})
	if np.RxPackets != 1 || np.TxPackets != 1 {
		t.Errorf("NodePort entry %v, want one request and one reply", np)
	}
}

// UDP takes the same way, its checksum fixed at every rewrite.
func TestNodePortUDPRoundTrip(t *testing.T) {
	dp := loadNodePortDatapath(t)
	must(t, dp.Services.Upsert(Service{VIP: node1IP, Port: 30053, Proto: ProtoUDP, ID: 8, NodePort: true,
		Backends: []Backend{{ID: 5, Addr: pod4IP, Port: 53}}}))
	in := pkt{srcMAC: torMAC, dstMAC: bond0MAC, src: clientIP, dst: node1IP, ttl: 64,
		proto: ProtoUDP, sport: 5353, dport: 30053, payload: []byte("query")}
	res := run(t, dp.FromNetdev, in.bytes(t), nil)
	res.assertVerdict(t, tcActOK)
	dnat := in
	dnat.dst, dnat.dport = pod4IP, 53
	res.assertPacket(t, dnat.bytes(t))

	t.Log("the client's port 5353 is below the NAT range: to-netdev picks one in 32768-65535")
	res = run(t, dp.ToNetdev, forwarded(dnat).bytes(t), nil)
	res.assertVerdict(t, tcActOK)
	egress, err := dp.NAT.Lookup(CTKey{Src: ap(clientIP, 5353), Dst: ap(pod4IP, 53), Proto: ProtoUDP, Flags: TupleOut})
	must(t, err)
	t.Logf("nat: %v", egress)
	natPort := egress.Xlate.Port()
	if egress.Xlate.Addr() != node1IP || natPort < 32768 {
		t.Fatalf("egress entry %v, want node1 and a port in 32768-65535", egress)
	}
	snat := forwarded(dnat)
	snat.src, snat.sport = node1IP, natPort
	res.assertPacket(t, snat.bytes(t))
	assertValidChecksums(t, res.out[:len(snat.bytes(t))])

	back := pkt{srcMAC: torMAC, dstMAC: bond0MAC, src: pod4IP, dst: node1IP, ttl: 62,
		proto: ProtoUDP, sport: 53, dport: natPort, payload: []byte("answer")}
	res = run(t, dp.FromNetdev, back.bytes(t), nil)
	res.assertVerdict(t, tcActOK)
	revSNAT := back
	revSNAT.dst, revSNAT.dport = clientIP, 5353
	res.assertPacket(t, revSNAT.bytes(t))
	res = run(t, dp.ToNetdev, forwarded(revSNAT).bytes(t), nil)
	res.assertVerdict(t, tcActOK)
	out := forwarded(revSNAT)
	out.src, out.sport = node1IP, 30053
	res.assertPacket(t, out.bytes(t))
	assertValidChecksums(t, res.out[:len(out.bytes(t))])
}

// A port another connection holds is not given out twice: with
// node1:40000 taken towards pod4:8080, the client's connection gets
// another port of the range, in both entries.
func TestNodePortSNATPortCollision(t *testing.T) {
	dp := loadNodePortDatapath(t, Backend{ID: 4, Addr: pod4IP, Port: backendPort})
	other := ap(netip.MustParseAddr("198.51.100.9"), 40000)
	taken := CTKey{Src: ap(pod4IP, backendPort), Dst: ap(node1IP, clientPort), Proto: ProtoTCP, Flags: TupleIn}
	must(t, dp.NAT.Put(NATEntry{Key: taken, Xlate: other}))

	in := fromClient()
	run(t, dp.FromNetdev, in.bytes(t), nil).assertVerdict(t, tcActOK)
	dnat := in
	dnat.dst, dnat.dport = pod4IP, backendPort
	res := run(t, dp.ToNetdev, forwarded(dnat).bytes(t), nil)
	res.assertVerdict(t, tcActOK)

	egress, err := dp.NAT.Lookup(CTKey{Src: ap(clientIP, clientPort), Dst: ap(pod4IP, backendPort), Proto: ProtoTCP, Flags: TupleOut})
	must(t, err)
	port := egress.Xlate.Port()
	if port == clientPort || port < 32768 {
		t.Fatalf("egress entry %v, want a free port other than 40000", egress)
	}
	snat := forwarded(dnat)
	snat.src, snat.sport = node1IP, port
	res.assertPacket(t, snat.bytes(t))
	ingress, err := dp.NAT.Lookup(CTKey{Src: ap(pod4IP, backendPort), Dst: ap(node1IP, port), Proto: ProtoTCP, Flags: TupleIn})
	must(t, err)
	if ingress.Xlate != ap(clientIP, clientPort) {
		t.Errorf("ingress entry %v", ingress)
	}
	if e, err := dp.NAT.Lookup(taken); err != nil || e.Xlate != other {
		t.Errorf("the other connection's entry %v, %v", e, err)
	}
}

// With every port of the range taken towards pod4:8080, to-netdev gives up
// after its bounded retries: "No mapping for NAT masquerade", counted as
// an egress drop.
func TestNodePortSNATNoMapping(t *testing.T) {
	dp := loadNodePortDatapath(t, Backend{ID: 4, Addr: pod4IP, Port: backendPort})
	events := openEvents(t, dp)
	var (
		keys []lxcCtKey
		vals []lxcNatEntry
	)
	for port := 32768; port <= 65535; port++ {
		k, err := CTKey{Src: ap(pod4IP, backendPort), Dst: ap(node1IP, uint16(port)), Proto: ProtoTCP, Flags: TupleIn}.raw()
		must(t, err)
		keys = append(keys, k)
		vals = append(vals, lxcNatEntry{ToAddr: 1, ToPort: 1})
	}
	if _, err := dp.NAT.m.BatchUpdate(keys, vals, nil); err != nil {
		t.Fatalf("fill NAT ports: %v", err)
	}

	in := fromClient()
	run(t, dp.FromNetdev, in.bytes(t), nil).assertVerdict(t, tcActOK)
	drain(t, events)
	dnat := in
	dnat.dst, dnat.dport = pod4IP, backendPort
	fwd := forwarded(dnat).bytes(t)
	res := run(t, dp.ToNetdev, fwd, nil)
	res.assertVerdict(t, tcActShot)
	res.assertPacket(t, fwd)
	d := drops(drain(t, events))
	if len(d) != 1 || d[0].Reason != DropNATNoMapping || d[0].Reason.String() != "No mapping for NAT masquerade" {
		t.Fatalf("drops %v", d)
	}
	if m := metric(t, dp, DropNATNoMapping, Egress); m.Packets != 1 {
		t.Errorf("metric %+v", m)
	}
	if _, err := dp.NAT.Lookup(CTKey{Src: ap(clientIP, clientPort), Dst: ap(pod4IP, backendPort), Proto: ProtoTCP, Flags: TupleOut}); err == nil {
		t.Error("an egress entry without a port")
	}
}

// A NodePort without backends: from-netdev drops the request with
// "Service backend not found" (ingress), leaving no CT entry.
func TestNodePortNoBackends(t *testing.T) {
	dp := loadNodePortDatapath(t)
	events := openEvents(t, dp)
	in := fromClient().bytes(t)
	res := run(t, dp.FromNetdev, in, nil)
	res.assertVerdict(t, tcActShot)
	res.assertPacket(t, in)
	d := drops(drain(t, events))
	if len(d) != 1 || d[0].Reason != DropNoService || d[0].SrcIdentity != IdentityWorld {
		t.Fatalf("drops %v, want Service backend not found from WORLD", d)
	}
	if m := metric(t, dp, DropNoService, Ingress); m.Packets != 1 {
		t.Errorf("metric %+v", m)
	}
	if all, err := dp.CT.Entries(); err != nil || len(all) != 0 {
		t.Errorf("CT entries %v, %v", all, err)
	}
}

// A request that arrives with TTL 1 cannot be routed: from-netdev drops it
// with "TTL exceeded" before it creates any entry.
func TestNodePortTTLExceeded(t *testing.T) {
	dp := loadNodePortDatapath(t, Backend{ID: 4, Addr: pod4IP, Port: backendPort})
	events := openEvents(t, dp)
	in := fromClient()
	in.ttl = 1
	res := run(t, dp.FromNetdev, in.bytes(t), nil)
	res.assertVerdict(t, tcActShot)
	res.assertPacket(t, in.bytes(t))
	if d := drops(drain(t, events)); len(d) != 1 || d[0].Reason != DropTTLExceeded {
		t.Fatalf("drops %v", d)
	}
	if all, err := dp.CT.Entries(); err != nil || len(all) != 0 {
		t.Errorf("CT entries %v, %v", all, err)
	}
}

// TTL 2 is the least a routed request needs: it is DNATed to the local
// backend and arrives with TTL 1.
func TestNodePortTTLTwoDelivered(t *testing.T) {
	dp := loadNodePortDatapath(t, Backend{ID: 2, Addr: pod2.addr(), Port: backendPort})
	addEndpoint(t, dp, pod2, true, false)
	must(t, dp.Policy.Allow(L3L4Key(pod2.id, Ingress, IdentityWorld, backendPort, ProtoTCP)))
	in := fromClient()
	in.ttl = 2
	res := run(t, dp.FromNetdev, in.bytes(t), nil)
	res.assertVerdict(t, tcActRedirect)
	want := in
	want.dst, want.dport = pod2.addr(), backendPort
	want.ttl, want.srcMAC, want.dstMAC = 1, pod2.lxcMAC(), pod2.podMAC()
	res.assertPacket(t, want.bytes(t))
}

// pod2's ingress policy denies WORLD: the request drops in to-container
// and the service and NodePort entries from-netdev created go with it.
func TestNodePortLocalPolicyDropLeavesNoCT(t *testing.T) {
	dp := loadNodePortDatapath(t, Backend{ID: 2, Addr: pod2.addr(), Port: backendPort})
	events := openEvents(t, dp)
	addEndpoint(t, dp, pod2, true, false)
	run(t, dp.FromNetdev, fromClient().bytes(t), nil).assertVerdict(t, tcActShot)
	if d := drops(drain(t, events)); len(d) != 1 || d[0].Reason != DropPolicy || d[0].SrcIdentity != IdentityWorld {
		t.Fatalf("drops %v", d)
	}
	if all, err := dp.CT.Entries(); err != nil || len(all) != 0 {
		t.Errorf("CT entries %v, %v", all, err)
	}
}

// What is not NodePort traffic passes both programs unchanged: a port of
// the node without a service, a ClusterIP service (at a VIP or at the
// node's address) from outside, the node's own packets, pods' packets to
// other nodes, and a NodePort frontend while the node has no address.
func TestNodePortLeavesOtherTrafficAlone(t *testing.T) {
	dp := loadNodePortDatapath(t, Backend{ID: 4, Addr: pod4IP, Port: backendPort})
	must(t, dp.Services.Upsert(webService(Backend{ID: 1, Addr: pod4IP, Port: 8080})))
	must(t, dp.Services.Upsert(Service{VIP: node1IP, Port: 8443, Proto: ProtoTCP, ID: 9,
		Backends: []Backend{{ID: 4, Addr: pod4IP, Port: backendPort}}}))

	unchanged := func(name string, prog string, p pkt) {
		t.Helper()
		in := p.bytes(t)
		res := run(t, dp.Programs()[prog], in, nil)
		if res.ret != tcActOK || string(res.out[:len(in)]) != string(in) {
			t.Errorf("%s: %s returned %d and changed %x into %x", name, prog, res.ret, in, res.out[:len(in)])
		}
	}
	ssh := fromClient()
	ssh.dport = 22
	unchanged("node1:22 has no service", "hoplab_from_netdev", ssh)
	cluster := fromClient()
	cluster.dst, cluster.dport = vip, 80
	unchanged("ClusterIP from outside", "hoplab_from_netdev", cluster)
	atNode := fromClient()
	atNode.dport = 8443
	unchanged("a service at node1's address without NodePort", "hoplab_from_netdev", atNode)
	icmp := fromClient()
	icmp.proto, icmp.icmpType, icmp.icmpID = ProtoICMP, 8, 7
	unchanged("ping to node1", "hoplab_from_netdev", icmp)

	host := pkt{srcMAC: bond0MAC, dstMAC: torMAC, src: node1IP, dst: clientIP, ttl: 64,
		proto: ProtoTCP, sport: nodePort, dport: clientPort, syn: true, ack: true}
	unchanged("node1's own packet", "hoplab_to_netdev", host)
	podOut := forwarded(fromPod(pod1, pod4IP, 8080))
	unchanged("pod1 to pod4", "hoplab_to_netdev", podOut)
	transit := forwarded(fromClient())
	transit.dst, transit.dport = pod4IP, backendPort
	unchanged("a forwarded packet of no NodePort connection", "hoplab_to_netdev", transit)
	if n := natEntries(t, dp); len(n) != 0 {
		t.Errorf("NAT entries %v", n)
	}
	if all, err := dp.CT.Entries(); err != nil || len(all) != 0 {
		t.Errorf("CT entries %v, %v", all, err)
	}

	t.Log("CT entries without the NodePort flag, even with a rev-NAT index, do not make NodePort traffic")
	for _, k := range []CTKey{
		{Src: ap(clientIP, clientPort), Dst: ap(pod4IP, backendPort), Proto: ProtoTCP, Flags: TupleOut},
		{Src: ap(pod4IP, 8080), Dst: ap(pod1.addr(), 40000), Proto: ProtoTCP, Flags: TupleOut},
	} {
		must(t, dp.CT.Put(CTEntry{Key: k, Lifetime: ^uint32(0), TxPackets: 1, RevNAT: nodePortID, BackendID: 4}))
	}
	unchanged("a forwarded packet of a connection that is not NodePort", "hoplab_to_netdev", transit)
	unchanged("a pod's packet answering a connection that is not NodePort", "hoplab_to_netdev", podOut)
	if n := natEntries(t, dp); len(n) != 0 {
		t.Errorf("NAT entries %v", n)
	}

	t.Log("without a node address NodePort is off")
	must(t, dp.SetNodeAddress(netip.Addr{}))
	if a, err := dp.NodeAddress(); err != nil || a.IsValid() {
		t.Fatalf("node address %v, %v", a, err)
	}
	unchanged("NodePort off", "hoplab_from_netdev", fromClient())
}

// The service map keeps the NodePort mark; the node address reads back.
func TestNodePortServiceAndAddress(t *testing.T) {
	dp := loadNodePortDatapath(t, Backend{ID: 4, Addr: pod4IP, Port: backendPort})
	svc, err := dp.Services.Lookup(node1IP, nodePort, ProtoTCP)
	must(t, err)
	if !svc.NodePort || svc.ID != nodePortID || len(svc.Backends) != 1 {
		t.Errorf("service %+v", svc)
	}
	must(t, dp.Services.Upsert(webService(Backend{ID: 1, Addr: pod4IP, Port: 8080})))
	if svc, err := dp.Services.Lookup(vip, 80, ProtoTCP); err != nil || svc.NodePort {
		t.Errorf("ClusterIP service %+v, %v", svc, err)
	}
	if a, err := dp.NodeAddress(); err != nil || a != node1IP {
		t.Errorf("node address %v, %v", a, err)
	}
	if err := dp.SetNodeAddress(netip.MustParseAddr("2001:db8::1")); err == nil {
		t.Error("an IPv6 node address was accepted")
	}
}
