package cluster

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/hoplab/hoplab/internal/journey"
)

// SynAckWait bounds how long Replay with TCPAckRewrite waits for the
// SYN-ACK of a flow before sending the flow's next packets.
const SynAckWait = 3 * time.Second

// ackTracker rewrites the acknowledgement numbers of replayed TCP
// segments, tcpliveplay-style: a capture's acks count from the server's
// ISN in the capture (its SYN-ACK's sequence number, or 0 when the capture
// has none: the fixtures' placeholder), the live server picks another ISN,
// so every ack of the client is shifted by the difference once the live
// SYN-ACK has been seen.
type ackTracker struct {
	mu      sync.Mutex
	changed chan struct{}
	live    map[netip.AddrPort]uint32 // client → live server ISN
	orig    map[netip.AddrPort]uint32 // client → server ISN in the capture
	synSent map[netip.AddrPort]bool   // client → its SYN was replayed
	wait    time.Duration
}

func newAckTracker(plan []Planned) *ackTracker {
	a := &ackTracker{changed: make(chan struct{}), live: map[netip.AddrPort]uint32{}, orig: map[netip.AddrPort]uint32{}, synSent: map[netip.AddrPort]bool{}, wait: SynAckWait}
	for _, p := range plan {
		if s, ok := journey.SegmentOf(p.Data); ok && s.SYN() && s.ACK() {
			a.orig[s.Dst] = s.Seq
		}
	}
	return a
}

// observe takes a frame seen anywhere in the cluster: a SYN-ACK toward a
// client whose SYN was replayed gives the live ISN.
func (a *ackTracker) observe(frame []byte) {
	s, ok := journey.SegmentOf(frame)
	if !ok || !s.SYN() || !s.ACK() {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.synSent[s.Dst] {
		return
	}
	if _, seen := a.live[s.Dst]; seen {
		return
	}
	a.live[s.Dst] = s.Seq
	close(a.changed)
	a.changed = make(chan struct{})
}

// sending notes a frame about to be sent and returns it with its ack
// rewritten when it is a client's segment after its SYN, waiting (at most
// SynAckWait) for the live SYN-ACK.
func (a *ackTracker) sending(ctx context.Context, index int, frame []byte) ([]byte, error) {
	s, ok := journey.SegmentOf(frame)
	if !ok {
		return frame, nil
	}
	a.mu.Lock()
	if s.SYN() && !s.ACK() {
		a.synSent[s.Src] = true
		a.mu.Unlock()
		return frame, nil
	}
	if !s.ACK() || !a.synSent[s.Src] {
		a.mu.Unlock()
		return frame, nil
	}
	deadline := time.NewTimer(a.wait)
	defer deadline.Stop()
	for {
		isn, seen := a.live[s.Src]
		if seen {
			orig := a.orig[s.Src]
			a.mu.Unlock()
			return rewriteAck(frame, s, s.Ack-orig+isn), nil
		}
		ch := a.changed
		a.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline.C:
			return nil, fmt.Errorf("packet %d: no SYN-ACK toward %s within %v to rewrite its ack from", index, s.Src, a.wait)
		}
		a.mu.Lock()
	}
}

// rewriteAck returns frame with the TCP ack set to ack and the TCP checksum
// updated incrementally (RFC 1624).
func rewriteAck(frame []byte, s journey.Segment, ack uint32) []byte {
	f := append([]byte(nil), frame...)
	tcp := f[s.Offset:]
	binary.BigEndian.PutUint32(tcp[8:12], ack)
	sum := uint32(^binary.BigEndian.Uint16(tcp[16:18]))
	for _, w := range []uint16{uint16(s.Ack >> 16), uint16(s.Ack)} {
		sum += uint32(^w)
	}
	for _, w := range []uint16{uint16(ack >> 16), uint16(ack)} {
		sum += uint32(w)
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(tcp[16:18], ^uint16(sum))
	return f
}
