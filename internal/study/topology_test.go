package study

import (
	"testing"

	"github.com/hoplab/hoplab/topologies"
)

// TestTopologyHasNEntriesPerServer: each server's policy holds exactly n
// L3L4 entries from the client, one of them the perf port; the client has
// none, and n = 0 leaves enforcement off.
func TestTopologyHasNEntriesPerServer(t *testing.T) {
	for _, n := range []int{0, 1, 5, 10000} {
		top, err := Topology(n)
		if err != nil {
			t.Fatalf("%d: %v", n, err)
		}
		client := top.Pod(ClientPod)
		for _, srv := range []string{LocalServer, RemoteServer} {
			ep, err := top.EndpointPolicy(srv)
			if err != nil {
				t.Fatal(err)
			}
			if ep.IngressEnforced != (n > 0) || len(ep.Entries) != n {
				t.Fatalf("%d entries: %s enforced %v with %d entries", n, srv, ep.IngressEnforced, len(ep.Entries))
			}
			perf := false
			for _, e := range ep.Entries {
				if e.RemoteIdentity != client.Identity || e.Proto != topologies.TCP || e.Direction != topologies.Ingress {
					t.Fatalf("%s: entry %+v is not from the client over TCP", srv, e)
				}
				perf = perf || e.Port == PerfPort
			}
			if n > 0 && !perf {
				t.Errorf("%d entries: %s does not admit port %d", n, srv, PerfPort)
			}
		}
		if ep, _ := top.EndpointPolicy(ClientPod); ep.IngressEnforced || len(ep.Entries) != 0 {
			t.Errorf("client has policy: %+v", ep)
		}
		if top.Pod(LocalServer).Node != "node1" || top.Pod(RemoteServer).Node != "node2" || client.Node != "node1" {
			t.Error("placements changed")
		}
		if top.Pod(LocalServer).IP != localIP || top.Pod(RemoteServer).IP != remoteIP || client.IP != clientIP {
			t.Error("addresses changed")
		}
	}
}
