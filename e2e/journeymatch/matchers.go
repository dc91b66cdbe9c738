package journeymatch

import (
	"errors"
	"fmt"
	"strings"

	"github.com/onsi/gomega/types"

	"github.com/hoplab/hoplab/internal/journey"
)

// ErrNotJourney is returned by every matcher for an actual value that is not
// a journey.Packet or *journey.Packet.
var ErrNotJourney = errors.New("not a journey.Packet")

// toPacket converts the actual value of a matcher.
func toPacket(actual any) (journey.Packet, error) {
	switch p := actual.(type) {
	case journey.Packet:
		return p, nil
	case *journey.Packet:
		if p == nil {
			return journey.Packet{}, fmt.Errorf("nil *journey.Packet: %w", ErrNotJourney)
		}
		return *p, nil
	default:
		return journey.Packet{}, fmt.Errorf("%T: %w", actual, ErrNotJourney)
	}
}

// diffMatcher is a matcher whose verdict is a journey.Diff against an
// expected journey; its messages render the observed journey with the
// differences marked.
type diffMatcher struct {
	what string // "to have hop from-container on node1 ..."
	// diff returns the difference to report; Equal() decides the match.
	diff func(got journey.Packet) (journey.Difference, error)
	last journey.Difference
}

func (m *diffMatcher) Match(actual any) (bool, error) {
	got, err := toPacket(actual)
	if err != nil {
		return false, err
	}
	d, err := m.diff(got)
	if err != nil {
		return false, err
	}
	m.last = d
	return d.Equal(), nil
}

func (m *diffMatcher) FailureMessage(any) string {
	return fmt.Sprintf("Expected journey of packet %d %s\n%s", m.last.Got.Index, m.what, m.last.String())
}

func (m *diffMatcher) NegatedFailureMessage(any) string {
	return fmt.Sprintf("Expected journey of packet %d not %s\n%s", m.last.Got.Index, m.what, journey.RenderPacket(m.last.Got))
}

// EqualJourney succeeds when the observed journey matches expected as
// journey.Diff compares them: zero-valued fields of expected are wildcards,
// expected hops must appear in order and, unless journey.AllowExtraHops is
// among opts, no other hop may; expected CT entries must be present.
func EqualJourney(expected journey.Packet, opts ...journey.DiffOption) types.GomegaMatcher {
	return &diffMatcher{
		what: "to equal the expected journey",
		diff: func(got journey.Packet) (journey.Difference, error) {
			return journey.Diff(expected, got, opts...), nil
		},
	}
}

// HaveHop succeeds when the journey has a hop at point that is selected by
// OnNode and WithDevice (when given) and meets every field condition of
// opts. When several hops are candidates, one meeting all conditions
// suffices; on failure the candidate closest to the conditions is marked.
func HaveHop(point journey.Point, opts ...HopOption) types.GomegaMatcher {
	spec := hopSpec{want: journey.Hop{Point: point}}
	for _, o := range opts {
		o(&spec)
	}
	what := "to have a " + string(point) + " hop"
	if len(spec.descr) > 0 {
		what += " (" + strings.Join(spec.descr, ", ") + ")"
	}
	return &diffMatcher{what: what, diff: func(got journey.Packet) (journey.Difference, error) {
		if spec.err != nil {
			return journey.Difference{}, fmt.Errorf("HaveHop %s: %w", point, spec.err)
		}
		if _, ok := journey.Canonical(string(point)); !ok {
			return journey.Difference{}, fmt.Errorf("HaveHop: unknown point %q", point)
		}
		return closestHop(spec.want, got), nil
	}}
}

// closestHop diffs want against every candidate hop of got and returns the
// first matching difference, or the one with the fewest differing fields.
func closestHop(want journey.Hop, got journey.Packet) journey.Difference {
	var best journey.Difference
	found := false
	for _, h := range got.Hops {
		if h.Point != want.Point || (want.Node != "" && h.Node != want.Node) || (want.Device != "" && h.Device != want.Device) {
			continue
		}
		// Pin the candidate so Diff compares exactly this hop.
		w := want
		w.Node, w.Device = h.Node, h.Device
		d := journey.Diff(journey.Packet{Hops: []journey.Hop{w}}, got, journey.AllowExtraHops())
		if d.Equal() {
			return d
		}
		if !found || len(d.Diffs) < len(best.Diffs) {
			best, found = d, true
		}
	}
	if !found {
		// No candidate: Diff reports the hop as missing.
		return journey.Diff(journey.Packet{Hops: []journey.Hop{want}}, got, journey.AllowExtraHops())
	}
	return best
}

// BeDroppedAt succeeds when the packet was dropped (verdict DROPPED) for
// reason ("Policy denied", "Service backend not found", ...) and its
// journey has a hop at point that dropped it for that reason, with no hop
// after it.
func BeDroppedAt(point journey.Point, reason string) types.GomegaMatcher {
	return &diffMatcher{
		what: fmt.Sprintf("to be dropped at %s (%s)", point, reason),
		diff: func(got journey.Packet) (journey.Difference, error) {
			if reason == "" {
				return journey.Difference{}, errors.New("BeDroppedAt: empty drop reason")
			}
			want := journey.Packet{
				Verdict: journey.Dropped, DropReason: reason,
				Hops: []journey.Hop{{Point: point, Verdict: journey.Dropped, DropReason: reason}},
			}
			d := journey.Diff(want, got, journey.AllowExtraHops())
			if !d.Equal() {
				return d, nil
			}
			// The dropping hop must be the last: a packet seen after its
			// drop was not dropped there. Pin the drop hop and forbid
			// extras after it by diffing the hops up to it exactly.
			last := -1
			for i, h := range got.Hops {
				if h.Point == point && h.Verdict == journey.Dropped {
					last = i
					break
				}
			}
			return endsAt(d, got, last, journey.Packet{Verdict: journey.Dropped, DropReason: reason}), nil
		},
	}
}

// endsAt returns d when hop at is got's last (or at is -1); otherwise the
// difference between got and its own hops cut after at (node, point and
// device pinned, with frame's packet fields), which marks every later hop
// as unexpected.
func endsAt(d journey.Difference, got journey.Packet, at int, frame journey.Packet) journey.Difference {
	if at < 0 || at == len(got.Hops)-1 {
		return d
	}
	for _, h := range got.Hops[:at+1] {
		frame.Hops = append(frame.Hops, journey.Hop{Node: h.Node, Point: h.Point, Device: h.Device})
	}
	return journey.Diff(frame, got)
}

// BeDeliveredTo succeeds when the packet was delivered (verdict DELIVERED)
// to pod and its journey ends with pod's pod-ingress hop.
func BeDeliveredTo(pod string) types.GomegaMatcher { return beDeliveredAt(journey.PodIngress, pod) }

// BeDeliveredToExternal succeeds when the packet was delivered to the
// external host name and its journey ends with that host's "external" hop.
func BeDeliveredToExternal(name string) types.GomegaMatcher {
	return beDeliveredAt(journey.External, name)
}

func beDeliveredAt(point journey.Point, pod string) types.GomegaMatcher {
	return &diffMatcher{
		what: "to be delivered to " + pod,
		diff: func(got journey.Packet) (journey.Difference, error) {
			if pod == "" {
				return journey.Difference{}, errors.New("BeDeliveredTo: empty pod name")
			}
			want := journey.Packet{
				Verdict: journey.Delivered, DeliveredTo: pod,
				Hops: []journey.Hop{{Point: point, Device: pod + ":eth0"}},
			}
			d := journey.Diff(want, got, journey.AllowExtraHops())
			if !d.Equal() {
				return d, nil
			}
			// The pod-ingress hop must be the last: hops after it are
			// marked as extra against the journey cut there.
			last := -1
			for i, h := range got.Hops {
				if h.Point == point && h.Device == pod+":eth0" {
					last = i
				}
			}
			return endsAt(d, got, last, journey.Packet{Verdict: journey.Delivered, DeliveredTo: pod}), nil
		},
	}
}
