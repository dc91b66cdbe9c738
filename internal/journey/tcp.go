package journey

import (
	"encoding/binary"
	"net/netip"

	"github.com/hoplab/hoplab/internal/vxlan"
)

// Segment is what the headers of a TCP segment say about its flow and its
// place in sequence space, as SegmentOf reads them from a frame. Replies
// are told apart and attributed by it ([MergeReplies]); the harness's ack
// rewriting uses it too.
type Segment struct {
	// Src and Dst are the IPv4 addresses with the TCP ports.
	Src, Dst netip.AddrPort
	// Seq is the sequence number.
	Seq uint32
	// Ack is the acknowledgement number (meaningful when ACK()).
	Ack uint32
	// Flags are the TCP flags (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08,
	// ACK 0x10).
	Flags uint8
	// Payload is the number of payload bytes: the IPv4 total length less
	// the IPv4 and TCP headers (0 when that is negative).
	Payload uint32
	// Offset is where the TCP header starts in the frame.
	Offset int
}

// TCP flag bits of Segment.Flags.
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpACK = 0x10
)

// SegmentOf reads the TCP segment of an Ethernet + IPv4 + TCP frame; ok is
// false for any other frame, and for one whose IPv4 header (its header
// length or total length) leaves no room for a TCP header. A VXLAN frame's
// segment is its inner frame's (as for its hop and key), with Offset
// counted from the start of the outer frame.
func SegmentOf(frame []byte) (s Segment, ok bool) {
	if inner, ok := vxlanInner(frame); ok {
		s, ok := segmentOf(inner)
		s.Offset += len(frame) - len(inner)
		return s, ok
	}
	return segmentOf(frame)
}

// vxlanInner returns the inner frame of an Ethernet + IPv4 + UDP frame
// carrying VXLAN (package vxlan's rules), up to the end of the outer IPv4
// packet.
func vxlanInner(frame []byte) ([]byte, bool) {
	if len(frame) < 34 || frame[12] != 0x08 || frame[13] != 0x00 || frame[14+9] != 17 {
		return nil, false
	}
	ip := frame[14:]
	ihl := int(ip[0]&0x0f) * 4
	end := min(int(binary.BigEndian.Uint16(ip[2:4])), len(ip))
	if ihl < 20 || end < ihl+8 {
		return nil, false
	}
	udp := ip[ihl:end]
	_, inner, ok := vxlan.Payload(binary.BigEndian.Uint16(udp[2:4]), udp[8:])
	return inner, ok
}

func segmentOf(frame []byte) (s Segment, ok bool) {
	if len(frame) < 34 || frame[12] != 0x08 || frame[13] != 0x00 || frame[14+9] != 6 {
		return Segment{}, false
	}
	ip := frame[14:]
	ihl := int(ip[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(ip[2:4]))
	if ihl < 20 || len(ip) < ihl+20 || total < ihl+20 {
		return Segment{}, false
	}
	tcp := ip[ihl:]
	doff := int(tcp[12]>>4) * 4
	payload := max(total-ihl-doff, 0)
	return Segment{
		Src:     netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip[12:16])), binary.BigEndian.Uint16(tcp[0:2])),
		Dst:     netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip[16:20])), binary.BigEndian.Uint16(tcp[2:4])),
		Seq:     binary.BigEndian.Uint32(tcp[4:8]),
		Ack:     binary.BigEndian.Uint32(tcp[8:12]),
		Flags:   tcp[13],
		Payload: uint32(payload),
		Offset:  14 + ihl,
	}, true
}

// SYN reports whether the segment has the SYN flag.
func (s Segment) SYN() bool { return s.Flags&tcpSYN != 0 }

// ACK reports whether the segment has the ACK flag (its Ack is valid).
func (s Segment) ACK() bool { return s.Flags&tcpACK != 0 }

// FIN reports whether the segment has the FIN flag.
func (s Segment) FIN() bool { return s.Flags&tcpFIN != 0 }

// Len is the sequence space the segment takes: its payload, plus one for
// SYN and one for FIN.
func (s Segment) Len() uint32 {
	n := s.Payload
	if s.SYN() {
		n++
	}
	if s.FIN() {
		n++
	}
	return n
}

// End is the sequence number after the segment: what a peer acknowledging
// it sends as its ack.
func (s Segment) End() uint32 { return s.Seq + s.Len() }
