//go:build vm

package node

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hoplab/hoplab/bgp"
	"github.com/hoplab/hoplab/topologies"
	"github.com/hoplab/hoplab/vmtest"
	"github.com/hoplab/hoplab/vmtest/control"
	"github.com/hoplab/hoplab/vmtest/nodeapi"
)

// TestVMPodToService boots the reference topology (ToR + node1 + node2),
// sets up the router and both nodes through the agent's methods, waits
// for BGP to carry both PodCIDRs into the ToR's kernel, and fetches
// http://10.224.1.1/ from pod1: pod4 on node2 answers through the whole
// datapath and fabric.
func TestVMPodToService(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "topologies", "pod-to-service.yaml"))
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
}

type setupError struct {
	node string
	eps  []nodeapi.EndpointRow
}

func (e *setupError) Error() string {
	return e.node + ": unexpected endpoints after setup"
}
