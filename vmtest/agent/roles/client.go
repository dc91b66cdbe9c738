package roles

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/hoplab/hoplab/datapath"
	"github.com/hoplab/hoplab/vmtest/agent/workload"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
	"golang.org/x/sys/unix"
)

// Limits of client actions and injections.
const (
	// DefaultClientTimeout bounds each client action unless the request
	// says otherwise.
	DefaultClientTimeout = 3 * time.Second
	// MaxClientCount is the most concurrent actions of one request.
	MaxClientCount = 1024
	// MaxGap is the longest pause before an injected frame.
	MaxGap = time.Minute
	// MaxStreamDuration is the longest http-stream.
	MaxStreamDuration = 10 * time.Minute
)

// Client runs Count concurrent client actions of req.Kind from req.Pod's
// namespace (nodeapi.HostClient: the node's own, as a host process) to
// req.Dst and returns their outcomes in order. A failed
// action is an outcome, not an error; errors are for bad requests.
func (n *Node) Client(ctx context.Context, req nodeapi.ClientAction) (nodeapi.ClientResult, error) {
	var res nodeapi.ClientResult
	var p workload.NetNS
	if req.Pod == nodeapi.HostClient && !n.externalHosts {
		p = hostNS{n.ns}
	} else {
		pod, err := n.pod(req.Pod)
		if err != nil {
			return res, err
		}
		p = pod
	}
	p = workload.WithSourcePort(p, req.Sport)
	count := req.Count
	switch {
	case count == 0:
		count = 1
	case count < 0 || count > MaxClientCount:
		return res, fmt.Errorf("pod %s: count %d outside 1..%d", req.Pod, req.Count, MaxClientCount)
	}
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = DefaultClientTimeout
	}
	path := req.Path
	if path == "" {
		path = "/"
	}
	if path[0] != '/' {
		return res, fmt.Errorf("pod %s: path %q does not start with /", req.Pod, req.Path)
	}
	var action func(context.Context) workload.Outcome
	switch req.Kind {
	case nodeapi.ClientTCP, nodeapi.ClientHTTP, nodeapi.ClientUDP, nodeapi.ClientHTTPStream:
		dst, err := netip.ParseAddrPort(req.Dst)
		if err != nil {
			return res, fmt.Errorf("pod %s: %s destination %q: want ip:port", req.Pod, req.Kind, req.Dst)
		}
		switch req.Kind {
		case nodeapi.ClientTCP:
			action = func(ctx context.Context) workload.Outcome { return workload.TCPConnect(ctx, p, dst) }
		case nodeapi.ClientHTTP:
			action = func(ctx context.Context) workload.Outcome { return workload.HTTPGetPath(ctx, p, dst, path) }
		case nodeapi.ClientHTTPStream:
			if req.Duration <= 0 || req.Duration > MaxStreamDuration {
				return res, fmt.Errorf("pod %s: http-stream duration %v outside (0, %v]", req.Pod, req.Duration, MaxStreamDuration)
			}
			each, d := timeout, req.Duration
			// The action's own deadline must not end the stream early.
			timeout = d + each
			action = func(ctx context.Context) workload.Outcome { return workload.HTTPStreamPath(ctx, p, dst, path, d, each) }
		default:
			payload := req.Payload
			if len(payload) == 0 {
				payload = []byte("hoplab")
			}
			action = func(ctx context.Context) workload.Outcome { return workload.UDPExchange(ctx, p, dst, payload) }
		}
	case nodeapi.ClientPing:
		dst, err := netip.ParseAddr(req.Dst)
		if err != nil {
			return res, fmt.Errorf("pod %s: ping destination %q: want an IP address", req.Pod, req.Dst)
		}
		action = func(ctx context.Context) workload.Outcome { return workload.Ping(ctx, p, dst) }
	default:
		return res, fmt.Errorf("pod %s: unknown client kind %q (want tcp, http, http-stream, udp or ping)", req.Pod, req.Kind)
	}
	since := monotonicNow()
	res.Outcomes = make([]workload.Outcome, count)
	var wg sync.WaitGroup
	for i := range count {
		wg.Add(1)
		go func() {
			defer wg.Done()
			actx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			res.Outcomes[i] = action(actx)
		}()
	}
	wg.Wait()
	n.addSockXlates(&res, req.Dst, since)
	return res, nil
}

// addSockXlates gives each outcome the socket LB's translation of its
// socket: by cookie when the socket connected, else (a failed connect)
// the latest translation of req's destination made since the actions
// started. Nothing without socket LB.
func (n *Node) addSockXlates(res *nodeapi.ClientResult, dst string, since time.Duration) {
	n.mu.Lock()
	lb := n.sockLB
	n.mu.Unlock()
	if lb == nil {
		return
	}
	all, err := lb.Translations()
	if err != nil {
		n.log.Warn("socket LB translations", "err", err)
		return
	}
	want, _ := netip.ParseAddrPort(dst)
	res.Sock = make([]*nodeapi.SockXlate, len(res.Outcomes))
	for i, o := range res.Outcomes {
		var best *datapath.SockTranslation
		for j := range all {
			t := &all[j]
			switch {
			case o.Cookie != 0 && t.Cookie == o.Cookie:
				best = t
			case o.Cookie == 0 && t.Service == want && t.Time >= since && (best == nil || t.Time > best.Time):
				best = t
			}
		}
		if best != nil {
			res.Sock[i] = &nodeapi.SockXlate{Hook: best.Hook.String(), Proto: best.Proto.String(), Service: best.Service,
				Backend: best.Backend, NoBackend: best.NoBackend, Cookie: best.Cookie}
		}
	}
}

// monotonicNow is CLOCK_MONOTONIC, the clock of the socket LB's records.
func monotonicNow() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// Inject writes req.Frames out of req.Pod's eth0 through an AF_PACKET
// socket in the pod's namespace, so they cross the veth into the lxc
// device's tc ingress exactly like the pod's own traffic. Gaps, when
// given, are the pauses before each frame.
//
// With req.SuppressRST the pod's eth0 drops the TCP RSTs the pod's kernel
// sends on the frames' flows (it has no socket for them) from before the
// first frame on, and keeps dropping them on the flows of every following
// injection with the flag; an injection without it, or MethodReset, ends
// the suppression. Injected RSTs are always sent.
//
// Errors name the frame by its index in req.Frames, not the pod: the
// caller names that.
func (n *Node) Inject(ctx context.Context, req nodeapi.Inject) (nodeapi.Injected, error) {
	var res nodeapi.Injected
	p, err := n.pod(req.Pod)
	if err != nil {
		return res, err
	}
	if len(req.Gaps) != 0 && len(req.Gaps) != len(req.Frames) {
		return res, fmt.Errorf("%d gaps for %d frames", len(req.Gaps), len(req.Frames))
	}
	for i, f := range req.Frames {
		if len(f) < 14 {
			return res, fmt.Errorf("frame %d: %d bytes is shorter than an Ethernet header", i, len(f))
		}
		if len(f) > 65535 {
			return res, fmt.Errorf("frame %d: %d bytes is too long", i, len(f))
		}
		if i < len(req.Gaps) && (req.Gaps[i] < 0 || req.Gaps[i] > MaxGap) {
			return res, fmt.Errorf("frame %d: gap %v outside 0..%v", i, req.Gaps[i], MaxGap)
		}
	}
	if req.SuppressRST {
		err = n.suppressRST(req.Pod, p, req.Frames, req.MaxFlows)
	} else {
		err = n.stopRST(req.Pod, true)
	}
	if err != nil {
		return res, err
	}
	s, err := openPacketSocket(p, false)
	if err != nil {
		return res, err
	}
	defer s.close()
	for i, f := range req.Frames {
		if i < len(req.Gaps) && req.Gaps[i] > 0 {
			t := time.NewTimer(req.Gaps[i])
			select {
			case <-ctx.Done():
				t.Stop()
				return res, fmt.Errorf("frame %d: %w", i, ctx.Err())
			case <-t.C:
			}
		}
		now := time.Now()
		if err := s.write(f); err != nil {
			return res, fmt.Errorf("frame %d: send: %w", i, err)
		}
		res.Sent++
		res.Times = append(res.Times, now)
	}
	return res, nil
}
