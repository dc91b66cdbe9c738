package roles

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/hoplab/hoplab/bgp"
	"github.com/hoplab/hoplab/datapath"
	"github.com/hoplab/hoplab/vmtest/agent"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// The agent's role: at most one of node, router and baseline is set.
var role struct {
	mu     sync.Mutex
	node   *Node
	router *Router
	// baseline is the study's bridge node (perf.go).
	baseline *Baseline
}

// empty is the parameter of methods that take none.
type empty struct{}

func init() {
	agent.Handle(nodeapi.MethodSetup, agent.Typed(agentSetup))
	agent.Handle(nodeapi.MethodRouterSetup, agent.Typed(agentRouterSetup))
	agent.Handle(nodeapi.MethodUpdate, agent.Typed(agentUpdate))
	agent.Handle(nodeapi.MethodReset, agent.Typed(withNode((*Node).Reset)))
	agent.Handle(nodeapi.MethodClient, agent.Typed(withHosts((*Node).Client)))
	agent.Handle(nodeapi.MethodInject, agent.Typed(withHosts((*Node).Inject)))
	agent.Handle(nodeapi.MethodWatch, agent.Typed(withHosts((*Node).Watch)))
	agent.Handle(nodeapi.MethodCTList, agent.Typed(withNode(func(n *Node, ctx context.Context, _ nodeapi.CTListRequest) ([]nodeapi.CTRow, error) {
		return n.CTList(ctx)
	})))
	agent.Handle(nodeapi.MethodNATList, agent.Typed(withNode(noParams((*Node).NATList))))
	agent.Handle(nodeapi.MethodCTStats, agent.Typed(withNode(noParams((*Node).CTStats))))
	agent.Handle(nodeapi.MethodLBList, agent.Typed(withNode(noParams((*Node).LBList))))
	agent.Handle(nodeapi.MethodEndpointList, agent.Typed(withNode(noParams((*Node).EndpointList))))
	agent.Handle(nodeapi.MethodPolicyGet, agent.Typed(withNode((*Node).PolicyGet)))
	agent.Handle(nodeapi.MethodIPCacheList, agent.Typed(withNode(noParams((*Node).IPCacheList))))
	agent.Handle(nodeapi.MethodMetrics, agent.Typed(withNode(noParams((*Node).Metrics))))
	agent.Handle(nodeapi.MethodBGPPeers, agent.Typed(agentBGPPeers))
	agent.Handle(nodeapi.MethodBGPRoutes, agent.Typed(agentBGPRoutes))
	agent.Handle(nodeapi.MethodBGPStop, agent.Typed(agentBGPStop))
	agent.Handle(nodeapi.MethodBGPStart, agent.Typed(agentBGPStart))
	agent.Handle(nodeapi.MethodTCList, agent.Typed(withNode(noParams((*Node).TCList))))
	agent.Handle(nodeapi.MethodVerifierStats, agent.Typed(agentVerifierStats))
	agent.Handle(nodeapi.MethodKernelRoutes, agent.Typed(func(context.Context, empty) ([]nodeapi.KernelRoute, error) {
		return KernelRoutes(nil)
	}))
}

// agentOptions are the options of the agent's node and router.
func agentOptions() Options {
	return Options{PinPath: DefaultPinPath, Emit: agent.Emit, Logger: slog.Default()}
}

// closeRole ends the current role; role.mu is held.
func closeRole() error {
	errs := []error{closeBaseline()} // perf servers first, before their pods go
	if role.node != nil {
		errs = append(errs, role.node.Close())
		role.node = nil
	}
	if role.router != nil {
		errs = append(errs, role.router.Close())
		role.router = nil
	}
	return errors.Join(errs...)
}

func agentSetup(ctx context.Context, s nodeapi.Setup) (nodeapi.SetupResult, error) {
	role.mu.Lock()
	defer role.mu.Unlock()
	if err := closeRole(); err != nil {
		return nodeapi.SetupResult{}, fmt.Errorf("previous role: %w", err)
	}
	n, res, err := Setup(ctx, agentOptions(), s)
	if err != nil {
		return res, err
	}
	role.node = n
	return res, nil
}

func agentRouterSetup(ctx context.Context, s nodeapi.RouterSetup) (nodeapi.RouterSetupResult, error) {
	role.mu.Lock()
	defer role.mu.Unlock()
	if err := closeRole(); err != nil {
		return nodeapi.RouterSetupResult{}, fmt.Errorf("previous role: %w", err)
	}
	r, res, err := SetupRouter(ctx, agentOptions(), s)
	if err != nil {
		return res, err
	}
	role.router = r
	return res, nil
}

func agentUpdate(ctx context.Context, u nodeapi.Update) (nodeapi.UpdateResult, error) {
	role.mu.Lock()
	n, r := role.node, role.router
	role.mu.Unlock()
	switch {
	case n != nil:
		return n.Update(ctx, u)
	case r != nil:
		return r.Update(ctx, u)
	}
	return nodeapi.UpdateResult{}, ErrNotSetUp
}

func currentNode() (*Node, error) {
	role.mu.Lock()
	defer role.mu.Unlock()
	if role.node == nil {
		if role.router != nil {
			return nil, fmt.Errorf("a router has no datapath or pods: %w", ErrNotSetUp)
		}
		return nil, ErrNotSetUp
	}
	return role.node, nil
}

// withNode adapts a method of Node to the agent's current node.
func withNode[P, R any](f func(*Node, context.Context, P) (R, error)) func(context.Context, P) (R, error) {
	return func(ctx context.Context, p P) (R, error) {
		n, err := currentNode()
		if err != nil {
			var zero R
			return zero, err
		}
		return f(n, ctx, p)
	}
}

// withHosts adapts a method of Node that serves hosts sending and
// receiving packets (client actions, injection, captures) to the agent's
// node (its pods) or router (its external hosts).
func withHosts[P, R any](f func(*Node, context.Context, P) (R, error)) func(context.Context, P) (R, error) {
	return func(ctx context.Context, p P) (R, error) {
		role.mu.Lock()
		n := role.node
		if n == nil && role.router != nil {
			n = role.router.externals
			if n == nil {
				role.mu.Unlock()
				var zero R
				return zero, fmt.Errorf("router %s has no external hosts: %w", role.router.top.Router.Name, ErrNotSetUp)
			}
		}
		role.mu.Unlock()
		if n == nil {
			var zero R
			return zero, ErrNotSetUp
		}
		return f(n, ctx, p)
	}
}

// noParams adapts a method without parameters.
func noParams[R any](f func(*Node, context.Context) (R, error)) func(*Node, context.Context, empty) (R, error) {
	return func(n *Node, ctx context.Context, _ empty) (R, error) { return f(n, ctx) }
}

// speakerRole is what the node and the router share for the BGP methods.
type speakerRole interface {
	BGPPeers(context.Context) (bgp.PeerList, error)
	BGPRoutes(context.Context) (bgp.RouteList, error)
	BGPStop(context.Context) error
	BGPStart(context.Context) error
}

func currentSpeaker() (speakerRole, error) {
	role.mu.Lock()
	defer role.mu.Unlock()
	switch {
	case role.node != nil:
		return role.node, nil
	case role.router != nil:
		return role.router, nil
	case role.baseline != nil:
		return role.baseline, nil
	}
	return nil, ErrNotSetUp
}

func agentBGPPeers(ctx context.Context, _ empty) (bgp.PeerList, error) {
	s, err := currentSpeaker()
	if err != nil {
		return nil, err
	}
	return s.BGPPeers(ctx)
}

func agentBGPRoutes(ctx context.Context, _ empty) (bgp.RouteList, error) {
	s, err := currentSpeaker()
	if err != nil {
		return nil, err
	}
	return s.BGPRoutes(ctx)
}

func agentBGPStop(ctx context.Context, _ empty) (empty, error) {
	s, err := currentSpeaker()
	if err != nil {
		return empty{}, err
	}
	return empty{}, s.BGPStop(ctx)
}

func agentBGPStart(ctx context.Context, _ empty) (empty, error) {
	s, err := currentSpeaker()
	if err != nil {
		return empty{}, err
	}
	return empty{}, s.BGPStart(ctx)
}

// agentVerifierStats loads a second, unpinned copy of the datapath with the
// verifier's statistics and closes it again.
func agentVerifierStats(context.Context, empty) ([]datapath.ProgramStats, error) {
	raiseMemlock(slog.Default()) // before 5.11 maps count against it
	dp, err := datapath.Load(datapath.Options{CTEntries: 1024, VerifierStats: true, Logger: slog.Default()})
	if err != nil {
		return nil, err
	}
	defer dp.Close()
	return dp.VerifierStats(), nil
}
