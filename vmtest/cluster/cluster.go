package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hoplab/hoplab/topologies"
	"github.com/hoplab/hoplab/vmtest"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// Spec describes a cluster to start.
type Spec struct {
	// Topology is the lab to run; required.
	Topology *topologies.Topology
	// Series and Flavour select the catalogue kernel; empty Series means
	// the topology's kernel, empty Flavour the catalogue's default.
	Series, Flavour string
	// AgentBinary is a ready agent binary (vmtest.BootSpec.AgentBinary);
	// empty builds the agent from the source tree.
	AgentBinary string
	// ExtraModules are kernel modules the guests load in addition to
	// the default ones (vmtest.BootSpec.ExtraModules).
	ExtraModules []string
	// Dir is the run directory; empty creates one the cluster owns.
	Dir string
	// Logger is the harness logger; default slog.Default().
	Logger *slog.Logger
	// NoBGP starts no speakers (datapath-only tests); Start then does not
	// wait for convergence.
	NoBGP bool
	// ConsoleLine, when set, receives every console line of every VM.
	ConsoleLine func(vm, line string)
	// ConvergeTimeout bounds the wait for BGP convergence; default
	// [DefaultConvergeTimeout].
	ConvergeTimeout time.Duration
	// ArtifactsDir, when set, also receives the diagnostics of a failed
	// node setup (a verifier log per rejected program, under the node's
	// name); they are always written to the run directory, which a failed
	// Start keeps.
	ArtifactsDir string
}

// DefaultConvergeTimeout bounds Start's wait for BGP convergence.
const DefaultConvergeTimeout = 60 * time.Second

// Timings are the durations of the steps of Start.
type Timings struct {
	// Boot is from Start until every VM ran its agent and the fabric was
	// configured (kernel and initramfs preparation included).
	Boot time.Duration
	// Setup is the router and node setup calls (in parallel).
	Setup time.Duration
	// Converge is from the end of setup until every BGP session was
	// Established and every PodCIDR was in the kernel routes.
	Converge time.Duration
}

// Total is the whole bring-up.
func (t Timings) Total() time.Duration { return t.Boot + t.Setup + t.Converge }

// Cluster is a running topology.
type Cluster struct {
	spec    Spec
	log     *slog.Logger
	fabric  *vmtest.Fabric
	kernel  string
	timings Timings

	mu      sync.Mutex
	top     *topologies.Topology
	clients map[string]*nodeapi.Client

	obs      *hub
	replayMu sync.Mutex

	closeOnce sync.Once
	closeErr  error
	serving   *server
}

// ErrNotConverged is wrapped by WaitConverged's error when the deadline
// passes first.
var ErrNotConverged = errors.New("bgp not converged")

// Start boots the topology's VMs, sets up the router and the nodes, and
// waits for BGP convergence. On failure everything is stopped, the run
// directory is kept, and the error names the VM and the step.
func Start(ctx context.Context, spec Spec) (*Cluster, error) {
	return start(ctx, spec)
}

// TB is what StartT needs of a test: *testing.T, *testing.B and Ginkgo's
// GinkgoT() all have it.
type TB interface {
	Helper()
	Logf(format string, args ...any)
	Fatalf(format string, args ...any)
	Failed() bool
	Cleanup(func())
}

// StartT starts a cluster for a test (or a Ginkgo suite through
// GinkgoT()): the consoles go to the test log unless spec.ConsoleLine is
// set, each VM's QEMU command line is logged, a start failure fails the test, and cleanup closes the cluster,
// keeping its run directory (and logging its path) when the test failed or
// HOPLAB_KEEP is set.
func StartT(t TB, spec Spec) *Cluster {
	t.Helper()
	vmtest.HandleSignals()
	if spec.ConsoleLine == nil {
		spec.ConsoleLine = func(vm, l string) { t.Logf("%s: %s", vm, l) }
	}
	c, err := Start(context.Background(), spec)
	if err != nil {
		t.Fatalf("start cluster: %v", err)
	}
	for _, vm := range c.Fabric().VMs() {
		t.Logf("%s: to reproduce by hand: %s", vm.Name(), vm.ReproCmdline())
	}
	tm := c.Timings()
	t.Logf("cluster %s up on %s: boot %v, setup %v, converge %v (run dir %s)", c.Topology().Name, c.Kernel(),
		tm.Boot.Round(time.Millisecond), tm.Setup.Round(time.Millisecond), tm.Converge.Round(time.Millisecond), c.Fabric().Dir())
	t.Cleanup(func() {
		if t.Failed() {
			c.Fabric().KeepArtifacts()
		}
		c.Close()
		if c.Fabric().Kept() {
			t.Logf("cluster artifacts kept in %s", c.Fabric().Dir())
		}
	})
	return c
}

// Topology is the topology the cluster runs (the latest Update's).
func (c *Cluster) Topology() *topologies.Topology {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.top
}

// Fabric is the cluster's VMs and wires.
func (c *Cluster) Fabric() *vmtest.Fabric { return c.fabric }

// Client returns the protocol client of the node or router called name
// (its agent, over the control channel), or nil.
func (c *Cluster) Client(name string) *nodeapi.Client { return c.clients[name] }

// Kernel is the guests' kernel release (uname -r).
func (c *Cluster) Kernel() string { return c.kernel }

// Timings are the durations of Start's steps.
func (c *Cluster) Timings() Timings { return c.timings }

// Close stops the observation stream, the server and every VM.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		var errs []error
		if c.serving != nil {
			errs = append(errs, c.serving.close())
		}
		if c.obs != nil {
			c.obs.close()
		}
		if c.fabric != nil {
			errs = append(errs, c.fabric.Close())
		}
		c.closeErr = errors.Join(errs...)
	})
	return c.closeErr
}

func (c *Cluster) client(name string) (*nodeapi.Client, error) {
	n := c.clients[name]
	if n == nil {
		return nil, fmt.Errorf("cluster: no node or router %q", name)
	}
	return n, nil
}
