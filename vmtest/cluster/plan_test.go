package cluster

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/hoplab/hoplab/internal/errtext"
)

// Plan places each frame (its own point, else DefaultPoint's, else the
// fallback), rewrites its Ethernet addresses for the point unless KeepL2,
// keeps its gap only with Timing, and names the frame it cannot plan.
func TestPlan(t *testing.T) {
	top := builtin(t, "pod-to-service")
	fromPod1 := frameOf(t, "10.1.1.10", "10.224.1.1", "tcp", 40000, 80, 64)
	toNode2 := frameOf(t, "192.0.2.7", "10.1.2.40", "tcp", 40000, 8080, 64)
	foreign := frameOf(t, "192.0.2.7", "198.51.100.1", "tcp", 1, 2, 64)
	node2 := InjectPoint{Kind: AtNode, Node: "node2"}
	frames := []Frame{{Data: fromPod1, Gap: time.Second}, {Data: toNode2, Gap: 2 * time.Second}, {Data: fromPod1, Point: node2}}

	got, err := Plan(top, frames, ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"pod1", "tor:node2", "node2:bond0"} {
		p := got[i]
		if p.Index != i || p.Point.String() != want || p.Fallback || p.Gap != 0 || keyOf(p.Data) != keyOf(frames[i].Data) {
			t.Errorf("frame %d: %+v; want at %s", i, p, want)
		}
		l2, err := RewriteL2(top, p.Point, frames[i].Data)
		if err != nil || !bytes.Equal(p.Data, l2) {
			t.Errorf("frame %d: not rewritten for %s (%v)", i, p.Point, err)
		}
	}
	got, err = Plan(top, frames, ReplayOptions{KeepL2: true, Timing: true})
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range got {
		if !bytes.Equal(p.Data, frames[i].Data) || p.Gap != frames[i].Gap {
			t.Errorf("KeepL2, Timing: frame %d changed or lost its gap %v", i, p.Gap)
		}
	}

	// A frame no pod or node owns is an error naming it, unless a fallback
	// is given.
	frames = append(frames, Frame{Data: foreign})
	_, err = Plan(top, frames, ReplayOptions{})
	var perr *PlanError
	if !errors.As(err, &perr) || perr.Index != 3 || !errors.Is(err, ErrBadPoint) {
		t.Errorf("foreign frame: %v", err)
	}
	errtext.Check(t, err, "packet 3: bad injection point: neither 192.0.2.7 is a pod's nor 198.51.100.1 a node's address; name the point")
	got, err = Plan(top, frames, ReplayOptions{Fallback: FallbackPoint(top)})
	if err != nil || !got[3].Fallback || got[3].Point.String() != "tor:node1" || got[0].Fallback {
		t.Errorf("fallback: %+v, %v", got[3], err)
	}
	_, err = Plan(top, []Frame{{Data: fromPod1[:10], Point: node2}}, ReplayOptions{KeepL2: true})
	if !errors.As(err, &perr) || perr.Index != 0 {
		t.Errorf("10-byte frame: %v", err)
	}
	errtext.Check(t, err, "packet 0: 10 bytes have no Ethernet header")
	if _, err := Plan(top, nil, ReplayOptions{}); !errors.Is(err, ErrNoFrames) {
		t.Errorf("no frames: %v", err)
	}
	if p := FallbackPoint(top); p != (InjectPoint{Kind: AtRouter, Node: "node1", Router: top.Router.Name}) {
		t.Errorf("FallbackPoint = %+v", p)
	}
}

// A frame's gap is the time since the previous frame was captured; the
// first frame and one captured no later than the previous have none.
func TestGaps(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	got := Gaps([]time.Time{at(100), at(150), at(150), at(120), at(200)})
	want := []time.Duration{0, 50 * time.Millisecond, 0, 0, 80 * time.Millisecond}
	if !slices.Equal(got, want) {
		t.Errorf("Gaps = %v, want %v", got, want)
	}
	if g := Gaps(nil); len(g) != 0 {
		t.Errorf("Gaps(nil) = %v", g)
	}
}
