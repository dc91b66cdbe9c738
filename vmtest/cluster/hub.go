package cluster

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/hoplab/hoplab/vmtest"
	"github.com/hoplab/hoplab/vmtest/protocol/control"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
	"github.com/hoplab/hoplab/vmtest/wire"
)

// hub fans the cluster's observations out to subscribers. While anybody
// subscribes, every node streams its datapath and pod events and every wire
// is tapped; each subscriber has its own queue and goroutine, so a slow
// subscriber delays only itself and never the agents' read loops or the
// wires.
type hub struct {
	log *slog.Logger
	c   *Cluster

	mu      sync.Mutex
	subs    map[*subscriber]struct{}
	untap   func()
	closed  bool
	watchMu sync.Mutex // serialises watch/unwatch calls
}

// maxQueue is the most events a subscriber may have pending; more are
// dropped (and counted) rather than held without bound.
const maxQueue = 1 << 16

type subscriber struct {
	fn      func(Event)
	mu      sync.Mutex
	queue   []Event
	dropped uint64
	wake    chan struct{}
	done    chan struct{}
	closed  bool
}

func newHub(log *slog.Logger) *hub {
	return &hub{log: log, subs: map[*subscriber]struct{}{}}
}

// attachFabric is called once the fabric runs.
func (h *hub) attachFabric(c *Cluster) {
	h.mu.Lock()
	h.c = c
	h.mu.Unlock()
}

// agentEvent receives every event of every agent (on its read goroutine).
func (h *hub) agentEvent(m *control.Message) {
	var e Event
	switch m.Event {
	case nodeapi.EventDatapath:
		var d nodeapi.DatapathEvent
		if err := control.Unmarshal(m.Data, &d); err != nil {
			h.log.Warn("bad datapath event", "err", err)
			return
		}
		e = Event{Kind: EventDatapath, Time: time.Now(), Datapath: &d}
	case nodeapi.EventPodPacket:
		var p nodeapi.PodPacket
		if err := control.Unmarshal(m.Data, &p); err != nil {
			h.log.Warn("bad pod event", "err", err)
			return
		}
		e = Event{Kind: EventPod, Time: time.Now(), Pod: &p}
	case nodeapi.EventL7:
		var l nodeapi.L7Event
		if err := control.Unmarshal(m.Data, &l); err != nil {
			h.log.Warn("bad l7 event", "err", err)
			return
		}
		e = Event{Kind: EventL7, Time: time.Now(), L7: &l}
	default:
		return
	}
	h.publish(e)
}

// wireFrame receives every frame of every wire (on its forwarding
// goroutine).
func (h *hub) wireFrame(w *wire.Wire, fr wire.Frame, node, router, port string) {
	h.publish(Event{Kind: EventWire, Time: fr.Time, Wire: &WireFrame{
		Link: w.Name(), Node: node, Router: router, RouterPort: port,
		FromRouter: fr.From == wire.B, Injected: fr.Injected, Dropped: fr.Dropped,
		Frame: append([]byte(nil), fr.Data...),
	}})
}

func (h *hub) publish(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		s.push(e)
	}
}

func (s *subscriber) push(e Event) {
	s.mu.Lock()
	switch {
	case s.closed:
	case len(s.queue) >= maxQueue:
		s.dropped++
	default:
		s.queue = append(s.queue, e)
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *subscriber) run() {
	defer close(s.done)
	for {
		s.mu.Lock()
		q := s.queue
		s.queue = nil
		closed := s.closed
		s.mu.Unlock()
		for _, e := range q {
			s.fn(e)
		}
		if closed {
			return
		}
		if len(q) == 0 {
			<-s.wake
		}
	}
}

func (s *subscriber) stop() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	<-s.done
}

// subscribe adds fn; the first subscriber turns the streams on, and
// subscribe returns once every node streams.
func (h *hub) subscribe(ctx context.Context, fn func(Event)) (stop func(), err error) {
	s := &subscriber{fn: fn, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go s.run()
	h.watchMu.Lock()
	defer h.watchMu.Unlock()
	h.mu.Lock()
	if h.closed || h.c == nil {
		h.mu.Unlock()
		s.stop()
		return nil, errors.New("cluster: closed")
	}
	first := len(h.subs) == 0
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	if first {
		if err := h.watch(ctx, true); err != nil {
			h.unsubscribeLocked(s) // watchMu is held
			return nil, err
		}
	}
	var once sync.Once
	return func() { once.Do(func() { h.unsubscribe(s) }) }, nil
}

func (h *hub) unsubscribe(s *subscriber) {
	h.watchMu.Lock()
	defer h.watchMu.Unlock()
	h.unsubscribeLocked(s)
}

// unsubscribeLocked removes s; the caller holds watchMu.
func (h *hub) unsubscribeLocked(s *subscriber) {
	s.stop()
	if s.dropped > 0 {
		h.log.Warn("slow subscriber: events dropped", "dropped", s.dropped)
	}
	h.mu.Lock()
	delete(h.subs, s)
	last := len(h.subs) == 0 && !h.closed
	h.mu.Unlock()
	if last {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.watch(ctx, false); err != nil {
			h.log.Warn("unwatch", "err", err)
		}
	}
}

// watch turns the nodes' event streams and the wire taps on or off.
func (h *hub) watch(ctx context.Context, on bool) error {
	c := h.c
	if on && h.untap == nil {
		f := c.fabric
		spec := f.Spec()
		var removes []func()
		for i, n := range spec.Nodes {
			port := vmtest.TorBond(n.Name, i)
			for j := range vmtest.UplinkNICs {
				w := f.Link(n.Name, j)
				if w == nil {
					continue
				}
				removes = append(removes, w.Tap(func(fr wire.Frame) { h.wireFrame(w, fr, n.Name, spec.Router, port) }))
			}
		}
		h.untap = func() {
			for _, r := range removes {
				r()
			}
		}
	}
	if !on && h.untap != nil {
		h.untap()
		h.untap = nil
	}
	// The clients' errors name the node and the method ("node1: watch: ...").
	err := c.eachNode(ctx, func(ctx context.Context, cl *nodeapi.Client) error {
		return h.watchVM(ctx, cl, nodeapi.Watch{Datapath: on, Pods: on})
	})
	if t := c.Topology(); len(t.Externals) > 0 {
		// The router captures its external hosts' eth0 (no datapath).
		err = errors.Join(err, h.watchVM(ctx, c.clients[t.Router.Name], nodeapi.Watch{Pods: on}))
	}
	return err
}

// watchVM turns one VM's event stream on or off.
func (h *hub) watchVM(ctx context.Context, cl *nodeapi.Client, w nodeapi.Watch) error {
	r, err := cl.Watch(ctx, w)
	if err == nil && (r.Dropped > 0 || r.Lost > 0) {
		h.log.Warn("events dropped while watched: journeys may miss hops", "vm", cl.Name, "dropped", r.Dropped, "lost", r.Lost)
	}
	return err
}

// close stops every subscriber (without unwatching: the VMs are going).
func (h *hub) close() {
	h.mu.Lock()
	h.closed = true
	subs := h.subs
	h.subs = map[*subscriber]struct{}{}
	untap := h.untap
	h.untap = nil
	h.mu.Unlock()
	if untap != nil {
		untap()
	}
	for s := range subs {
		s.stop()
	}
}

// Subscribe calls fn with every observation of the cluster from now on
// (datapath events and L7 proxy records of every node, frames on every
// pod's eth0 and on every wire), in order per source, on a goroutine of its own, until stop is
// called. The streams are on while anybody subscribes. Errors turning them
// on are logged; use SubscribeContext to get them.
func (c *Cluster) Subscribe(fn func(Event)) (stop func()) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stop, err := c.SubscribeContext(ctx, fn)
	if err != nil {
		c.log.Error("subscribe", "err", err)
		return func() {}
	}
	return stop
}

// SubscribeContext is Subscribe returning the error of turning the streams
// on; it returns once every node streams.
func (c *Cluster) SubscribeContext(ctx context.Context, fn func(Event)) (stop func(), err error) {
	return c.obs.subscribe(ctx, fn)
}
