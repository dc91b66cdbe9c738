package replayinput

import (
	"errors"
	"fmt"

	"github.com/hoplab/hoplab/internal/capture"
)

// Reasons for refusing a packet; every refusal error wraps one of them (or
// one of capture's ErrHeadersCut, ErrBadHeader, ErrNotConvertible) in a
// *capture.Error naming the file and the packet index.
var (
	// ErrSnaplenCut means the packet was captured shorter than it was on
	// the wire; replaying the cut packet would put a different packet on
	// the wire.
	ErrSnaplenCut = errors.New("snaplen-cut packet")
	// ErrIPv6 means the packet is IPv6, which the datapath does not handle.
	ErrIPv6 = errors.New("IPv6 is not replayed")
	// ErrNonIP means the frame carries neither IPv4 nor IPv6 (ARP, LLDP...).
	ErrNonIP = errors.New("non-IP frame is not replayed")
	// ErrKeepL2 means --keep-l2 was asked for a packet whose Ethernet
	// header the reader made up (cooked or raw-IP capture).
	ErrKeepL2 = errors.New("--keep-l2 needs the capture's own Ethernet header")
	// ErrNothing means no packet of the capture is left to replay.
	ErrNothing = errors.New("nothing to replay")
	// ErrBadChecksum means the packet's IPv4 header checksum is wrong and
	// --strict asked for such packets to be refused.
	ErrBadChecksum = errors.New("wrong IPv4 header checksum")
)

// MaxNotes caps the per-packet notes of a selection: the first ones, then
// a count of the rest.
const MaxNotes = 20

// Options tune Select.
type Options struct {
	// KeepL2 means the frames are injected with their Ethernet header
	// unchanged (replay --keep-l2), so made-up headers are refused.
	KeepL2 bool
	// SkipRefused skips refused packets instead of failing
	// (replay --skip-refused).
	SkipRefused bool
	// Strict refuses packets that parse but are malformed (a wrong IPv4
	// header checksum) instead of replaying them as captured with a note
	// (replay --strict).
	Strict bool
	// KeepOuter replays VXLAN-encapsulated packets as captured, outer
	// headers included (replay --keep-outer), instead of their inner
	// packets.
	KeepOuter bool
	// Progress, when set, hears how far reading the capture is
	// (capture.ReadFileProgress); nil reports nothing.
	Progress capture.Progress
}

// Skip is a packet Select leaves out, with the reason.
type Skip struct {
	// Index is the packet's 0-based index in the capture.
	Index int
	// Reason says why, in one line.
	Reason string
}

// Selection is the outcome of Select.
type Selection struct {
	// Packets are the packets to inject, in capture order.
	Packets []capture.Packet
	// Skipped are the packets left out, in capture order.
	Skipped []Skip
	// Notes are remarks about packets that are replayed (VLAN tags
	// stripped, MACs made up), one line each.
	Notes []string
}

// Load reads the capture at path and selects the packets to replay.
func Load(path string, opts Options) (*Selection, error) {
	pkts, err := capture.ReadFileProgress(path, opts.Progress)
	if err != nil {
		return nil, err
	}
	return Select(path, pkts, opts)
}

// Select applies the replay rules (see the package documentation) to the
// packets of the capture file.
func Select(file string, pkts []capture.Packet, opts Options) (*Selection, error) {
	s := &Selection{Packets: make([]capture.Packet, 0, len(pkts))}
	var synthesized, vlans, tunnelled int
	var perPacket []string
	for _, p := range pkts {
		if p.Flags.Has(capture.Duplicate) {
			s.Skipped = append(s.Skipped, Skip{Index: p.Index,
				Reason: fmt.Sprintf("another sighting of packet %d (tcpdump -i any records a forwarded packet once per interface): replayed once", p.DuplicateOf)})
			continue
		}
		if err := refusal(file, p, opts); err != nil {
			if !opts.SkipRefused {
				return nil, err
			}
			s.Skipped = append(s.Skipped, Skip{Index: p.Index, Reason: reason(err)})
			continue
		}
		if p.Flags.Has(capture.BadIPChecksum) {
			got, want := capture.IPv4HeaderChecksum(ipHeader(p.Data))
			perPacket = append(perPacket, fmt.Sprintf("packet %d: IPv4 header checksum 0x%04x is wrong (0x%04x expected): replayed as captured, so the first hop that checks it drops it (--strict refuses it)", p.Index, got, want))
		}
		if p.Flags.Has(capture.L2Synthesized) {
			synthesized++
		}
		if p.Flags.Has(capture.VLANStripped) {
			vlans++
		}
		if p.Flags.Has(capture.VXLANDecapsulated) {
			tunnelled++
			if opts.KeepOuter {
				p.OrigLen += len(p.Outer) - len(p.Data)
				p.Data = p.Outer
			}
		}
		s.Packets = append(s.Packets, p)
	}
	if len(perPacket) > MaxNotes {
		perPacket = append(perPacket[:MaxNotes], fmt.Sprintf("... and %d more packet(s) with notes like these", len(perPacket)-MaxNotes))
	}
	s.Notes = append(s.Notes, perPacket...)
	if synthesized > 0 {
		s.Notes = append(s.Notes, fmt.Sprintf("%d packet(s) have no Ethernet header of their own (cooked or raw-IP capture): their MACs are set at injection", synthesized))
	}
	if vlans > 0 {
		s.Notes = append(s.Notes, fmt.Sprintf("%d packet(s) had VLAN tags: replayed without them", vlans))
	}
	switch {
	case tunnelled > 0 && opts.KeepOuter:
		s.Notes = append(s.Notes, fmt.Sprintf("%d packet(s) were VXLAN-encapsulated (a tunnel-mode cluster's wire): replayed as captured, outer headers included (--keep-outer)", tunnelled))
	case tunnelled > 0:
		s.Notes = append(s.Notes, fmt.Sprintf("%d packet(s) were VXLAN-encapsulated (a tunnel-mode cluster's wire): their inner packets are replayed (--keep-outer replays them as captured)", tunnelled))
	}
	if len(s.Packets) == 0 {
		return s, &capture.Error{File: file, Index: -1, Err: fmt.Errorf("%w: all %d packet(s) were skipped", ErrNothing, len(pkts))}
	}
	return s, nil
}

// refusal returns the error refusing p, or nil when p can be replayed.
func refusal(file string, p capture.Packet, opts Options) error {
	wrap := func(err error) error { return &capture.Error{File: file, Index: p.Index, Err: err} }
	switch {
	case p.Refusal != nil:
		return p.Refusal
	case p.Flags.Has(capture.IPv6):
		return wrap(fmt.Errorf("%w: the datapath handles IPv4 only", ErrIPv6))
	case p.Flags.Has(capture.NonIP):
		return wrap(fmt.Errorf("%w (ethertype %s)", ErrNonIP, etherType(p.Data)))
	case p.Flags.Has(capture.Truncated):
		return wrap(fmt.Errorf("%w: captured %d of %d bytes; capture with -s 0", ErrSnaplenCut, len(p.Data), p.OrigLen))
	case opts.KeepL2 && p.Flags.Has(capture.L2Synthesized):
		return wrap(fmt.Errorf("%w, and this capture's link type %d has none", ErrKeepL2, p.LinkType))
	case opts.Strict && p.Flags.Has(capture.BadIPChecksum):
		got, want := capture.IPv4HeaderChecksum(ipHeader(p.Data))
		return wrap(fmt.Errorf("%w: 0x%04x, 0x%04x expected (--strict)", ErrBadChecksum, got, want))
	}
	return nil
}

// ipHeader returns the IPv4 header of an Ethernet frame whose headers the
// reader checked.
func ipHeader(frame []byte) []byte {
	ip := frame[14:]
	return ip[:int(ip[0]&0x0f)*4]
}

// reason is the part of a refusal after the file and index.
func reason(err error) string {
	var ce *capture.Error
	if errors.As(err, &ce) {
		return ce.Err.Error()
	}
	return err.Error()
}

func etherType(frame []byte) string {
	if len(frame) < 14 {
		return "unknown"
	}
	t := uint16(frame[12])<<8 | uint16(frame[13])
	name := map[uint16]string{0x0806: " ARP", 0x88cc: " LLDP", 0x8035: " RARP", 0x88a8: " 802.1ad", 0x8100: " 802.1Q"}[t]
	return fmt.Sprintf("0x%04x%s", t, name)
}
