package cluster

import (
	"fmt"
	"time"

	"github.com/hoplab/hoplab/internal/journey"
	"github.com/hoplab/hoplab/topologies"
)

// Planned is a frame as Replay injects it: Plan's result for one Frame.
type Planned struct {
	// Index is the frame's index in the frames planned.
	Index int
	// Point is where it enters: the frame's own point, else DefaultPoint's,
	// else ReplayOptions.Fallback.
	Point InjectPoint
	// Fallback reports that Point is ReplayOptions.Fallback: DefaultPoint
	// could not place the frame.
	Fallback bool
	// Data is the frame as injected: its Ethernet addresses rewritten to
	// what Point really sends (RewriteL2), unless ReplayOptions.KeepL2.
	Data []byte
	// Gap is the pause before it: Frame.Gap with ReplayOptions.Timing,
	// else 0.
	Gap time.Duration
	// Key is its flow key (journey.KeyFromFrame).
	Key journey.FlowKey
}

// PlanError is Plan's error about one frame.
type PlanError struct {
	// Index is the frame's index in the frames planned.
	Index int
	// Err is what is wrong with it; it matches ErrBadPoint when the frame
	// has no point.
	Err error
}

func (e *PlanError) Error() string { return fmt.Sprintf("packet %d: %v", e.Index, e.Err) }

// Unwrap returns e.Err.
func (e *PlanError) Unwrap() error { return e.Err }

// Plan prepares frames for injection into a cluster running t, exactly as
// Replay does before it injects: each frame's point (its own, else
// DefaultPoint's, else opts.Fallback when that is not the zero point), its
// Ethernet addresses (RewriteL2 unless opts.KeepL2) and its gap (kept with
// opts.Timing). It needs no VM, so a capture can be checked before a
// cluster boots. It returns ErrNoFrames for no frames, else a *PlanError
// naming the first frame that cannot be planned: one without a point, at a
// point that is not t's (see ParsePoint), or without an Ethernet header.
func Plan(t *topologies.Topology, frames []Frame, opts ReplayOptions) ([]Planned, error) {
	if len(frames) == 0 {
		return nil, ErrNoFrames
	}
	out := make([]Planned, len(frames))
	for i, f := range frames {
		p, fallback := f.Point, false
		if p.IsZero() {
			var err error
			if p, err = DefaultPoint(t, f.Data); err != nil {
				if opts.Fallback.IsZero() {
					return nil, &PlanError{Index: i, Err: err}
				}
				p, fallback = opts.Fallback, true
			}
		}
		if err := checkPoint(t, p); err != nil {
			return nil, &PlanError{Index: i, Err: err}
		}
		data := f.Data
		if !opts.KeepL2 {
			var err error
			if data, err = RewriteL2(t, p, f.Data); err != nil {
				return nil, &PlanError{Index: i, Err: err}
			}
		} else if len(data) < 14 {
			return nil, &PlanError{Index: i, Err: fmt.Errorf("%d bytes have no Ethernet header", len(data))}
		}
		k, _ := journey.KeyFromFrame(data)
		gap := time.Duration(0)
		if opts.Timing {
			gap = f.Gap
		}
		out[i] = Planned{Index: i, Point: p, Fallback: fallback, Data: data, Gap: gap, Key: k}
	}
	return out, nil
}

// FallbackPoint is where `hoplab replay` injects the frames DefaultPoint
// cannot place (ReplayOptions.Fallback): the router's port facing the
// topology's first node; the zero point when the topology has no nodes.
func FallbackPoint(t *topologies.Topology) InjectPoint {
	if len(t.Nodes) == 0 {
		return InjectPoint{}
	}
	return InjectPoint{Kind: AtRouter, Node: t.Nodes[0].Name, Router: t.Router.Name}
}

// Gaps returns the Frame.Gap of each of a capture's frames from the times
// they were captured: the time since the previous frame was captured, 0
// for the first frame and for one captured no later than the previous.
func Gaps(times []time.Time) []time.Duration {
	out := make([]time.Duration, len(times))
	for i := 1; i < len(times); i++ {
		if times[i].After(times[i-1]) {
			out[i] = times[i].Sub(times[i-1])
		}
	}
	return out
}
