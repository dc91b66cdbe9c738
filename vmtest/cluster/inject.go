package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/hoplab/hoplab/internal/journey"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// Bounds of one pod-inject request: consecutive frames for one pod go in
// chunks of at most this many frames and bytes, so neither side holds a
// whole large capture in one message.
const (
	maxChunkFrames = 256
	maxChunkBytes  = 1 << 20
)

// chunkEnd returns the end of the chunk of plan starting at i: the frames
// for plan[i]'s pod that follow it, within maxChunkFrames and
// maxChunkBytes (always at least one frame).
func chunkEnd(plan []Planned, i int) int {
	j, size := i+1, len(plan[i].Data)
	for ; j < len(plan) && j-i < maxChunkFrames && plan[j].Point == plan[i].Point; j++ {
		if size += len(plan[j].Data); size > maxChunkBytes {
			break
		}
	}
	return j
}

// inject sends the frames in order; consecutive frames for the same pod go
// in pod-inject calls of bounded size (chunkEnd) with their gaps.
// opts.SuppressRST asks the pods to drop their kernels' RSTs on the
// injected flows, in filters of opts.MaxFlows flows. opts.Progress, when
// set, hears of every frame sent. It returns the packets sent, aligned
// with plan.
func (c *Cluster) inject(ctx context.Context, plan []Planned, acks *ackTracker, opts ReplayOptions) ([]journey.Injected, error) {
	injected := make([]journey.Injected, 0, len(plan))
	progress := func() {
		if opts.Progress != nil {
			opts.Progress(len(injected), len(plan))
		}
	}
	for i := 0; i < len(plan); {
		p := plan[i]
		if acks != nil {
			data, err := acks.sending(ctx, p.Index, p.Data)
			if err != nil {
				return nil, err
			}
			p.Data = data
		}
		if p.Point.Kind == AtNode || p.Point.Kind == AtRouter {
			if p.Gap > 0 {
				if err := sleep(ctx, p.Gap); err != nil {
					return nil, err
				}
			}
			now := time.Now()
			var err error
			if p.Point.Kind == AtNode {
				err = c.fabric.InjectToNode(p.Point.Node, p.Data)
			} else {
				err = c.fabric.InjectToRouter(p.Point.Node, p.Data)
			}
			if err != nil {
				return nil, fmt.Errorf("packet %d at %s: %w", p.Index, p.Point, err)
			}
			injected = append(injected, journey.Injected{Index: p.Index, Time: now, Key: p.Key})
			i++
			progress()
			continue
		}
		j := i + 1
		req := nodeapi.Inject{Pod: p.Point.Pod, SuppressRST: opts.SuppressRST, MaxFlows: opts.MaxFlows}
		if acks != nil {
			// One by one: the next frame may need an answer to this one.
			req.Frames, req.Gaps = [][]byte{p.Data}, []time.Duration{p.Gap}
		} else {
			j = chunkEnd(plan, i)
			req.Frames, req.Gaps = make([][]byte, 0, j-i), make([]time.Duration, 0, j-i)
			for k := i; k < j; k++ {
				req.Frames = append(req.Frames, plan[k].Data)
				req.Gaps = append(req.Gaps, plan[k].Gap)
			}
		}
		now := time.Now()
		if _, err := c.clients[p.Point.Node].Inject(ctx, req); err != nil {
			// The agent names the frame by its index in req ("frame 2").
			if j == i+1 {
				return nil, fmt.Errorf("packet %d at %s: %w", p.Index, p.Point, err)
			}
			return nil, fmt.Errorf("packets %d..%d at %s: %w", p.Index, plan[j-1].Index, p.Point, err)
		}
		var at time.Duration
		for k := i; k < j; k++ {
			at += plan[k].Gap
			// Host time of the send, as far as the host knows it.
			injected = append(injected, journey.Injected{Index: plan[k].Index, Time: now.Add(at), Key: plan[k].Key})
		}
		i = j
		progress()
	}
	return injected, nil
}

// endRSTSuppression ends the RST suppression of the pods plan injected
// from: an empty injection without SuppressRST removes a pod's filter. It
// runs even when the replay failed or was cancelled.
func (c *Cluster) endRSTSuppression(plan []Planned) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := map[InjectPoint]bool{}
	for _, p := range plan {
		if (p.Point.Kind != AtPod && p.Point.Kind != AtExternal) || done[p.Point] {
			continue
		}
		done[p.Point] = true
		if _, err := c.clients[p.Point.Node].Inject(ctx, nodeapi.Inject{Pod: p.Point.Pod}); err != nil {
			c.log.Warn("end rst suppression", "pod", p.Point.Pod, "err", err)
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
