package roles

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/hoplab/hoplab/vmtest/agent"
	"github.com/hoplab/hoplab/vmtest/agent/workload"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// MaxPerfDuration is the longest perf measurement.
const MaxPerfDuration = 10 * time.Minute

func init() {
	agent.Handle(nodeapi.MethodBaselineSetup, agent.Typed(agentBaselineSetup))
	agent.Handle(nodeapi.MethodBaselineRules, agent.Typed(agentBaselineRules))
	agent.Handle(nodeapi.MethodPerfServe, agent.Typed(func(ctx context.Context, s nodeapi.PerfServe) (empty, error) {
		return empty{}, perfServe(s)
	}))
	agent.Handle(nodeapi.MethodPerf, agent.Typed(perfRun))
}

// perfServers are the running perf servers by pod and port; closeRole
// closes them before the pods go.
var perfServers struct {
	mu sync.Mutex
	m  map[nodeapi.PerfServe]*workload.PerfServer
}

// closePerfServers stops every perf server.
func closePerfServers() error {
	perfServers.mu.Lock()
	defer perfServers.mu.Unlock()
	var errs []error
	for k, s := range perfServers.m {
		errs = append(errs, s.Close())
		delete(perfServers.m, k)
	}
	return errors.Join(errs...)
}

// perfPod returns the namespace of pod name of the agent's node or
// baseline node.
func perfPod(name string) (workload.NetNS, error) {
	role.mu.Lock()
	n, b := role.node, role.baseline
	role.mu.Unlock()
	switch {
	case n != nil:
		return n.pod(name)
	case b != nil:
		return b.pod(name)
	}
	return nil, ErrNotSetUp
}

func perfServe(s nodeapi.PerfServe) error {
	ns, err := perfPod(s.Pod)
	if err != nil {
		return err
	}
	perfServers.mu.Lock()
	defer perfServers.mu.Unlock()
	if perfServers.m[s] != nil {
		return nil
	}
	srv, err := workload.ServePerf(ns, s.Pod, s.Port)
	if err != nil {
		return err
	}
	if perfServers.m == nil {
		perfServers.m = map[nodeapi.PerfServe]*workload.PerfServer{}
	}
	perfServers.m[s] = srv
	return nil
}

func perfRun(ctx context.Context, p nodeapi.Perf) (workload.PerfResult, error) {
	if p.Duration <= 0 || p.Duration > MaxPerfDuration {
		return workload.PerfResult{}, fmt.Errorf("perf duration %v outside (0, %v]", p.Duration, MaxPerfDuration)
	}
	dst, err := netip.ParseAddrPort(p.Dst)
	if err != nil {
		return workload.PerfResult{}, fmt.Errorf("perf destination %q: want ip:port", p.Dst)
	}
	ns, err := perfPod(p.Pod)
	if err != nil {
		return workload.PerfResult{}, err
	}
	// Draining the socket buffers after a bulk test, or a last slow
	// response, must not be cut short; a stuck peer must not hang the agent.
	ctx, cancel := context.WithTimeout(ctx, p.Duration+30*time.Second)
	defer cancel()
	switch p.Kind {
	case workload.PerfBulk:
		return workload.Bulk(ctx, ns, dst, p.Duration)
	case workload.PerfRR:
		return workload.RR(ctx, ns, dst, p.Duration, p.RequestSize, p.ResponseSize)
	}
	return workload.PerfResult{}, fmt.Errorf("unknown perf kind %q (want %s or %s)", p.Kind, workload.PerfBulk, workload.PerfRR)
}

func agentBaselineSetup(ctx context.Context, s nodeapi.BaselineSetup) (nodeapi.BaselineSetupResult, error) {
	role.mu.Lock()
	defer role.mu.Unlock()
	if err := closeRole(); err != nil {
		return nodeapi.BaselineSetupResult{}, fmt.Errorf("previous role: %w", err)
	}
	b, res, err := SetupBaseline(ctx, agentOptions(), s)
	if err != nil {
		return res, err
	}
	role.baseline = b
	return res, nil
}

func agentBaselineRules(ctx context.Context, r nodeapi.BaselineRules) (nodeapi.BaselineRulesResult, error) {
	role.mu.Lock()
	b := role.baseline
	role.mu.Unlock()
	if b == nil {
		return nodeapi.BaselineRulesResult{}, fmt.Errorf("not a baseline node: call %s first: %w", nodeapi.MethodBaselineSetup, ErrNotSetUp)
	}
	return b.Rules(ctx, r)
}

// closeBaseline closes the baseline role and the perf servers; role.mu is
// held.
func closeBaseline() error {
	errs := []error{closePerfServers()}
	if role.baseline != nil {
		errs = append(errs, role.baseline.Close())
		role.baseline = nil
	}
	return errors.Join(errs...)
}
