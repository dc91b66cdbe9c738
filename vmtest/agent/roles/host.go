package roles

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
)

// hostNS is a node's host network namespace as a workload.NetNS: client
// actions from "host" run there, as a process of the node would.
type hostNS struct{ ns netns.NsHandle }

// Do runs fn on a thread in the node's namespace.
func (h hostNS) Do(fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return fmt.Errorf("current netns: %w", err)
	}
	defer orig.Close()
	if orig.Equal(h.ns) {
		return fn()
	}
	if err := netns.Set(h.ns); err != nil {
		return fmt.Errorf("enter the node's netns: %w", err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			runtime.LockOSThread() // never reuse a thread left elsewhere
		}
	}()
	return fn()
}
