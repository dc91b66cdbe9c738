package capture

import (
	"bytes"
	"encoding/binary"
	"time"
)

// DuplicateWindow is how far apart two sightings of one packet may be for
// MarkDuplicates to pair them.
const DuplicateWindow = 200 * time.Millisecond

// sighting is what stays the same when a router or NAT forwards an IPv4
// packet: protocol, IP ID and the L4 header fields NAT does not touch plus
// the payload. Addresses and ports may change on one side only.
type sighting struct {
	proto    byte
	id       uint16
	src, dst [4]byte
	ttl      byte
	l4       []byte // L4 header without ports and checksum, plus payload
}

func sightingOf(p Packet) (sighting, bool) {
	if !p.Replayable() || p.Flags&(NonIP|IPv6|IPFragment) != 0 || len(p.Data) < ethHeaderLen+20 {
		return sighting{}, false
	}
	ip := p.Data[ethHeaderLen:]
	ihl := int(ip[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(ip[2:4]))
	if total > len(ip) {
		total = len(ip)
	}
	if total < ihl {
		return sighting{}, false
	}
	s := sighting{proto: ip[9], id: binary.BigEndian.Uint16(ip[4:6]), ttl: ip[8]}
	copy(s.src[:], ip[12:16])
	copy(s.dst[:], ip[16:20])
	l4 := ip[ihl:total]
	switch s.proto {
	case protoTCP:
		if len(l4) < 20 {
			return sighting{}, false
		}
		// seq, ack, offset/flags, window; then options and payload.
		s.l4 = append(append([]byte(nil), l4[4:16]...), l4[20:]...)
	case protoUDP:
		if len(l4) < 8 {
			return sighting{}, false
		}
		s.l4 = append([]byte(nil), l4[8:]...)
	case protoICMP:
		if len(l4) < 8 {
			return sighting{}, false
		}
		s.l4 = append(append([]byte(nil), l4[0:2]...), l4[4:]...)
	default:
		s.l4 = append([]byte(nil), l4...)
	}
	return s, true
}

// sameAs reports whether later could be earlier forwarded (TTL kept or
// lowered, at most one side rewritten by NAT).
func (s sighting) sameAs(earlier sighting) bool {
	return s.proto == earlier.proto && s.id == earlier.id && s.ttl <= earlier.ttl &&
		(s.src == earlier.src || s.dst == earlier.dst) && bytes.Equal(s.l4, earlier.l4)
}

// MarkDuplicates flags the packets that are another sighting of an earlier
// packet of the same capture and sets their DuplicateOf. `tcpdump -i any`
// records a forwarded packet once per interface it crosses (pod veth,
// bond0, ...), already rewritten by DNAT and with a lower TTL; replaying
// those sightings would inject the packet twice. Two IPv4 packets are
// sightings of one when protocol, IP ID, TCP sequence/acknowledgement/flags
// (or ICMP type/id/sequence) and payload are equal, at least one of the
// addresses is unchanged, the TTL did not grow, they were captured at most
// DuplicateWindow apart and on different interfaces (pcapng interface or
// SLL2 ifindex; any two packets of an SLL v1 capture, which does not record
// the interface). Single-interface captures therefore never have
// duplicates. ReadFile calls it.
func MarkDuplicates(pkts []Packet) {
	type seen struct {
		idx int
		s   sighting
	}
	var recent []seen
	for i := range pkts {
		p := &pkts[i]
		s, ok := sightingOf(*p)
		if !ok {
			continue
		}
		// Forget sightings older than the window.
		keep := recent[:0]
		for _, r := range recent {
			if p.Timestamp.Sub(pkts[r.idx].Timestamp) <= DuplicateWindow {
				keep = append(keep, r)
			}
		}
		recent = keep
		for _, r := range recent {
			q := pkts[r.idx]
			// Sightings are on different interfaces: pcapng interfaces or SLL2
			// ifindexes differ, or SLL v1, which does not say.
			distinct := q.Interface != p.Interface || q.IfIndex != p.IfIndex
			unknown := p.LinkType == LinkTypeLinuxSLL && q.LinkType == LinkTypeLinuxSLL
			if distinct || unknown {
				if s.sameAs(r.s) {
					p.Flags |= Duplicate
					p.DuplicateOf = r.idx
					for q.Flags.Has(Duplicate) {
						p.DuplicateOf = q.DuplicateOf
						q = pkts[q.DuplicateOf]
					}
					break
				}
			}
		}
		recent = append(recent, seen{i, s})
	}
}
