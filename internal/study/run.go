package study

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hoplab/hoplab/vmtest/agent/workload"
	"github.com/hoplab/hoplab/vmtest/cluster"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// Modules are the kernel modules the baseline needs beyond the guests'
// default ones (the bridge, br_netfilter's FORWARD path for bridged
// packets, and nf_tables for the rules).
var Modules = []string{"bridge", "br_netfilter", "nf_tables"}

// Options configure Run.
type Options struct {
	// Grid is what to measure; see FullGrid and QuickGrid.
	Grid Grid
	// Series and Flavour pick the catalogue kernel (HOPLAB_KERNEL, when
	// set, boots the user's); empty means the topology's (6.1).
	Series, Flavour string
	// AgentBinary is the agent (cluster.Spec.AgentBinary).
	AgentBinary string
	// Logger is the harness logger.
	Logger *slog.Logger
	// Progress, when set, receives one line per step and per sample.
	Progress func(string)
}

// Result is one study run.
type Result struct {
	// Kernel is the guests' release.
	Kernel string `json:"kernel"`
	// Accel is the VMs' accelerator (tcg or kvm).
	Accel string `json:"accel"`
	Grid  Grid   `json:"grid"`
	// Command is the command line that ran the study.
	Command string `json:"command,omitempty"`
	// Started is when Run began; Wall how long it took, Boot of which
	// the cluster's start, and Phases each phase's time.
	Started time.Time                `json:"started"`
	Wall    time.Duration            `json:"wall"`
	Boot    time.Duration            `json:"boot"`
	Phases  map[string]time.Duration `json:"phases"`
	// CPUs and LoadBefore/LoadAfter (/proc/loadavg) describe the host.
	CPUs       int    `json:"cpus"`
	LoadBefore string `json:"load_before"`
	LoadAfter  string `json:"load_after"`
	// Samples are the measurements (written to samples.csv, not to the
	// run's JSON).
	Samples []Sample `json:"-"`
}

// loadAvg returns the host's 1, 5 and 15-minute load averages.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// Run boots the study's topology and measures o.Grid: first the eBPF
// variant (the topology updated to each count in turn), then every node
// is switched to the bridge baseline and the iptables variants are
// measured (the destination's node holds the rules, the other node an
// empty chain). Repetitions are sweeps over the counts, ascending and
// descending in turn (see sweep), so that the host's load, which
// changes over a long run, is shared by every count; each measurement
// is a short unrecorded TCP_RR, then a bulk and a TCP_RR test. A failed
// test fails the run, naming the point.
func Run(ctx context.Context, o Options) (*Result, error) {
	if err := o.Grid.Validate(); err != nil {
		return nil, fmt.Errorf("study grid: %w", err)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Progress == nil {
		o.Progress = func(string) {}
	}
	res := &Result{Grid: o.Grid, Started: time.Now(), CPUs: runtime.NumCPU(), LoadBefore: loadAvg(), Phases: map[string]time.Duration{}}
	top, err := Topology(0)
	if err != nil {
		return nil, err
	}
	o.Progress(fmt.Sprintf("booting the study topology (%d measurements of %v planned)", o.Grid.Measurements(), o.Grid.Duration))
	c, err := cluster.Start(ctx, cluster.Spec{Topology: top, Series: o.Series, Flavour: o.Flavour, AgentBinary: o.AgentBinary,
		ExtraModules: Modules, Logger: o.Logger, ConsoleLine: func(string, string) {}})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	res.Boot = time.Since(res.Started)
	res.Kernel = c.Kernel()
	res.Accel = string(c.Fabric().Router().Accel())
	o.Progress(fmt.Sprintf("cluster up on %s (%s) in %v", res.Kernel, res.Accel, res.Boot.Round(time.Second)))
	r := &runner{c: c, o: o, res: res}
	if slices.Contains(o.Grid.Variants, EBPF) {
		begin := time.Now()
		if err := r.ebpf(ctx); err != nil {
			return res, err
		}
		res.Phases[string(EBPF)] = time.Since(begin)
	}
	if slices.ContainsFunc(o.Grid.Variants, func(v Variant) bool { return v != EBPF }) {
		begin := time.Now()
		if err := r.baseline(ctx); err != nil {
			return res, err
		}
		res.Phases["baseline"] = time.Since(begin)
	}
	res.Wall = time.Since(res.Started)
	res.LoadAfter = loadAvg()
	return res, nil
}

type runner struct {
	c   *cluster.Cluster
	o   Options
	res *Result
	// rules is each baseline node's installed (variant, count).
	rules map[string]nodeapi.BaselineRules
}

func (r *runner) node(name string) *nodeapi.Client { return r.c.Client(name) }

// serve starts the perf servers in both server pods.
func (r *runner) serve(ctx context.Context) error {
	for node, pod := range map[string]string{"node1": LocalServer, "node2": RemoteServer} {
		if err := r.node(node).PerfServe(ctx, nodeapi.PerfServe{Pod: pod, Port: PerfPort}); err != nil {
			return err
		}
	}
	return nil
}

// sweep is the order of the counts in repetition rep: ascending, then
// descending, and so on, so that a slow drift of the host's load weighs
// on every count alike and consecutive counts change the least.
func sweep(counts []int, rep int) []int {
	out := slices.Clone(counts)
	if rep%2 == 1 {
		slices.Reverse(out)
	}
	return out
}

func (r *runner) ebpf(ctx context.Context) error {
	if err := r.serve(ctx); err != nil {
		return err
	}
	current := 0
	for rep := range r.o.Grid.Reps {
		for _, n := range sweep(r.o.Grid.Counts, rep) {
			if n != current {
				top, err := Topology(n)
				if err != nil {
					return err
				}
				begin := time.Now()
				if err := r.c.Update(ctx, top); err != nil {
					return fmt.Errorf("ebpf, %d entries: %w", n, err)
				}
				current = n
				r.o.Progress(fmt.Sprintf("ebpf: %d policy entries per server installed in %v", n, time.Since(begin).Round(time.Millisecond)))
			}
			for _, pl := range r.o.Grid.Placements {
				if err := r.measure(ctx, EBPF, pl, n, rep); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// baseline switches both nodes to the bridge baseline and measures the
// iptables variants.
func (r *runner) baseline(ctx context.Context) error {
	begin := time.Now()
	text := TopologyText(0)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, node := range []string{"node1", "node2"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = r.node(node).BaselineSetup(ctx, nodeapi.BaselineSetup{Topology: text, File: TopologyFile, Node: node})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, cluster.DefaultConvergeTimeout)
	err := r.c.WaitConverged(cctx)
	cancel()
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	r.o.Progress(fmt.Sprintf("baseline: pods on bridges, BGP converged in %v", time.Since(begin).Round(time.Millisecond)))
	if err := r.serve(ctx); err != nil {
		return err
	}
	r.rules = map[string]nodeapi.BaselineRules{}
	for _, v := range r.o.Grid.Variants {
		if v == EBPF {
			continue
		}
		for rep := range r.o.Grid.Reps {
			for _, pl := range r.o.Grid.Placements {
				for _, n := range sweep(r.o.Grid.Counts, rep) {
					if err := r.setRules(ctx, v, pl, n); err != nil {
						return err
					}
					if err := r.measure(ctx, v, pl, n, rep); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// setRules gives the destination's node n rules of v and the other node
// an empty chain.
func (r *runner) setRules(ctx context.Context, v Variant, pl Placement, n int) error {
	dstNode, server := "node1", localIP
	if pl == MultiHost {
		dstNode, server = "node2", remoteIP
	}
	variant := nodeapi.RulesNoMatch
	if v == IPTablesMatch {
		variant = nodeapi.RulesMatch
	}
	for _, node := range []string{"node1", "node2"} {
		want := nodeapi.BaselineRules{Variant: variant, Client: clientIP, Server: server, Port: PerfPort, PodNetwork: podNetwork}
		if node == dstNode {
			want.Count = n
		}
		if have, ok := r.rules[node]; ok && have == want || ok && have.Count == 0 && want.Count == 0 {
			continue
		}
		res, err := r.node(node).BaselineRules(ctx, want)
		if err != nil {
			return fmt.Errorf("%s, %s, %d rules: %w", v, pl, n, err)
		}
		r.rules[node] = want
		if want.Count > 0 {
			r.o.Progress(fmt.Sprintf("%s: %d FORWARD rules on %s in %v", v, res.Rules, node, res.Took.Round(time.Millisecond)))
		}
	}
	return nil
}

// measure runs repetition rep of one point: a short unrecorded TCP_RR
// (the first packets after a change), then a bulk and a TCP_RR test.
func (r *runner) measure(ctx context.Context, v Variant, pl Placement, n, rep int) error {
	dst := localIP
	if pl == MultiHost {
		dst = remoteIP
	}
	client := r.node("node1")
	vms := []string{"node1"}
	if pl == MultiHost {
		vms = []string{"node1", r.c.Topology().Router.Name, "node2"}
	}
	call := func(kind string, d time.Duration) (workload.PerfResult, float64, error) {
		cctx, cancel := context.WithTimeout(ctx, d+time.Minute)
		defer cancel()
		before := r.cpu(vms)
		res, err := client.Perf(cctx, nodeapi.Perf{Pod: ClientPod, Kind: kind, Dst: fmt.Sprintf("%v:%d", dst, PerfPort), Duration: d})
		cpu := (r.cpu(vms) - before).Seconds()
		if err != nil {
			return res, 0, fmt.Errorf("%s, %s, %d entries: %s: %w", v, pl, n, kind, err)
		}
		return res, cpu, nil
	}
	if _, _, err := call(workload.PerfRR, 200*time.Millisecond); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	b, cpu, err := call(workload.PerfBulk, r.o.Grid.Duration)
	if err != nil {
		return err
	}
	r.add(Sample{Variant: v, Placement: pl, Entries: n, Rep: rep, Kind: KindBulk, Mbps: b.BitsPerSecond / 1e6, Duration: b.Duration, CPUSeconds: cpu})
	rr, cpu, err := call(workload.PerfRR, r.o.Grid.Duration)
	if err != nil {
		return err
	}
	r.add(Sample{Variant: v, Placement: pl, Entries: n, Rep: rep, Kind: KindRR, TPS: rr.TransactionsPerSecond,
		LatencyUS: float64(rr.MeanLatency) / float64(time.Microsecond), Duration: rr.Duration, CPUSeconds: cpu})
	return nil
}

func (r *runner) add(s Sample) {
	r.res.Samples = append(r.res.Samples, s)
	r.o.Progress(s.String())
}

// cpu is the CPU time the named VMs' QEMU processes have used so far (0
// for a VM whose process cannot be read: the samples then have no CPU
// metrics).
func (r *runner) cpu(vms []string) time.Duration {
	var total time.Duration
	for _, vm := range r.c.Fabric().VMs() {
		if slices.Contains(vms, vm.Name()) {
			d, err := processCPU(vm.PID())
			if err != nil {
				return 0
			}
			total += d
		}
	}
	return total
}

// userHZ is the unit of /proc/PID/stat's times (USER_HZ, 100 on Linux).
const userHZ = 100

// processCPU is the user and system time of process pid, all its threads,
// live and gone, included (/proc/PID/stat's utime and stime).
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: count fields
	// after its closing parenthesis (field 3, state, comes first).
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	var ticks int64
	for _, s := range f[11:13] { // utime and stime, fields 14 and 15
		t, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += t
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}
