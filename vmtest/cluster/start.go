package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hoplab/hoplab/topologies"
	"github.com/hoplab/hoplab/vmtest"
	"github.com/hoplab/hoplab/vmtest/kernels"
	"github.com/hoplab/hoplab/vmtest/protocol/control"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// FabricSpec maps a topology onto the fabric that runs it: the router's
// name, one node per topology node with its uplink address, gateway and
// bonding mode, and the topology's NIC MACs on both ends of every uplink,
// so that the frames on the wires carry the MACs the journeys expect.
func FabricSpec(t *topologies.Topology) vmtest.FabricSpec {
	s := vmtest.FabricSpec{Router: t.Router.Name}
	for _, n := range t.Nodes {
		fn := vmtest.FabricNode{
			Name:    n.Name,
			Address: n.Uplink.Address,
			Gateway: n.Uplink.Gateway,
			Bond:    control.BondMode(n.Uplink.Bond),
		}
		for j := range vmtest.UplinkNICs {
			fn.NICMACs = append(fn.NICMACs, net.HardwareAddr(n.NICMACs[j].HardwareAddr()))
			fn.TorNICMACs = append(fn.TorNICMACs, net.HardwareAddr(n.TorNICMACs[j].HardwareAddr()))
		}
		s.Nodes = append(s.Nodes, fn)
	}
	return s
}

func start(ctx context.Context, spec Spec) (*Cluster, error) {
	if spec.Topology == nil {
		return nil, errors.New("cluster: no topology")
	}
	t := spec.Topology
	if spec.Series == "" {
		spec.Series = t.Kernel
		// A kernel the topology names must be in the catalogue (unless
		// the user boots their own): say where, before anything boots.
		if t.KernelPos.Line > 0 && os.Getenv(vmtest.EnvKernel) == "" {
			if _, err := kernels.Resolve(t.Kernel, spec.Flavour, kernels.Options{Quiet: true}); err != nil {
				return nil, fmt.Errorf("%s:%d:%d: kernel: %w", t.File, t.KernelPos.Line, t.KernelPos.Col, err)
			}
		}
	}
	if spec.Logger == nil {
		spec.Logger = slog.Default()
	}
	if spec.ConvergeTimeout <= 0 {
		spec.ConvergeTimeout = DefaultConvergeTimeout
	}
	text, err := Encode(t)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", t.Name, err)
	}
	c := &Cluster{spec: spec, log: spec.Logger.With("cluster", t.Name), top: t, clients: map[string]*nodeapi.Client{}}
	c.obs = newHub(c.log)
	begin := time.Now()

	// Interrupted (Ctrl-C, or the caller gave up): one line naming the
	// step; nothing is kept and nothing is left behind.
	interrupted := func(step string) error {
		return fmt.Errorf("cluster %s: %s: %w", t.Name, step, context.Cause(ctx))
	}
	boot, err := vmtest.PrepareBoot(ctx, vmtest.BootSpec{Series: spec.Series, Flavour: spec.Flavour, AgentBinary: spec.AgentBinary,
		ExtraModules: spec.ExtraModules})
	if err != nil {
		if ctx.Err() != nil {
			return nil, interrupted("prepare boot")
		}
		return nil, fmt.Errorf("cluster %s: %w", t.Name, err)
	}
	fs := FabricSpec(t)
	fs.VMOptions = append(fs.VMOptions, boot.Options()...)
	fs.VMOptions = append(fs.VMOptions, vmtest.WithEventHandler(c.obs.agentEvent))
	fs.Dir, fs.Logger, fs.ConsoleLine = spec.Dir, c.log, spec.ConsoleLine
	f, err := vmtest.StartFabric(ctx, fs)
	if err != nil {
		if ctx.Err() != nil {
			return nil, interrupted("boot") // StartFabric left nothing
		}
		return nil, fmt.Errorf("cluster %s: %w", t.Name, err)
	}
	c.fabric = f
	c.kernel = f.Router().Ready().Release
	for _, vm := range f.VMs() {
		c.clients[vm.Name()] = nodeapi.NewClient(vm.Name(), vm)
	}
	c.obs.attachFabric(c)
	c.timings.Boot = time.Since(begin)
	c.log.Info("cluster booted", "kernel", c.kernel, "wall", c.timings.Boot.Round(time.Millisecond))

	fail := func(step string, err error) (*Cluster, error) {
		if ctx.Err() != nil {
			c.Close()
			return nil, interrupted(step)
		}
		f.KeepArtifacts()
		c.Close()
		return nil, fmt.Errorf("cluster %s: %w (artifacts in %s)", t.Name, err, f.Dir())
	}
	begin = time.Now()
	if err := c.setup(ctx, string(text), spec.NoBGP); err != nil {
		return fail("node setup", err)
	}
	c.timings.Setup = time.Since(begin)
	c.log.Info("cluster set up", "wall", c.timings.Setup.Round(time.Millisecond))
	if !spec.NoBGP {
		begin = time.Now()
		cctx, cancel := context.WithTimeout(ctx, spec.ConvergeTimeout)
		err := c.WaitConverged(cctx)
		cancel()
		if err != nil {
			return fail("BGP convergence", err)
		}
		c.timings.Converge = time.Since(begin)
		c.log.Info("cluster converged", "wall", c.timings.Converge.Round(time.Millisecond))
	}
	return c, nil
}

// setup runs router-setup on the ToR and node-setup on every node, in
// parallel. The clients' errors name the VM and the method already.
func (c *Cluster) setup(ctx context.Context, text string, noBGP bool) error {
	t := c.top
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(t.Nodes)+1)
	if !noBGP {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.clients[t.Router.Name].RouterSetup(ctx, nodeapi.RouterSetup{Topology: text, File: t.File}); err != nil {
				errs[0] = err // "tor: router-setup: ..."
			}
		}()
	}
	for i, n := range t.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := c.clients[n.Name].Setup(ctx, nodeapi.Setup{Topology: text, File: t.File, Node: n.Name, NoBGP: noBGP})
			if err != nil {
				errs[i+1] = err // "node1: node-setup: ..."
				if paths := c.saveDiagnostics(n.Name, err); len(paths) > 0 {
					errs[i+1] = fmt.Errorf("%w (full log: %s)", err, strings.Join(paths, ", "))
				}
				return
			}
			c.log.Info("node set up", "node", n.Name, "endpoints", len(r.Endpoints), "guest", r.Took.Round(time.Millisecond))
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// saveDiagnostics writes the diagnostic files that came with a node's error
// (see control.DiagnosticFiles) to <run dir>/<node>/ and, when set, to
// <ArtifactsDir>/<node>/, and returns the paths of the first copy (the
// artifacts' when set).
func (c *Cluster) saveDiagnostics(node string, err error) []string {
	files := control.DiagnosticFiles(err)
	if len(files) == 0 {
		return nil
	}
	var dirs []string
	if c.spec.ArtifactsDir != "" {
		dirs = append(dirs, filepath.Join(c.spec.ArtifactsDir, node))
	}
	dirs = append(dirs, filepath.Join(c.fabric.Dir(), node))
	var first []string
	for _, dir := range dirs {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			c.log.Warn("keep diagnostics", "node", node, "err", err)
			continue
		}
		var paths []string
		for _, name := range slices.Sorted(maps.Keys(files)) {
			p := filepath.Join(dir, filepath.Base(name))
			if err := os.WriteFile(p, []byte(files[name]), 0o644); err != nil {
				c.log.Warn("keep diagnostics", "node", node, "err", err)
				continue
			}
			paths = append(paths, p)
		}
		if first == nil {
			first = paths
		}
	}
	return first
}
