package lab

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hoplab/hoplab/tools/journey"
	"github.com/hoplab/hoplab/vmtest/cluster"
)

// replyQuiet is how long no observation must arrive after a replay before
// the replies are complete; replyDeadline bounds that wait.
const (
	replyQuiet    = 400 * time.Millisecond
	replyDeadline = 5 * time.Second
)

// Observe records every observation of the cluster (cluster.Event) while
// fn runs and until none arrived for a moment after it returned (at most a
// few seconds), and returns them in arrival order.
func (l *Lab) Observe(ctx context.Context, fn func() error) ([]cluster.Event, error) {
	var (
		mu     sync.Mutex
		events []cluster.Event
		last   = time.Now()
	)
	stop, err := l.Cluster.SubscribeContext(ctx, func(e cluster.Event) {
		mu.Lock()
		events = append(events, e)
		last = time.Now()
		mu.Unlock()
	})
	if err != nil {
		return nil, fmt.Errorf("lab: subscribe: %w", err)
	}
	defer stop()
	if err := fn(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(replyDeadline)
	for time.Now().Before(deadline) {
		mu.Lock()
		quiet := time.Since(last) >= replyQuiet
		mu.Unlock()
		if quiet {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	stop()
	mu.Lock()
	defer mu.Unlock()
	return slices.Clone(events), nil
}

// ReplayWithReplies is Replay that also returns the journeys of the packets
// the pods sent while the frames were replayed (SYN-ACKs, echo replies,
// RSTs, ...), in the order the pods sent them (see Replies), and every
// observation made meanwhile.
func (l *Lab) ReplayWithReplies(ctx context.Context, frames []cluster.Frame, opts cluster.ReplayOptions) (journey.Report, []journey.Packet, []cluster.Event, error) {
	var rep journey.Report
	events, err := l.Observe(ctx, func() error {
		var err error
		rep, err = l.Replay(ctx, frames, opts)
		return err
	})
	if err != nil {
		return rep, nil, nil, err
	}
	var obs []journey.Observation
	for _, e := range events {
		obs = append(obs, e.Observations()...)
	}
	replies := Replies(frames, obs)
	l.save("replies", replies)
	return rep, replies, events, nil
}

// Trace is cluster.Cluster.Trace (Replay with the replies' journeys), with
// the result written to the artifacts directory.
func (l *Lab) Trace(ctx context.Context, frames []cluster.Frame, opts cluster.ReplayOptions) (cluster.Result, error) {
	res, err := l.Cluster.Trace(ctx, frames, opts)
	if err != nil {
		return res, fmt.Errorf("lab: trace: %w", err)
	}
	l.save("trace", res)
	return res, nil
}

// Replies returns the journeys of the packets pods sent among obs that are
// not the injected frames: every pod-egress observation no injected frame
// claims starts a reply, and the other unclaimed observations are merged
// into those replies' journeys (journey.Merge). Replies that share their
// flow key, IPv4 ID included (a kernel's SYN-ACKs and RSTs often carry ID
// 0), are told apart by order: the k-th sighting at each point belongs to
// the k-th of them.
func Replies(frames []cluster.Frame, obs []journey.Observation) []journey.Packet {
	var injected []journey.Injected
	for i, f := range frames {
		if k, ok := journey.KeyFromFrame(f.Data); ok {
			injected = append(injected, journey.Injected{Index: i, Key: k})
		}
	}
	_, rest := journey.Merge(injected, obs)
	sort.SliceStable(rest, func(i, j int) bool { return rest[i].Time.Before(rest[j].Time) })
	var sent []journey.Injected
	seen := map[journey.FlowKey]bool{}
	for _, o := range rest {
		if o.Hop.Point == journey.PodEgress && o.HasKey && !seen[o.Key] {
			seen[o.Key] = true
			sent = append(sent, journey.Injected{Index: len(sent), Time: o.Time, Key: o.Key})
		}
	}
	if len(sent) == 0 {
		return nil
	}
	merged, _ := journey.Merge(sent, rest)
	var out []journey.Packet
	for _, m := range merged {
		out = append(out, split(m)...)
	}
	for i := range out {
		out[i].Index = i
	}
	return out
}

// split separates a journey holding several packets of one flow key into
// one journey per packet sent (pod-egress hop): the k-th hop at each
// node/point/device goes to the k-th packet.
func split(m journey.Packet) []journey.Packet {
	n := 0
	for _, h := range m.Hops {
		if h.Point == journey.PodEgress {
			n++
		}
	}
	if n <= 1 {
		return []journey.Packet{m}
	}
	out := make([]journey.Packet, n)
	count := map[[3]string]int{}
	for _, h := range m.Hops {
		at := [3]string{h.Node, string(h.Point), h.Device}
		k := count[at]
		count[at]++
		if k < n {
			out[k].Hops = append(out[k].Hops, h)
		}
	}
	for i := range out {
		out[i].Verdict = journey.Lost
		for _, h := range out[i].Hops {
			switch {
			case h.Verdict == journey.Dropped && out[i].Verdict != journey.Dropped:
				out[i].Verdict, out[i].DropReason, out[i].DeliveredTo = journey.Dropped, h.DropReason, ""
			case h.Point == journey.PodIngress && out[i].Verdict == journey.Lost:
				out[i].Verdict = journey.Delivered
				out[i].DeliveredTo, _, _ = strings.Cut(h.Device, ":")
			}
		}
	}
	return out
}

// MatchReply returns the reply among replies that matches want
// (journey.Diff), or else the one closest to it (fewest differences), so
// that the caller's EqualJourney assertion shows the nearest miss; ok is
// false when replies is empty.
func MatchReply(want journey.Packet, replies []journey.Packet) (best journey.Packet, ok bool) {
	n := -1
	for _, r := range replies {
		d := journey.Diff(want, r)
		if d.Equal() {
			return r, true
		}
		if n < 0 || len(d.Diffs) < n {
			best, n = r, len(d.Diffs)
		}
	}
	return best, n >= 0
}
