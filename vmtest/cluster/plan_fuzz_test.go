package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hoplab/hoplab/fixtures"
	"github.com/hoplab/hoplab/internal/fuzzcorpus"
	"github.com/hoplab/hoplab/internal/journey"
	"github.com/hoplab/hoplab/topologies"
)

// FuzzPlan checks replay planning as `hoplab replay` does it (capture
// times → Gaps → Plan) on a shipped topology, arbitrary frames, points and
// options:
//
//   - Gaps: one per time, none for the first frame or one captured no
//     later than the previous, else the time since the previous;
//   - Plan never panics and leaves the frames alone; no frames is
//     ErrNoFrames; any other error is a *PlanError naming a frame, one line
//     "packet N: ...", the frames before it plan and the frame alone fails
//     the same way;
//   - a plan has one entry per frame, each at a point of the topology (its
//     pod, node and router exist and agree; ParsePoint reads its String
//     back), the frame's own point, else DefaultPoint's, else the
//     fallback; its data the frame's with only the Ethernet addresses
//     changed, to the point's (none with KeepL2); its gap the frame's with
//     Timing, else 0; its key the frame's.
//
// Inputs: a topology index, options (bit 0 KeepL2, bit 1 Timing, the rest
// the fallback: 0 none, 1 FallbackPoint, n a point of planPoints), and
// frames as records [length:2][point][time step in ms, signed][data]. The
// committed seeds (testdata/fuzz/FuzzPlan) are the fixtures' captures with
// their cases' topologies and points; TestPlanCorpus writes them.
//
//	go test -run '^$' -fuzz '^FuzzPlan$' -fuzztime 30s ./vmtest/cluster
func FuzzPlan(f *testing.F) {
	f.Add(byte(0), byte(0), []byte{})
	f.Add(byte(1), byte(1), []byte{0, 4, 0, 0, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, topo, opt byte, in []byte) {
		names := topologies.Names()
		top := planTopology(t, names[int(topo)%len(names)])
		points := planPoints(top)
		opts := ReplayOptions{KeepL2: opt&1 != 0, Timing: opt&2 != 0}
		switch sel := int(opt >> 2); sel {
		case 0:
		case 1:
			opts.Fallback = FallbackPoint(top)
		default:
			opts.Fallback = points[sel%len(points)]
		}
		frames, times := planFrames(in, points)

		gaps := Gaps(times)
		if len(gaps) != len(times) {
			t.Fatalf("%d gaps for %d times", len(gaps), len(times))
		}
		for i, g := range gaps {
			want := time.Duration(0)
			if i > 0 && times[i].After(times[i-1]) {
				want = times[i].Sub(times[i-1])
			}
			if g != want {
				t.Fatalf("gap %d = %v, want %v (times %v)", i, g, want, times)
			}
			frames[i].Gap = g
		}

		orig := cloneFrames(frames)
		out, err := Plan(top, frames, opts)
		if !reflect.DeepEqual(frames, orig) {
			t.Fatal("Plan changed its frames")
		}
		if again, err2 := Plan(top, frames, opts); !reflect.DeepEqual(again, out) || fmt.Sprint(err2) != fmt.Sprint(err) {
			t.Fatalf("Plan is not deterministic: %v / %v", err, err2)
		}
		if len(frames) == 0 {
			if !errors.Is(err, ErrNoFrames) || out != nil {
				t.Fatalf("no frames: %v, %v", out, err)
			}
			return
		}
		if err != nil {
			checkPlanError(t, top, frames, opts, err)
			return
		}
		if len(out) != len(frames) {
			t.Fatalf("%d planned for %d frames", len(out), len(frames))
		}
		for i, p := range out {
			checkPlanned(t, top, frames[i], opts, i, p)
		}
	})
}

// checkPlanError checks Plan's error for frames, which do not plan.
func checkPlanError(t *testing.T, top *topologies.Topology, frames []Frame, opts ReplayOptions, err error) {
	t.Helper()
	var pe *PlanError
	if !errors.As(err, &pe) {
		t.Fatalf("error %T %v is not a *PlanError", err, err)
	}
	if pe.Index < 0 || pe.Index >= len(frames) {
		t.Fatalf("error names packet %d of %d: %v", pe.Index, len(frames), err)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, fmt.Sprintf("packet %d: ", pe.Index)) || strings.Contains(msg, "\n") || pe.Err == nil {
		t.Fatalf("error %q is not one line naming packet %d", msg, pe.Index)
	}
	if pe.Index > 0 {
		if _, err := Plan(top, frames[:pe.Index], opts); err != nil {
			t.Fatalf("the frames before packet %d do not plan either: %v (first error %v)", pe.Index, err, msg)
		}
	}
	_, alone := Plan(top, frames[pe.Index:pe.Index+1], opts)
	var ae *PlanError
	if !errors.As(alone, &ae) || ae.Index != 0 || ae.Err.Error() != pe.Err.Error() {
		t.Fatalf("packet %d fails with %v, alone with %v", pe.Index, err, alone)
	}
}

// checkPlanned checks the plan p of frame f, the i-th.
func checkPlanned(t *testing.T, top *topologies.Topology, f Frame, opts ReplayOptions, i int, p Planned) {
	t.Helper()
	if p.Index != i {
		t.Fatalf("planned %d has index %d", i, p.Index)
	}
	if err := pointOf(top, p.Point); err != nil {
		t.Fatalf("packet %d planned at %+v: %v", i, p.Point, err)
	}
	if back, err := ParsePoint(top, p.Point.String()); err != nil || back != canonicalPoint(p.Point) {
		t.Fatalf("packet %d: point %+v reads back as %+v, %v", i, p.Point, back, err)
	}
	def, defErr := DefaultPoint(top, f.Data)
	switch {
	case !f.Point.IsZero():
		if p.Point != f.Point || p.Fallback {
			t.Fatalf("packet %d at %+v planned at %+v (fallback %v)", i, f.Point, p.Point, p.Fallback)
		}
	case defErr == nil:
		if p.Point != def || p.Fallback {
			t.Fatalf("packet %d planned at %+v, its default point is %+v", i, p.Point, def)
		}
	default:
		if p.Point != opts.Fallback || !p.Fallback || opts.Fallback.IsZero() {
			t.Fatalf("packet %d without a default point (%v) planned at %+v (fallback %v)", i, defErr, p.Point, p.Fallback)
		}
	}
	if len(p.Data) != len(f.Data) || len(p.Data) < 14 || !bytes.Equal(p.Data[12:], f.Data[12:]) {
		t.Fatalf("packet %d: more than its Ethernet addresses changed", i)
	}
	src, dst := pointMACs(top, p.Point)
	switch {
	case opts.KeepL2 && !bytes.Equal(p.Data, f.Data):
		t.Fatalf("packet %d: KeepL2, but its Ethernet addresses changed", i)
	case !opts.KeepL2 && (!bytes.Equal(p.Data[0:6], dst[:]) || !bytes.Equal(p.Data[6:12], src[:])):
		t.Fatalf("packet %d at %s: addresses %x > %x, want %s > %s", i, p.Point, p.Data[6:12], p.Data[0:6], src, dst)
	}
	want := time.Duration(0)
	if opts.Timing {
		want = f.Gap
	}
	if p.Gap != want {
		t.Fatalf("packet %d: gap %v, want %v (Timing %v)", i, p.Gap, want, opts.Timing)
	}
	if k, _ := journey.KeyFromFrame(f.Data); p.Key != k {
		t.Fatalf("packet %d: key %v, want %v", i, p.Key, k)
	}
}

// pointOf checks that p is a point of top as ParsePoint makes them.
func pointOf(top *topologies.Topology, p InjectPoint) error {
	switch p.Kind {
	case AtPod:
		pod := top.Pod(p.Pod)
		if pod == nil || pod.Node != p.Node {
			return fmt.Errorf("no pod %q on node %q", p.Pod, p.Node)
		}
	case AtNode, AtRouter:
		if top.Node(p.Node) == nil {
			return fmt.Errorf("no node %q", p.Node)
		}
		if p.Kind == AtRouter && p.Router != top.Router.Name {
			return fmt.Errorf("no router %q", p.Router)
		}
	default:
		return fmt.Errorf("kind %q", p.Kind)
	}
	return nil
}

// canonicalPoint is p with only the fields its kind uses.
func canonicalPoint(p InjectPoint) InjectPoint {
	switch p.Kind {
	case AtPod:
		return InjectPoint{Kind: AtPod, Pod: p.Pod, Node: p.Node}
	case AtNode:
		return InjectPoint{Kind: AtNode, Node: p.Node}
	}
	return InjectPoint{Kind: p.Kind, Node: p.Node, Router: p.Router}
}

// pointMACs are the Ethernet addresses a frame sent at p has.
func pointMACs(top *topologies.Topology, p InjectPoint) (src, dst topologies.MAC) {
	if p.Kind == AtPod {
		pod := top.Pod(p.Pod)
		return pod.MAC, pod.LXCMAC
	}
	n := top.Node(p.Node)
	if p.Kind == AtRouter {
		return n.BondMAC, n.TorBondMAC
	}
	return n.TorBondMAC, n.BondMAC
}

var planTopologies sync.Map // name → *topologies.Topology

func planTopology(t testing.TB, name string) *topologies.Topology {
	if top, ok := planTopologies.Load(name); ok {
		return top.(*topologies.Topology)
	}
	top, err := topologies.Builtin(name)
	if err != nil {
		t.Fatal(err)
	}
	planTopologies.Store(name, top)
	return top
}

// planPoints are the points a fuzz input picks from: the zero point, every
// pod, node and router port of top, and points that are not top's (a pod
// or node it lacks, a pod on the wrong node or none, another router, an
// unknown kind).
func planPoints(top *topologies.Topology) []InjectPoint {
	points := []InjectPoint{{}}
	for _, p := range top.Pods {
		points = append(points, InjectPoint{Kind: AtPod, Pod: p.Name, Node: p.Node})
	}
	for _, n := range top.Nodes {
		points = append(points, InjectPoint{Kind: AtNode, Node: n.Name}, InjectPoint{Kind: AtRouter, Node: n.Name, Router: top.Router.Name})
	}
	node := top.Nodes[0].Name
	points = append(points,
		InjectPoint{Kind: AtPod, Pod: "ghost", Node: node},
		InjectPoint{Kind: AtNode, Node: "ghost"},
		InjectPoint{Kind: AtRouter, Node: node, Router: "ghost"},
		InjectPoint{Kind: "ghost", Node: node})
	if len(top.Pods) > 0 {
		pod := top.Pods[0].Name
		points = append(points, InjectPoint{Kind: AtPod, Pod: pod, Node: "ghost"}, InjectPoint{Kind: AtPod, Pod: pod})
	}
	return points
}

// planFrames decodes the frames of a fuzz input and their capture times.
func planFrames(in []byte, points []InjectPoint) ([]Frame, []time.Time) {
	var frames []Frame
	var times []time.Time
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for len(in) >= 4 {
		n := int(in[0])<<8 | int(in[1])
		pt, step := points[int(in[2])%len(points)], int8(in[3])
		in = in[4:]
		n = min(n, len(in))
		at = at.Add(time.Duration(step) * time.Millisecond)
		frames = append(frames, Frame{Data: in[:n:n], Point: pt})
		times = append(times, at)
		in = in[n:]
	}
	return frames, times
}

func cloneFrames(frames []Frame) []Frame {
	if frames == nil {
		return nil
	}
	out := make([]Frame, len(frames))
	for i, f := range frames {
		out[i] = f
		out[i].Data = bytes.Clone(f.Data)
	}
	return out
}

// TestPlanCorpus writes testdata/fuzz/FuzzPlan (with
// HOPLAB_FUZZ_CORPUS=1): each fixture's capture on each topology its
// cases name, at the case's point, planned as `hoplab replay` plans
// (fallback FallbackPoint), every other one with KeepL2 and Timing.
func TestPlanCorpus(t *testing.T) {
	names := topologies.Names()
	index := map[string]byte{}
	for i, n := range names {
		index[n] = byte(i)
	}
	var seeds []fuzzcorpus.Seed
	for _, fx := range fixtures.Names() {
		exp, err := fixtures.Load(fx)
		if err != nil {
			t.Fatal(err)
		}
		pkts, err := fixtures.Packets(fx)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range exp.Cases {
			top := planTopology(t, c.Topology)
			points := planPoints(top)
			sel := byte(0)
			if c.Inject != "" {
				p, err := ParsePoint(top, c.Inject)
				if err != nil {
					t.Fatal(err)
				}
				for i, q := range points {
					if q == p {
						sel = byte(i)
					}
				}
			}
			var in []byte
			for i, p := range pkts {
				step := 0
				if i > 0 {
					step = int(p.Timestamp.Sub(pkts[i-1].Timestamp) / time.Millisecond)
				}
				step = max(min(step, math.MaxInt8), math.MinInt8)
				in = append(in, byte(len(p.Data)>>8), byte(len(p.Data)), sel, byte(int8(step)))
				in = append(in, p.Data...)
			}
			opt := byte(1 << 2) // FallbackPoint
			if len(seeds)%2 == 1 {
				opt |= 3 // KeepL2, Timing
			}
			seeds = append(seeds, fuzzcorpus.Seed{Name: fx + "-" + c.Topology, Values: []any{index[c.Topology], opt, in}})
		}
	}
	fuzzcorpus.Update(t, "FuzzPlan", seeds)
}
