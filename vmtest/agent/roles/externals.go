package roles

import (
	"errors"
	"fmt"

	"github.com/hoplab/hoplab/topologies"
	"github.com/hoplab/hoplab/vmtest/agent/pods"
	"github.com/hoplab/hoplab/vmtest/agent/workload"
)

// newExternals builds the topology's external hosts on the router: one
// network namespace each, linked to the router's namespace (the calling
// thread's) by a veth whose router end is the external's RouterDevice.
// Inside, the external has its address as a /32 and a default route via
// its gateway (whose MAC is the router end's); the router reaches it by a
// /32 route on that device. No address is needed on the router's end: the
// router only forwards.
//
// The hosts are served like a node's pods (client actions, injection,
// captures), by a Node without datapath, pods or BGP: the returned Node
// has the externals as its pods. It is nil when the topology has none.
func newExternals(opts Options, top *topologies.Topology) (h *Node, err error) {
	if len(top.Externals) == 0 {
		return nil, nil
	}
	h = &Node{
		opts: opts, log: opts.Logger.With("router", top.Router.Name, "role", "externals"), ids: newIDs(),
		nodeName: top.Router.Name, st: &state{top: top}, externalHosts: true,
		pods: map[string]*pods.Pod{}, listeners: map[string]map[topologies.Listener]*workload.Listener{},
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, h.Close())
			h = nil
		}
	}()
	if h.ns, h.nl, err = openNS(); err != nil {
		return h, fmt.Errorf("externals: %w", err)
	}
	for _, e := range top.Externals {
		p, err := pods.Create(pods.Spec{
			Name: opts.NetNSPrefix + e.Name, IP: e.IP, MAC: e.MAC.HardwareAddr(),
			HostIfName: e.RouterDevice, HostMAC: e.RouterMAC.HardwareAddr(), Gateway: e.Gateway,
		})
		if err != nil {
			return h, fmt.Errorf("external %s: %w", e.Name, err)
		}
		h.pods[e.Name] = p
	}
	return h, nil
}
