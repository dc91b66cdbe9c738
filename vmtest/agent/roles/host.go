package roles

import (
	"github.com/vishvananda/netns"

	"github.com/hoplab/hoplab/vmtest/agent/pods"
)

// hostNS is a node's host network namespace as a workload.NetNS: client
// actions from "host" run there, as a process of the node would.
type hostNS struct{ ns netns.NsHandle }

// Do runs fn on a thread in the node's namespace.
func (h hostNS) Do(fn func() error) error { return pods.DoIn(h.ns, fn) }
