package roles

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/hoplab/hoplab/bgp"
	"github.com/hoplab/hoplab/datapath"
	"github.com/hoplab/hoplab/topologies"
	"github.com/hoplab/hoplab/vmtest/agent/pods"
	"github.com/hoplab/hoplab/vmtest/agent/proxy"
	"github.com/hoplab/hoplab/vmtest/agent/workload"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// Defaults of Options.
const (
	// DefaultPinPath is where the agent pins the datapath's maps.
	DefaultPinPath = "/sys/fs/bpf/hoplab"
	// DefaultUplink is the node's uplink device.
	DefaultUplink = "bond0"
	// DefaultCTEntries sizes the CT table for small VMs (8 MiB).
	DefaultCTEntries = nodeapi.DefaultCTEntries
	// DefaultEventQueue is how many events wait for the host before newer
	// ones are dropped (and counted).
	DefaultEventQueue = 4096
	// TunnelDevice is the node's VXLAN device in tunnel mode (Cilium's
	// name).
	TunnelDevice = "cilium_vxlan"
	// TunnelOverhead is what VXLAN adds to a packet on the uplink (outer
	// Ethernet, IPv4, UDP and VXLAN headers): pods' MTU is the uplink's
	// less this in tunnel mode, as Cilium sets it.
	TunnelOverhead = 50
)

// ErrNotSetUp is returned by the agent's methods called before the VM was
// set up as a node (or as a router, for the BGP methods).
var ErrNotSetUp = errors.New("not set up: call node-setup (or router-setup) first")

// Options configure a Node or a Router beyond what the topology says.
type Options struct {
	// PinPath is the bpffs directory the maps are pinned in; empty pins
	// nothing. The agent uses DefaultPinPath. Close removes it.
	PinPath string
	// Uplink is the uplink device; empty means DefaultUplink.
	Uplink string
	// NetNSPrefix prefixes the pods' network namespace names (tests use it
	// to stay apart from other tests on the same host).
	NetNSPrefix string
	// CTEntries sizes the CT table; 0 means DefaultCTEntries.
	CTEntries uint32
	// Emit sends an event to the host (guest.Emit in the agent); nil drops
	// events.
	Emit func(event string, data any) error
	// EventQueue bounds the events waiting for Emit; 0 means
	// DefaultEventQueue.
	EventQueue int
	// Logger receives progress; nil means slog.Default().
	Logger *slog.Logger
	// BGPPort overrides the ToR's BGP port (tests); 0 means 179.
	BGPPort int
	// Cgroup is the cgroup v2 directory the socket LB attaches to when the
	// topology turns it on; empty means DefaultCgroup.
	Cgroup string
}

// DefaultCgroup is the root cgroup v2 directory: the socket LB applies to
// every process of the VM, pods' and host's alike.
const DefaultCgroup = "/sys/fs/cgroup"

func (o Options) withDefaults() Options {
	if o.Uplink == "" {
		o.Uplink = DefaultUplink
	}
	if o.Cgroup == "" {
		o.Cgroup = DefaultCgroup
	}
	if o.CTEntries == 0 {
		o.CTEntries = DefaultCTEntries
	}
	if o.EventQueue <= 0 {
		o.EventQueue = DefaultEventQueue
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Emit == nil {
		o.Emit = func(string, any) error { return nil }
	}
	return o
}

// Node is a set-up node: its pods, the loaded and attached datapath, the
// listeners and the BGP speaker. Its methods are safe for concurrent use.
// Setup, Update and Close must run in the node's network namespace (the
// calling thread's, as netlink and tc act on it); the other methods work
// from any goroutine.
type Node struct {
	opts Options
	log  *slog.Logger
	// nl is a netlink handle in the node's namespace, for lookups from any
	// goroutine.
	nl *netlink.Handle
	ns netns.NsHandle

	nodeName string
	// externalHosts is set on the router's Node serving the external
	// hosts (newExternals): its "pods" are external hosts.
	externalHosts bool
	// tunnel is set in tunnel mode: the node has TunnelDevice, and its
	// pods' MTU (podMTU) leaves room for the encapsulation.
	tunnel bool
	podMTU int

	watchMu sync.Mutex // serialises Watch
	mu      sync.Mutex
	st      *state
	ids     *ids
	dp      *datapath.Datapath
	// sockLB is the socket-level LB (topology socketLB: true), else nil.
	sockLB    *datapath.SocketLB
	pods      map[string]*pods.Pod
	listeners map[string]map[topologies.Listener]*workload.Listener
	speaker   *bgp.Speaker
	bgpCfg    *bgp.NodeConfig
	watch     *watcher
	devices   sync.Map // ifindex (uint32) -> name
	closed    bool
	routerIP  *netlink.Addr // added to lo by Setup

	rstMu sync.Mutex
	rst   map[string]*rstFilter // by pod: pod-inject's RST suppression

	// proxy is the L7 proxy (l7.go), proxyPolicy its policy, and
	// proxyRouting says its policy routing is set up.
	proxy        *proxy.Proxy
	proxyPolicy  *proxy.Policy
	proxyRouting bool
}

// openNS returns the calling thread's network namespace and a netlink
// handle in it, for lookups from any goroutine; the caller closes both.
func openNS() (netns.NsHandle, *netlink.Handle, error) {
	ns, err := netns.Get()
	if err != nil {
		return netns.None(), nil, fmt.Errorf("netns: %w", err)
	}
	nl, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		ns.Close()
		return netns.None(), nil, fmt.Errorf("netlink: %w", err)
	}
	return ns, nl, nil
}

// raiseMemlock lifts RLIMIT_MEMLOCK as far as allowed: kernels before 5.11
// charge BPF maps to it (64 KiB by default for init); later ones use memcg
// and do not need it, so failing here is only logged (datapath.Load then
// names the problem).
func raiseMemlock(log *slog.Logger) {
	if err := unix.Setrlimit(unix.RLIMIT_MEMLOCK, &unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}); err == nil {
		return
	}
	var l unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &l); err == nil && l.Cur < l.Max {
		l.Cur = l.Max
		if err := unix.Setrlimit(unix.RLIMIT_MEMLOCK, &l); err != nil {
			log.Debug("raise memlock limit", "err", err)
		}
	}
}

// addRouterIP puts the node's router IP (the pods' gateway) on lo as a
// /32, as Cilium puts it on cilium_host: pods can reach their gateway and
// the node answers for it.
func (n *Node) addRouterIP() error {
	lo, err := n.nl.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("router ip: lo: %w", err)
	}
	ip := n.st.node.RouterIP
	addrs, err := n.nl.AddrList(lo, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("router ip: addresses of lo: %w", err)
	}
	for _, a := range addrs {
		if a.IP.Equal(net.IP(ip.AsSlice())) {
			return nil
		}
	}
	a := &netlink.Addr{IPNet: &net.IPNet{IP: net.IP(ip.AsSlice()), Mask: net.CIDRMask(32, 32)}}
	if err := n.nl.AddrAdd(lo, a); err != nil {
		return fmt.Errorf("router ip %v on lo: %w", ip, err)
	}
	n.routerIP = a
	return nil
}

// Setup builds the node s.Node of the topology in s: forwarding sysctls,
// one pod per topology pod on the node, the datapath loaded, its maps
// filled and its programs attached (bond0 and every lxc), the pods'
// listeners and, unless s.NoBGP, the BGP node speaker. On error everything
// done so far is undone. Errors name the step that failed ("pod pod1: ...",
// "load bpf_lxc: ..."), not the node: the host's client names the VM and the
// method ("node1: node-setup: ..."), and so do the node's other methods.
func Setup(ctx context.Context, opts Options, s nodeapi.Setup) (n *Node, res nodeapi.SetupResult, err error) {
	start := time.Now()
	opts = opts.withDefaults()
	top, err := topologies.Parse(s.File, []byte(s.Topology))
	if err != nil {
		return nil, res, err
	}
	n = &Node{
		opts: opts, log: opts.Logger.With("node", s.Node), ids: newIDs(), nodeName: s.Node,
		pods: map[string]*pods.Pod{}, listeners: map[string]map[topologies.Listener]*workload.Listener{},
	}
	st, err := desired(top, s.Node, n.ids)
	if err != nil {
		return nil, res, err
	}
	n.st = st
	if n.ns, n.nl, err = openNS(); err != nil {
		return nil, res, err
	}
	defer func() {
		if err != nil {
			_ = n.Close()
			n = nil
		}
	}()
	uplink, err := n.nl.LinkByName(opts.Uplink)
	if err != nil {
		return n, res, fmt.Errorf("uplink %s: %w", opts.Uplink, err)
	}
	n.podMTU = uplink.Attrs().MTU
	tunnelIf := 0
	if top.Mode == topologies.Tunnel {
		// Before the sysctls, so that the device gets their defaults.
		if tunnelIf, err = datapath.AddVXLANDevice(TunnelDevice, 0); err != nil {
			return n, res, err
		}
		n.tunnel = true
		n.podMTU -= TunnelOverhead
	}
	if err := forwardingSysctls(n.nl); err != nil {
		return n, res, err
	}
	if err := n.addRouterIP(); err != nil {
		return n, res, err
	}
	if opts.PinPath != "" {
		if err := os.MkdirAll(opts.PinPath, 0o755); err != nil {
			return n, res, fmt.Errorf("pin path: %w", err)
		}
	}
	raiseMemlock(n.log)
	tLoad := time.Now()
	n.dp, err = datapath.Load(datapath.Options{PinPath: opts.PinPath, CTEntries: opts.CTEntries, TunnelIfIndex: tunnelIf, Logger: n.log})
	loadTook := time.Since(tLoad)
	if err != nil {
		return n, res, err
	}
	// A pinned map may hold a previous run's entries: start from empty maps.
	if err := n.flushMaps(); err != nil {
		return n, res, err
	}
	// NodePort frontends match, and SNAT uses, the uplink's address.
	if err := n.dp.SetNodeAddress(st.node.Uplink.Address.Addr()); err != nil {
		return n, res, err
	}
	// Every pod's address is in the node's PodCIDR (the topology checks
	// it), so from-container looks up only those among the local endpoints.
	if err := n.dp.SetPodCIDR(st.node.PodCIDR); err != nil {
		return n, res, err
	}
	for _, p := range st.sortedServices() {
		if err := n.dp.Services.Upsert(p); err != nil {
			return n, res, err
		}
	}
	for _, pfx := range sortedPrefixes(st.ipcache) {
		if err := n.dp.IPCache.Upsert(pfx, st.ipcache[pfx]); err != nil {
			return n, res, err
		}
	}
	// The proxy listens before any policy entry redirects to it.
	if err := n.startProxy(); err != nil {
		return n, res, err
	}
	for _, k := range sortedPolicy(st.policy) {
		if err := n.dp.Policy.AllowProxy(k, st.policy[k]); err != nil {
			return n, res, err
		}
	}
	tPods := time.Now()
	for _, name := range st.podNames() {
		if err := n.addPod(name); err != nil {
			return n, res, err
		}
	}
	podsTook := time.Since(tPods)
	if err := n.dp.AttachNetdev(opts.Uplink); err != nil {
		return n, res, err
	}
	if n.tunnel {
		if err := n.dp.AttachOverlay(TunnelDevice); err != nil {
			return n, res, err
		}
	}
	if top.SocketLB {
		if n.sockLB, err = n.dp.AttachSocketLB(opts.Cgroup); err != nil {
			return n, res, err
		}
		n.log.Info("socket LB attached", "cgroup", opts.Cgroup, "hooks", n.sockLB.Hooks())
	}
	if !s.NoBGP {
		if err := n.startBGP(ctx); err != nil {
			return n, res, err
		}
	}
	res.Endpoints, err = n.EndpointList(ctx)
	if err != nil {
		return n, res, err
	}
	res.Programs = programCounts(n.dp)
	res.Took = time.Since(start)
	n.log.Info("node set up", "pods", len(st.pods), "services", len(st.services), "took", res.Took,
		"load", loadTook, "pods_took", podsTook)
	return n, res, nil
}

// flushMaps empties the maps a previous run may have left pinned.
func (n *Node) flushMaps() error {
	if n.opts.PinPath == "" {
		return nil
	}
	var errs []error
	errs = append(errs, n.dp.CT.Flush(), n.dp.NAT.Flush())
	if svcs, err := n.dp.Services.List(); err == nil {
		for _, s := range svcs {
			errs = append(errs, n.dp.Services.Delete(s.VIP, s.Port, s.Proto))
			for _, b := range s.Backends {
				errs = append(errs, n.dp.Backends.Delete(b.ID))
			}
		}
	} else {
		errs = append(errs, err)
	}
	if eps, err := n.dp.Endpoints.List(); err == nil {
		for _, e := range eps {
			errs = append(errs, n.dp.Endpoints.Delete(e.IP))
		}
	} else {
		errs = append(errs, err)
	}
	if rules, err := n.dp.Policy.Entries(); err == nil {
		for _, r := range rules {
			errs = append(errs, n.dp.Policy.Delete(r.Key))
		}
	} else {
		errs = append(errs, err)
	}
	if recs, err := n.dp.IPCache.Entries(); err == nil {
		for _, r := range recs {
			errs = append(errs, n.dp.IPCache.Delete(r.Prefix))
		}
	} else {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("flush pinned maps: %w", err)
	}
	return nil
}

// addPod creates pod name of the current state, attaches from-container to
// its lxc device, writes its endpoint, registers its policy program and
// starts its listeners. Its policy entries are written by the caller.
func (n *Node) addPod(name string) error {
	tp := n.st.pods[name]
	p, err := pods.Create(pods.Spec{
		Name: n.opts.NetNSPrefix + tp.Name, IP: tp.IP, MAC: tp.MAC.HardwareAddr(),
		HostIfName: tp.LXCName, HostMAC: tp.LXCMAC.HardwareAddr(), Gateway: n.st.node.RouterIP, MTU: n.podMTU,
	})
	if err != nil {
		return fmt.Errorf("pod %s: %w", name, err)
	}
	n.pods[name] = p
	ep := n.st.endpoints[name]
	ep.IfIndex = p.HostIndex
	if err := n.dp.Endpoints.Upsert(ep); err != nil {
		return fmt.Errorf("pod %s: %w", name, err)
	}
	if err := n.dp.RegisterEndpoint(tp.EndpointID); err != nil {
		return fmt.Errorf("pod %s: %w", name, err)
	}
	if err := n.dp.AttachLXC(tp.LXCName); err != nil {
		return fmt.Errorf("pod %s: %w", name, err)
	}
	for _, l := range tp.Listen {
		if err := n.listen(name, l); err != nil {
			return err
		}
	}
	return nil
}

// listen starts listener l of pod name.
func (n *Node) listen(name string, l topologies.Listener) error {
	wl, err := workload.Listen(n.pods[name], name, l.Protocol.String(), l.Port)
	if err != nil {
		return err // names the pod and the listener
	}
	if n.listeners[name] == nil {
		n.listeners[name] = map[topologies.Listener]*workload.Listener{}
	}
	n.listeners[name][l] = wl
	return nil
}

// removePod stops pod name's listeners, unregisters its endpoint and
// deletes its namespace and veth pair (which takes its tc filter along).
func (n *Node) removePod(name string, id uint16, ip netip.Addr) error {
	var errs []error
	for _, l := range n.listeners[name] {
		errs = append(errs, l.Close())
	}
	delete(n.listeners, name)
	errs = append(errs, n.stopRST(name, false))
	if err := n.dp.Endpoints.Delete(ip); err != nil && !errors.Is(err, datapath.ErrNotFound) {
		errs = append(errs, err)
	}
	errs = append(errs, n.dp.UnregisterEndpoint(id))
	if p := n.pods[name]; p != nil {
		errs = append(errs, p.Delete())
	}
	delete(n.pods, name)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("pod %s: remove: %w", name, err)
	}
	return nil
}

// Close stops the watch, the speaker and the listeners, deletes the pods,
// detaches and unloads the datapath and unpins its maps.
func (n *Node) Close() error {
	n.watchMu.Lock()
	_, _ = n.stopWatch()
	n.watchMu.Unlock()
	n.closeProxy() // before n.mu: its connections' records take it
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	var errs []error
	if n.speaker != nil {
		n.speaker.Stop()
		n.speaker = nil
	}
	for name, ls := range n.listeners {
		for _, l := range ls {
			errs = append(errs, l.Close())
		}
		delete(n.listeners, name)
	}
	errs = append(errs, n.stopAllRST(false), n.stopProxy())
	names := make([]string, 0, len(n.pods))
	for name := range n.pods {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := n.pods[name].Delete(); err != nil {
			errs = append(errs, fmt.Errorf("pod %s: %w", name, err))
		}
	}
	if n.sockLB != nil {
		errs = append(errs, n.sockLB.Close())
		n.sockLB = nil
	}
	if n.dp != nil {
		if err := datapath.DetachNetdev(n.opts.Uplink); err != nil {
			errs = append(errs, err)
		}
		if n.tunnel {
			if err := datapath.DetachOverlay(TunnelDevice); err != nil {
				errs = append(errs, err)
			}
		}
		errs = append(errs, n.dp.Close())
		if n.opts.PinPath != "" {
			errs = append(errs, os.RemoveAll(n.opts.PinPath))
		}
	}
	if n.tunnel {
		if l, err := n.nl.LinkByName(TunnelDevice); err == nil {
			if err := n.nl.LinkDel(l); err != nil {
				errs = append(errs, fmt.Errorf("remove %s: %w", TunnelDevice, err))
			}
		}
	}
	if n.routerIP != nil {
		if lo, err := n.nl.LinkByName("lo"); err == nil {
			if err := n.nl.AddrDel(lo, n.routerIP); err != nil {
				errs = append(errs, fmt.Errorf("remove router ip: %w", err))
			}
		}
	}
	if n.nl != nil {
		n.nl.Close()
	}
	if n.ns.IsOpen() {
		n.ns.Close()
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return nil
}

func (n *Node) name() string { return n.nodeName }

// Name is the node's name in the topology.
func (n *Node) Name() string { return n.name() }

// pod returns the created pod called name.
func (n *Node) pod(name string) (*pods.Pod, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := n.pods[name]
	if p == nil {
		return nil, n.notHere(name)
	}
	return p, nil
}

// notHere is the error for pod name, which this node does not run: it
// runs on another node, or is not in the topology. The host's error names
// this node already.
func (n *Node) notHere(name string) error {
	if p := n.st.top.Pod(name); p != nil {
		return fmt.Errorf("pod %s runs on %s", name, p.Node)
	}
	return fmt.Errorf("%w %q in topology %s", topologies.ErrUnknownPod, name, n.st.top.Name)
}

// programCounts returns the verifier's processed instruction count of each
// program, where the kernel reports it.
func programCounts(dp *datapath.Datapath) map[string]int {
	out := map[string]int{}
	for name, p := range dp.Programs() {
		info, err := p.Info()
		if err != nil {
			continue
		}
		if n, ok := info.VerifiedInstructions(); ok {
			out[name] = int(n)
		}
	}
	return out
}

// forwardingSysctls turns on IPv4 forwarding and turns off reverse-path
// filtering (all, default and every existing device) in the calling
// thread's namespace: pods are reached through /32 routes on lxc devices
// and replies may come back on another device than the route suggests.
func forwardingSysctls(h *netlink.Handle) error {
	set := map[string]string{
		"net.ipv4.ip_forward":              "1",
		"net.ipv4.conf.all.rp_filter":      "0",
		"net.ipv4.conf.default.rp_filter":  "0",
		"net.ipv4.conf.default.forwarding": "1",
	}
	links, err := h.LinkList()
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	for _, l := range links {
		set["net.ipv4.conf."+l.Attrs().Name+".rp_filter"] = "0"
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := setSysctl(k, set[k]); err != nil {
			return err
		}
	}
	return nil
}

// setSysctl writes a dotted sysctl key in the calling thread's namespace.
func setSysctl(key, value string) error {
	path := "/proc/sys/" + dotsToSlashes(key)
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", key, value, err)
	}
	return nil
}

func dotsToSlashes(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c == '.' {
			b[i] = '/'
		}
	}
	return string(b)
}

// topology returns the current topology.
func (n *Node) topology() *topologies.Topology {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.st.top
}
