// Package pods gives each pod of a node its own network stack, wired the way
// Cilium wires an endpoint: a network namespace with eth0, the host side of the
// veth pair named lxc…, the pod's /32 address, a single default route via the
// gateway address, and a permanent neighbour entry that maps the gateway to
// the lxc device's MAC ("hijacked ARP"), so every packet the pod sends carries
// the lxc MAC as destination and enters the datapath at lxc tc ingress.
//
// Namespaces are named (under /run/netns) so `ip netns exec POD …` works.
//
// Errors name the step that failed, not the pod: callers name it.
package pods

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Spec describes one pod's network identity.
type Spec struct {
	// Name names the pod and its network namespace.
	Name string
	// IP is the pod's address; it gets a /32 on eth0.
	IP netip.Addr
	// MAC is eth0's address inside the pod.
	MAC net.HardwareAddr
	// HostIfName is the host-side veth name (lxc…, at most 15 bytes).
	HostIfName string
	// HostMAC is the host-side veth's address, the gateway's MAC for the pod.
	HostMAC net.HardwareAddr
	// Gateway is the address of the pod's default route (the node's router IP).
	Gateway netip.Addr
	// MTU is both veth ends' MTU; 0 means DefaultMTU.
	MTU int
}

// DefaultMTU is a pod's MTU unless its Spec says otherwise: the uplink's.
const DefaultMTU = 1500

// Pod is a created pod network namespace and its veth pair.
type Pod struct {
	Spec
	// HostIndex is the ifindex of the host-side (lxc) device.
	HostIndex int
	// PodIndex is the ifindex of eth0 inside the pod namespace.
	PodIndex int
	ns       netns.NsHandle
}

// Create builds the pod described by s in the calling process's current
// network namespace (the node's). It undoes partial work on error.
func Create(s Spec) (p *Pod, err error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	ns, err := newNamedNS(s.Name)
	if err != nil {
		return nil, fmt.Errorf("create netns: %w", err)
	}
	p = &Pod{Spec: s, ns: ns}
	defer func() {
		if err != nil {
			_ = p.Delete()
			p = nil
		}
	}()

	veth := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: s.HostIfName, HardwareAddr: s.HostMAC, MTU: cmp.Or(s.MTU, DefaultMTU)},
		PeerName:         "eth0",
		PeerHardwareAddr: s.MAC,
		PeerNamespace:    netlink.NsFd(int(ns)),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return p, fmt.Errorf("add veth %s: %w", s.HostIfName, err)
	}
	host, err := netlink.LinkByName(s.HostIfName)
	if err != nil {
		return p, fmt.Errorf("%s: %w", s.HostIfName, err)
	}
	p.HostIndex = host.Attrs().Index
	if err := netlink.LinkSetUp(host); err != nil {
		return p, fmt.Errorf("up %s: %w", s.HostIfName, err)
	}
	// The node reaches the pod through its lxc device (host-to-pod traffic,
	// and the kernel's view for replies that are not redirected by BPF).
	if err := netlink.RouteReplace(&netlink.Route{
		LinkIndex: p.HostIndex, Dst: hostPrefix(s.IP), Scope: netlink.SCOPE_LINK,
	}); err != nil {
		return p, fmt.Errorf("route to pod: %w", err)
	}
	// MACs are deterministic, so the node never needs to ARP for a pod.
	if err := netlink.NeighSet(&netlink.Neigh{
		LinkIndex: p.HostIndex, Family: unix.AF_INET, State: netlink.NUD_PERMANENT,
		IP: net.IP(s.IP.AsSlice()), HardwareAddr: s.MAC,
	}); err != nil {
		return p, fmt.Errorf("node neighbour %v: %w", s.IP, err)
	}
	if err := p.configureInside(); err != nil {
		return p, err
	}
	// The kernel activates a new device's qdisc from linkwatch, up to a
	// second after "up"; until then it drops every packet. Wait for it.
	if err := p.waitOperUp(time.Now().Add(3 * time.Second)); err != nil {
		return p, err
	}
	return p, nil
}

func (p *Pod) waitOperUp(deadline time.Time) error {
	inside, err := netlink.NewHandleAt(p.ns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink in netns: %w", err)
	}
	defer inside.Close()
	for {
		host, err1 := netlink.LinkByIndex(p.HostIndex)
		eth0, err2 := inside.LinkByIndex(p.PodIndex)
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		if host.Attrs().OperState == netlink.OperUp && eth0.Attrs().OperState == netlink.OperUp {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("veth not operationally up (host %v, pod %v)",
				host.Attrs().OperState, eth0.Attrs().OperState)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (s Spec) validate() error {
	switch {
	case s.Name == "":
		return errors.New("pod spec: empty name")
	case len(s.HostIfName) == 0 || len(s.HostIfName) > unix.IFNAMSIZ-1:
		return fmt.Errorf("host interface name %q must be 1..15 bytes", s.HostIfName)
	case !s.IP.Is4() || !s.Gateway.Is4():
		return fmt.Errorf("IP %v and gateway %v must be IPv4", s.IP, s.Gateway)
	case len(s.MAC) != 6 || len(s.HostMAC) != 6:
		return fmt.Errorf("MACs %v/%v must be 6 bytes", s.MAC, s.HostMAC)
	}
	return nil
}

func (p *Pod) configureInside() error {
	h, err := netlink.NewHandleAt(p.ns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink in netns: %w", err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("lo: %w", err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("up lo: %w", err)
	}
	eth0, err := h.LinkByName("eth0")
	if err != nil {
		return fmt.Errorf("eth0: %w", err)
	}
	p.PodIndex = eth0.Attrs().Index
	addr := &netlink.Addr{IPNet: hostPrefix(p.IP)}
	if err := h.AddrAdd(eth0, addr); err != nil {
		return fmt.Errorf("address %v: %w", p.IP, err)
	}
	if err := h.LinkSetUp(eth0); err != nil {
		return fmt.Errorf("up eth0: %w", err)
	}
	gw := net.IP(p.Gateway.AsSlice())
	// The gateway is on-link via eth0, and the pod's only other route is the
	// default via the gateway: every packet leaves towards the lxc MAC.
	if err := h.RouteReplace(&netlink.Route{
		LinkIndex: p.PodIndex, Dst: hostPrefix(p.Gateway), Scope: netlink.SCOPE_LINK,
	}); err != nil {
		return fmt.Errorf("route to gateway: %w", err)
	}
	if err := h.RouteReplace(&netlink.Route{LinkIndex: p.PodIndex, Gw: gw}); err != nil {
		return fmt.Errorf("default route: %w", err)
	}
	if err := h.NeighSet(&netlink.Neigh{
		LinkIndex: p.PodIndex, Family: unix.AF_INET, State: netlink.NUD_PERMANENT,
		IP: gw, HardwareAddr: p.HostMAC,
	}); err != nil {
		return fmt.Errorf("neighbour %v: %w", p.Gateway, err)
	}
	return nil
}

// Do runs fn with the calling goroutine inside the pod's network namespace.
// Sockets opened in fn stay in the pod's namespace after Do returns.
func (p *Pod) Do(fn func() error) error { return DoIn(p.ns, fn) }

// DoIn runs fn with the calling goroutine inside network namespace ns, on
// a locked thread that returns to its namespace afterwards (or, if it
// cannot, is never reused). Sockets opened in fn stay in ns.
func DoIn(ns netns.NsHandle, fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return fmt.Errorf("current netns: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		return fmt.Errorf("enter netns: %w", err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			// A thread stuck in the pod's namespace must not serve other
			// goroutines: leave it locked so the runtime discards it.
			runtime.LockOSThread()
		}
	}()
	return fn()
}

// NetNSPath is the path of the pod's named network namespace.
func (p *Pod) NetNSPath() string { return "/run/netns/" + p.Name }

// Delete removes the pod's veth pair and network namespace. It is safe to
// call on a partly created pod.
func (p *Pod) Delete() error {
	var errs []error
	if l, err := netlink.LinkByName(p.HostIfName); err == nil {
		if err := netlink.LinkDel(l); err != nil {
			errs = append(errs, fmt.Errorf("delete %s: %w", p.HostIfName, err))
		}
	}
	if p.ns.IsOpen() {
		p.ns.Close()
	}
	if err := netns.DeleteNamed(p.Name); err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		errs = append(errs, fmt.Errorf("delete netns: %w", err))
	}
	return errors.Join(errs...)
}

// newNamedNS creates a named network namespace without moving the caller.
func newNamedNS(name string) (netns.NsHandle, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return netns.None(), err
	}
	defer orig.Close()
	ns, err := netns.NewNamed(name)
	if err != nil {
		return netns.None(), err
	}
	if err := netns.Set(orig); err != nil {
		ns.Close()
		runtime.LockOSThread() // poisoned thread: never reuse it
		return netns.None(), err
	}
	return ns, nil
}

func hostPrefix(a netip.Addr) *net.IPNet {
	return &net.IPNet{IP: net.IP(a.AsSlice()), Mask: net.CIDRMask(32, 32)}
}
