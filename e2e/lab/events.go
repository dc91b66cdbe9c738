package lab

import (
	"github.com/hoplab/hoplab/internal/journey"
	"github.com/hoplab/hoplab/vmtest/cluster"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// DatapathEvents returns the datapath events among events that node emitted
// at point for packets of flow (journey.FlowKey without the IPv4 ID: proto,
// source and destination as the event's frame carries them), in arrival
// order; flow.IPID is compared unless it is 0. A zero flow selects every
// packet.
func DatapathEvents(events []cluster.Event, node string, point journey.Point, flow journey.FlowKey) []nodeapi.DatapathEvent {
	var out []nodeapi.DatapathEvent
	for _, e := range events {
		d := e.Datapath
		if e.Kind != cluster.EventDatapath || d == nil || d.Node != node {
			continue
		}
		if p, ok := journey.Canonical(d.Point); !ok || p != point {
			continue
		}
		if flow != (journey.FlowKey{}) {
			k, ok := journey.KeyFromFrame(d.Frame)
			if !ok || !sameFlow(k, flow) {
				continue
			}
		}
		out = append(out, *d)
	}
	return out
}

// PodFrames returns the frames pod sent (nodeapi.PodEgress) or received
// (nodeapi.PodIngress) among events whose flow is flow (as in
// DatapathEvents), in arrival order.
func PodFrames(events []cluster.Event, pod, direction string, flow journey.FlowKey) [][]byte {
	var out [][]byte
	for _, e := range events {
		p := e.Pod
		if e.Kind != cluster.EventPod || p == nil || p.Pod != pod || p.Direction != direction {
			continue
		}
		if flow != (journey.FlowKey{}) {
			k, ok := journey.KeyFromFrame(p.Frame)
			if !ok || !sameFlow(k, flow) {
				continue
			}
		}
		out = append(out, p.Frame)
	}
	return out
}

// sameFlow compares an observed key with a wanted flow, the IPv4 ID only
// when the wanted one is not 0.
func sameFlow(k, want journey.FlowKey) bool {
	return k.Proto == want.Proto && k.Src == want.Src && k.Dst == want.Dst && (want.IPID == 0 || k.IPID == want.IPID)
}
