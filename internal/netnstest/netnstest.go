// Package netnstest puts a test into a network namespace of its own, standing
// in for a node, so tests that create pods, routes and tc filters never touch
// the host's network.
//
// Namespaces a test pins under /run/netns (pods) are named with [Prefix],
// which records the test process's pid and start time. A package whose tests
// pin namespaces calls [Main] from TestMain: it removes the pinned
// namespaces of test processes that died before their cleanup (interrupted,
// killed, timed out) and removes the process's own on SIGINT or SIGTERM.
package netnstest

import (
	"os"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// EnterNew locks the calling goroutine to its OS thread and moves it into a
// fresh network namespace with lo up and IPv4 forwarding on. The namespace is
// left and released when the test ends. Code under test must run on this
// goroutine (netlink's package functions act on the thread's namespace).
func EnterNew(t testing.TB) netns.NsHandle {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("current netns: %v", err)
	}
	node, err := netns.New()
	if err != nil {
		orig.Close()
		runtime.UnlockOSThread()
		t.Fatalf("new netns: %v", err)
	}
	t.Cleanup(func() {
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked: the runtime discards it with the goroutine.
			t.Errorf("restore netns: %v", err)
		} else {
			runtime.UnlockOSThread()
		}
		orig.Close()
		node.Close()
	})
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	// /proc/sys/net resolves to the opening thread's namespace.
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	return node
}
