package cluster

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// SynAckWait bounds how long Replay with TCPAckRewrite waits for the
// SYN-ACK of a flow before sending the flow's next packets.
const SynAckWait = 3 * time.Second

// segment is what ack rewriting needs of a TCP frame.
type segment struct {
	src, dst   netip.AddrPort
	seq, ack   uint32
	syn, isAck bool
	tcpOff     int // offset of the TCP header in the frame
}

// segmentOf decodes an Ethernet + IPv4 + TCP frame; ok is false otherwise.
func segmentOf(frame []byte) (segment, bool) {
	if len(frame) < 34 || frame[12] != 0x08 || frame[13] != 0x00 || frame[14+9] != 6 {
		return segment{}, false
	}
	ip := frame[14:]
	ihl := int(ip[0]&0x0f) * 4
	if ihl < 20 || len(ip) < ihl+20 {
		return segment{}, false
	}
	tcp := ip[ihl:]
	src := netip.AddrFrom4([4]byte(ip[12:16]))
	dst := netip.AddrFrom4([4]byte(ip[16:20]))
	return segment{
		src:    netip.AddrPortFrom(src, binary.BigEndian.Uint16(tcp[0:2])),
		dst:    netip.AddrPortFrom(dst, binary.BigEndian.Uint16(tcp[2:4])),
		seq:    binary.BigEndian.Uint32(tcp[4:8]),
		ack:    binary.BigEndian.Uint32(tcp[8:12]),
		syn:    tcp[13]&0x02 != 0,
		isAck:  tcp[13]&0x10 != 0,
		tcpOff: 14 + ihl,
	}, true
}

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

func newAckTracker(plan []planned) *ackTracker {
	a := &ackTracker{changed: make(chan struct{}), live: map[netip.AddrPort]uint32{}, orig: map[netip.AddrPort]uint32{}, synSent: map[netip.AddrPort]bool{}, wait: SynAckWait}
	for _, p := range plan {
		if s, ok := segmentOf(p.data); ok && s.syn && s.isAck {
			a.orig[s.dst] = s.seq
		}
	}
	return a
}

// observe takes a frame seen anywhere in the cluster: a SYN-ACK toward a
// client whose SYN was replayed gives the live ISN.
func (a *ackTracker) observe(frame []byte) {
	s, ok := segmentOf(frame)
	if !ok || !s.syn || !s.isAck {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.synSent[s.dst] {
		return
	}
	if _, seen := a.live[s.dst]; seen {
		return
	}
	a.live[s.dst] = s.seq
	close(a.changed)
	a.changed = make(chan struct{})
}

// sending notes a frame about to be sent and returns it with its ack
// rewritten when it is a client's segment after its SYN, waiting (at most
// SynAckWait) for the live SYN-ACK.
func (a *ackTracker) sending(ctx context.Context, index int, frame []byte) ([]byte, error) {
	s, ok := segmentOf(frame)
	if !ok {
		return frame, nil
	}
	a.mu.Lock()
	if s.syn && !s.isAck {
		a.synSent[s.src] = true
		a.mu.Unlock()
		return frame, nil
	}
	if !s.isAck || !a.synSent[s.src] {
		a.mu.Unlock()
		return frame, nil
	}
	deadline := time.NewTimer(a.wait)
	defer deadline.Stop()
	for {
		isn, seen := a.live[s.src]
		if seen {
			orig := a.orig[s.src]
			a.mu.Unlock()
			return rewriteAck(frame, s, s.ack-orig+isn), nil
		}
		ch := a.changed
		a.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline.C:
			return nil, fmt.Errorf("packet %d: no SYN-ACK toward %s within %v to rewrite its ack from", index, s.src, a.wait)
		}
		a.mu.Lock()
	}
}

// rewriteAck returns frame with the TCP ack set to ack and the TCP checksum
// updated incrementally (RFC 1624).
func rewriteAck(frame []byte, s segment, ack uint32) []byte {
	f := append([]byte(nil), frame...)
	tcp := f[s.tcpOff:]
	binary.BigEndian.PutUint32(tcp[8:12], ack)
	sum := uint32(^binary.BigEndian.Uint16(tcp[16:18]))
	for _, w := range []uint16{uint16(s.ack >> 16), uint16(s.ack)} {
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
