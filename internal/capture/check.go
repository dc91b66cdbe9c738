package capture

import (
	"encoding/binary"
	"fmt"
)

// IP protocol numbers whose headers are checked.
const (
	protoICMP = 1
	protoTCP  = 6
	protoUDP  = 17
	protoSCTP = 132
)

// checkHeaders classifies the Ethernet frame in p.Data and verifies that its
// IP and L4 headers are complete; it returns the reason the packet cannot be
// replayed, or nil.
func checkHeaders(p *Packet) error {
	cut := len(p.Data) < p.OrigLen
	if cut {
		p.Flags |= Truncated
	}
	missing := func(what string, need, have int) error {
		if cut {
			return fmt.Errorf("%w: %s has %d of %d bytes (frame %d of %d bytes captured)",
				ErrHeadersCut, what, have, need, len(p.Data), p.OrigLen)
		}
		return fmt.Errorf("%w: %s needs %d bytes, frame has %d", ErrBadHeader, what, need, have)
	}
	l3 := p.Data[ethHeaderLen:]
	switch binary.BigEndian.Uint16(p.Data[12:14]) {
	case etherTypeIPv6:
		p.Flags |= IPv6
		if len(l3) < 40 {
			return missing("IPv6 header", 40, len(l3))
		}
		if v := l3[0] >> 4; v != 6 {
			return fmt.Errorf("%w: Ethertype IPv6 but IP version %d", ErrBadHeader, v)
		}
		return nil
	case etherTypeIPv4:
	default:
		p.Flags |= NonIP
		return nil
	}
	if len(l3) < 20 {
		return missing("IPv4 header", 20, len(l3))
	}
	if v := l3[0] >> 4; v != 4 {
		return fmt.Errorf("%w: Ethertype IPv4 but IP version %d", ErrBadHeader, v)
	}
	ihl := int(l3[0]&0x0f) * 4
	if ihl < 20 {
		return fmt.Errorf("%w: IPv4 header length %d is below 20", ErrBadHeader, ihl)
	}
	if len(l3) < ihl {
		return missing("IPv4 header", ihl, len(l3))
	}
	if got, want := IPv4HeaderChecksum(l3[:ihl]); got != want {
		p.Flags |= BadIPChecksum
	}
	total := int(binary.BigEndian.Uint16(l3[2:4]))
	if total < ihl {
		return fmt.Errorf("%w: IPv4 total length %d is below its header length %d", ErrBadHeader, total, ihl)
	}
	if !cut && total > len(l3) {
		return fmt.Errorf("%w: IPv4 total length %d exceeds the %d bytes after the Ethernet header", ErrBadHeader, total, len(l3))
	}
	frag := binary.BigEndian.Uint16(l3[6:8])
	if frag&0x3fff != 0 { // MF set or offset non-zero
		p.Flags |= IPFragment
	}
	if frag&0x1fff != 0 {
		return nil // non-first fragment: no L4 header
	}
	avail := len(l3)
	if total < avail {
		avail = total // Ethernet padding is not L4
	}
	l4 := l3[ihl:avail]
	var (
		name string
		need int
	)
	switch l3[9] {
	case protoTCP:
		name, need = "TCP header", 20
		if len(l4) >= 13 {
			if off := int(l4[12]>>4) * 4; off >= 20 {
				need = off
			} else {
				return fmt.Errorf("%w: TCP data offset %d is below 20", ErrBadHeader, off)
			}
		}
	case protoUDP:
		name, need = "UDP header", 8
	case protoICMP:
		name, need = "ICMP header", 8
	case protoSCTP:
		name, need = "SCTP header", 12
	default:
		return nil
	}
	if len(l4) < need {
		if !cut || total <= len(l3) {
			// The IP datagram itself is shorter than the L4 header.
			return fmt.Errorf("%w: %s needs %d bytes, IP payload has %d", ErrBadHeader, name, need, len(l4))
		}
		return missing(name, need, len(l4))
	}
	return nil
}

// IPv4HeaderChecksum returns the checksum field of the IPv4 header hdr
// (IHL*4 bytes) and the value it should have.
func IPv4HeaderChecksum(hdr []byte) (got, want uint16) {
	var sum uint32
	for i := 0; i+1 < len(hdr); i += 2 {
		if i != 10 {
			sum += uint32(hdr[i])<<8 | uint32(hdr[i+1])
		}
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return binary.BigEndian.Uint16(hdr[10:12]), ^uint16(sum)
}
