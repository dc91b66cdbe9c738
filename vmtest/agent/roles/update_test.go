package roles

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/hoplab/hoplab/internal/errtext"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// TestUpdatePodsAndBackends: node-update adds pod3 as a second backend of
// the service (namespace, lxc attached, endpoint, listener), keeps the
// existing flow's CT entry and backend, then removes pod3 again (veth and
// namespace gone, endpoint and backend deleted), all without reloading
// the programs.
func TestUpdatePodsAndBackends(t *testing.T) {
	base := topologyText(t, "same-node")
	n, _, ev := testNode(t, "same-node.yaml", base, "node1")
	ctx := context.Background()
	progs := n.dp.FromContainer
	if _, err := n.Watch(ctx, nodeapi.Watch{Pods: true}); err != nil {
		t.Fatal(err)
	}

	res, err := n.Client(ctx, nodeapi.ClientAction{Pod: "pod1", Kind: nodeapi.ClientHTTP, Dst: "10.224.1.1:80"})
	must(t, err)
	if !res.Outcomes[0].OK {
		t.Fatalf("before update: %+v", res.Outcomes[0])
	}
	before, err := n.CTList(ctx)
	must(t, err)

	with := strings.Replace(base,
		`  - {name: pod2, node: node1, ip: 10.1.1.20, labels: {app: backend}, listen: ["tcp/8080", "udp/5353"]}`,
		`  - {name: pod2, node: node1, ip: 10.1.1.20, labels: {app: backend}, listen: ["tcp/8080", "udp/5353"]}
  - {name: pod3, node: node1, ip: 10.1.1.30, labels: {app: backend}, listen: ["tcp/8080"]}`, 1)
	with = strings.Replace(with, `backends: ["pod2:8080"]`, `backends: ["pod2:8080", "pod3:8080"]`, 1)
	if with == base {
		t.Fatal("topology edit did not apply")
	}
	up, err := n.Update(ctx, nodeapi.Update{Topology: with, File: "same-node+pod3.yaml"})
	must(t, err)
	t.Logf("changes: %q", up.Changes)
	for _, want := range []string{
		"pod: +pod3 (10.1.1.30)",
		"service backend: 10.224.1.1:80/TCP +pod3:8080 (10.1.1.30:8080)",
		"ipcache: +10.1.1.30/32 identity",
	} {
		if !slices.ContainsFunc(up.Changes, func(c string) bool { return strings.HasPrefix(c, want) }) {
			t.Errorf("no change %q in %q", want, up.Changes)
		}
	}
	if n.dp.FromContainer != progs {
		t.Error("programs reloaded")
	}
	after, err := n.CTList(ctx)
	must(t, err)
	for _, b := range before {
		if !slices.ContainsFunc(after, func(a nodeapi.CTRow) bool { return a.Tuple == b.Tuple && a.BackendID == b.BackendID }) {
			t.Errorf("CT entry %s (backend %d) lost or moved", b.Tuple, b.BackendID)
		}
	}
	lb, err := n.LBList(ctx)
	must(t, err)
	t.Logf("services: %+v", lb)
	if len(lb[0].Backends) != 2 || lb[0].Backends[0].ID != 1 || lb[0].Backends[1].Pod != "pod3" {
		t.Errorf("service after update: %+v", lb[0])
	}
	eps, err := n.EndpointList(ctx)
	must(t, err)
	if len(eps) != 3 {
		t.Errorf("endpoints after update: %+v", eps)
	}

	// pod3 answers directly and through the service.
	seen := map[string]bool{}
	for range 20 {
		r, err := n.Client(ctx, nodeapi.ClientAction{Pod: "pod1", Kind: nodeapi.ClientHTTP, Dst: "10.224.1.1:80", Count: 4})
		must(t, err)
		for _, o := range r.Outcomes {
			if !o.OK {
				t.Fatalf("after update: %+v", o)
			}
			seen[strings.Fields(o.Reply)[1]] = true
		}
		if seen["pod2"] && seen["pod3"] {
			break
		}
	}
	if !seen["pod2"] || !seen["pod3"] {
		t.Errorf("backends reached: %v", seen)
	}
	ev.wait(t, "a frame captured on pod3 (the watch follows the update)", 3*time.Second, func(e any) bool {
		p, ok := e.(nodeapi.PodPacket)
		return ok && p.Pod == "pod3"
	})

	down, err := n.Update(ctx, nodeapi.Update{Topology: base, File: "same-node.yaml"})
	must(t, err)
	t.Logf("changes: %q", down.Changes)
	if !slices.Contains(down.Changes, "pod: -pod3 (10.1.1.30)") {
		t.Errorf("pod3 not removed: %q", down.Changes)
	}
	if _, err := netlink.LinkByName(top3LXC(t, with)); err == nil {
		t.Error("pod3's lxc device still exists")
	}
	if _, err := n.dp.Backends.Lookup(lb[0].Backends[1].ID); err == nil {
		t.Error("pod3's backend still in the backend map")
	}
	if eps, _ := n.EndpointList(ctx); len(eps) != 2 {
		t.Errorf("endpoints after removal: %+v", eps)
	}
}

func top3LXC(t *testing.T, text string) string {
	t.Helper()
	top := parse(t, text)
	return top.Pod("pod3").LXCName
}

// TestInjectFromPod: frames written by pod-inject leave pod1's eth0 (seen
// as pod-egress), pass from-container like pod1's own traffic (DNAT to
// pod2:8080) and reach pod2's eth0, whose listener answers the SYN.
func TestInjectFromPod(t *testing.T) {
	n, top, ev := testNode(t, "same-node.yaml", topologyText(t, "same-node"), "node1")
	ctx := context.Background()
	_, err := n.Watch(ctx, nodeapi.Watch{Datapath: true, Pods: true})
	must(t, err)
	pod1 := top.Pod("pod1")
	syn := func(sport uint16) []byte { return vipSYN(t, pod1, sport) }
	start := time.Now()
	res, err := n.Inject(ctx, nodeapi.Inject{Pod: "pod1", Frames: [][]byte{syn(41000), syn(41001)}, Gaps: []time.Duration{0, 100 * time.Millisecond}})
	must(t, err)
	if res.Sent != 2 || len(res.Times) != 2 || res.Times[1].Sub(res.Times[0]) < 100*time.Millisecond {
		t.Errorf("injected %+v", res)
	}
	t.Logf("injected %d frames in %v", res.Sent, time.Since(start))
	for _, sport := range []uint16{41000, 41001} {
		src := netip.AddrPortFrom(pod1.IP, sport)
		ev.wait(t, "pod-egress of the injected SYN", 3*time.Second, func(e any) bool {
			p, ok := e.(nodeapi.PodPacket)
			return ok && p.Pod == "pod1" && p.Direction == nodeapi.PodEgress && isTCP(p.Frame, src, netip.MustParseAddrPort("10.224.1.1:80"), true)
		})
		ev.wait(t, "from-container trace of the injected SYN", 3*time.Second, func(e any) bool {
			d, ok := e.(nodeapi.DatapathEvent)
			if !ok || d.Point != "from-container" {
				return false
			}
			info, err := decodeTCP(d.Frame)
			return err == nil && info.Src == src
		})
		ev.wait(t, "the SYN at pod2 after DNAT", 3*time.Second, func(e any) bool {
			p, ok := e.(nodeapi.PodPacket)
			return ok && p.Pod == "pod2" && p.Direction == nodeapi.PodIngress && isTCP(p.Frame, src, netip.MustParseAddrPort("10.1.1.20:8080"), true)
		})
	}

	// Bad requests name the frame of the request; the caller names the pod
	// (cluster: "packets 0..1 at pod1: node1: pod-inject: frame 1: ...").
	for _, c := range []struct {
		req  nodeapi.Inject
		want string
	}{
		{nodeapi.Inject{Pod: "pod9", Frames: [][]byte{syn(1)}}, `unknown pod "pod9" in topology same-node`},
		{nodeapi.Inject{Pod: "pod1", Frames: [][]byte{syn(1), {1, 2, 3}}}, "frame 1: 3 bytes is shorter than an Ethernet header"},
		{nodeapi.Inject{Pod: "pod1", Frames: [][]byte{syn(1)}, Gaps: []time.Duration{0, 0}}, "2 gaps for 1 frames"},
	} {
		_, err := n.Inject(ctx, c.req)
		errtext.Check(t, err, c.want)
	}
}

// TestErrors: methods before setup, unknown nodes, pods and kinds give one
// clear error naming what is wrong.
func TestErrors(t *testing.T) {
	if _, err := currentNode(); !errors.Is(err, ErrNotSetUp) {
		t.Errorf("before setup: %v", err)
	}
	if _, err := agentBGPPeers(context.Background(), empty{}); !errors.Is(err, ErrNotSetUp) {
		t.Errorf("bgp before setup: %v", err)
	}
	if _, _, err := Setup(context.Background(), Options{}, nodeapi.Setup{Topology: topologyText(t, "same-node"), File: "x.yaml", Node: "node7"}); err == nil ||
		!strings.Contains(err.Error(), `has no node "node7"`) {
		t.Errorf("unknown node: %v", err)
	}
	if _, _, err := Setup(context.Background(), Options{}, nodeapi.Setup{Topology: "name: [", File: "bad.yaml", Node: "node1"}); err == nil ||
		!strings.Contains(err.Error(), "bad.yaml:") {
		t.Errorf("bad yaml: %v", err)
	}

	n, _, _ := testNode(t, "same-node.yaml", topologyText(t, "same-node"), "node1")
	ctx := context.Background()
	for _, c := range []struct {
		req  nodeapi.ClientAction
		want string
	}{
		{nodeapi.ClientAction{Pod: "pod9", Kind: "tcp", Dst: "10.224.1.1:80"}, `unknown pod "pod9" in topology same-node`},
		{nodeapi.ClientAction{Pod: "pod1", Kind: "smtp", Dst: "10.224.1.1:80"}, `pod pod1: unknown client kind "smtp" (want tcp, http, http-stream, udp or ping)`},
		{nodeapi.ClientAction{Pod: "pod1", Kind: "tcp", Dst: "10.224.1.1"}, `pod pod1: tcp destination "10.224.1.1": want ip:port`},
		{nodeapi.ClientAction{Pod: "pod1", Kind: "tcp", Dst: "10.224.1.1:80", Count: -1}, "pod pod1: count -1 outside 1..1024"},
	} {
		_, err := n.Client(ctx, c.req)
		errtext.Check(t, err, c.want)
	}
	_, err := n.PolicyGet(ctx, nodeapi.PolicyGet{Endpoint: "pod9"})
	errtext.Check(t, err, `no pod or endpoint "pod9"`)
	_, err = n.PolicyGet(ctx, nodeapi.PolicyGet{Endpoint: "999"})
	errtext.Check(t, err, "no endpoint 999")
	if _, err := n.Update(ctx, nodeapi.Update{Topology: topologyText(t, "same-node"), File: "x.yaml"}); err != nil {
		t.Errorf("no-op update: %v", err)
	}
}
