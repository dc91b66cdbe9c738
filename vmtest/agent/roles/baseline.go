package roles

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/hoplab/hoplab/bgp"
	"github.com/hoplab/hoplab/topologies"
	"github.com/hoplab/hoplab/vmtest/agent/pods"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// BaselineBridge is the baseline node's bridge (kubenet's name for it).
const BaselineBridge = "cbr0"

// brNFCallIPTables is the sysctl that hands bridged IPv4 to netfilter's
// IPv4 hooks (br_netfilter), as a container host has it.
const brNFCallIPTables = "net.bridge.bridge-nf-call-iptables"

// Baseline is the study's reference node: the topology's pods of one node
// on a Linux bridge instead of the datapath, as a container host without
// eBPF wires them. The bridge holds the router IP (the pods' gateway) with
// the PodCIDR's prefix, so same-node pods talk over the bridge and other
// traffic is routed by the node; bridged IPv4 goes through netfilter's
// FORWARD hook (br_netfilter), where BaselineRules puts its rules. No BPF
// program is attached anywhere. The BGP speaker announces the PodCIDR
// exactly as a node's does. Its methods are safe for concurrent use;
// SetupBaseline and Close must run in the node's network namespace.
type Baseline struct {
	log      *slog.Logger
	opts     Options
	top      *topologies.Topology
	node     *topologies.Node
	ns       netns.NsHandle
	nl       *netlink.Handle
	bridge   netlink.Link
	nodeName string

	mu      sync.Mutex
	pods    map[string]*pods.Pod
	speaker *bgp.Speaker
	// policy is the FORWARD chain's policy: accept (tests use drop to see
	// which packets the chain gets).
	policy nftables.ChainPolicy
	rules  bool
	closed bool
}

// BaselineMAC is the bridge's MAC: locally administered, from the router
// IP, so that runs are reproducible.
func BaselineMAC(routerIP netip.Addr) net.HardwareAddr {
	a := routerIP.As4()
	return net.HardwareAddr{0x0a, 0x5b, a[0], a[1], a[2], a[3]}
}

// SetupBaseline builds node s.Node of s's topology as a baseline node in
// the calling thread's namespace: forwarding sysctls, the bridge with the
// router IP, every pod of the node on it (eth0 with its /32, the PodCIDR
// on-link and the default via the router IP, whose neighbour is the
// bridge), br_netfilter on, and unless s.NoBGP the speaker. On error
// everything done so far is undone; errors name the step.
func SetupBaseline(ctx context.Context, opts Options, s nodeapi.BaselineSetup) (b *Baseline, res nodeapi.BaselineSetupResult, err error) {
	start := time.Now()
	opts = opts.withDefaults()
	top, err := topologies.Parse(s.File, []byte(s.Topology))
	if err != nil {
		return nil, res, err
	}
	node := top.Node(s.Node)
	if node == nil {
		return nil, res, fmt.Errorf("topology %s has no node %q", top.Name, s.Node)
	}
	if top.Mode != topologies.DirectRouting {
		return nil, res, fmt.Errorf("the baseline routes pod traffic: mode %s is not supported", top.Mode)
	}
	b = &Baseline{log: opts.Logger.With("node", s.Node, "mode", "baseline"), opts: opts, top: top, node: node,
		nodeName: s.Node, pods: map[string]*pods.Pod{}, policy: nftables.ChainPolicyAccept}
	if b.ns, b.nl, err = openNS(); err != nil {
		return nil, res, err
	}
	defer func() {
		if err != nil {
			_ = b.Close()
			b = nil
		}
	}()
	uplink, err := b.nl.LinkByName(opts.Uplink)
	if err != nil {
		return b, res, fmt.Errorf("uplink %s: %w", opts.Uplink, err)
	}
	mtu := uplink.Attrs().MTU
	if err := forwardingSysctls(b.nl); err != nil {
		return b, res, err
	}
	if err := setSysctl(brNFCallIPTables, "1"); err != nil {
		return b, res, fmt.Errorf("br_netfilter (is the module loaded?): %w", err)
	}
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: BaselineBridge, MTU: mtu, HardwareAddr: BaselineMAC(node.RouterIP)}}
	if err := b.nl.LinkAdd(br); err != nil {
		return b, res, fmt.Errorf("add bridge %s: %w", BaselineBridge, err)
	}
	if b.bridge, err = b.nl.LinkByName(BaselineBridge); err != nil {
		return b, res, fmt.Errorf("bridge %s: %w", BaselineBridge, err)
	}
	gw := &netlink.Addr{IPNet: &net.IPNet{IP: node.RouterIP.AsSlice(), Mask: net.CIDRMask(node.PodCIDR.Bits(), 32)}}
	if err := b.nl.AddrAdd(b.bridge, gw); err != nil {
		return b, res, fmt.Errorf("bridge address %v: %w", gw, err)
	}
	if err := b.nl.LinkSetUp(b.bridge); err != nil {
		return b, res, fmt.Errorf("up bridge: %w", err)
	}
	for _, p := range top.PodsOn(s.Node) {
		if err := b.addPod(p, mtu); err != nil {
			return b, res, fmt.Errorf("pod %s: %w", p.Name, err)
		}
		res.Pods = append(res.Pods, p.Name)
	}
	if !s.NoBGP {
		if err := b.startBGP(ctx); err != nil {
			return b, res, err
		}
	}
	res.Bridge, res.Took = BaselineBridge, time.Since(start)
	b.log.Info("baseline node set up", "pods", len(res.Pods), "took", res.Took)
	return b, res, nil
}

// addPod creates pod p as package pods wires it, then rewires it for the
// bridge: the lxc device becomes a bridge port (the node's /32 route and
// neighbour on it go, the bridge's connected route reaches the pod), and
// inside the pod the PodCIDR is on-link (same-node pods resolve each other
// and are bridged) and the gateway's neighbour is the bridge's MAC.
func (b *Baseline) addPod(p *topologies.Pod, mtu int) error {
	pod, err := pods.Create(pods.Spec{
		Name: b.opts.NetNSPrefix + p.Name, IP: p.IP, MAC: p.MAC.HardwareAddr(),
		HostIfName: p.LXCName, HostMAC: p.LXCMAC.HardwareAddr(), Gateway: b.node.RouterIP, MTU: mtu,
	})
	if err != nil {
		return err
	}
	b.mu.Lock()
	b.pods[p.Name] = pod
	b.mu.Unlock()
	lxc, err := b.nl.LinkByIndex(pod.HostIndex)
	if err != nil {
		return fmt.Errorf("%s: %w", p.LXCName, err)
	}
	host := &net.IPNet{IP: p.IP.AsSlice(), Mask: net.CIDRMask(32, 32)}
	if err := b.nl.RouteDel(&netlink.Route{LinkIndex: pod.HostIndex, Dst: host, Scope: netlink.SCOPE_LINK}); err != nil {
		return fmt.Errorf("remove the route via %s: %w", p.LXCName, err)
	}
	if err := b.nl.NeighDel(&netlink.Neigh{LinkIndex: pod.HostIndex, Family: unix.AF_INET, IP: p.IP.AsSlice()}); err != nil {
		return fmt.Errorf("remove the neighbour on %s: %w", p.LXCName, err)
	}
	if err := b.nl.LinkSetMaster(lxc, b.bridge); err != nil {
		return fmt.Errorf("attach %s to %s: %w", p.LXCName, BaselineBridge, err)
	}
	ns, err := netns.GetFromPath(pod.NetNSPath())
	if err != nil {
		return fmt.Errorf("pod netns: %w", err)
	}
	defer ns.Close()
	in, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink in pod: %w", err)
	}
	defer in.Close()
	if err := in.RouteReplace(&netlink.Route{LinkIndex: pod.PodIndex, Dst: prefixNet(b.node.PodCIDR),
		Scope: netlink.SCOPE_LINK, Src: p.IP.AsSlice()}); err != nil {
		return fmt.Errorf("on-link route %v: %w", b.node.PodCIDR, err)
	}
	if err := in.NeighSet(&netlink.Neigh{LinkIndex: pod.PodIndex, Family: unix.AF_INET, State: netlink.NUD_PERMANENT,
		IP: b.node.RouterIP.AsSlice(), HardwareAddr: BaselineMAC(b.node.RouterIP)}); err != nil {
		return fmt.Errorf("gateway neighbour: %w", err)
	}
	return nil
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Masked().Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// startBGP starts the speaker as a node's: the PodCIDR announced to the
// ToR, learned routes installed.
func (b *Baseline) startBGP(ctx context.Context) error {
	inst := &bgp.NetlinkInstaller{}
	if err := inst.Flush(); err != nil {
		return fmt.Errorf("bgp: %w", err)
	}
	sp, err := bgp.NewNode(bgp.NodeConfig{
		ASN: b.node.ASN, Uplink: b.node.Uplink.Address.Addr(), PodCIDRs: []netip.Prefix{b.node.PodCIDR},
		Router:    bgp.Peer{Address: b.node.Uplink.Gateway, ASN: b.top.Router.ASN, Port: b.opts.BGPPort},
		Installer: inst, Logger: b.log.With("role", "bgp"),
	})
	if err != nil {
		return fmt.Errorf("bgp: %w", err)
	}
	if err := sp.Start(ctx); err != nil {
		return fmt.Errorf("bgp: %w", err)
	}
	b.mu.Lock()
	b.speaker = sp
	b.mu.Unlock()
	return nil
}

// Rules replaces the FORWARD chain's rules (see nodeapi.BaselineRules).
func (b *Baseline) Rules(_ context.Context, r nodeapi.BaselineRules) (nodeapi.BaselineRulesResult, error) {
	start := time.Now()
	var res nodeapi.BaselineRulesResult
	exprs, err := ruleExprs(r)
	if err != nil {
		return res, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return res, errors.New("baseline closed")
	}
	b.rules = true
	if res.Rules, err = applyRules(int(b.ns), b.policy, exprs); err != nil {
		return res, err
	}
	if res.Rules != len(exprs) {
		return res, fmt.Errorf("the chain holds %d rules, want %d", res.Rules, len(exprs))
	}
	res.Took = time.Since(start)
	b.log.Info("forward rules", "variant", r.Variant, "rules", res.Rules, "took", res.Took)
	return res, nil
}

// pod returns the baseline's pod called name.
func (b *Baseline) pod(name string) (*pods.Pod, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if p := b.pods[name]; p != nil {
		return p, nil
	}
	if p := b.top.Pod(name); p != nil {
		return nil, fmt.Errorf("pod %s runs on %s", name, p.Node)
	}
	return nil, fmt.Errorf("%w %q in topology %s", topologies.ErrUnknownPod, name, b.top.Name)
}

// BGPPeers lists the speaker's sessions.
func (b *Baseline) BGPPeers(ctx context.Context) (bgp.PeerList, error) {
	sp, err := b.bgp()
	if err != nil {
		return nil, err
	}
	return sp.Peers(ctx)
}

// BGPRoutes lists the speaker's RIB.
func (b *Baseline) BGPRoutes(ctx context.Context) (bgp.RouteList, error) {
	sp, err := b.bgp()
	if err != nil {
		return nil, err
	}
	return sp.Routes(ctx)
}

// BGPStop stops the speaker.
func (b *Baseline) BGPStop(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.speaker == nil {
		return errors.New("bgp speaker not running")
	}
	b.speaker.Stop()
	b.speaker = nil
	return nil
}

// BGPStart starts the stopped speaker again.
func (b *Baseline) BGPStart(ctx context.Context) error {
	b.mu.Lock()
	running := b.speaker != nil
	b.mu.Unlock()
	if running {
		return errors.New("bgp speaker already running")
	}
	return b.startBGP(ctx)
}

func (b *Baseline) bgp() (*bgp.Speaker, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.speaker == nil {
		return nil, errors.New("bgp speaker not running")
	}
	return b.speaker, nil
}

// Close stops the speaker, removes the rules' table, the pods and the
// bridge.
func (b *Baseline) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	var errs []error
	if b.speaker != nil {
		b.speaker.Stop()
		b.speaker = nil
	}
	if b.rules {
		errs = append(errs, deleteRules(int(b.ns)))
	}
	for name, p := range b.pods {
		if err := p.Delete(); err != nil {
			errs = append(errs, fmt.Errorf("pod %s: %w", name, err))
		}
	}
	b.pods = nil
	if b.bridge != nil {
		if err := b.nl.LinkDel(b.bridge); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", BaselineBridge, err))
		}
	}
	if b.nl != nil {
		b.nl.Close()
	}
	if b.ns.IsOpen() {
		b.ns.Close()
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return nil
}

// setBaselinePolicy sets the FORWARD chain's policy of later Rules calls
// (tests).
func (b *Baseline) setBaselinePolicy(p nftables.ChainPolicy) {
	b.mu.Lock()
	b.policy = p
	b.mu.Unlock()
}
