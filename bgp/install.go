package bgp

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"sync"

	api "github.com/osrg/gobgp/v3/api"
)

// RouteInstaller puts learned best paths somewhere that forwards packets,
// usually the kernel's routing table. A Speaker never calls it concurrently.
type RouteInstaller interface {
	// Install adds prefix via nexthop, replacing any route it installed
	// for prefix before.
	Install(prefix netip.Prefix, nexthop netip.Addr) error
	// Remove deletes the route for prefix; a missing route is not an error.
	Remove(prefix netip.Prefix) error
}

// installState tracks what a speaker handed to its RouteInstaller.
type installState struct {
	mu        sync.Mutex
	inst      RouteInstaller
	log       *slog.Logger
	installed map[netip.Prefix]netip.Addr
	done      bool
}

func newInstallState(inst RouteInstaller, l *slog.Logger) *installState {
	return &installState{inst: inst, log: l, installed: make(map[netip.Prefix]netip.Addr)}
}

// apply follows a batch of best-path changes. own reports prefixes the
// speaker originates, which are never installed.
func (st *installState) apply(paths []*api.Path, own func(netip.Prefix) bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.inst == nil || st.done {
		return
	}
	for _, p := range paths {
		r, err := routeFromPath(p)
		if err != nil {
			st.log.Warn("skip undecodable bgp best path", "err", err)
			continue
		}
		cur, ok := st.installed[r.Prefix]
		if p.GetIsWithdraw() || r.Local || own(r.Prefix) || !r.NextHop.IsValid() {
			if ok {
				st.remove(r.Prefix)
			}
			continue
		}
		if ok && cur == r.NextHop {
			continue
		}
		if err := st.inst.Install(r.Prefix, r.NextHop); err != nil {
			st.log.Error("install bgp route", "prefix", r.Prefix, "nexthop", r.NextHop, "err", err)
			continue
		}
		st.installed[r.Prefix] = r.NextHop
		st.log.Info("bgp route installed", "prefix", r.Prefix, "nexthop", r.NextHop, "peer", r.Peer, "as_path", r.ASPath)
	}
}

// remove must be called with st.mu held.
func (st *installState) remove(p netip.Prefix) {
	if err := st.inst.Remove(p); err != nil {
		st.log.Error("remove bgp route", "prefix", p, "err", err)
		return
	}
	delete(st.installed, p)
	st.log.Info("bgp route removed", "prefix", p)
}

// removeAll removes every installed route and ignores later changes.
func (st *installState) removeAll() {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.done = true
	if st.inst == nil {
		return
	}
	for p := range st.installed {
		st.remove(p)
	}
}

func (st *installState) installedVia(p netip.Prefix, nh netip.Addr) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	cur, ok := st.installed[p]
	return ok && cur == nh
}

// MemoryInstaller is a RouteInstaller that keeps routes in memory, for tests
// and dry runs. Its zero value is ready to use.
type MemoryInstaller struct {
	mu      sync.Mutex
	routes  map[netip.Prefix]netip.Addr
	changed chan struct{}
}

var _ RouteInstaller = (*MemoryInstaller)(nil)

// init must be called with m.mu held.
func (m *MemoryInstaller) init() {
	if m.routes == nil {
		m.routes = make(map[netip.Prefix]netip.Addr)
		m.changed = make(chan struct{})
	}
}

// notify must be called with m.mu held.
func (m *MemoryInstaller) notify() {
	close(m.changed)
	m.changed = make(chan struct{})
}

// Install records prefix via nexthop.
func (m *MemoryInstaller) Install(prefix netip.Prefix, nexthop netip.Addr) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	m.routes[prefix] = nexthop
	m.notify()
	return nil
}

// Remove forgets prefix.
func (m *MemoryInstaller) Remove(prefix netip.Prefix) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	delete(m.routes, prefix)
	m.notify()
	return nil
}

// Routes returns a copy of the recorded routes.
func (m *MemoryInstaller) Routes() map[netip.Prefix]netip.Addr {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.routes)
}

// Wait blocks until cond holds for the recorded routes (checked now and after
// every change) or ctx ends.
func (m *MemoryInstaller) Wait(ctx context.Context, cond func(map[netip.Prefix]netip.Addr) bool) error {
	for {
		m.mu.Lock()
		m.init()
		ok := cond(m.routes)
		ch := m.changed
		m.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait for routes: %w", ctx.Err())
		}
	}
}
