package roles

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/hoplab/hoplab/bgp"
	"github.com/hoplab/hoplab/topologies"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// Router is a set-up ToR: IP forwarding, the BGP route server peering
// with every node of the topology, and the topology's external hosts. Its methods are safe for concurrent use.
type Router struct {
	log *slog.Logger
	top *topologies.Topology
	cfg bgp.RouterConfig

	mu      sync.Mutex
	speaker *bgp.Speaker
	// externals serves the topology's external hosts (nil without any).
	externals *Node
}

// SetupRouter makes the calling thread's namespace the ToR of the topology
// in s: IP forwarding on, reverse-path filtering off, and a BGP speaker with
// one passive eBGP session per node (its uplink address and ASN), installing
// each node's PodCIDR via that node. The harness has already configured the
// bonds toward the nodes with each node's gateway address. As for Setup,
// errors name the step, not the router.
func SetupRouter(ctx context.Context, opts Options, s nodeapi.RouterSetup) (*Router, nodeapi.RouterSetupResult, error) {
	start := time.Now()
	var res nodeapi.RouterSetupResult
	opts = opts.withDefaults()
	top, err := topologies.Parse(s.File, []byte(s.Topology))
	if err != nil {
		return nil, res, err
	}
	if len(top.Nodes) == 0 {
		return nil, res, fmt.Errorf("topology %s has no nodes", top.Name)
	}
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, res, fmt.Errorf("netlink: %w", err)
	}
	err = forwardingSysctls(h)
	h.Close()
	if err != nil {
		return nil, res, err
	}
	inst := &bgp.NetlinkInstaller{}
	if err := inst.Flush(); err != nil {
		return nil, res, fmt.Errorf("bgp: %w", err)
	}
	r := &Router{log: opts.Logger.With("router", top.Router.Name), top: top}
	r.cfg = bgp.RouterConfig{
		ASN:        top.Router.ASN,
		RouterID:   top.Nodes[0].Uplink.Gateway,
		ListenPort: opts.BGPPort,
		Installer:  inst,
		Logger:     r.log.With("role", "bgp"),
	}
	for _, n := range top.Nodes {
		r.cfg.Nodes = append(r.cfg.Nodes, bgp.Peer{Address: n.Uplink.Address.Addr(), ASN: n.ASN})
	}
	if r.externals, err = newExternals(opts, top); err != nil {
		return nil, res, err
	}
	if err := r.start(ctx); err != nil {
		return nil, res, errors.Join(err, r.Close())
	}
	res.Took = time.Since(start)
	r.log.Info("router set up", "nodes", len(top.Nodes), "took", res.Took)
	return r, res, nil
}

func (r *Router) start(ctx context.Context) error {
	sp, err := bgp.NewRouter(r.cfg)
	if err != nil {
		return fmt.Errorf("bgp: %w", err)
	}
	if err := sp.Start(ctx); err != nil {
		return fmt.Errorf("bgp: %w", err)
	}
	r.speaker = sp
	return nil
}

func (r *Router) bgp() (*bgp.Speaker, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.speaker == nil {
		return nil, errors.New("bgp speaker not running")
	}
	return r.speaker, nil
}

// BGPPeers lists the sessions with the nodes.
func (r *Router) BGPPeers(ctx context.Context) (bgp.PeerList, error) {
	sp, err := r.bgp()
	if err != nil {
		return nil, err
	}
	return sp.Peers(ctx)
}

// BGPRoutes lists the router's RIB.
func (r *Router) BGPRoutes(ctx context.Context) (bgp.RouteList, error) {
	sp, err := r.bgp()
	if err != nil {
		return nil, err
	}
	return sp.Routes(ctx)
}

// BGPStop stops the speaker; every node loses the routes it learned here.
func (r *Router) BGPStop(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.speaker == nil {
		return errors.New("bgp speaker not running")
	}
	r.speaker.Stop()
	r.speaker = nil
	return nil
}

// BGPStart starts the stopped speaker again.
func (r *Router) BGPStart(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.speaker != nil {
		return errors.New("bgp speaker already running")
	}
	return r.start(ctx)
}

// Close stops the speaker (its routes leave the kernel).
func (r *Router) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.speaker != nil {
		r.speaker.Stop()
		r.speaker = nil
	}
	if r.externals != nil {
		err := r.externals.Close()
		r.externals = nil
		return err
	}
	return nil
}
