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
	node, verdict, typ string
	follow, json       bool
	duration           time.Duration
}

func newObserveCmd(a *app) *cobra.Command {
	var f observeFlags
	cmd := &cobra.Command{
		Use:   "observe [--node N] [--verdict FORWARDED|DROPPED|ERROR] [--type trace|drop|l7] [--follow] [--json]",
		Short: "Print Hubble-style flow lines from the running cluster's datapath events and L7 proxy records",
		Long: `Observe streams the trace and drop events of every node of the running
cluster (hoplab vm up), and the records of the nodes' L7 proxies, as
Hubble-style flow lines:

  Nov 23 10:31:15.123 node1 pod1:40000 (ID:38586) -> 10.224.1.1:80 (ID:2) from-container FORWARDED (TCP Flags: SYN)
  Nov 23 10:31:15.131 node2 pod3:40030 (ID:63713) -> pod4:8080 (ID:19216) to-container DROPPED (Policy denied, TCP Flags: SYN)
  Nov 23 10:31:15.140 node2 pod1:40002 (ID:38586) -> pod4:8080 (ID:19216) http-request FORWARDED (HTTP/1.1 GET http://10.1.2.40:8080/public/a)
  Nov 23 10:31:15.143 node2 pod4:8080 (ID:19216) -> pod1:40002 (ID:38586) http-response FORWARDED (HTTP/1.1 200 3ms (GET http://10.1.2.40:8080/public/a))

--type picks trace events, drop events or L7 records (Hubble's --type).
Events carry no history: observe prints what happens while it runs, for
--duration, or until Ctrl-C with --follow. --json prints one event per line
as the agent sends it (a datapath event, or an L7 record).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.observe(cmd.Context(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.node, "node", "", "only events of this node")
	fl.StringVar(&f.verdict, "verdict", "", "only FORWARDED, DROPPED or ERROR flows")
	fl.StringVar(&f.typ, "type", "", "only trace events, drop events or l7 records (trace, drop, l7)")
	fl.BoolVarP(&f.follow, "follow", "f", false, "stream until interrupted")
	fl.DurationVar(&f.duration, "duration", 5*time.Second, "how long to stream without --follow")
	fl.BoolVar(&f.json, "json", false, "print the events as JSON lines")
	return cmd
}

// Event types of observe --type (Hubble's names).
const (
	typeTrace = "trace"
	typeDrop  = "drop"
	typeL7    = "l7"
)

// flowFilter decides which events observe prints.
type flowFilter struct {
	node, verdict, typ string
}

func newFlowFilter(top *topologies.Topology, node, verdict, typ string) (flowFilter, error) {
	v := strings.ToUpper(verdict)
	if v != "" && v != flowline.Forwarded && v != flowline.Dropped && v != flowline.Error {
		return flowFilter{}, fmt.Errorf("--verdict %q: want FORWARDED, DROPPED or ERROR", verdict)
	}
	ty := strings.ToLower(typ)
	if ty != "" && ty != typeTrace && ty != typeDrop && ty != typeL7 {
		return flowFilter{}, fmt.Errorf("--type %q: want trace, drop or l7", typ)
	}
	if node != "" && top.Node(node) == nil {
		return flowFilter{}, fmt.Errorf("--node %q: no such node in topology %s", node, top.Name)
	}
	return flowFilter{node: node, verdict: v, typ: ty}, nil
}

// match reports whether observe prints e.
func (f flowFilter) match(e cluster.Event) bool {
	switch {
	case e.Datapath != nil:
		d := e.Datapath
		typ := typeTrace
		if d.Type == nodeapi.EventDrop {
			typ = typeDrop
		}
		return (f.typ == "" || f.typ == typ) && (f.node == "" || d.Node == f.node) && (f.verdict == "" || flowline.Verdict(*d) == f.verdict)
	case e.L7 != nil:
		return (f.typ == "" || f.typ == typeL7) && (f.node == "" || e.L7.Node == f.node) && (f.verdict == "" || flowline.L7Verdict(*e.L7) == f.verdict)
	}
	return false
}

// line renders an event observe prints: a flow line, or with asJSON the
// event as the agent sent it.
func (f flowFilter) line(e cluster.Event, top *topologies.Topology, asJSON bool) (string, error) {
	if asJSON {
		var v any = e.Datapath
		if e.L7 != nil {
			v = e.L7
		}
		b, err := json.Marshal(v)
		return string(b), err
	}
	if e.L7 != nil {
		return flowline.FormatL7(*e.L7, top), nil
	}
	return flowline.Format(*e.Datapath, top), nil
}

func (a *app) observe(ctx context.Context, f observeFlags) error {
	r, err := a.attach()
	if err != nil {
		return fmt.Errorf("observe: %w", err)
	}
	defer r.Close()
	top := r.Topology()
	filter, err := newFlowFilter(top, f.node, f.verdict, f.typ)
	if err != nil {
		return fmt.Errorf("observe: %w", err)
	}
	var mu sync.Mutex
	var werr error
	stop, err := r.SubscribeContext(ctx, func(e cluster.Event) {
		if !filter.match(e) {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if werr != nil {
			return
		}
		line, err := filter.line(e, top, f.json)
		if err == nil {
			_, werr = fmt.Fprintln(a.stdout, line)
		}
	})
	if err != nil {
		return fmt.Errorf("observe: %w", err)
	}
	defer stop()
	a.logger().Debug("observing", "state", r.State().Dir, "node", f.node, "verdict", filter.verdict, "type", filter.typ)
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
