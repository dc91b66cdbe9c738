package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/onsi/ginkgo/v2"

	"github.com/hoplab/hoplab/fixtures"
	"github.com/hoplab/hoplab/internal/journey"
	"github.com/hoplab/hoplab/topologies"
	"github.com/hoplab/hoplab/vmtest"
	"github.com/hoplab/hoplab/vmtest/cluster"
)

// Environment variables Start reads.
const (
	EnvSeries    = "HOPLAB_SERIES"
	EnvArtifacts = "HOPLAB_E2E_ARTIFACTS"
)

// Report entries Start adds (ginkgo.AddReportEntry) to its BeforeSuite or
// BeforeAll node, for the e2e runner's summary.
const (
	ReportKernel  = "hoplab-kernel"  // the guests' kernel release
	ReportStartup = "hoplab-startup" // boot, setup and BGP convergence
)

// StartTimeout bounds booting, setting up and converging a topology.
const StartTimeout = 3 * time.Minute

// Lab is a running topology for one suite.
type Lab struct {
	// Cluster is the running topology.
	Cluster *cluster.Cluster
	// Topology is the topology it runs.
	Topology *topologies.Topology

	artifacts string // this suite's artifacts directory, or ""
	console   *os.File
	harness   *os.File // the harness's log, in the artifacts directory
	mu        sync.Mutex
	failed    bool
	seq       int
}

// Series is the kernel series the suites boot: HOPLAB_SERIES, or "" for the
// topology's own.
func Series() string { return os.Getenv(EnvSeries) }

// Start boots the topology called name (a shipped topology's name or a
// path) for the calling suite and registers its teardown with
// ginkgo.DeferCleanup: call it from a BeforeAll or BeforeSuite. The VMs'
// run directory is kept, and its path written to the artifacts directory,
// when any spec of the suite failed.
func Start(name string) (*Lab, error) {
	vmtest.HandleSignals()
	top, err := topologies.Open(name)
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	l := &Lab{Topology: top}
	if dir := os.Getenv(EnvArtifacts); dir != "" {
		l.artifacts = filepath.Join(dir, top.Name)
		if err := os.MkdirAll(l.artifacts, 0o755); err != nil {
			return nil, fmt.Errorf("lab: artifacts: %w", err)
		}
		if l.console, err = os.Create(filepath.Join(l.artifacts, "console.log")); err != nil {
			return nil, fmt.Errorf("lab: console log: %w", err)
		}
		if l.harness, err = os.Create(filepath.Join(l.artifacts, "harness.log")); err != nil {
			l.closeConsole()
			return nil, fmt.Errorf("lab: harness log: %w", err)
		}
	}
	spec := cluster.Spec{Topology: top, Series: Series(), ConsoleLine: l.consoleLine, ArtifactsDir: l.artifacts}
	if l.harness != nil {
		spec.Logger = slog.New(slog.NewTextHandler(l.harness, nil))
	}
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	start := time.Now()
	c, err := cluster.Start(ctx, spec)
	if err != nil {
		l.closeConsole()
		return nil, fmt.Errorf("lab: %w", err) // "cluster NAME: ..."
	}
	l.Cluster = c
	tm := c.Timings()
	ginkgo.GinkgoWriter.Printf("lab %s up on %s in %v (boot %v, setup %v, converge %v)\n", top.Name, c.Kernel(),
		time.Since(start).Round(time.Millisecond), tm.Boot.Round(time.Millisecond), tm.Setup.Round(time.Millisecond), tm.Converge.Round(time.Millisecond))
	ginkgo.AddReportEntry(ReportKernel, c.Kernel(), ginkgo.ReportEntryVisibilityNever)
	ginkgo.AddReportEntry(ReportStartup, time.Since(start).Round(time.Millisecond).String(), ginkgo.ReportEntryVisibilityNever)
	ginkgo.DeferCleanup(l.close)
	return l, nil
}

// consoleLine writes a VM's console line to the console log (or
// GinkgoWriter without an artifacts directory).
func (l *Lab) consoleLine(vm, line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.console != nil {
		fmt.Fprintf(l.console, "%s: %s\n", vm, line)
		return
	}
	ginkgo.GinkgoWriter.Printf("%s: %s\n", vm, line)
}

func (l *Lab) closeConsole() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.console != nil {
		l.console.Close()
		l.console = nil
	}
	if l.harness != nil {
		l.harness.Close()
		l.harness = nil
	}
}

// MarkFailed records that a spec of the suite failed, so that close keeps
// the run directory. The suites call it from a ReportAfterEach.
func (l *Lab) MarkFailed() {
	l.mu.Lock()
	l.failed = true
	l.mu.Unlock()
}

func (l *Lab) close() error {
	l.mu.Lock()
	failed := l.failed
	l.mu.Unlock()
	if failed {
		l.Cluster.Fabric().KeepArtifacts()
	}
	err := l.Cluster.Close()
	if l.Cluster.Fabric().Kept() {
		ginkgo.GinkgoWriter.Printf("lab %s: VM run directory kept in %s\n", l.Topology.Name, l.Cluster.Fabric().Dir())
		if l.artifacts != "" {
			_ = os.WriteFile(filepath.Join(l.artifacts, "run-dir"), []byte(l.Cluster.Fabric().Dir()+"\n"), 0o644)
		}
	}
	l.closeConsole()
	return err
}

// ConvergeTimeout bounds Reset's wait for BGP convergence.
const ConvergeTimeout = 60 * time.Second

// Reset brings the cluster back to the state every spec starts from: BGP
// converged (a spec may have stopped a speaker, and a session that flapped
// is waited for and logged) and CT and metrics flushed on every node.
func (l *Lab) Reset(ctx context.Context) error {
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, ConvergeTimeout)
	defer cancel()
	if err := l.Cluster.WaitConverged(cctx); err != nil {
		return fmt.Errorf("lab: reset: %w", err)
	}
	if d := time.Since(start); d > time.Second {
		ginkgo.GinkgoWriter.Printf("lab %s: waited %v for BGP to converge before the spec\n", l.Topology.Name, d.Round(time.Millisecond))
	}
	if err := l.Cluster.Reset(ctx); err != nil {
		return fmt.Errorf("lab: reset: %w", err)
	}
	return nil
}

// ErrNoCase is matched by Fixture's error when the fixture has no case for
// the lab's topology.
var ErrNoCase = errors.New("fixture has no case for this topology")

// Fixture returns the frames of the fixture called name, each at the
// injection point of the fixture's case for the lab's topology, and that
// case.
func (l *Lab) Fixture(name string) ([]cluster.Frame, fixtures.Case, error) {
	exp, err := fixtures.Load(name)
	if err != nil {
		return nil, fixtures.Case{}, fmt.Errorf("lab: %w", err)
	}
	pkts, err := fixtures.Packets(name)
	if err != nil {
		return nil, fixtures.Case{}, fmt.Errorf("lab: fixture %s: %w", name, err)
	}
	for _, c := range exp.Cases {
		if c.Topology != l.Topology.Name {
			continue
		}
		p, err := cluster.ParsePoint(l.Topology, c.Inject)
		if err != nil {
			return nil, c, fmt.Errorf("lab: fixture %s: inject %q: %w", name, c.Inject, err)
		}
		frames := make([]cluster.Frame, len(pkts))
		for i, pk := range pkts {
			frames[i] = cluster.Frame{Data: pk.Data, Point: p}
		}
		return frames, c, nil
	}
	return nil, fixtures.Case{}, fmt.Errorf("lab: fixture %s, topology %s: %w", name, l.Topology.Name, ErrNoCase)
}

// Cases returns the names of the fixtures with a case for the lab's
// topology, sorted.
func (l *Lab) Cases() []string { return CasesFor(l.Topology.Name) }

// CasesFor returns the names of the fixtures with a case for the topology
// called topology, sorted; fixtures that do not load are included, so
// that their spec reports the error.
func CasesFor(topology string) []string {
	var out []string
	for _, n := range fixtures.Names() {
		exp, err := fixtures.Load(n)
		if err != nil {
			out = append(out, n)
			continue
		}
		for _, c := range exp.Cases {
			if c.Topology == topology {
				out = append(out, n)
				break
			}
		}
	}
	return out
}

// Replay injects frames and returns the journey report, which it also
// writes to the artifacts directory.
func (l *Lab) Replay(ctx context.Context, frames []cluster.Frame, opts cluster.ReplayOptions) (journey.Report, error) {
	rep, err := l.Cluster.Replay(ctx, frames, opts)
	if err != nil {
		return rep, fmt.Errorf("lab: %w", err) // "replay: ..."
	}
	l.save("replay", rep)
	return rep, nil
}

// save writes v as JSON to the artifacts directory, named after the
// current spec.
func (l *Lab) save(kind string, v any) {
	if l.artifacts == "" {
		return
	}
	l.mu.Lock()
	l.seq++
	n := l.seq
	l.mu.Unlock()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return
	}
	name := fmt.Sprintf("%03d-%s-%s.json", n, kind, slug(ginkgo.CurrentSpecReport().LeafNodeText))
	_ = os.WriteFile(filepath.Join(l.artifacts, name), b, 0o644)
}

var nonSlug = regexp.MustCompile(`[^a-zA-Z0-9]+`)

func slug(s string) string {
	s = strings.Trim(nonSlug.ReplaceAllString(s, "-"), "-")
	if len(s) > 60 {
		s = s[:60]
	}
	return strings.ToLower(s)
}
