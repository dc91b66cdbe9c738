package roles

import (
	"context"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// sameNodePolicy is the shipped same-node topology plus an ingress policy
// on pod2 (app=backend) admitting frontend on port PORT/TCP.
func sameNodePolicy(t *testing.T, port string) string {
	return topologyText(t, "same-node") + `policies:
  - name: backend-ingress
    endpointSelector: {matchLabels: {app: backend}}
    ingress:
      - fromEndpoints: [{matchLabels: {app: frontend}}]
        toPorts: [{ports: [{port: "` + port + `", protocol: TCP}]}]
`
}

// TestSameNodeServiceThenPolicyRemoved: pod1 fetches Service
// 10.224.1.1:80 (pod2:8080 on the same node) over real TCP; the CT dump
// shows the flow with its service; node-update then removes the policy
// entry that admitted it, so a new connection is dropped at pod2's
// to-container with "Policy denied" while CT is kept; node-reset flushes
// CT and zeroes the metrics.
func TestSameNodeServiceThenPolicyRemoved(t *testing.T) {
	n, top, ev := testNode(t, "same-node-policy.yaml", sameNodePolicy(t, "8080"), "node1")
	ctx := context.Background()
	pod1, pod2 := top.Pod("pod1"), top.Pod("pod2")
	w, err := n.Watch(ctx, nodeapi.Watch{Datapath: true, Pods: true})
	must(t, err)
	if !slices.Equal(w.Pods, []string{"pod1", "pod2"}) {
		t.Errorf("watched pods %v", w.Pods)
	}

	t.Log("pod1 GETs http://10.224.1.1:80/: answered by pod2")
	res, err := n.Client(ctx, nodeapi.ClientAction{Pod: "pod1", Kind: nodeapi.ClientHTTP, Dst: "10.224.1.1:80"})
	must(t, err)
	o := res.Outcomes[0]
	if !o.OK || !strings.HasPrefix(o.Reply, "hoplab pod2 10.1.1.20:8080 from 10.1.1.10:") {
		t.Fatalf("outcome %+v", o)
	}
	t.Logf("reply %q in %v", o.Reply, o.RTT)
	local := netip.MustParseAddrPort(o.Local)

	fc := ev.wait(t, "from-container trace on pod1's lxc", 3*time.Second, func(e any) bool {
		d, ok := e.(nodeapi.DatapathEvent)
		return ok && d.Type == nodeapi.EventTrace && d.Point == "from-container" && d.Device == pod1.LXCName
	}).(nodeapi.DatapathEvent)
	t.Logf("event: %s %s %s", fc.Point, fc.Device, fc.Summary)
	tc := ev.wait(t, "to-container trace on pod2's lxc", 3*time.Second, func(e any) bool {
		d, ok := e.(nodeapi.DatapathEvent)
		return ok && d.Type == nodeapi.EventTrace && d.Point == "to-container" && d.Device == pod2.LXCName
	}).(nodeapi.DatapathEvent)
	t.Logf("event: %s %s %s (ct %q)", tc.Point, tc.Device, tc.Summary, tc.CTState)
	if fc.CTState != "" || tc.CTState != nodeapi.CTNew {
		t.Errorf("CT states: from-container %q, want none (no CT lookup); pod2's first to-container %q, want %q", fc.CTState, tc.CTState, nodeapi.CTNew)
	}
	if tc.Node != "node1" || tc.DstIdentity != uint32(pod2.Identity) || tc.SrcIdentity != uint32(pod1.Identity) {
		t.Errorf("to-container event %+v", tc)
	}
	ev.wait(t, "pod1 egress SYN", 3*time.Second, func(e any) bool {
		p, ok := e.(nodeapi.PodPacket)
		return ok && p.Pod == "pod1" && p.Direction == nodeapi.PodEgress && isTCP(p.Frame, local, netip.MustParseAddrPort("10.224.1.1:80"), true)
	})
	ev.wait(t, "pod2 ingress SYN after DNAT", 3*time.Second, func(e any) bool {
		p, ok := e.(nodeapi.PodPacket)
		return ok && p.Pod == "pod2" && p.Direction == nodeapi.PodIngress && isTCP(p.Frame, local, netip.MustParseAddrPort("10.1.1.20:8080"), true)
	})

	ct, err := n.CTList(ctx)
	must(t, err)
	if st, err := n.CTStats(ctx); err != nil || st.Entries != len(ct) || st.Capacity != 4096 {
		t.Errorf("CT stats %+v, %v; want %d of 4096 entries", st, err, len(ct))
	}
	var out *nodeapi.CTRow
	for i, r := range ct {
		t.Logf("ct: %s rev_nat=%s flags=%q", r.Tuple, r.RevNATAddr, r.Flags)
		if r.Direction == "OUT" && r.Src == local && r.Dst == netip.MustParseAddrPort("10.1.1.20:8080") {
			out = &ct[i]
		}
	}
	if out == nil || out.RevNATAddr != "10.224.1.1:80" || out.TxPackets == 0 || out.RxPackets == 0 || out.Proto != "TCP" {
		t.Fatalf("no OUT entry %v -> 10.1.1.20:8080 with rev-NAT 10.224.1.1:80 and traffic both ways: %+v", local, out)
	}
	if !strings.HasPrefix(out.Tuple, "TCP OUT "+local.String()+" -> 10.1.1.20:8080") {
		t.Errorf("tuple %q", out.Tuple)
	}

	t.Log("node-update: the policy now admits 9999 instead of 8080")
	up, err := n.Update(ctx, nodeapi.Update{Topology: sameNodePolicy(t, "9999"), File: "same-node-policy.yaml"})
	must(t, err)
	t.Logf("changes: %q", up.Changes)
	want := []string{
		"policy: pod2 +ep " + itoa(pod2.EndpointID) + " ingress identity " + itoa(uint16(pod1.Identity)) + " TCP/9999",
		"policy: pod2 -ep " + itoa(pod2.EndpointID) + " ingress identity " + itoa(uint16(pod1.Identity)) + " TCP/8080",
	}
	if !slices.Equal(up.Changes, want) {
		t.Errorf("changes %q, want %q", up.Changes, want)
	}
	ct2, err := n.CTList(ctx)
	must(t, err)
	if len(ct2) < len(ct) {
		t.Errorf("update dropped CT entries: %d -> %d", len(ct), len(ct2))
	}

	ev.reset()
	res, err = n.Client(ctx, nodeapi.ClientAction{Pod: "pod1", Kind: nodeapi.ClientTCP, Dst: "10.224.1.1:80", Timeout: 500 * time.Millisecond})
	must(t, err)
	if res.Outcomes[0].OK {
		t.Fatalf("connection allowed after the policy entry was removed: %+v", res.Outcomes[0])
	}
	drop := ev.wait(t, "Policy denied drop", 3*time.Second, func(e any) bool {
		d, ok := e.(nodeapi.DatapathEvent)
		return ok && d.Type == nodeapi.EventDrop
	}).(nodeapi.DatapathEvent)
	t.Logf("drop: %s %s %s", drop.Point, drop.Device, drop.Summary)
	if drop.Reason != "Policy denied" || drop.Code != 133 || drop.Point != "to-container" || drop.Device != pod2.LXCName {
		t.Errorf("drop event %+v", drop)
	}
	if info, err := decodeTCP(drop.Frame); err != nil || info.DstPort != 8080 || !info.SYN {
		t.Errorf("drop frame: %v %v", info, err)
	}

	m, err := n.Metrics(ctx)
	must(t, err)
	t.Logf("metrics: %+v", m)
	if !slices.ContainsFunc(m, func(r nodeapi.MetricRow) bool {
		return r.Reason == "Policy denied" && r.Direction == "INGRESS" && r.Packets > 0
	}) {
		t.Errorf("no Policy denied ingress counter: %+v", m)
	}
	if !slices.ContainsFunc(m, func(r nodeapi.MetricRow) bool { return r.Reason == "Forwarded" && r.Packets > 0 }) {
		t.Errorf("no Forwarded counter: %+v", m)
	}

	_, err = n.Watch(ctx, nodeapi.Watch{})
	must(t, err)
	rr, err := n.Reset(ctx, nodeapi.Reset{})
	must(t, err)
	if rr.CTFlushed < len(ct) {
		t.Errorf("reset flushed %d CT entries, had at least %d", rr.CTFlushed, len(ct))
	}
	ct3, err := n.CTList(ctx)
	must(t, err)
	if len(ct3) != 0 {
		t.Errorf("CT after reset: %+v", ct3)
	}
	m, err = n.Metrics(ctx)
	must(t, err)
	if len(m) != 0 {
		t.Errorf("metrics after reset: %+v", m)
	}
}

func itoa(v uint16) string { return strconv.Itoa(int(v)) }

// tcpInfo is what the tests read of a TCP frame.
type tcpInfo struct {
	Src, Dst netip.AddrPort
	DstPort  uint16
	SYN, ACK bool
}

func decodeTCP(frame []byte) (tcpInfo, error) {
	var info tcpInfo
	p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if ip == nil || tcp == nil {
		return info, errNotTCP
	}
	s, _ := netip.AddrFromSlice(ip.SrcIP.To4())
	d, _ := netip.AddrFromSlice(ip.DstIP.To4())
	info.Src = netip.AddrPortFrom(s, uint16(tcp.SrcPort))
	info.Dst = netip.AddrPortFrom(d, uint16(tcp.DstPort))
	info.DstPort = uint16(tcp.DstPort)
	info.SYN, info.ACK = tcp.SYN, tcp.ACK
	return info, nil
}

type testError string

func (e testError) Error() string { return string(e) }

const errNotTCP = testError("not a TCP/IPv4 frame")

func isTCP(frame []byte, src, dst netip.AddrPort, syn bool) bool {
	info, err := decodeTCP(frame)
	return err == nil && info.Src == src && info.Dst == dst && info.SYN == syn && !info.ACK
}

// TestClientKinds: every client kind from a pod, several at once: TCP and
// UDP through the services, HTTP, and ICMP echo to the other pod.
func TestClientKinds(t *testing.T) {
	n, _, _ := testNode(t, "same-node.yaml", topologyText(t, "same-node"), "node1")
	ctx := context.Background()
	for _, a := range []nodeapi.ClientAction{
		{Pod: "pod1", Kind: nodeapi.ClientTCP, Dst: "10.224.1.1:80", Count: 5},
		{Pod: "pod1", Kind: nodeapi.ClientHTTP, Dst: "10.224.1.1:80", Count: 5},
		{Pod: "pod1", Kind: nodeapi.ClientUDP, Dst: "10.224.1.1:53", Count: 5, Payload: []byte("ping?")},
		{Pod: "pod1", Kind: nodeapi.ClientPing, Dst: "10.1.1.20", Count: 2},
	} {
		res, err := n.Client(ctx, a)
		must(t, err)
		if len(res.Outcomes) != a.Count {
			t.Fatalf("%s: %d outcomes", a.Kind, len(res.Outcomes))
		}
		for _, o := range res.Outcomes {
			if !o.OK {
				t.Errorf("%s %s: %+v", a.Kind, a.Dst, o)
			}
		}
		t.Logf("%s %s: %q in %v", a.Kind, a.Dst, res.Outcomes[0].Reply, res.Outcomes[0].RTT)
	}
	res, err := n.Client(ctx, nodeapi.ClientAction{Pod: "pod1", Kind: nodeapi.ClientUDP, Dst: "10.224.1.1:53", Payload: []byte("x")})
	must(t, err)
	if r := res.Outcomes[0].Reply; !strings.Contains(r, "hoplab pod2") {
		t.Errorf("UDP reply %q does not name pod2", r)
	}
}
