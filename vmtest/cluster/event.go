package cluster

import (
	"fmt"
	"time"

	"github.com/hoplab/hoplab/internal/journey"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// Event kinds.
const (
	// EventDatapath is a node's datapath trace or drop event.
	EventDatapath = "datapath"
	// EventPod is a frame on a pod's eth0.
	EventPod = "pod"
	// EventWire is a frame on a harness wire between a node and the ToR.
	EventWire = "wire"
	// EventL7 is a record of a node's L7 proxy.
	EventL7 = "l7"
)

// Event is one observation of the cluster, as Subscribe delivers it.
// Exactly one of Datapath, Pod, Wire and L7 is set, as Kind says.
type Event struct {
	// Kind is EventDatapath, EventPod, EventWire or EventL7.
	Kind string `json:"kind"`
	// Time is when the host received the event (guest clocks differ from
	// the host's; the guest's time is in Datapath.Time and Pod.Time).
	Time time.Time `json:"time"`
	// Datapath is the datapath event (EventDatapath).
	Datapath *nodeapi.DatapathEvent `json:"datapath,omitempty"`
	// Pod is the pod's frame (EventPod).
	Pod *nodeapi.PodPacket `json:"pod,omitempty"`
	// Wire is the wire's frame (EventWire).
	Wire *WireFrame `json:"wire,omitempty"`
	// L7 is the proxy's record (EventL7).
	L7 *nodeapi.L7Event `json:"l7,omitempty"`
}

// WireFrame is a frame seen on a harness wire.
type WireFrame struct {
	// Link is the wire's name ("node1-0").
	Link string `json:"link"`
	// Node is the node at the wire's A side; Router the ToR at its B side,
	// and RouterPort the ToR's bond toward the node.
	Node       string `json:"node"`
	Router     string `json:"router"`
	RouterPort string `json:"router_port"`
	// FromRouter is true for frames the ToR sent toward the node.
	FromRouter bool `json:"from_router"`
	// Injected is true for frames the harness injected.
	Injected bool `json:"injected,omitempty"`
	// Dropped is true for frames the wire dropped (cut).
	Dropped bool `json:"dropped,omitempty"`
	// Frame is the Ethernet frame.
	Frame []byte `json:"frame"`
}

// Node is the node or router the event belongs to (for wire frames: the
// node whose uplink it is).
func (e Event) Node() string {
	switch {
	case e.Datapath != nil:
		return e.Datapath.Node
	case e.Pod != nil:
		return e.Pod.Node
	case e.Wire != nil:
		return e.Wire.Node
	case e.L7 != nil:
		return e.L7.Node
	}
	return ""
}

// frame is the event's Ethernet frame.
func (e Event) frame() []byte {
	switch {
	case e.Datapath != nil:
		return e.Datapath.Frame
	case e.Pod != nil:
		return e.Pod.Frame
	case e.Wire != nil:
		return e.Wire.Frame
	}
	return nil
}

// Observations converts the event into journey observations:
//
//   - a datapath event is a hop at its node, point (in the vocabulary:
//     journey.NewObservation normalises Cilium's names) and device; a drop
//     event's hop is DROPPED with its reason;
//   - a pod frame is the pod's pod-egress or pod-ingress hop on
//     "<pod>:eth0"; an external host's frame is its "external" hop, with
//     the host as the node (delivered to it when it receives);
//   - a wire frame is the node's "wire" hop (device: the link's name) and,
//     when the ToR forwarded it toward the node (not injected), also the
//     ToR's "router" hop (device: the ToR's bond toward the node).
//   - an L7 response record is the proxy hop of the node's proxy
//     (device "proxy:PORT") on the flow from the client to the original
//     destination, with the request's method and path, the status, the
//     rule, and the verdict (DROPPED "Policy denied" for a denied request,
//     DROPPED with the error for a failed one); request records give
//     nothing (the response completes them).
//
// Dropped wire frames give nothing.
func (e Event) Observations() []journey.Observation {
	switch {
	case e.Datapath != nil:
		d := e.Datapath
		o := journey.NewObservation("datapath:"+d.Node, e.Time, d.Node, journey.Point(d.Point), d.Device, d.Frame)
		if d.Type == nodeapi.EventDrop {
			o.Hop.Verdict, o.Hop.DropReason = journey.Dropped, d.Reason
		}
		return []journey.Observation{o}
	case e.Pod != nil:
		p := e.Pod
		if p.External {
			// The host's own hop: the node is the host itself (it lives
			// on the router's VM, but sits beyond the router).
			o := journey.NewObservation("external:"+p.Pod, e.Time, p.Pod, journey.External, p.Pod+":eth0", p.Frame)
			if p.Direction == nodeapi.PodIngress {
				o.Pod = p.Pod
			}
			return []journey.Observation{o}
		}
		point := journey.PodIngress
		if p.Direction == nodeapi.PodEgress {
			point = journey.PodEgress
		}
		o := journey.NewObservation("pod:"+p.Pod, e.Time, p.Node, point, p.Pod+":eth0", p.Frame)
		if point == journey.PodIngress {
			o.Pod = p.Pod
		}
		return []journey.Observation{o}
	case e.Wire != nil:
		w := e.Wire
		if w.Dropped {
			return nil
		}
		var out []journey.Observation
		if w.FromRouter && !w.Injected {
			out = append(out, journey.NewObservation("link:"+w.Link, e.Time, w.Router, journey.Router, w.RouterPort, w.Frame))
		}
		return append(out, journey.NewObservation("link:"+w.Link, e.Time, w.Node, journey.Wire, w.Link, w.Frame))
	case e.L7 != nil:
		l := e.L7
		if l.Type != nodeapi.L7Response {
			return nil
		}
		verdict, reason := journey.Forwarded, ""
		if l.Verdict != nodeapi.L7Forwarded {
			verdict, reason = journey.Dropped, l.Reason
		}
		return []journey.Observation{journey.NewL7Observation("proxy:"+l.Node, e.Time, l.Node, fmt.Sprintf("proxy:%d", l.ProxyPort),
			l.Src, l.Dst, verdict, reason, journey.L7{Method: l.Method, Path: l.Path, Status: l.Status, Rule: l.Rule})}
	}
	return nil
}
