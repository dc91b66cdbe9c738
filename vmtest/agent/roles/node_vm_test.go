//go:build vm

package roles

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hoplab/hoplab/bgp"
	"github.com/hoplab/hoplab/topologies"
	"github.com/hoplab/hoplab/vmtest"
	"github.com/hoplab/hoplab/vmtest/protocol/control"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// TestVMPodToService boots the reference topology (ToR + node1 + node2),
// sets up the router and both nodes through the agent's methods, waits
// for BGP to carry both PodCIDRs into the ToR's kernel, and fetches
// http://10.224.1.1/ from pod1: pod4 on node2 answers through the whole
// datapath and fabric.
func TestVMPodToService(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "topologies", "pod-to-service.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	top, err := topologies.Parse("pod-to-service.yaml", b)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	boot, err := vmtest.PrepareBoot(ctx, vmtest.BootSpec{Series: os.Getenv("HOPLAB_SERIES")})
	if err != nil {
		t.Fatal(err)
	}
	spec := vmtest.FabricSpec{Router: top.Router.Name, VMOptions: boot.Options()}
	for _, n := range top.Nodes {
		spec.Nodes = append(spec.Nodes, vmtest.FabricNode{
			Name: n.Name, Address: n.Uplink.Address, Gateway: n.Uplink.Gateway, Bond: control.BondMode(n.Uplink.Bond),
		})
	}
	f := vmtest.StartFabricT(t, spec)
	t.Logf("fabric up in %v", f.BootTime)

	tor := nodeapi.NewClient(top.Router.Name, f.Router())
	rs, err := tor.RouterSetup(ctx, nodeapi.RouterSetup{Topology: text, File: "pod-to-service.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("router-setup took %v in the guest", rs.Took)

	start := time.Now()
	clients := map[string]*nodeapi.Client{}
	var wg sync.WaitGroup
	errs := make(chan error, len(top.Nodes))
	for _, n := range top.Nodes {
		c := nodeapi.NewClient(n.Name, f.VM(n.Name))
		clients[n.Name] = c
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := c.Setup(ctx, nodeapi.Setup{Topology: text, File: "pod-to-service.yaml", Node: n.Name})
			if err != nil {
				errs <- err
				return
			}
			t.Logf("%s: node-setup took %v in the guest (%d endpoints, programs %v)", n.Name, res.Took, len(res.Endpoints), res.Programs)
			if len(res.Endpoints) != len(top.PodsOn(n.Name)) {
				errs <- &setupError{n.Name, res.Endpoints}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("both nodes set up after %v (host wall time)", time.Since(start))

	// BGP: the ToR has both sessions Established and both PodCIDRs in its
	// kernel with protocol bgp, within a bounded time.
	deadline := time.Now().Add(60 * time.Second)
	for {
		routes, err := tor.KernelRoutes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		have := 0
		for _, n := range top.Nodes {
			for _, r := range routes {
				if r.Dst == n.PodCIDR.String() && r.Protocol == "bgp" && r.Gateway == n.Uplink.Address.Addr().String() {
					have++
				}
			}
		}
		if have == len(top.Nodes) {
			t.Logf("BGP convergence: ToR has every PodCIDR %v after node-setup; routes %+v", time.Since(start), routes)
			break
		}
		if time.Now().After(deadline) {
			peers, _ := tor.BGPPeers(ctx)
			t.Fatalf("ToR kernel routes after 60 s: %+v; peers:\n%v", routes, peers)
		}
		time.Sleep(200 * time.Millisecond)
	}
	peers, err := tor.BGPPeers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range peers {
		if p.State != bgp.StateEstablished {
			t.Errorf("ToR peer %v: %v", p.Address, p.State)
		}
	}
	if len(peers) != len(top.Nodes) {
		t.Errorf("ToR peers %v, want %d", peers, len(top.Nodes))
	}
	t.Logf("ToR peers:\n%v", peers)

	// A real HTTP request from pod1 to the service, answered by pod4 on node2.
	var first time.Duration
	for i := range 3 {
		res, err := clients["node1"].Run(ctx, nodeapi.ClientAction{Pod: "pod1", Kind: nodeapi.ClientHTTP, Dst: "10.224.1.1:80", Timeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		o := res.Outcomes[0]
		if !o.OK || !strings.HasPrefix(o.Reply, "hoplab pod4 ") {
			t.Fatalf("request %d: %+v, want a reply from pod4", i, o)
		}
		if i == 0 {
			first = o.RTT
		}
		t.Logf("request %d: %q in %v", i, o.Reply, o.RTT)
	}
	t.Logf("first HTTP RTT %v", first)

	ct, err := clients["node1"].CTList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range ct {
		if r.Direction == "OUT" && r.Dst == netip.MustParseAddrPort("10.1.2.40:8080") && r.RevNATAddr == "10.224.1.1:80" {
			found = true
		}
	}
	if !found {
		t.Errorf("node1 CT has no OUT entry to pod4:8080 with rev-NAT 10.224.1.1:80: %+v", ct)
	}
	routes, err := clients["node1"].KernelRoutes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("node1 routes: %+v", routes)
	checkTCList(ctx, t, top, clients)

	checkWatch(ctx, t, f, top, clients)
	checkBGPStop(ctx, t, tor, clients["node2"], top.Node("node2").PodCIDR.String())
	checkUpdate(ctx, t, f, top, text, tor, clients)
}

// checkTCList: through the agent, each node's tc-list shows from-container
// at every lxc's ingress, from-netdev and to-netdev at bond0's, and
// nothing else (no lxc egress program: to-container is tail-called).
func checkTCList(ctx context.Context, t *testing.T, top *topologies.Topology, clients map[string]*nodeapi.Client) {
	for _, n := range top.Nodes {
		rows, err := clients[n.Name].TCList(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range rows {
			if r.ID == 0 || len(r.Tag) != 16 {
				t.Errorf("%s: %+v: no program id or tag", n.Name, r)
			}
			got = append(got, r.Device+" "+r.Hook+" "+r.Program)
		}
		want := []string{"bond0 ingress from-netdev", "bond0 egress to-netdev"}
		for _, p := range top.PodsOn(n.Name) {
			want = append(want, p.LXCName+" ingress from-container")
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s tc-list %q, want %q", n.Name, got, want)
		}
		t.Logf("%s tc-list: %q", n.Name, got)
	}
}

// checkUpdate: node-update on node2 with pod4's policy moved to port 9999
// makes pod1's next request fail with a "Policy denied" drop at node2's
// to-container; node-reset flushes node1's CT; router node-update without
// node2 closes its session and removes its PodCIDR from the ToR's kernel.
func checkUpdate(ctx context.Context, t *testing.T, f *vmtest.Fabric, top *topologies.Topology, text string, tor *nodeapi.Client, clients map[string]*nodeapi.Client) {
	denied := strings.Replace(text, `port: "8080"`, `port: "9999"`, 1)
	up, err := clients["node2"].Update(ctx, nodeapi.Update{Topology: denied, File: "pod-to-service-9999.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("node2 update: %q", up.Changes)
	drops := make(chan nodeapi.DatapathEvent, 16)
	f.VM("node2").Agent().OnEvent(func(m *control.Message) {
		var d nodeapi.DatapathEvent
		if m.Event == nodeapi.EventDatapath && control.Unmarshal(m.Data, &d) == nil && d.Type == nodeapi.EventDrop {
			select {
			case drops <- d:
			default:
			}
		}
	})
	if _, err := clients["node2"].Watch(ctx, nodeapi.Watch{Datapath: true}); err != nil {
		t.Fatal(err)
	}
	res, err := clients["node1"].Run(ctx, nodeapi.ClientAction{Pod: "pod1", Kind: nodeapi.ClientTCP, Dst: "10.224.1.1:80", Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcomes[0].OK {
		t.Errorf("connection allowed after node-update removed the policy entry: %+v", res.Outcomes[0])
	}
	select {
	case d := <-drops:
		t.Logf("node2 drop: %s on %s: %s", d.Point, d.Device, d.Summary)
		if d.Reason != "Policy denied" || d.Point != "to-container" || d.Device != top.Pod("pod4").LXCName || d.Node != "node2" {
			t.Errorf("drop %+v", d)
		}
	case <-time.After(10 * time.Second):
		t.Error("no drop event from node2")
	}
	if _, err := clients["node2"].Watch(ctx, nodeapi.Watch{}); err != nil {
		t.Error(err)
	}
	m, err := clients["node2"].Metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("node2 metrics: %+v", m)

	rr, err := clients["node1"].Reset(ctx, nodeapi.Reset{})
	if err != nil {
		t.Fatal(err)
	}
	if ct, err := clients["node1"].CTList(ctx); err != nil || len(ct) != 0 || rr.CTFlushed == 0 {
		t.Errorf("node1 reset flushed %d; CT now %+v %v", rr.CTFlushed, ct, err)
	}

	// The ToR without node2.
	var lines []string
	skip := false
	for _, l := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(l, "  - name: node2"):
			skip = true
			continue
		case skip && strings.HasPrefix(l, "    "):
			continue
		}
		skip = false
		if strings.Contains(l, "pod4") {
			continue
		}
		lines = append(lines, l)
	}
	one := strings.Join(lines, "\n")
	one = strings.Replace(one, `backends: ["pod4:8080"]`, `backends: []`, 1)
	rup, err := tor.Update(ctx, nodeapi.Update{Topology: one, File: "one-node.yaml"})
	if err != nil {
		t.Fatalf("router update: %v\n%s", err, one)
	}
	t.Logf("router update: %q", rup.Changes)
	cidr := top.Node("node2").PodCIDR.String()
	deadline := time.Now().Add(15 * time.Second)
	for {
		routes, err := tor.KernelRoutes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		gone := true
		for _, r := range routes {
			if r.Dst == cidr {
				gone = false
			}
		}
		if gone {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ToR still routes %s after removing node2: %+v", cidr, routes)
		}
		time.Sleep(100 * time.Millisecond)
	}
	peers, err := tor.BGPPeers(ctx)
	if err != nil || len(peers) != 1 {
		t.Errorf("ToR peers after update: %v %v", peers, err)
	}
}

// checkWatch: with both nodes watched, one HTTP request gives the hops of
// the reference journey as events on the host: pod1's eth0, from-container,
// to-stack and to-netdev on node1; from-netdev, to-container and pod4's eth0
// on node2.
func checkWatch(ctx context.Context, t *testing.T, f *vmtest.Fabric, top *topologies.Topology, clients map[string]*nodeapi.Client) {
	var mu sync.Mutex
	seen := map[string]bool{}
	for _, name := range []string{"node1", "node2"} {
		f.VM(name).Agent().OnEvent(func(m *control.Message) {
			key := ""
			switch m.Event {
			case nodeapi.EventDatapath:
				var d nodeapi.DatapathEvent
				if control.Unmarshal(m.Data, &d) != nil || d.Type != nodeapi.EventTrace {
					return
				}
				key = d.Node + " " + d.Point + " " + d.Device
			case nodeapi.EventPodPacket:
				var p nodeapi.PodPacket
				if control.Unmarshal(m.Data, &p) != nil {
					return
				}
				key = p.Node + " " + p.Pod + ":eth0 " + p.Direction
			default:
				return
			}
			mu.Lock()
			seen[key] = true
			mu.Unlock()
		})
		w, err := clients[name].Watch(ctx, nodeapi.Watch{Datapath: true, Pods: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: watching pods %v", name, w.Pods)
	}
	res, err := clients["node1"].Run(ctx, nodeapi.ClientAction{Pod: "pod1", Kind: nodeapi.ClientHTTP, Dst: "10.224.1.1:80", Timeout: 10 * time.Second})
	if err != nil || !res.Outcomes[0].OK {
		t.Fatalf("watched request: %+v %v", res, err)
	}
	pod1, pod4 := top.Pod("pod1"), top.Pod("pod4")
	want := []string{
		"node1 pod1:eth0 egress",
		"node1 from-container " + pod1.LXCName,
		"node1 to-stack " + pod1.LXCName,
		"node1 to-netdev bond0",
		"node2 from-netdev bond0",
		"node2 to-container " + pod4.LXCName,
		"node2 pod4:eth0 ingress",
		"node1 to-container " + pod1.LXCName, // the reply, reverse-NATed
		"node1 pod1:eth0 ingress",
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		var missing []string
		for _, k := range want {
			if !seen[k] {
				missing = append(missing, k)
			}
		}
		mu.Unlock()
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			mu.Lock()
			t.Errorf("events missing: %q; seen %v", missing, seen)
			mu.Unlock()
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, name := range []string{"node1", "node2"} {
		if _, err := clients[name].Watch(ctx, nodeapi.Watch{}); err != nil {
			t.Error(err)
		}
	}
	t.Logf("journey events seen on the host: %d kinds", len(seen))
}

// checkBGPStop: bgp-stop on node2 withdraws its PodCIDR (the ToR's kernel
// loses the route), bgp-start brings it back.
func checkBGPStop(ctx context.Context, t *testing.T, tor, node2 *nodeapi.Client, cidr string) {
	has := func() bool {
		routes, err := tor.KernelRoutes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range routes {
			if r.Dst == cidr && r.Protocol == "bgp" {
				return true
			}
		}
		return false
	}
	waitFor := func(what string, want bool, limit time.Duration) time.Duration {
		start := time.Now()
		for has() != want {
			if time.Since(start) > limit {
				t.Fatalf("%s: not within %v", what, limit)
			}
			time.Sleep(100 * time.Millisecond)
		}
		return time.Since(start)
	}
	if err := node2.BGPStop(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("bgp-stop on node2: ToR lost %s after %v", cidr, waitFor("withdrawal", false, 15*time.Second))
	if _, err := node2.BGPPeers(ctx); err == nil {
		t.Error("bgp-peers on a stopped speaker: no error")
	}
	if err := node2.BGPStart(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("bgp-start on node2: ToR has %s again after %v", cidr, waitFor("re-announcement", true, 30*time.Second))
}

type setupError struct {
	node string
	eps  []nodeapi.EndpointRow
}

func (e *setupError) Error() string {
	return e.node + ": unexpected endpoints after setup"
}
