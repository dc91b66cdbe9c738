package cluster

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/hoplab/hoplab/internal/journey"
	"github.com/hoplab/hoplab/topologies"
	"github.com/hoplab/hoplab/vmtest"
)

// Injection point kinds.
const (
	// AtPod sends the frame out of a pod's eth0, as the pod would.
	AtPod = "pod"
	// AtNode delivers the frame to a node's bond0 from the wire, as the
	// ToR would send it.
	AtNode = "node"
	// AtRouter delivers the frame to the ToR on its port facing a node, as
	// that node would send it.
	AtRouter = "router"
	// AtExternal sends the frame out of an external host's eth0 (a host
	// behind the ToR), as that host would.
	AtExternal = "external"
)

// InjectPoint is where a frame enters the cluster. The zero value means
// "the default point" ([DefaultPoint]).
type InjectPoint struct {
	// Kind is AtPod, AtNode, AtRouter or AtExternal.
	Kind string `json:"kind"`
	// Pod is the injecting pod (AtPod) or external host (AtExternal).
	Pod string `json:"pod,omitempty"`
	// Node is the pod's node (AtPod), the receiving node (AtNode), or the
	// node whose uplink the frame arrives on at the ToR (AtRouter).
	Node string `json:"node"`
	// Router is the router's name (AtRouter, AtExternal; for AtExternal it
	// is also Node: the VM the external host lives on).
	Router string `json:"router,omitempty"`
}

// IsZero reports whether p is the zero point (use the default).
func (p InjectPoint) IsZero() bool { return p == InjectPoint{} }

// String renders the point as ParsePoint takes it: "pod1", "node2:bond0",
// "tor:node2".
func (p InjectPoint) String() string {
	switch p.Kind {
	case AtPod, AtExternal:
		return p.Pod
	case AtNode:
		return p.Node + ":" + vmtest.NodeBond
	case AtRouter:
		return p.Router + ":" + p.Node
	}
	return ""
}

// ErrBadPoint is matched by the errors of ParsePoint and DefaultPoint.
var ErrBadPoint = errors.New("bad injection point")

// ParsePoint parses an injection point of `hoplab replay --inject`: a pod
// name ("pod1"), a node's bond ("node2:bond0"), or the router's port facing
// a node ("tor:node2", with the topology's router name).
func ParsePoint(t *topologies.Topology, s string) (InjectPoint, error) {
	a, b, colon := strings.Cut(s, ":")
	switch {
	case !colon:
		if p := t.Pod(s); p != nil {
			return InjectPoint{Kind: AtPod, Pod: p.Name, Node: p.Node}, nil
		}
		if e := t.External(s); e != nil {
			return externalPoint(t, e), nil
		}
		if t.Node(s) != nil {
			return InjectPoint{}, fmt.Errorf("%w %q: that is a node; say %s:%s", ErrBadPoint, s, s, vmtest.NodeBond)
		}
		if len(t.Externals) > 0 {
			var ext []string
			for _, e := range t.Externals {
				ext = append(ext, e.Name)
			}
			return InjectPoint{}, fmt.Errorf("%w %q: no such pod or external host in topology %s (pods: %s; externals: %s)", ErrBadPoint, s, t.Name, podNames(t), strings.Join(ext, ", "))
		}
		return InjectPoint{}, fmt.Errorf("%w %q: no such pod in topology %s (pods: %s)", ErrBadPoint, s, t.Name, podNames(t))
	case a == t.Router.Name:
		if t.Node(b) == nil {
			return InjectPoint{}, fmt.Errorf("%w %q: the router has no port toward %q (nodes: %s)", ErrBadPoint, s, b, strings.Join(nodeNames(t), ", "))
		}
		return InjectPoint{Kind: AtRouter, Node: b, Router: t.Router.Name}, nil
	case t.Node(a) != nil:
		if b != vmtest.NodeBond {
			return InjectPoint{}, fmt.Errorf("%w %q: frames enter a node only on %s", ErrBadPoint, s, vmtest.NodeBond)
		}
		return InjectPoint{Kind: AtNode, Node: a}, nil
	}
	return InjectPoint{}, fmt.Errorf("%w %q: want POD, NODE:%s or %s:NODE", ErrBadPoint, s, vmtest.NodeBond, t.Router.Name)
}

func podNames(t *topologies.Topology) string {
	var out []string
	for _, p := range t.Pods {
		out = append(out, p.Name)
	}
	return strings.Join(out, ", ")
}

// externalPoint is the injection point of external host e.
func externalPoint(t *topologies.Topology, e *topologies.External) InjectPoint {
	return InjectPoint{Kind: AtExternal, Pod: e.Name, Node: t.Router.Name, Router: t.Router.Name}
}

// DefaultPoint is where a frame enters without --inject (DESIGN.md): at the
// pod or external host owning its source IP, else at the ToR port facing the node that owns
// its destination (a pod's IP, a node's PodCIDR or uplink address). A
// VXLAN frame (replay --keep-outer) travels between nodes: it enters at the
// ToR port facing the node owning its outer destination.
func DefaultPoint(t *topologies.Topology, frame []byte) (InjectPoint, error) {
	if o := journey.HopFromPacket("", "", "", frame).Outer; o != nil {
		dst, err := netip.ParseAddr(o.IPDst)
		if n := owner(t, dst); err == nil && n != "" {
			return InjectPoint{Kind: AtRouter, Node: n, Router: t.Router.Name}, nil
		}
		return InjectPoint{}, fmt.Errorf("%w: VXLAN to %s, which is no node's address; name the point", ErrBadPoint, o.IPDst)
	}
	k, ok := journey.KeyFromFrame(frame)
	if !ok {
		return InjectPoint{}, fmt.Errorf("%w: not an IPv4 frame; name the point (POD, NODE:%s or %s:NODE)", ErrBadPoint, vmtest.NodeBond, t.Router.Name)
	}
	src, dst := k.Src.Addr(), k.Dst.Addr()
	if p := t.PodByIP(src); p != nil {
		return InjectPoint{Kind: AtPod, Pod: p.Name, Node: p.Node}, nil
	}
	if e := t.ExternalByIP(src); e != nil {
		return externalPoint(t, e), nil
	}
	if n := owner(t, dst); n != "" {
		return InjectPoint{Kind: AtRouter, Node: n, Router: t.Router.Name}, nil
	}
	return InjectPoint{}, fmt.Errorf("%w: neither %s is a pod's nor %s a node's address; name the point", ErrBadPoint, src, dst)
}

// owner is the node owning address a: a pod's node, the node whose PodCIDR
// holds it, or the node with that uplink address.
func owner(t *topologies.Topology, a netip.Addr) string {
	if n := podNode(t, a); n != "" {
		return n
	}
	for _, n := range t.Nodes {
		if n.PodCIDR.Contains(a) || n.Uplink.Address.Addr() == a {
			return n.Name
		}
	}
	return ""
}

// checkPoint reports whether p is a point of t as ParsePoint makes them:
// its pod, node and router exist and agree. Plan checks every frame's
// point with it, so that a point the cluster cannot inject at (a pod on
// another node, another router, an unknown kind) fails before anything is
// sent, with KeepL2 too.
func checkPoint(t *topologies.Topology, p InjectPoint) error {
	switch p.Kind {
	case AtPod:
		pod := t.Pod(p.Pod)
		if pod == nil {
			return fmt.Errorf("%w: no pod %q", ErrBadPoint, p.Pod)
		}
		if p.Node != pod.Node {
			return fmt.Errorf("%w: pod %s is on %s, not %q", ErrBadPoint, p.Pod, pod.Node, p.Node)
		}
	case AtExternal:
		if t.External(p.Pod) == nil {
			return fmt.Errorf("%w: no external host %q", ErrBadPoint, p.Pod)
		}
		if p != externalPoint(t, t.External(p.Pod)) {
			return fmt.Errorf("%w: external host %s lives on the router %s", ErrBadPoint, p.Pod, t.Router.Name)
		}
	case AtNode, AtRouter:
		if t.Node(p.Node) == nil {
			return fmt.Errorf("%w: no node %q", ErrBadPoint, p.Node)
		}
		if p.Kind == AtRouter && p.Router != t.Router.Name {
			return fmt.Errorf("%w: the router is %s, not %q", ErrBadPoint, t.Router.Name, p.Router)
		}
	default:
		return fmt.Errorf("%w: kind %q", ErrBadPoint, p.Kind)
	}
	return nil
}

// RewriteL2 returns frame with its Ethernet addresses replaced by those the
// point really sends (for AtPod: the pod's MAC to its lxc MAC; for
// AtExternal: the host's MAC to the router's end of its veth; for AtNode:
// the ToR's bond facing the node to the node's bond0; for AtRouter: the
// node's bond0 to the ToR's bond facing it). Nothing above L2 changes.
func RewriteL2(t *topologies.Topology, p InjectPoint, frame []byte) ([]byte, error) {
	if len(frame) < 14 {
		return nil, fmt.Errorf("frame of %d bytes has no Ethernet header", len(frame))
	}
	var src, dst topologies.MAC
	switch p.Kind {
	case AtPod:
		pod := t.Pod(p.Pod)
		if pod == nil {
			return nil, fmt.Errorf("%w: no pod %q", ErrBadPoint, p.Pod)
		}
		src, dst = pod.MAC, pod.LXCMAC
	case AtExternal:
		e := t.External(p.Pod)
		if e == nil {
			return nil, fmt.Errorf("%w: no external host %q", ErrBadPoint, p.Pod)
		}
		src, dst = e.MAC, e.RouterMAC
	case AtNode, AtRouter:
		n := t.Node(p.Node)
		if n == nil {
			return nil, fmt.Errorf("%w: no node %q", ErrBadPoint, p.Node)
		}
		src, dst = n.TorBondMAC, n.BondMAC
		if p.Kind == AtRouter {
			src, dst = dst, src
		}
	default:
		return nil, fmt.Errorf("%w: kind %q", ErrBadPoint, p.Kind)
	}
	out := append([]byte(nil), frame...)
	copy(out[0:6], dst[:])
	copy(out[6:12], src[:])
	return out, nil
}
