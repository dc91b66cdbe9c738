package cluster

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hoplab/hoplab/internal/errtext"
	"github.com/hoplab/hoplab/vmtest/agent"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// synFlows returns n SYNs from pod1 to the service 10.224.1.1:80, each its
// own flow (source ports 1..n).
func synFlows(t *testing.T, n int) []Frame {
	t.Helper()
	one := frameOf(t, "10.1.1.10", "10.224.1.1", "tcp", 1, 80, 64)
	out := make([]Frame, n)
	for i := range out {
		f := append([]byte(nil), one...)
		sport := uint16(i + 1)
		f[14+20], f[14+21] = byte(sport>>8), byte(sport) // checksums do not matter here
		out[i] = Frame{Data: f}
	}
	return out
}

// With SuppressRST each pod's RST filter must hold the distinct TCP flows
// injected from the pod: one more than the filter's size is refused with
// the counts, before anything is sent; MaxFlows raises the size; the same
// flow twice, UDP, and frames entering elsewhere do not count.
func TestCheckLimitsRSTFilter(t *testing.T) {
	top := builtin(t, "pod-to-service")
	frames := synFlows(t, nodeapi.DefaultRSTFlows+1)
	plan, err := Plan(top, frames, ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = CheckLimits(top, plan, ReplayOptions{SuppressRST: true})
	var fe *FlowLimitError
	if !errors.As(err, &fe) || !errors.Is(err, ErrFlowLimit) || fe.Pod != "pod1" || fe.Flows != nodeapi.DefaultRSTFlows+1 || fe.Limit != nodeapi.DefaultRSTFlows {
		t.Fatalf("%d flows from pod1: %v", nodeapi.DefaultRSTFlows+1, err)
	}
	errtext.Check(t, err, "4097 TCP flows from pod1 exceed the RST filter's 4096")
	if _, err := CheckLimits(top, plan, ReplayOptions{SuppressRST: true, MaxFlows: nodeapi.DefaultRSTFlows + 1}); err != nil {
		t.Errorf("MaxFlows %d: %v", nodeapi.DefaultRSTFlows+1, err)
	}
	if _, err := CheckLimits(top, plan, ReplayOptions{SuppressRST: true, MaxFlows: 100}); !errors.As(err, &fe) || fe.Limit != 100 {
		t.Errorf("MaxFlows 100: %v", err)
	}
	if _, err := CheckLimits(top, plan, ReplayOptions{}); err != nil {
		t.Errorf("without SuppressRST (--live) the filter is not used: %v", err)
	}

	// Exactly the size fits; repeats, UDP and frames at the router do not
	// count.
	fit := append([]Frame(nil), frames[:nodeapi.DefaultRSTFlows]...)
	fit = append(fit, frames[0], Frame{Data: frameOf(t, "10.1.1.10", "10.1.2.40", "udp", 5000, 53, 64)},
		Frame{Data: frames[nodeapi.DefaultRSTFlows].Data, Point: InjectPoint{Kind: AtRouter, Node: "node1", Router: "tor"}})
	if plan, err = Plan(top, fit, ReplayOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := CheckLimits(top, plan, ReplayOptions{SuppressRST: true}); err != nil {
		t.Errorf("%d flows from pod1 plus repeats, UDP and a router frame: %v", nodeapi.DefaultRSTFlows, err)
	}

	for _, bad := range []int{-1, nodeapi.MaxRSTFlows + 1} {
		_, err := CheckLimits(top, plan, ReplayOptions{SuppressRST: true, MaxFlows: bad})
		if err == nil || !strings.Contains(err.Error(), "flows outside 1..") {
			t.Errorf("MaxFlows %d: %v", bad, err)
		}
	}
}

// A node whose CT table the flows may overflow gets a note naming it and
// the counts: pod1's flows to the service need an egress and a service
// entry each on node1, an ingress entry on node2 (pod4's).
func TestCheckLimitsCT(t *testing.T) {
	top := builtin(t, "pod-to-service")
	n := nodeapi.DefaultCTEntries/2 + 1
	frames := synFlows(t, n)
	plan, err := Plan(top, frames, ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	notes, err := CheckLimits(top, plan, ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := "32769 flows through node1 may need up to 65538 CT entries, more than its CT table's 65536: the least recently used are evicted, so some journeys may show no CT entry"
	if len(notes) != 1 || notes[0] != want {
		t.Errorf("notes %q, want [%q]", notes, want)
	}
	// The same flows the other way (pod4 answering through the service's
	// address as the capture shows it) are the same flows.
	reply := frameOf(t, "10.224.1.1", "10.1.1.10", "tcp", 80, 1, 64)
	if plan, err = Plan(top, append(frames[:n-1:n-1], Frame{Data: reply, Point: InjectPoint{Kind: AtRouter, Node: "node1", Router: "tor"}}), ReplayOptions{}); err != nil {
		t.Fatal(err)
	}
	if notes, err := CheckLimits(top, plan, ReplayOptions{}); err != nil || len(notes) != 0 {
		t.Errorf("%d flows (one of them twice): %q, %v", n-1, notes, err)
	}
}

// injectRecorder is a node agent recording the pod-inject requests it gets.
type injectRecorder struct {
	mu   sync.Mutex
	reqs []nodeapi.Inject
}

func (r *injectRecorder) agent() *agent.Agent {
	a := agent.NewAgent(slog.New(slog.DiscardHandler))
	a.Handle(nodeapi.MethodInject, agent.Typed(func(_ context.Context, req nodeapi.Inject) (nodeapi.Injected, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.reqs = append(r.reqs, req)
		return nodeapi.Injected{Sent: len(req.Frames)}, nil
	}))
	return a
}

// Frames for one pod go to the agent in bounded chunks, each carrying the
// RST suppression and the filter size; progress is reported per chunk.
func TestInjectChunksCarryMaxFlows(t *testing.T) {
	top := builtin(t, "pod-to-service")
	var rec injectRecorder
	c := &Cluster{top: top, log: slog.New(slog.DiscardHandler), clients: agentClients(t, rec.agent(), top)}
	n := 2*maxChunkFrames + 10
	plan, err := Plan(top, synFlows(t, n), ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var progress []int
	opts := ReplayOptions{SuppressRST: true, MaxFlows: 9000, Progress: func(sent, total int) {
		if total != n {
			t.Errorf("progress total %d, want %d", total, n)
		}
		progress = append(progress, sent)
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	injected, err := c.inject(ctx, plan, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(injected) != n {
		t.Errorf("%d injected, want %d", len(injected), n)
	}
	var sizes []int
	for _, r := range rec.reqs {
		sizes = append(sizes, len(r.Frames))
		if r.Pod != "pod1" || !r.SuppressRST || r.MaxFlows != 9000 || len(r.Gaps) != len(r.Frames) {
			t.Errorf("request %+v", nodeapi.Inject{Pod: r.Pod, SuppressRST: r.SuppressRST, MaxFlows: r.MaxFlows})
		}
	}
	if want := []int{maxChunkFrames, maxChunkFrames, 10}; !slices.Equal(sizes, want) {
		t.Errorf("chunks of %v frames, want %v", sizes, want)
	}
	if want := []int{maxChunkFrames, 2 * maxChunkFrames, n}; !slices.Equal(progress, want) {
		t.Errorf("progress %v, want %v", progress, want)
	}
}

// A chunk also ends at maxChunkBytes (and holds at least one frame).
func TestChunkEndBytes(t *testing.T) {
	big := make([]byte, maxChunkBytes/3+1)
	p := InjectPoint{Kind: AtPod, Pod: "pod1", Node: "node1"}
	plan := []Planned{{Point: p, Data: big}, {Point: p, Data: big}, {Point: p, Data: big}, {Point: p, Data: big}}
	if j := chunkEnd(plan, 0); j != 2 {
		t.Errorf("chunk of %d frames of %d bytes, want 2", j, len(big))
	}
	huge := []Planned{{Point: p, Data: make([]byte, maxChunkBytes+1)}, {Point: p, Data: big}}
	if j := chunkEnd(huge, 0); j != 1 {
		t.Errorf("a frame over the byte bound: chunk of %d, want 1", j)
	}
}

// Trace refuses a replay a pod's RST filter cannot hold before it sends
// anything.
func TestTraceChecksLimitsBeforeInjecting(t *testing.T) {
	top := builtin(t, "pod-to-service")
	var rec injectRecorder
	c := &Cluster{top: top, log: slog.New(slog.DiscardHandler), clients: agentClients(t, rec.agent(), top), obs: newHub(slog.New(slog.DiscardHandler))}
	_, err := c.Trace(context.Background(), synFlows(t, 11), ReplayOptions{SuppressRST: true, MaxFlows: 10})
	errtext.Check(t, err, "replay: 11 TCP flows from pod1 exceed the RST filter's 10")
	if len(rec.reqs) != 0 {
		t.Errorf("%d pod-inject requests before the refusal", len(rec.reqs))
	}
}

// The collector keeps at most its cap of observations, counts the rest,
// and still notices them for the settling.
func TestCollectorCap(t *testing.T) {
	top := builtin(t, "pod-to-service")
	plan, err := Plan(top, synFlows(t, 1), ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	col := newCollector(plan, 3)
	frame := plan[0].Data
	pod := func() Event {
		return Event{Kind: EventPod, Time: time.Now(), Pod: &nodeapi.PodPacket{Pod: "pod1", Direction: nodeapi.PodEgress, Frame: frame}}
	}
	for range 5 {
		col.add(pod())
	}
	if kept, over := col.counts(); kept != 3 || over != 2 || len(col.sightings()) != 3 {
		t.Errorf("cap 3 after 5 observations: kept %d, not kept %d", kept, over)
	}
	col.mu.Lock()
	col.last = time.Time{}
	col.mu.Unlock()
	col.add(pod())
	if q := col.quiet(); q > time.Minute {
		t.Errorf("an observation past the cap did not restart the settle time (quiet %v)", q)
	}
	if c := newCollector(plan, 0); c.max != DefaultMaxObservations {
		t.Errorf("default cap %d", c.max)
	}
}

// A node whose CT table holds more than MaxCTList entries is found from
// its count, without listing it.
func TestBigCTTable(t *testing.T) {
	top := builtin(t, "pod-to-service")
	for _, tc := range []struct {
		entries int
		want    string
	}{{MaxCTList, ""}, {MaxCTList + 1, "node1"}} {
		a := agent.NewAgent(slog.New(slog.DiscardHandler))
		a.Handle(nodeapi.MethodCTStats, agent.Typed(func(context.Context, struct{}) (nodeapi.CTStats, error) {
			return nodeapi.CTStats{Entries: tc.entries, Capacity: nodeapi.DefaultCTEntries}, nil
		}))
		a.Handle(nodeapi.MethodCTList, agent.Typed(func(context.Context, nodeapi.CTListRequest) ([]nodeapi.CTRow, error) {
			t.Error("the CT table was listed")
			return nil, nil
		}))
		c := &Cluster{top: top, log: slog.New(slog.DiscardHandler), clients: agentClients(t, a, top)}
		big, err := c.bigCTTable(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case big == nil && tc.want != "":
			t.Errorf("%d entries: no big table, want %s", tc.entries, tc.want)
		case big != nil && (big.node != tc.want || big.entries != tc.entries):
			t.Errorf("%d entries: %+v, want %q", tc.entries, *big, tc.want)
		}
	}
}
