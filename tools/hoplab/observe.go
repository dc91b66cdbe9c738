package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/hoplab/hoplab/tools/flowline"
	"github.com/hoplab/hoplab/topologies"
	"github.com/hoplab/hoplab/vmtest/cluster"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// observeFlags are observe's options.
type observeFlags struct {
	node, verdict string
	follow, json  bool
	duration      time.Duration
}

func newObserveCmd(a *app) *cobra.Command {
	var f observeFlags
	cmd := &cobra.Command{
		Use:   "observe [--node N] [--verdict FORWARDED|DROPPED] [--follow] [--json]",
		Short: "Print Hubble-style flow lines from the running cluster's datapath events",
		Long: `Observe streams the trace and drop events of every node of the running
cluster (hoplab vm up) as Hubble-style flow lines:

  Nov 23 10:31:15.123 node1 pod1:40000 (ID:38586) -> 10.224.1.1:80 (ID:2) from-container FORWARDED (TCP Flags: SYN)
  Nov 23 10:31:15.131 node2 pod3:40030 (ID:63713) -> pod4:8080 (ID:19216) to-container DROPPED (Policy denied, TCP Flags: SYN)

Events carry no history: observe prints what happens while it runs, for
--duration, or until Ctrl-C with --follow. --json prints one datapath event
per line as the agent sends it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.observe(cmd.Context(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.node, "node", "", "only events of this node")
	fl.StringVar(&f.verdict, "verdict", "", "only FORWARDED or DROPPED flows")
	fl.BoolVarP(&f.follow, "follow", "f", false, "stream until interrupted")
	fl.DurationVar(&f.duration, "duration", 5*time.Second, "how long to stream without --follow")
	fl.BoolVar(&f.json, "json", false, "print the events as JSON lines")
	return cmd
}

// flowFilter decides which datapath events observe prints.
type flowFilter struct {
	node, verdict string
}

func newFlowFilter(top *topologies.Topology, node, verdict string) (flowFilter, error) {
	v := strings.ToUpper(verdict)
	if v != "" && v != flowline.Forwarded && v != flowline.Dropped {
		return flowFilter{}, fmt.Errorf("--verdict %q: want FORWARDED or DROPPED", verdict)
	}
	if node != "" && top.Node(node) == nil {
		return flowFilter{}, fmt.Errorf("--node %q: no such node in topology %s", node, top.Name)
	}
	return flowFilter{node: node, verdict: v}, nil
}

func (f flowFilter) match(e *nodeapi.DatapathEvent) bool {
	return e != nil && (f.node == "" || e.Node == f.node) && (f.verdict == "" || flowline.Verdict(*e) == f.verdict)
}

func (a *app) observe(ctx context.Context, f observeFlags) error {
	r, err := a.attach()
	if err != nil {
		return fmt.Errorf("observe: %w", err)
	}
	defer r.Close()
	top := r.Topology()
	filter, err := newFlowFilter(top, f.node, f.verdict)
	if err != nil {
		return fmt.Errorf("observe: %w", err)
	}
	var mu sync.Mutex
	var werr error
	stop, err := r.SubscribeContext(ctx, func(e cluster.Event) {
		if !filter.match(e.Datapath) {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if werr != nil {
			return
		}
		if f.json {
			b, err := json.Marshal(e.Datapath)
			if err == nil {
				_, werr = fmt.Fprintf(a.stdout, "%s\n", b)
			}
			return
		}
		_, werr = fmt.Fprintln(a.stdout, flowline.Format(*e.Datapath, top))
	})
	if err != nil {
		return fmt.Errorf("observe: %w", err)
	}
	defer stop()
	a.logger().Debug("observing", "state", r.State().Dir, "node", f.node, "verdict", filter.verdict)
	if a.onObserving != nil {
		a.onObserving()
	}
	var end <-chan time.Time
	if !f.follow {
		end = time.After(f.duration)
	}
	// The stream has no end of its own: watch the holder of the cluster.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	holder := r.State().PID
wait:
	for {
		select {
		case <-ctx.Done():
			break wait
		case <-end:
			break wait
		case <-tick.C:
			if !running(holder) {
				stop()
				return fmt.Errorf("observe: the cluster stopped (pid %d is gone)", holder)
			}
		}
	}
	stop()
	mu.Lock()
	defer mu.Unlock()
	return werr
}
