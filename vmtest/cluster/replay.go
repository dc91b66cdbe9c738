package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/hoplab/hoplab/internal/journey"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// Frame is one packet to replay.
type Frame struct {
	// Data is the Ethernet frame.
	Data []byte `json:"data"`
	// Point is where it enters; the zero point means DefaultPoint.
	Point InjectPoint `json:"point"`
	// Gap is the pause before the frame (honoured with ReplayOptions.Timing;
	// Gaps derives it from capture times).
	Gap time.Duration `json:"gap,omitempty"`
}

// ReplayOptions change how Replay injects and collects.
type ReplayOptions struct {
	// KeepL2 injects the frames as they are, without rewriting their
	// Ethernet addresses to what the point really sends.
	KeepL2 bool `json:"keep_l2,omitempty"`
	// Timing keeps the frames' gaps; otherwise they are sent back to back.
	Timing bool `json:"timing,omitempty"`
	// Fallback is where a frame without a point enters when DefaultPoint
	// cannot place it (FallbackPoint is `hoplab replay`'s); the zero point
	// makes such a frame an error.
	Fallback InjectPoint `json:"fallback,omitzero"`
	// TCPAckRewrite shifts the acknowledgement numbers of a replayed
	// client's segments after its SYN to the live server's ISN, from the
	// SYN-ACK observed (tcpliveplay-style; fixture capability
	// "tcp-ack-rewrite"). Frames are then sent one by one, each waiting for
	// the SYN-ACK it needs (at most SynAckWait).
	TCPAckRewrite bool `json:"tcp_ack_rewrite,omitempty"`
	// SuppressRST drops the TCP RSTs an injecting pod's kernel sends on the
	// injected flows, which it has no socket for (it would reset the
	// conversation the capture replays: fixture capability
	// "client-rst-suppression"; nodeapi.Inject.SuppressRST). The
	// suppression ends when the replay does.
	SuppressRST bool `json:"suppress_rst,omitempty"`
	// MaxFlows sizes each injecting pod's RST filter (SuppressRST): the
	// most TCP flows it holds; 0 means nodeapi.DefaultRSTFlows (see
	// RSTFilterSize, CheckLimits).
	MaxFlows int `json:"max_flows,omitempty"`
	// MaxObservations caps the observations a replay keeps for its
	// journeys; 0 means DefaultMaxObservations. Observations past it are
	// counted, not kept, and a warning says so (the journeys of the later
	// packets then miss hops).
	MaxObservations int `json:"max_observations,omitempty"`
	// Progress, when set, is called after each batch of frames sent with
	// the number sent so far and the total (hoplab replay's progress bar).
	Progress func(sent, total int) `json:"-"`
	// Settle is how long no new observation of the injected packets'
	// addresses may arrive before the journeys are complete; default
	// DefaultSettle.
	Settle time.Duration `json:"settle,omitempty"`
	// Deadline bounds the wait for observations to settle; default
	// DefaultReplayDeadline.
	Deadline time.Duration `json:"deadline,omitempty"`
}

// Defaults of ReplayOptions.
const (
	DefaultSettle         = 300 * time.Millisecond
	DefaultReplayDeadline = 10 * time.Second
	// DefaultMaxObservations bounds a replay's memory for observations
	// (about 500 bytes each, kept, then merged into journeys: a few
	// hundred MB in all): the 20 to 30 hops of a TCP segment, its reply
	// and the pod's RST for each of about 5,000 packets.
	DefaultMaxObservations = 1 << 17
)

// ErrNoFrames is returned by Replay for an empty capture.
var ErrNoFrames = errors.New("no frames")

// Replay injects frames, each at its point, collects what the cluster
// observes of them (datapath events, pod frames, wire frames), waits until
// the observations settle, and merges them into one journey per frame
// (journey.Merge), with the CT entries of each packet's flow from the
// nodes' CT maps. Replies the pods send are not part of the report; Trace
// returns them too.
func (c *Cluster) Replay(ctx context.Context, frames []Frame, opts ReplayOptions) (journey.Report, error) {
	res, err := c.Trace(ctx, frames, opts)
	return res.Report, err
}

// Result is what Trace returns: the journey report of the injected packets
// and the journeys of the packets the pods sent in response.
type Result struct {
	// Report holds one journey per injected frame.
	Report journey.Report `json:"report"`
	// Replies are the journeys of packets pods sent in response, in the
	// order they were sent.
	Replies []Reply `json:"replies"`
}

// Reply is the journey of a packet a pod sent in response to an injected
// one (a SYN-ACK, an echo reply, a RST); journey.MergeReplies attributes
// it.
type Reply = journey.Reply

// Trace is Replay that also returns the replies' journeys. Replays of one
// cluster run one at a time (the same capture replayed twice at once
// would have its observations claimed by either). Its errors start with
// "replay: " and name the packets ("replay: packet 3: ...").
func (c *Cluster) Trace(ctx context.Context, frames []Frame, opts ReplayOptions) (Result, error) {
	c.replayMu.Lock()
	defer c.replayMu.Unlock()
	res := Result{Report: journey.Report{Kernel: c.kernel}, Replies: []Reply{}}
	plan, err := Plan(c.Topology(), frames, opts)
	if err != nil {
		return res, fmt.Errorf("replay: %w", err)
	}
	// The notes are the caller's to give (hoplab replay gives them before
	// booting); a map too small fails here, before any frame is sent.
	if _, err := CheckLimits(c.Topology(), plan, opts); err != nil {
		return res, fmt.Errorf("replay: %w", err)
	}
	col := newCollector(plan, opts.MaxObservations)
	if opts.TCPAckRewrite {
		col.acks = newAckTracker(plan)
	}
	stop, err := c.SubscribeContext(ctx, col.add)
	if err != nil {
		return res, fmt.Errorf("replay: %w", err)
	}
	defer stop()

	if opts.SuppressRST {
		defer c.endRSTSuppression(plan)
	}
	injected, err := c.inject(ctx, plan, col.acks, opts)
	if err != nil {
		return res, fmt.Errorf("replay: %w", err)
	}
	col.touch() // the settle time counts from the last send at least
	if err := settle(ctx, opts, col); err != nil {
		return res, fmt.Errorf("replay: %w", err)
	}
	stop()
	if kept, over := col.counts(); over > 0 {
		c.log.Warn("observations past the cap not kept: the journeys of the later packets miss hops (replay fewer packets at a time)",
			"kept", kept, "not_kept", over)
	}
	sent := make([]journey.Sent, len(injected))
	for i, inj := range injected {
		sent[i] = journey.NewSent(inj, plan[i].Data)
	}
	res.Report.Packets, res.Replies = journey.MergeReplies(sent, col.sightings())
	for i := range res.Report.Packets {
		if p := plan[i].Point; p.Kind == AtRouter {
			injectedFirst(&res.Report.Packets[i], p.Node)
		}
	}
	big, err := c.bigCTTable(ctx)
	if err != nil {
		return res, fmt.Errorf("replay: %w", err)
	}
	if big != nil {
		c.log.Warn("journeys without CT entries: a node's CT table is too big to list",
			"node", big.node, "entries", big.entries, "most_listed", MaxCTList)
		return res, nil
	}
	if err := c.addCT(ctx, res.Report.Packets); err != nil {
		return res, fmt.Errorf("replay: %w", err)
	}
	return res, nil
}

// MaxCTList is the most entries a node's CT table may hold for Trace to
// list it into the journeys: a full default table (nodeapi.DefaultCTEntries)
// listed at once takes more memory than a 256 MiB guest has to spare.
const MaxCTList = 16384

// ctSize is a node's CT table's entry count.
type ctSize struct {
	node    string
	entries int
}

// bigCTTable returns the first node (in topology order) whose CT table
// holds more than MaxCTList entries, or nil.
func (c *Cluster) bigCTTable(ctx context.Context) (*ctSize, error) {
	for _, n := range c.Topology().Nodes {
		cl := c.clients[n.Name]
		if cl == nil {
			continue
		}
		st, err := cl.CTStats(ctx)
		if err != nil {
			return nil, err
		}
		if st.Entries > MaxCTList {
			return &ctSize{n.Name, st.Entries}, nil
		}
	}
	return nil, nil
}

// collector gathers what a replay's subscription sees: every observation
// with its frame's TCP segment, and when the last observation of the
// injected packets' addresses arrived.
type collector struct {
	// addrs are the injected packets' addresses (either way): only their
	// observations delay the settling, BGP keepalives and other pods'
	// traffic do not.
	addrs map[netip.Addr]bool
	// acks, when set, learns the live SYN-ACKs (TCPAckRewrite).
	acks *ackTracker

	// max caps seen; over counts the observations not kept.
	max int

	mu   sync.Mutex
	seen []journey.Sighting
	over int
	last time.Time
}

// newCollector collects the observations of plan's packets, keeping at
// most max (0: DefaultMaxObservations).
func newCollector(plan []Planned, max int) *collector {
	if max <= 0 {
		max = DefaultMaxObservations
	}
	col := &collector{addrs: map[netip.Addr]bool{}, last: time.Now(), max: max}
	for _, p := range plan {
		if p.Key.Src.IsValid() {
			col.addrs[p.Key.Src.Addr()], col.addrs[p.Key.Dst.Addr()] = true, true
		}
	}
	return col
}

// add is the subscription's callback.
func (col *collector) add(e Event) {
	if col.acks != nil && e.Pod != nil && e.Pod.Direction == nodeapi.PodIngress {
		col.acks.observe(e.Pod.Frame)
	}
	if col.acks != nil && e.Wire != nil {
		col.acks.observe(e.Wire.Frame)
	}
	obs := e.Observations()
	tcp, isTCP := journey.SegmentOf(e.frame())
	col.mu.Lock()
	defer col.mu.Unlock()
	for _, o := range obs {
		if len(col.seen) >= col.max {
			col.over++
			continue
		}
		col.seen = append(col.seen, journey.Sighting{Observation: o, TCP: tcp, HasTCP: isTCP})
	}
	for _, o := range obs {
		if o.HasKey && (col.addrs[o.Key.Src.Addr()] || col.addrs[o.Key.Dst.Addr()]) {
			col.last = time.Now()
			break
		}
	}
}

// touch restarts the settle time.
func (col *collector) touch() {
	col.mu.Lock()
	col.last = time.Now()
	col.mu.Unlock()
}

// quiet is how long no observation of the injected addresses arrived.
func (col *collector) quiet() time.Duration {
	col.mu.Lock()
	defer col.mu.Unlock()
	return time.Since(col.last)
}

// counts returns how many observations were kept and how many were not.
func (col *collector) counts() (kept, over int) {
	col.mu.Lock()
	defer col.mu.Unlock()
	return len(col.seen), col.over
}

// sightings returns what was collected.
func (col *collector) sightings() []journey.Sighting {
	col.mu.Lock()
	defer col.mu.Unlock()
	return col.seen
}

// settle waits until no observation arrived for the settle time, or the
// deadline.
func settle(ctx context.Context, opts ReplayOptions, col *collector) error {
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
		if col.quiet() >= settle || time.Now().After(end) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
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
