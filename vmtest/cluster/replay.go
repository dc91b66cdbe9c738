package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sort"
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
)

// ErrNoFrames is returned by Replay for an empty capture.
var ErrNoFrames = errors.New("no frames to replay")

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
// one (a SYN-ACK, an echo reply, a RST).
type Reply struct {
	// InReplyTo is the index of the injected packet answered: the last one
	// whose flow, at some hop, is the reply's flow reversed.
	InReplyTo int `json:"in_reply_to"`
	// Journey is the reply's journey; its Index is the reply's ordinal.
	Journey journey.Packet `json:"journey"`
}

// Trace is Replay that also returns the replies' journeys. Replays of one
// cluster run one at a time (the same capture replayed twice at once
// would have its observations claimed by either).
func (c *Cluster) Trace(ctx context.Context, frames []Frame, opts ReplayOptions) (Result, error) {
	c.replayMu.Lock()
	defer c.replayMu.Unlock()
	res := Result{Report: journey.Report{Kernel: c.kernel}, Replies: []Reply{}}
	plan, err := c.plan(frames, opts)
	if err != nil {
		return res, err
	}
	var mu sync.Mutex
	var obs []journey.Observation
	var segs []tcpSeq
	var acks *ackTracker
	if opts.TCPAckRewrite {
		acks = newAckTracker(plan)
	}
	// Only observations of the injected packets' addresses (either way)
	// delay the settling: BGP keepalives and other pods' traffic do not.
	addrs := map[netip.Addr]bool{}
	for _, p := range plan {
		if p.key.Src.IsValid() {
			addrs[p.key.Src.Addr()], addrs[p.key.Dst.Addr()] = true, true
		}
	}
	last := time.Now()
	stop, err := c.SubscribeContext(ctx, func(e Event) {
		if acks != nil && e.Pod != nil && e.Pod.Direction == nodeapi.PodIngress {
			acks.observe(e.Pod.Frame)
		}
		if acks != nil && e.Wire != nil {
			acks.observe(e.Wire.Frame)
		}
		o := e.Observations()
		mu.Lock()
		seg := tcpSeqOf(e.frame())
		for range o {
			segs = append(segs, seg)
		}
		obs = append(obs, o...)
		for _, x := range o {
			if x.HasKey && (addrs[x.Key.Src.Addr()] || addrs[x.Key.Dst.Addr()]) {
				last = time.Now()
				break
			}
		}
		mu.Unlock()
	})
	if err != nil {
		return res, fmt.Errorf("replay: %w", err)
	}
	defer stop()

	if opts.SuppressRST {
		defer c.endRSTSuppression(plan)
	}
	injected, err := c.inject(ctx, plan, acks, opts.SuppressRST)
	if err != nil {
		return res, fmt.Errorf("replay: %w", err)
	}
	mu.Lock()
	last = time.Now() // the settle time counts from the last send at least
	mu.Unlock()
	if err := c.settle(ctx, opts, &mu, &last); err != nil {
		return res, fmt.Errorf("replay: %w", err)
	}
	stop()
	mu.Lock()
	all := obs
	mu.Unlock()
	var unmatched []journey.Observation
	res.Report.Packets, unmatched = journey.Merge(injected, all)
	for i := range res.Report.Packets {
		if p := plan[i].point; p.Kind == AtRouter {
			injectedFirst(&res.Report.Packets[i], p.Node)
		}
	}
	sent := make([]tcpSeq, len(plan))
	for i, p := range plan {
		sent[i] = tcpSeqOf(p.data)
	}
	mu.Lock()
	allSegs := segs
	mu.Unlock()
	res.Replies = replies(res.Report.Packets, sent, unmatched, alignSegs(all, allSegs, unmatched))
	if err := c.addCT(ctx, res.Report.Packets); err != nil {
		return res, fmt.Errorf("replay: %w", err)
	}
	return res, nil
}

// tcpSeq is what a TCP segment says about sequence space: the sequence
// number after it (seq + payload, +1 for SYN and FIN) and its
// acknowledgement.
type tcpSeq struct {
	ok       bool   // a TCP segment
	end      uint32 // sequence number after the segment
	consumes bool   // SYN, FIN or payload
	ack      uint32
	hasACK   bool
	flags    uint8
}

// tcpSeqOf reads an Ethernet + IPv4 + TCP frame's sequence fields.
func tcpSeqOf(frame []byte) tcpSeq {
	if len(frame) < 34 || frame[12] != 0x08 || frame[13] != 0x00 || frame[14+9] != 6 {
		return tcpSeq{}
	}
	ip := frame[14:]
	ihl := int(ip[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(ip[2:4]))
	if ihl < 20 || len(ip) < ihl+20 || total < ihl+20 {
		return tcpSeq{}
	}
	tcp := ip[ihl:]
	doff := int(tcp[12]>>4) * 4
	flags := tcp[13]
	payload := total - ihl - doff
	if payload < 0 {
		payload = 0
	}
	seq := binary.BigEndian.Uint32(tcp[4:8])
	s := tcpSeq{ok: true, ack: binary.BigEndian.Uint32(tcp[8:12]), hasACK: flags&0x10 != 0, flags: flags}
	n := uint32(payload)
	if flags&0x02 != 0 { // SYN
		n++
	}
	if flags&0x01 != 0 { // FIN
		n++
	}
	s.end, s.consumes = seq+n, n > 0
	return s
}

// fingerprint tells apart the packets of one replay that share an IPv4 ID
// (kernels send SYN-ACKs, RSTs and pure ACKs with ID 0): their TCP
// sequence fields, which NAT leaves alone.
type fingerprint struct {
	proto uint8
	id    uint16
	seg   tcpSeq
}

// replies builds the journeys of the packets pods sent in response to the
// injected ones, from the observations no injected packet claimed (segs
// holds the TCP sequence fields of each one's frame): every pod-egress frame
// starts a reply, the other observations with the same IPv4 ID and TCP
// sequence fields are merged into them like into injected packets
// (journey.Merge), and a reply is kept when its flow reversed is the flow of
// an injected packet at one of its hops. sent holds the injected packets'
// TCP sequence fields; a TCP reply answers the packet whose sequence space
// it acknowledges.
func replies(pkts []journey.Packet, sent []tcpSeq, unmatched []journey.Observation, segs []tcpSeq) []Reply {
	type group struct {
		roots []journey.Observation
		rsegs []tcpSeq
		obs   []journey.Observation
	}
	groups := map[fingerprint]*group{}
	var order []fingerprint
	for i, o := range unmatched {
		if !o.HasKey {
			continue
		}
		fp := fingerprint{o.Key.Proto, o.Key.IPID, segs[i]}
		g := groups[fp]
		if g == nil {
			g = &group{}
			groups[fp] = g
			order = append(order, fp)
		}
		g.obs = append(g.obs, o)
		if o.Hop.Point == journey.PodEgress {
			g.roots = append(g.roots, o)
			g.rsegs = append(g.rsegs, segs[i])
		}
	}
	type reply struct {
		root journey.Observation
		seg  tcpSeq
		j    journey.Packet
	}
	var all []reply
	for _, fp := range order {
		g := groups[fp]
		inj := make([]journey.Injected, len(g.roots))
		for k, r := range g.roots {
			inj[k] = journey.Injected{Index: k, Time: r.Time, Key: r.Key}
		}
		js, _ := journey.Merge(inj, g.obs)
		for k, j := range js {
			all = append(all, reply{g.roots[k], g.rsegs[k], j})
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].root.Time.Before(all[j].root.Time) })
	out := []Reply{}
	done := map[int]bool{}
	for _, r := range all {
		to := answered(pkts, sent, r.root.Hop, r.seg, done)
		if to < 0 {
			continue
		}
		done[to] = true
		r.j.Index = len(out)
		out = append(out, Reply{InReplyTo: to, Journey: r.j})
	}
	return out
}

// alignSegs returns, for each unmatched observation (a subsequence of obs,
// in order, as journey.Merge returns it), the sequence fields recorded for
// it in segs (aligned with obs).
func alignSegs(obs []journey.Observation, segs []tcpSeq, unmatched []journey.Observation) []tcpSeq {
	out := make([]tcpSeq, len(unmatched))
	j := 0
	for i := 0; i < len(obs) && j < len(unmatched); i++ {
		if obs[i] == unmatched[j] {
			out[j] = segs[i]
			j++
		}
	}
	return out
}

// answered returns the index of the injected packet the reply with first
// hop h answers, or -1: among the packets with a hop whose flow is h's
// reversed, for TCP the one whose sequence space the reply acknowledges
// (preferring segments that consume sequence space), else the first not
// yet answered, else the last.
func answered(pkts []journey.Packet, sent []tcpSeq, h journey.Hop, reply tcpSeq, done map[int]bool) int {
	var match []int
	for i, p := range pkts {
		for _, ph := range p.Hops {
			if ph.Proto == h.Proto && ph.IPSrc == h.IPDst && ph.IPDst == h.IPSrc && ph.Sport == h.Dport && ph.Dport == h.Sport {
				match = append(match, i)
				break
			}
		}
	}
	if len(match) == 0 {
		return -1
	}
	if reply.ok && reply.hasACK {
		best := -1
		for _, i := range match {
			if i < len(sent) && sent[i].ok && sent[i].end == reply.ack {
				if sent[i].consumes {
					return i
				}
				if best < 0 {
					best = i
				}
			}
		}
		if best >= 0 {
			return best
		}
	}
	for _, i := range match {
		if !done[i] {
			return i
		}
	}
	return match[len(match)-1]
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
// in one pod-inject call with their gaps. suppressRST asks the pods to drop
// their kernels' RSTs on the injected flows.
func (c *Cluster) inject(ctx context.Context, plan []planned, acks *ackTracker, suppressRST bool) ([]journey.Injected, error) {
	var injected []journey.Injected
	for i := 0; i < len(plan); {
		p := plan[i]
		if acks != nil {
			data, err := acks.sending(ctx, p.index, p.data)
			if err != nil {
				return nil, err
			}
			p.data = data
		}
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
		req := nodeapi.Inject{Pod: p.point.Pod, SuppressRST: suppressRST}
		if acks != nil {
			// One by one: the next frame may need an answer to this one.
			req.Frames, req.Gaps, j = [][]byte{p.data}, []time.Duration{p.gap}, i+1
		} else {
			for ; j < len(plan) && plan[j].point == p.point; j++ {
				req.Frames = append(req.Frames, plan[j].data)
				req.Gaps = append(req.Gaps, plan[j].gap)
			}
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

// endRSTSuppression ends the RST suppression of the pods plan injected
// from: an empty injection without SuppressRST removes a pod's filter. It
// runs even when the replay failed or was cancelled.
func (c *Cluster) endRSTSuppression(plan []planned) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := map[InjectPoint]bool{}
	for _, p := range plan {
		if p.point.Kind != AtPod || done[p.point] {
			continue
		}
		done[p.point] = true
		if _, err := c.clients[p.point.Node].Inject(ctx, nodeapi.Inject{Pod: p.point.Pod}); err != nil {
			c.log.Warn("end rst suppression", "pod", p.point.Pod, "err", err)
		}
	}
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
