package capture

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"time"
)

// DuplicateWindow is how far apart two sightings of one packet may be for
// MarkDuplicates to pair them.
const DuplicateWindow = 200 * time.Millisecond

// sighting is what stays the same when a router or NAT forwards an IPv4
// packet: protocol, IP ID and the L4 header fields NAT does not touch plus
// the payload. One side's address and port may change (DNAT or SNAT); the
// side whose address is unchanged keeps its port.
type sighting struct {
	proto        byte
	id           uint16
	src, dst     [4]byte
	sport, dport uint16 // TCP and UDP ports, 0 for other protocols
	ttl          byte
	l4           []byte // L4 header without ports and checksum, plus payload
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
		s.sport, s.dport = binary.BigEndian.Uint16(l4[0:2]), binary.BigEndian.Uint16(l4[2:4])
		s.l4 = append(append([]byte(nil), l4[4:16]...), l4[20:]...)
	case protoUDP:
		if len(l4) < 8 {
			return sighting{}, false
		}
		s.sport, s.dport = binary.BigEndian.Uint16(l4[0:2]), binary.BigEndian.Uint16(l4[2:4])
		s.l4 = append([]byte(nil), l4[8:]...)
	case protoICMP:
		if len(l4) < 8 {
			return sighting{}, false
		}
		// type, code; identifier and sequence (the identifier is ICMP's
		// port: it stays); then the payload.
		s.l4 = append(append([]byte(nil), l4[0:2]...), l4[4:]...)
	default:
		s.l4 = append([]byte(nil), l4...)
	}
	return s, true
}

// sameAs reports whether later could be earlier forwarded: TTL kept or
// lowered, and at most one side rewritten by NAT; a side whose address is
// unchanged kept its port, so two packets between the same hosts on
// different ports are different packets.
func (s sighting) sameAs(earlier sighting) bool {
	srcKept, dstKept := s.src == earlier.src, s.dst == earlier.dst
	if srcKept && s.sport != earlier.sport || dstKept && s.dport != earlier.dport {
		return false
	}
	return (srcKept || dstKept) && s.proto == earlier.proto && s.id == earlier.id && s.ttl <= earlier.ttl &&
		bytes.Equal(s.l4, earlier.l4)
}

// keys hashes the fields every sighting of one packet shares with one side
// (address and port) each: a later sighting keeps at least one side, so it
// shares at least one key.
func (s sighting) keys(seed maphash.Seed) [2]uint64 {
	var out [2]uint64
	for i, side := range [2]struct {
		addr [4]byte
		port uint16
	}{{s.src, s.sport}, {s.dst, s.dport}} {
		var h maphash.Hash
		h.SetSeed(seed)
		h.Write([]byte{byte(i), s.proto, byte(s.id >> 8), byte(s.id), byte(side.port >> 8), byte(side.port)})
		h.Write(side.addr[:])
		h.Write(s.l4)
		out[i] = h.Sum64()
	}
	return out
}

// MarkDuplicates flags the packets that are another sighting of an earlier
// packet of the same capture and sets their DuplicateOf. `tcpdump -i any`
// records a forwarded packet once per interface it crosses (pod veth,
// bond0, ...), already rewritten by DNAT and with a lower TTL; replaying
// those sightings would inject the packet twice. Two IPv4 packets are
// sightings of one when protocol, IP ID, TCP sequence/acknowledgement/flags
// (or ICMP type/identifier/sequence) and payload are equal, at least one
// side (address and port) is unchanged and a side whose address is
// unchanged kept its port, the TTL did not grow, they were captured at most
// DuplicateWindow apart and on different interfaces (pcapng interface or
// SLL2 ifindex; any two packets of an SLL v1 capture, which does not record
// the interface). Single-interface captures therefore never have
// duplicates. ReadFile calls it. It takes time linear in the number of
// packets: earlier sightings are found by a hash of the shared fields.
func MarkDuplicates(pkts []Packet) { markDuplicates(pkts, nil) }

// markDuplicates is MarkDuplicates calling progress (when not nil) with
// StageDedup every progressEvery packets and at the end.
func markDuplicates(pkts []Packet, progress Progress) {
	total := int64(len(pkts))
	if progress != nil {
		defer progress(StageDedup, total, total)
	}
	type seen struct {
		idx  int
		s    sighting
		keys [2]uint64
	}
	seed := maphash.MakeSeed()
	byKey := map[uint64][]int{} // key → indexes into window, oldest first
	var window []seen           // sightings in capture order; head is the oldest kept
	head := 0
	forget := func(k uint64) {
		if l := byKey[k][1:]; len(l) > 0 {
			byKey[k] = l
		} else {
			delete(byKey, k)
		}
	}
	for i := range pkts {
		if progress != nil && i > 0 && i%progressEvery == 0 {
			progress(StageDedup, int64(i), total)
		}
		p := &pkts[i]
		s, ok := sightingOf(*p)
		if !ok {
			continue
		}
		// Forget sightings older than the window.
		for ; head < len(window) && p.Timestamp.Sub(pkts[window[head].idx].Timestamp) > DuplicateWindow; head++ {
			w := &window[head]
			w.s.l4 = nil // the payload copy is not needed any more
			forget(w.keys[0])
			if w.keys[1] != w.keys[0] {
				forget(w.keys[1])
			}
		}
		keys := s.keys(seed)
		// The earliest earlier sighting wins, whichever side it kept.
		match := -1
		for _, k := range keys {
			for _, w := range byKey[k] {
				if match >= 0 && w >= match {
					break
				}
				r := window[w]
				q := pkts[r.idx]
				if p.Timestamp.Sub(q.Timestamp) > DuplicateWindow {
					continue // out of order in the capture, and too old
				}
				// Sightings are on different interfaces: pcapng interfaces
				// or SLL2 ifindexes differ, or SLL v1, which does not say.
				distinct := q.Interface != p.Interface || q.IfIndex != p.IfIndex
				unknown := p.LinkType == LinkTypeLinuxSLL && q.LinkType == LinkTypeLinuxSLL
				if (distinct || unknown) && s.sameAs(r.s) {
					match = w
					break
				}
			}
		}
		if match >= 0 {
			q := pkts[window[match].idx]
			p.Flags |= Duplicate
			p.DuplicateOf = window[match].idx
			for q.Flags.Has(Duplicate) {
				p.DuplicateOf = q.DuplicateOf
				q = pkts[q.DuplicateOf]
			}
		}
		byKey[keys[0]] = append(byKey[keys[0]], len(window))
		if keys[1] != keys[0] {
			byKey[keys[1]] = append(byKey[keys[1]], len(window))
		}
		window = append(window, seen{i, s, keys})
	}
}
