package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/hoplab/hoplab/tools/journey"
	"github.com/hoplab/hoplab/vmtest/nodeapi"
)

// Frame is one packet to replay.
type Frame struct {
	// Data is the Ethernet frame.
	Data []byte `json:"data"`
	// Point is where it enters; the zero point means DefaultPoint.
	Point InjectPoint `json:"point"`
	// Gap is the pause before the frame (honoured with ReplayOptions.Timing).
	Gap time.Duration `json:"gap,omitempty"`
}

// ReplayOptions change how Replay injects and collects.
type ReplayOptions struct {
	// KeepL2 injects the frames as they are, without rewriting their
	// Ethernet addresses to what the point really sends.
	KeepL2 bool `json:"keep_l2,omitempty"`
	// Timing keeps the frames' gaps; otherwise they are sent back to back.
	Timing bool `json:"timing,omitempty"`
	// Settle is how long no new observation must arrive before the
	// journeys are complete; default DefaultSettle.
	Settle time.Duration `json:"settle,omitempty"`
	// Deadline bounds the wait for observations to settle; default
	// DefaultReplayDeadline.
	Deadline time.Duration `json:"deadline,omitempty"`
}

// Defaults of ReplayOptions.
const (
	DefaultSettle         = 300 * time.Millisecond
	DefaultReplayDeadline = 10 * time.Second
)

// ErrNoFrames is returned by Replay for an empty capture.
var ErrNoFrames = errors.New("no frames to replay")

// Replay injects frames, each at its point, collects what the cluster
// observes of them (datapath events, pod frames, wire frames), waits until
// the observations settle, and merges them into one journey per frame
// (journey.Merge), with the CT entries of each packet's flow from the
// nodes' CT maps. Replies the pods send are not part of the report.
func (c *Cluster) Replay(ctx context.Context, frames []Frame, opts ReplayOptions) (journey.Report, error) {
	rep := journey.Report{Kernel: c.kernel}
	plan, err := c.plan(frames, opts)
	if err != nil {
		return rep, err
	}
	var mu sync.Mutex
	var obs []journey.Observation
	last := time.Now()
	stop, err := c.SubscribeContext(ctx, func(e Event) {
		o := e.Observations()
		mu.Lock()
		obs = append(obs, o...)
		last = time.Now()
		mu.Unlock()
	})
	if err != nil {
		return rep, fmt.Errorf("replay: %w", err)
	}
	defer stop()

	injected, err := c.inject(ctx, plan, opts)
	if err != nil {
		return rep, fmt.Errorf("replay: %w", err)
	}
	mu.Lock()
	last = time.Now() // the settle time counts from the last send at least
	mu.Unlock()
	if err := c.settle(ctx, opts, &mu, &last); err != nil {
		return rep, fmt.Errorf("replay: %w", err)
	}
	stop()
	mu.Lock()
	all := obs
	mu.Unlock()
	rep.Packets, _ = journey.Merge(injected, all)
	for i := range rep.Packets {
		if p := plan[i].point; p.Kind == AtRouter {
			injectedFirst(&rep.Packets[i], p.Node)
		}
	}
	if err := c.addCT(ctx, rep.Packets); err != nil {
		return rep, fmt.Errorf("replay: %w", err)
	}
	return rep, nil
}

// injectedFirst puts first the wire hop of a frame injected toward the ToR
// on node's uplink. journey.Merge orders a node without egress-side points
// (up to to-netdev) among the receiving nodes, after the router; but a frame
// injected at the ToR's port starts on that node's wire. The node's first
// wire hop is the injected frame (its hops are ordered by time).
func injectedFirst(p *journey.Packet, node string) {
	for i, h := range p.Hops {
		if h.Node == node && h.Point == journey.Wire {
			if i > 0 {
				copy(p.Hops[1:i+1], p.Hops[0:i])
				p.Hops[0] = h
			}
			return
		}
	}
}

// planned is a frame ready to inject.
type planned struct {
	index int
	point InjectPoint
	data  []byte
	gap   time.Duration
	key   journey.FlowKey
}

func (c *Cluster) plan(frames []Frame, opts ReplayOptions) ([]planned, error) {
	if len(frames) == 0 {
		return nil, ErrNoFrames
	}
	t := c.Topology()
	out := make([]planned, len(frames))
	for i, f := range frames {
		p := f.Point
		if p.IsZero() {
			var err error
			if p, err = DefaultPoint(t, f.Data); err != nil {
				return nil, fmt.Errorf("replay: packet %d: %w", i, err)
			}
		}
		data := f.Data
		if !opts.KeepL2 {
			var err error
			if data, err = RewriteL2(t, p, f.Data); err != nil {
				return nil, fmt.Errorf("replay: packet %d: %w", i, err)
			}
		} else if len(data) < 14 {
			return nil, fmt.Errorf("replay: packet %d: %d bytes have no Ethernet header", i, len(data))
		}
		k, _ := journey.KeyFromFrame(data)
		gap := time.Duration(0)
		if opts.Timing {
			gap = f.Gap
		}
		out[i] = planned{index: i, point: p, data: data, gap: gap, key: k}
	}
	return out, nil
}

// inject sends the frames in order; consecutive frames for the same pod go
// in one pod-inject call with their gaps.
func (c *Cluster) inject(ctx context.Context, plan []planned, opts ReplayOptions) ([]journey.Injected, error) {
	var injected []journey.Injected
	for i := 0; i < len(plan); {
		p := plan[i]
		if p.point.Kind != AtPod {
			if p.gap > 0 {
				if err := sleep(ctx, p.gap); err != nil {
					return nil, err
				}
			}
			now := time.Now()
			var err error
			if p.point.Kind == AtNode {
				err = c.fabric.InjectToNode(p.point.Node, p.data)
			} else {
				err = c.fabric.InjectToRouter(p.point.Node, p.data)
			}
			if err != nil {
				return nil, fmt.Errorf("packet %d at %s: %w", p.index, p.point, err)
			}
			injected = append(injected, journey.Injected{Index: p.index, Time: now, Key: p.key})
			i++
			continue
		}
		j := i
		req := nodeapi.Inject{Pod: p.point.Pod}
		for ; j < len(plan) && plan[j].point == p.point; j++ {
			req.Frames = append(req.Frames, plan[j].data)
			req.Gaps = append(req.Gaps, plan[j].gap)
		}
		now := time.Now()
		if _, err := c.clients[p.point.Node].Inject(ctx, req); err != nil {
			return nil, fmt.Errorf("packets %d..%d at %s: %w", i, j-1, p.point, err)
		}
		var at time.Duration
		for k := i; k < j; k++ {
			at += plan[k].gap
			// Host time of the send, as far as the host knows it.
			injected = append(injected, journey.Injected{Index: plan[k].index, Time: now.Add(at), Key: plan[k].key})
		}
		i = j
	}
	return injected, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// settle waits until no observation arrived for the settle time, or the
// deadline.
func (c *Cluster) settle(ctx context.Context, opts ReplayOptions, mu *sync.Mutex, last *time.Time) error {
	settle, deadline := opts.Settle, opts.Deadline
	if settle <= 0 {
		settle = DefaultSettle
	}
	if deadline <= 0 {
		deadline = DefaultReplayDeadline
	}
	end := time.Now().Add(deadline)
	tick := time.NewTicker(settle / 4)
	defer tick.Stop()
	for {
		mu.Lock()
		quiet := time.Since(*last)
		mu.Unlock()
		if quiet >= settle || time.Now().After(end) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// addCT puts into each packet the CT entries of the nodes its hops crossed
// whose tuple is one of the flows the hops show (either direction).
func (c *Cluster) addCT(ctx context.Context, pkts []journey.Packet) error {
	nodes := map[string]bool{}
	for _, p := range pkts {
		for _, h := range p.Hops {
			if c.Topology().Node(h.Node) != nil {
				nodes[h.Node] = true
			}
		}
	}
	rows := map[string][]nodeapi.CTRow{}
	for n := range nodes {
		r, err := c.clients[n].CTList(ctx)
		if err != nil {
			return err
		}
		rows[n] = r
	}
	for i := range pkts {
		pkts[i].CT = ctEntries(pkts[i], rows)
	}
	return nil
}

// ctEntries picks the rows of the packet's flows, on the nodes it crossed,
// in node order of the journey.
func ctEntries(p journey.Packet, rows map[string][]nodeapi.CTRow) []journey.CTEntry {
	type pair struct{ a, b netip.AddrPort }
	flows := map[string]map[pair]bool{}
	var order []string
	for _, h := range p.Hops {
		src, err1 := netip.ParseAddr(h.IPSrc)
		dst, err2 := netip.ParseAddr(h.IPDst)
		if err1 != nil || err2 != nil {
			continue
		}
		if flows[h.Node] == nil {
			flows[h.Node] = map[pair]bool{}
			order = append(order, h.Node)
		}
		s, d := netip.AddrPortFrom(src, h.Sport), netip.AddrPortFrom(dst, h.Dport)
		flows[h.Node][pair{s, d}] = true
		flows[h.Node][pair{d, s}] = true
	}
	out := []journey.CTEntry{}
	for _, n := range order {
		for _, r := range rows[n] {
			if flows[n][pair{r.Src, r.Dst}] {
				out = append(out, journey.CTEntry{Node: n, Tuple: r.Tuple, Flags: r.Flags, RevNAT: r.RevNATAddr})
			}
		}
	}
	return out
}
