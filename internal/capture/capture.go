package capture

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// MaxRecordLen is the largest record (captured packet, or pcapng block) the
// reader accepts, whatever the file header claims; it matches tcpdump's
// maximum snapshot length.
const MaxRecordLen = 262144

// Sentinel errors; every error returned by this package wraps one of them in
// an [*Error], so errors.Is works on the result.
var (
	// ErrEmpty means the file has no bytes at all.
	ErrEmpty = errors.New("empty file")
	// ErrNotCapture means the file does not start with a pcap or pcapng magic
	// number (garbage, a text file, a truncated header).
	ErrNotCapture = errors.New("not a pcap or pcapng file")
	// ErrUnsupportedLinkType means the capture's link type cannot be turned
	// into Ethernet frames.
	ErrUnsupportedLinkType = errors.New("unsupported link type")
	// ErrTruncatedFile means the file ends in the middle of a record.
	ErrTruncatedFile = errors.New("truncated record (file ends mid-record)")
	// ErrMalformed means a record or block is structurally broken (impossible
	// lengths, unknown interface, bad trailer).
	ErrMalformed = errors.New("malformed record")
	// ErrNoPackets means a well-formed capture holds no packets (ReadFile only).
	ErrNoPackets = errors.New("capture holds no packets")
	// ErrHeadersCut means the snapshot length cut the packet inside its IP or
	// L4 header, so it cannot be replayed (used in Packet.Refusal).
	ErrHeadersCut = errors.New("headers cut by snaplen")
	// ErrBadHeader means the packet's IP header is malformed, so it cannot be
	// replayed (used in Packet.Refusal).
	ErrBadHeader = errors.New("malformed header")
)

// Error is the error type of this package: one line naming the file, the
// packet index when the problem is about one packet, and the reason.
type Error struct {
	// File is the capture's path (or the name given to NewReader).
	File string
	// Index is the 0-based packet index, or -1 when the problem concerns the
	// file as a whole.
	Index int
	// Err is the reason; it wraps one of the package's sentinel errors.
	Err error
}

// Error renders the one-line message, e.g.
// "dump.pcap: packet 3 (frame 4): truncated record (file ends mid-record)".
func (e *Error) Error() string {
	if e.Index < 0 {
		return fmt.Sprintf("%s: %v", e.File, e.Err)
	}
	return fmt.Sprintf("%s: packet %d (frame %d): %v", e.File, e.Index, e.Index+1, e.Err)
}

// Unwrap returns the reason.
func (e *Error) Unwrap() error { return e.Err }

// Format is the container format of a capture file.
type Format int

// The container formats the reader understands.
const (
	// FormatPcap is classic libpcap (any byte order, micro- or nanosecond).
	FormatPcap Format = iota + 1
	// FormatPcapng is pcapng.
	FormatPcapng
)

// String returns "pcap" or "pcapng".
func (f Format) String() string {
	switch f {
	case FormatPcap:
		return "pcap"
	case FormatPcapng:
		return "pcapng"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// Flags records what the reader noticed or changed about one packet.
type Flags uint32

// The packet flags.
const (
	// Truncated: the captured length is smaller than the original length.
	Truncated Flags = 1 << iota
	// L2Synthesized: the Ethernet header was made up by the reader (cooked or
	// raw-IP capture); the MACs are placeholders and must be rewritten.
	L2Synthesized
	// VLANStripped: one or more 802.1Q/802.1ad tags were removed.
	VLANStripped
	// IPv6: the frame carries IPv6, passed through untouched.
	IPv6
	// NonIP: the frame carries neither IPv4 nor IPv6 (ARP, LLDP, ...).
	NonIP
	// IPFragment: the frame is an IPv4 fragment (no L4 header, or a partial one).
	IPFragment
	// Duplicate: the packet is another sighting of an earlier packet of the
	// same capture (see MarkDuplicates); Packet.DuplicateOf names it.
	Duplicate
	// BadIPChecksum: the IPv4 header checksum is wrong (see
	// IPv4HeaderChecksum). Replayed as captured, the first router or
	// kernel that checks it drops the packet.
	BadIPChecksum
	// VXLANDecapsulated: the frame was VXLAN (a tunnel-mode cluster's
	// wire); Data is the inner frame, Packet.Outer the frame as captured.
	VXLANDecapsulated
)

var flagNames = []struct {
	f    Flags
	name string
}{
	{Truncated, "truncated"},
	{L2Synthesized, "l2-synthesized"},
	{VLANStripped, "vlan-stripped"},
	{IPv6, "ipv6"},
	{NonIP, "non-ip"},
	{IPFragment, "ip-fragment"},
	{Duplicate, "duplicate"},
	{BadIPChecksum, "bad-ip-checksum"},
	{VXLANDecapsulated, "vxlan-decapsulated"},
}

// Has reports whether all bits of g are set in f.
func (f Flags) Has(g Flags) bool { return f&g == g }

// String lists the set flags, comma separated ("" when none).
func (f Flags) String() string {
	var names []string
	for _, n := range flagNames {
		if f.Has(n.f) {
			names = append(names, n.name)
		}
	}
	return strings.Join(names, ",")
}

// Packet is one packet of a capture, converted to an Ethernet frame.
type Packet struct {
	// Index is the 0-based position of the packet in the file.
	Index int
	// Timestamp is the capture time of the packet.
	Timestamp time.Time
	// Data is the Ethernet frame (possibly shorter than OrigLen when the
	// capture was snaplen-cut).
	Data []byte
	// OrigLen is the length the frame had on the wire, adjusted to the
	// Ethernet framing the reader produced (VLAN tags removed, cooked header
	// replaced by 14 bytes).
	OrigLen int
	// LinkType is the capture's link type for this packet (LINKTYPE_ value).
	LinkType uint32
	// Interface is the pcapng interface index (0 for classic pcap).
	Interface int
	// IfIndex is the kernel interface index from an SLL2 header, 0 otherwise.
	IfIndex uint32
	// VLANs are the VLAN IDs stripped from the frame, outermost first.
	VLANs []uint16
	// Flags records what was noticed or changed.
	Flags Flags
	// DuplicateOf is the index of the first sighting of this packet when
	// Flags has Duplicate (meaningless otherwise).
	DuplicateOf int
	// Refusal is nil when the packet can be replayed; otherwise an [*Error]
	// naming the file and index and wrapping ErrHeadersCut or ErrBadHeader.
	Refusal error
	// Outer is the frame as captured when Flags has VXLANDecapsulated
	// (Data is then its inner frame), and VNI its VXLAN network identifier.
	Outer []byte
	VNI   uint32
}

// Replayable reports whether the packet can be injected (Refusal is nil).
func (p Packet) Replayable() bool { return p.Refusal == nil }
