package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/hoplab/hoplab/internal/journey"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// inject sends the frames in order; consecutive frames for the same pod go
// in one pod-inject call with their gaps. suppressRST asks the pods to drop
// their kernels' RSTs on the injected flows. It returns the packets sent,
// aligned with plan.
func (c *Cluster) inject(ctx context.Context, plan []Planned, acks *ackTracker, suppressRST bool) ([]journey.Injected, error) {
	var injected []journey.Injected
	for i := 0; i < len(plan); {
		p := plan[i]
		if acks != nil {
			data, err := acks.sending(ctx, p.Index, p.Data)
			if err != nil {
				return nil, err
			}
			p.Data = data
		}
		if p.Point.Kind != AtPod {
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
			continue
		}
		j := i
		req := nodeapi.Inject{Pod: p.Point.Pod, SuppressRST: suppressRST}
		if acks != nil {
			// One by one: the next frame may need an answer to this one.
			req.Frames, req.Gaps, j = [][]byte{p.Data}, []time.Duration{p.Gap}, i+1
		} else {
			for ; j < len(plan) && plan[j].Point == p.Point; j++ {
				req.Frames = append(req.Frames, plan[j].Data)
				req.Gaps = append(req.Gaps, plan[j].Gap)
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
		if p.Point.Kind != AtPod || done[p.Point] {
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
