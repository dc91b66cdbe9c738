package roles

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hoplab/hoplab/datapath"
	"github.com/hoplab/hoplab/vmtest/agent/pods"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// event is one event waiting for the host.
type event struct {
	name string
	data any
}

// watcher streams datapath events and pod captures to Options.Emit through
// a bounded queue: when the host is slow, new events are dropped and
// counted, never blocking the datapath reader or the captures.
type watcher struct {
	req     nodeapi.Watch
	queue   chan event
	done    chan struct{}
	wg      sync.WaitGroup
	sender  sync.WaitGroup
	reader  *datapath.EventReader
	socks   []*packetSocket
	dropped atomic.Uint64
	lost    atomic.Uint64
	abandon atomic.Bool
	// qmu guards qclosed: senders that are not among wg's goroutines
	// (the L7 proxy) push only while the queue is open (pushOpen).
	qmu     sync.RWMutex
	qclosed bool
}

// Watch starts (or, with both fields false, stops) the event stream:
// EventDatapath for every trace and drop notification and EventL7 for
// every record of the L7 proxy (with Datapath), EventPodPacket for every
// frame on a pod's eth0. A new Watch replaces the previous one.
func (n *Node) Watch(_ context.Context, req nodeapi.Watch) (nodeapi.WatchResult, error) {
	var res nodeapi.WatchResult
	n.watchMu.Lock()
	defer n.watchMu.Unlock()
	res.Dropped, res.Lost = n.stopWatch()
	if !req.Datapath && !req.Pods {
		return res, nil
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return res, errors.New("node closed")
	}
	podsNow := make(map[string]*pods.Pod, len(n.pods))
	for name, p := range n.pods {
		podsNow[name] = p
	}
	n.mu.Unlock()
	w := &watcher{req: req, queue: make(chan event, n.opts.EventQueue), done: make(chan struct{})}
	fail := func(err error) (nodeapi.WatchResult, error) {
		w.stop()
		return res, err
	}
	if req.Datapath {
		r, err := n.dp.NewEventReader(0)
		if err != nil {
			return fail(err)
		}
		w.reader = r
		w.wg.Add(1)
		go n.readDatapath(w)
	}
	if req.Pods {
		names := make([]string, 0, len(podsNow))
		for name := range podsNow {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			s, err := openPacketSocket(podsNow[name], true)
			if err != nil {
				return fail(fmt.Errorf("pod %s: %w", name, err))
			}
			w.socks = append(w.socks, s)
			w.wg.Add(1)
			go n.capture(w, name, s)
			res.Pods = append(res.Pods, name)
		}
	}
	w.sender.Add(1)
	go n.send(w)
	n.mu.Lock()
	n.watch = w
	n.mu.Unlock()
	return res, nil
}

// stopWatch stops the running watch, if any, outside n.mu (its goroutines
// take n.mu).
// It returns the watch's dropped and lost event counts.
func (n *Node) stopWatch() (dropped, lost uint64) {
	n.mu.Lock()
	w := n.watch
	n.watch = nil
	n.mu.Unlock()
	if w == nil {
		return 0, 0
	}
	w.stop()
	dropped, lost = w.dropped.Load(), w.lost.Load()
	if dropped > 0 || lost > 0 {
		n.log.Warn("events lost while watching", "dropped_slow_host", dropped, "lost_in_kernel", lost)
	}
	return dropped, lost
}

// senderWait bounds how long stopping a watch waits for an event send the
// host does not take.
const senderWait = 2 * time.Second

// stop closes the reader and sockets, waits for the goroutines, and lets
// the sender send what is queued, for at most senderWait: what a host that
// does not read has not taken by then is discarded and counted (the
// sender's goroutine ends when its last write does).
func (w *watcher) stop() {
	close(w.done)
	if w.reader != nil {
		_ = w.reader.Close()
	}
	for _, s := range w.socks {
		_ = s.close()
	}
	w.wg.Wait()
	w.qmu.Lock()
	w.qclosed = true
	close(w.queue)
	w.qmu.Unlock()
	sent := make(chan struct{})
	go func() {
		w.sender.Wait()
		close(sent)
	}()
	select {
	case <-sent:
	case <-time.After(senderWait):
		w.abandon.Store(true)
	}
}

// push queues an event, or counts it as dropped when the queue is full.
func (w *watcher) push(name string, data any) {
	select {
	case w.queue <- event{name, data}:
	default:
		w.dropped.Add(1)
	}
}

// pushOpen is push for senders outside the watch's goroutines: nothing
// once the queue is closed.
func (w *watcher) pushOpen(name string, data any) {
	w.qmu.RLock()
	defer w.qmu.RUnlock()
	if !w.qclosed {
		w.push(name, data)
	}
}

func (n *Node) send(w *watcher) {
	defer w.sender.Done()
	for ev := range w.queue {
		if w.abandon.Load() {
			// The stop did not wait any longer: discard (and count).
			w.dropped.Add(1)
			continue
		}
		if err := n.opts.Emit(ev.name, ev.data); err != nil {
			n.log.Debug("emit", "event", ev.name, "err", err)
		}
	}
}

func (n *Node) readDatapath(w *watcher) {
	defer w.wg.Done()
	for {
		ev, err := w.reader.Read()
		if err != nil {
			var lost *datapath.LostEventsError
			switch {
			case errors.As(err, &lost):
				w.lost.Add(lost.Lost)
				continue
			case errors.Is(err, datapath.ErrShortEvent):
				continue
			}
			select {
			case <-w.done:
			default:
				n.log.Warn("datapath events", "err", err)
			}
			return
		}
		w.push(nodeapi.EventDatapath, n.datapathEvent(ev, time.Now()))
	}
}

// datapathEvent converts a notification. The point of a trace is its
// observation point; a drop's point is the program that dropped:
// from-netdev for bpf_netdev.c, to-container when a destination endpoint
// is known, else from-container. At to-container the device is the
// destination pod's lxc device, as for the trace of that point.
func (n *Node) datapathEvent(ev datapath.Event, now time.Time) nodeapi.DatapathEvent {
	h := ev.Header()
	out := nodeapi.DatapathEvent{
		Node: n.name(), Time: now, Endpoint: h.Source,
		Frame: h.Data, OrigLen: h.OrigLen, Summary: ev.String(),
	}
	switch e := ev.(type) {
	case *datapath.TraceNotify:
		out.Type = nodeapi.EventTrace
		out.Point = e.ObsPoint.JourneyPoint()
		if out.Point == "" {
			out.Point = e.ObsPoint.String()
		}
		out.IfIndex = e.IfIndex
		out.SrcIdentity, out.DstIdentity = uint32(e.SrcIdentity), uint32(e.DstIdentity)
		out.CTState = ctState(e.Reason)
	case *datapath.DropNotify:
		out.Type = nodeapi.EventDrop
		out.Reason, out.Code = e.Reason.String(), uint8(e.Reason)
		out.IfIndex = e.IfIndex
		out.SrcIdentity, out.DstIdentity = uint32(e.SrcIdentity), uint32(e.DstIdentity)
		switch {
		case e.File == fileBPFNetdev:
			out.Point = "from-netdev"
		case e.DstID != 0:
			out.Point = "to-container"
			if idx, ok := n.endpointIfIndex(uint16(e.DstID)); ok {
				out.IfIndex = uint32(idx)
			}
		default:
			out.Point = "from-container"
		}
	}
	out.Device = n.deviceName(out.IfIndex)
	return out
}

// ctState is the CT verdict of a trace's reason in nodeapi's vocabulary,
// "" for TraceReasonUnknown (points without a CT lookup) and values the
// datapath does not define.
func ctState(r datapath.TraceReason) string {
	switch r {
	case datapath.TraceReasonPolicy:
		return nodeapi.CTNew
	case datapath.TraceReasonCTEstablished:
		return nodeapi.CTEstablished
	case datapath.TraceReasonCTReply:
		return nodeapi.CTReply
	case datapath.TraceReasonCTRelated:
		return nodeapi.CTRelated
	}
	return ""
}

// Source file ids of drop notifications (FILE_BPF_* in bpf/lib/common.h).
const (
	fileBPFLXC    = 1
	fileBPFNetdev = 2
)

func (n *Node) endpointIfIndex(id uint16) (int, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for name, p := range n.st.pods {
		if p.EndpointID == id {
			if pod := n.pods[name]; pod != nil {
				return pod.HostIndex, true
			}
		}
	}
	return 0, false
}

// deviceName resolves an ifindex of the node's namespace, cached.
func (n *Node) deviceName(idx uint32) string {
	if idx == 0 {
		return ""
	}
	if v, ok := n.devices.Load(idx); ok {
		return v.(string)
	}
	l, err := n.nl.LinkByIndex(int(idx))
	if err != nil {
		return fmt.Sprintf("if%d", idx)
	}
	n.devices.Store(idx, l.Attrs().Name)
	return l.Attrs().Name
}

func (n *Node) capture(w *watcher, pod string, s *packetSocket) {
	defer w.wg.Done()
	buf := make([]byte, 65536)
	for {
		m, outgoing, err := s.read(buf)
		if err != nil {
			select {
			case <-w.done:
			default:
				if !errors.Is(err, os.ErrClosed) {
					n.log.Warn("pod capture", "pod", pod, "err", err)
				}
			}
			return
		}
		dir := nodeapi.PodIngress
		if outgoing {
			dir = nodeapi.PodEgress
		}
		w.push(nodeapi.EventPodPacket, nodeapi.PodPacket{
			Node: n.name(), Pod: pod, External: n.externalHosts, Direction: dir, Time: time.Now(),
			Frame: append([]byte(nil), buf[:m]...),
		})
	}
}
