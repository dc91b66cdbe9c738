package lab

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hoplab/hoplab/internal/journey"
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

// Trace is cluster.Cluster.Trace (Replay with the replies' journeys), with
// the result written to the artifacts directory.
func (l *Lab) Trace(ctx context.Context, frames []cluster.Frame, opts cluster.ReplayOptions) (cluster.Result, error) {
	res, err := l.Cluster.Trace(ctx, frames, opts)
	if err != nil {
		return res, fmt.Errorf("lab: %w", err) // "replay: ..."
	}
	l.save("trace", res)
	return res, nil
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
