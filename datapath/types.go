package datapath

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Proto is an IP protocol number as the datapath keys it.
type Proto uint8

// IP protocols the datapath tracks.
const (
	ProtoICMP Proto = 1
	ProtoTCP  Proto = 6
	ProtoUDP  Proto = 17
)

// String returns the protocol name as Cilium prints it.
func (p Proto) String() string {
	switch p {
	case ProtoICMP:
		return "ICMP"
	case ProtoTCP:
		return "TCP"
	case ProtoUDP:
		return "UDP"
	}
	return fmt.Sprintf("proto(%d)", uint8(p))
}

// Identity is a security identity.
type Identity uint32

// Reserved identities (Cilium's numbering).
const (
	IdentityUnknown Identity = 0
	IdentityHost    Identity = 1
	IdentityWorld   Identity = 2
)

// Direction is the traffic direction of a metric or a policy entry.
type Direction uint8

// Directions (Cilium's METRIC_INGRESS and METRIC_EGRESS).
const (
	Ingress Direction = 1
	Egress  Direction = 2
)

// String returns "ingress" or "egress".
func (d Direction) String() string {
	switch d {
	case Ingress:
		return "ingress"
	case Egress:
		return "egress"
	}
	return fmt.Sprintf("direction(%d)", uint8(d))
}

// be32 returns an IPv4 address as the datapath stores it: the network-order
// bytes read as a little-endian uint32.
func be32(a netip.Addr) (uint32, error) {
	if !a.Is4() {
		return 0, fmt.Errorf("%v: %w", a, ErrNotIPv4)
	}
	b := a.As4()
	return binary.LittleEndian.Uint32(b[:]), nil
}

// addrFrom32 is the inverse of be32.
func addrFrom32(v uint32) netip.Addr {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

// be16 returns a port in network byte order as the datapath stores it.
func be16(port uint16) uint16 { return port<<8 | port>>8 }

// port16 is the inverse of be16.
func port16(v uint16) uint16 { return v<<8 | v>>8 }
