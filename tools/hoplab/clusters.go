package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/hoplab/hoplab/topologies"
	"github.com/hoplab/hoplab/vmtest"
	"github.com/hoplab/hoplab/vmtest/cluster"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// topology loads the topology named on the command line, or, when name is
// empty, the one the running cluster (hoplab vm up) serves.
func (a *app) topology(name string) (*topologies.Topology, error) {
	if name != "" {
		top, err := topologies.Open(name)
		if err != nil {
			return nil, err
		}
		for _, w := range top.Warnings {
			a.warnTopology(w)
		}
		return top, nil
	}
	path, err := cluster.CurrentStateFile()
	if err != nil {
		return nil, fmt.Errorf("no --topology given and %w", err)
	}
	st, err := readClusterState(path)
	if err != nil {
		return nil, err
	}
	return topologies.Parse(st.File, []byte(st.Topology))
}

// readClusterState reads a cluster's state file without connecting to it.
func readClusterState(path string) (*cluster.State, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read cluster state: %w", err)
	}
	var st cluster.State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("read cluster state %s: %w", path, err)
	}
	return &st, nil
}

// attach connects to the running cluster.
func (a *app) attach() (*cluster.Remote, error) {
	path, err := cluster.CurrentStateFile()
	if err != nil {
		return nil, err
	}
	a.logger().Debug("attaching to running cluster", "state", path)
	r, err := cluster.Attach(path)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// nodeClient attaches to the running cluster and returns the agent client
// of node (the router included); close detaches.
func (a *app) nodeClient(node string) (cl *nodeapi.Client, close func(), err error) {
	if node == "" {
		return nil, nil, errors.New("--node is required")
	}
	r, err := a.attach()
	if err != nil {
		return nil, nil, err
	}
	cl = r.Client(node)
	if cl == nil {
		names := []string{r.Topology().Router.Name}
		for _, n := range r.Topology().Nodes {
			names = append(names, n.Name)
		}
		r.Close()
		return nil, nil, fmt.Errorf("no node %q in the running cluster (have: %s)", node, strings.Join(names, ", "))
	}
	return cl, func() { r.Close() }, nil
}

// kernelChoice is what --kernel selects: a catalogue series, or a user's
// kernel image ("/path/bzImage[,modules-dir]").
type kernelChoice struct {
	series string
	path   string
}

func parseKernel(s string) kernelChoice {
	if strings.ContainsRune(s, '/') {
		return kernelChoice{path: s}
	}
	return kernelChoice{series: s}
}

// matches reports whether a running cluster on release runs this choice.
func (k kernelChoice) matches(release string, top *topologies.Topology) bool {
	if k.path != "" {
		return false
	}
	series := k.series
	if series == "" {
		series = top.Kernel
	}
	return release == series || strings.HasPrefix(release, series+".")
}

// cluster returns a cluster running top: the running `hoplab vm up` one
// when its topology and kernel match, else a new one booted for this
// command. release closes what cluster opened (detach, or tear down).
func (a *app) cluster(ctx context.Context, top *topologies.Topology, k kernelChoice) (h cluster.Handle, release func(), err error) {
	log := a.logger()
	if path, err := cluster.CurrentStateFile(); err == nil {
		st, err := readClusterState(path)
		if err == nil && sameTopology(st, top) && k.matches(st.Kernel, top) {
			r, err := cluster.Attach(path)
			if err == nil {
				log.Info("reusing running cluster", "topology", top.Name, "kernel", st.Kernel, "pid", st.PID)
				return r, func() { r.Close() }, nil
			}
			log.Warn("running cluster unreachable, booting a new one", "err", err)
		} else if err == nil {
			log.Info("running cluster does not match, booting a new one", "running", st.File, "kernel", st.Kernel)
		}
	}
	if k.path != "" {
		os.Setenv(vmtest.EnvKernel, k.path)
	}
	// No vmtest.HandleSignals: run's context and interrupt watch handle
	// SIGINT and SIGTERM (a clean teardown, forced when it hangs).
	log.Info("booting topology", "topology", top.Name, "kernel", firstNonEmpty(k.path, k.series, top.Kernel))
	c, err := cluster.Start(ctx, cluster.Spec{Topology: top, Series: k.series, AgentBinary: selfAgent, Logger: a.harnessLogger(),
		ConsoleLine: func(vm, line string) { log.Debug("console", "vm", vm, "line", line) }})
	if err != nil {
		return nil, nil, err
	}
	t := c.Timings()
	log.Info("cluster up", "kernel", c.Kernel(), "boot", t.Boot.Round(1e6), "setup", t.Setup.Round(1e6), "converge", t.Converge.Round(1e6))
	return c, func() { c.Close() }, nil
}

// sameTopology reports whether the served cluster runs top.
func sameTopology(st *cluster.State, top *topologies.Topology) bool {
	text, err := cluster.Encode(top)
	if err != nil {
		return false
	}
	return string(text) == st.Topology
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}
