package datapath

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/perf"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// Sizes of the notification structs of bpf/lib/trace.h and drop.h.
const (
	notifyHdrLen   = 16
	traceNotifyLen = 32
	dropNotifyLen  = 36
)

// Notify is the header common to trace and drop notifications.
type Notify struct {
	// Type is MessageTrace or MessageDrop.
	Type MessageType
	// Source is the endpoint id of the emitting endpoint, 0 for the netdev.
	Source uint16
	// Hash is skb->hash.
	Hash uint32
	// OrigLen is the packet length; Data holds its first CapLen bytes.
	OrigLen uint32
	// Version of the notification layout.
	Version uint16
	// Data is the captured packet (at most 128 bytes).
	Data []byte
	// CPU the event was emitted on.
	CPU int
}

// TraceNotify is a trace notification: a packet passed an observation
// point.
type TraceNotify struct {
	Notify
	ObsPoint    ObsPoint
	SrcIdentity Identity
	DstIdentity Identity
	// DstID is the destination endpoint id, when known.
	DstID   uint16
	Reason  TraceReason
	IfIndex uint32
}

// DropNotify is a drop notification.
type DropNotify struct {
	Notify
	Reason      DropReason
	SrcIdentity Identity
	DstIdentity Identity
	// DstID is the destination endpoint id, 0 for egress.
	DstID    uint32
	Line     uint16
	File     uint8
	ExtError int8
	IfIndex  uint32
}

// Event is a decoded notification: *TraceNotify or *DropNotify.
type Event interface {
	// Header returns the common header.
	Header() *Notify
	// String is a Hubble-style one-line summary.
	String() string
}

// Header returns the common header.
func (t *TraceNotify) Header() *Notify { return &t.Notify }

// Header returns the common header.
func (d *DropNotify) Header() *Notify { return &d.Notify }

// Verdict returns "FORWARDED".
func (t *TraceNotify) Verdict() string { return "FORWARDED" }

// Verdict returns "DROPPED (reason)".
func (d *DropNotify) Verdict() string { return fmt.Sprintf("DROPPED (%v)", d.Reason) }

// String returns e.g. "FORWARDED (to-stack) 10.1.1.10:40000 -> 10.1.2.40:8080 TCP SYN identity 100 -> 2 ct=new".
func (t *TraceNotify) String() string {
	return fmt.Sprintf("%s (%v) %s identity %d -> %d ct=%v ifindex=%d", t.Verdict(), t.ObsPoint,
		PacketSummary(t.Data), t.SrcIdentity, t.DstIdentity, t.Reason, t.IfIndex)
}

// String returns e.g. "DROPPED (Policy denied) 10.1.1.10:40000 -> 10.1.2.40:8080 TCP SYN identity 100 -> 200".
func (d *DropNotify) String() string {
	return fmt.Sprintf("%s %s identity %d -> %d file=%d line=%d", d.Verdict(), PacketSummary(d.Data),
		d.SrcIdentity, d.DstIdentity, d.File, d.Line)
}

// ErrShortEvent is returned for a sample too short for its notification.
var ErrShortEvent = errors.New("short event")

// DecodeEvent decodes one perf sample.
func DecodeEvent(raw []byte) (Event, error) {
	if len(raw) < notifyHdrLen {
		return nil, fmt.Errorf("decode event: %d bytes: %w", len(raw), ErrShortEvent)
	}
	le := binary.LittleEndian
	hdr := Notify{
		Type:    MessageType(raw[0]),
		Source:  le.Uint16(raw[2:]),
		Hash:    le.Uint32(raw[4:]),
		OrigLen: le.Uint32(raw[8:]),
		Version: le.Uint16(raw[14:]),
	}
	capLen := int(le.Uint16(raw[12:]))
	body := func(n int) ([]byte, error) {
		if len(raw) < n+capLen {
			return nil, fmt.Errorf("decode %v: %d bytes, want %d: %w", hdr.Type, len(raw), n+capLen, ErrShortEvent)
		}
		return append([]byte(nil), raw[n:n+capLen]...), nil
	}
	switch hdr.Type {
	case MessageTrace:
		data, err := body(traceNotifyLen)
		if err != nil {
			return nil, err
		}
		hdr.Data = data
		return &TraceNotify{
			Notify:      hdr,
			ObsPoint:    ObsPoint(raw[1]),
			SrcIdentity: Identity(le.Uint32(raw[16:])),
			DstIdentity: Identity(le.Uint32(raw[20:])),
			DstID:       le.Uint16(raw[24:]),
			Reason:      TraceReason(raw[26]),
			IfIndex:     le.Uint32(raw[28:]),
		}, nil
	case MessageDrop:
		data, err := body(dropNotifyLen)
		if err != nil {
			return nil, err
		}
		hdr.Data = data
		return &DropNotify{
			Notify:      hdr,
			Reason:      DropReason(raw[1]),
			SrcIdentity: Identity(le.Uint32(raw[16:])),
			DstIdentity: Identity(le.Uint32(raw[20:])),
			DstID:       le.Uint32(raw[24:]),
			Line:        le.Uint16(raw[28:]),
			File:        raw[30],
			ExtError:    int8(raw[31]),
			IfIndex:     le.Uint32(raw[32:]),
		}, nil
	}
	return nil, fmt.Errorf("decode event: unknown type %d: %w", raw[0], ErrInvalid)
}

// PacketInfo is what a hop report shows of a captured packet.
type PacketInfo struct {
	EthSrc, EthDst net.HardwareAddr
	IPSrc, IPDst   netip.Addr
	TTL            uint8
	// Proto is "tcp", "udp", "icmp" or the IP protocol number.
	Proto        string
	SPort, DPort uint16
	// TCPFlags lists the set flags, e.g. "SYN,ACK".
	TCPFlags string
	// ICMPType and ICMPID are set for ICMP.
	ICMPType, ICMPID uint16
}

// ErrNotIPv4Packet is returned by DecodePacket for non-IPv4 frames.
var ErrNotIPv4Packet = errors.New("not an IPv4 packet")

// ErrIPv4HeaderCut is returned by DecodePacket for an IPv4 frame whose
// header is cut short: fewer than 20 bytes after the Ethernet header, or
// fewer than its header length (IHL*4). gopacket keeps such a layer with
// whatever it read, so without this check the packet would look whole.
var ErrIPv4HeaderCut = errors.New("IPv4 header cut short")

// DecodePacket parses captured Ethernet bytes (possibly truncated to 128).
// For a frame whose IPv4 header is cut short it returns an error matching
// ErrIPv4HeaderCut, together with the fields the bytes present hold: the
// Ethernet addresses, and the addresses, TTL and protocol number when the
// 20 fixed bytes are there (no ports: the L4 header is not decoded).
func DecodePacket(data []byte) (PacketInfo, error) {
	p := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.Lazy)
	var pi PacketInfo
	if eth, ok := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet); ok {
		pi.EthSrc, pi.EthDst = eth.SrcMAC, eth.DstMAC
	}
	ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if ip == nil {
		if emptyIPv4(p) {
			return pi, fmt.Errorf("decode packet: %w: 0 of 20 bytes", ErrIPv4HeaderCut)
		}
		return pi, fmt.Errorf("decode packet: %w", ErrNotIPv4Packet)
	}
	// gopacket adds the IPv4 layer even when its header could not be read
	// whole: with fewer than 20 bytes nothing is set, with fewer than IHL*4
	// the fixed part is. Its contents are the bytes from the IPv4 header on.
	if have := len(ip.Contents); len(ip.SrcIP) == 0 || have < int(ip.IHL)*4 {
		need := max(20, int(ip.IHL)*4)
		if len(ip.SrcIP) == 0 {
			have = len(ipv4Bytes(p))
		} else {
			pi.IPSrc, _ = netip.AddrFromSlice(ip.SrcIP.To4())
			pi.IPDst, _ = netip.AddrFromSlice(ip.DstIP.To4())
			pi.TTL, pi.Proto = ip.TTL, fmt.Sprint(uint8(ip.Protocol))
		}
		return pi, fmt.Errorf("decode packet: %w: %d of %d bytes", ErrIPv4HeaderCut, have, need)
	}
	pi.IPSrc, _ = netip.AddrFromSlice(ip.SrcIP.To4())
	pi.IPDst, _ = netip.AddrFromSlice(ip.DstIP.To4())
	pi.TTL = ip.TTL
	pi.Proto = fmt.Sprint(uint8(ip.Protocol))
	switch l4 := p.TransportLayer().(type) {
	case *layers.TCP:
		pi.Proto, pi.SPort, pi.DPort = "tcp", uint16(l4.SrcPort), uint16(l4.DstPort)
		var flags []string
		for _, f := range []struct {
			on   bool
			name string
		}{{l4.SYN, "SYN"}, {l4.ACK, "ACK"}, {l4.FIN, "FIN"}, {l4.RST, "RST"}, {l4.PSH, "PSH"}} {
			if f.on {
				flags = append(flags, f.name)
			}
		}
		pi.TCPFlags = strings.Join(flags, ",")
	case *layers.UDP:
		pi.Proto, pi.SPort, pi.DPort = "udp", uint16(l4.SrcPort), uint16(l4.DstPort)
	}
	if icmp, ok := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4); ok {
		pi.Proto, pi.ICMPType, pi.ICMPID = "icmp", uint16(icmp.TypeCode.Type()), icmp.Id
	}
	return pi, nil
}

// PacketSummary describes captured Ethernet bytes as
// "10.1.1.10:40000 -> 10.224.1.1:80 TCP SYN ttl=64"; a frame whose IPv4
// header is cut short says so ("10.1.1.10 -> 10.1.2.40 proto 6 ttl=64, IPv4
// header cut short: 30 of 60 bytes").
func PacketSummary(data []byte) string {
	pi, err := DecodePacket(data)
	switch {
	case errors.Is(err, ErrIPv4HeaderCut) && pi.IPSrc.IsValid():
		return fmt.Sprintf("%v -> %v proto %s ttl=%d, %s", pi.IPSrc, pi.IPDst, pi.Proto, pi.TTL, reason(err))
	case errors.Is(err, ErrIPv4HeaderCut):
		return fmt.Sprintf("%d bytes, %s", len(data), reason(err))
	case err != nil:
		return fmt.Sprintf("%d bytes, non-IPv4", len(data))
	}
	switch pi.Proto {
	case "tcp":
		return fmt.Sprintf("%v:%d -> %v:%d TCP %s ttl=%d", pi.IPSrc, pi.SPort, pi.IPDst, pi.DPort, pi.TCPFlags, pi.TTL)
	case "udp":
		return fmt.Sprintf("%v:%d -> %v:%d UDP ttl=%d", pi.IPSrc, pi.SPort, pi.IPDst, pi.DPort, pi.TTL)
	case "icmp":
		return fmt.Sprintf("%v -> %v ICMPv4 type %d id=%d ttl=%d", pi.IPSrc, pi.IPDst, pi.ICMPType, pi.ICMPID, pi.TTL)
	}
	return fmt.Sprintf("%v -> %v proto %s ttl=%d", pi.IPSrc, pi.IPDst, pi.Proto, pi.TTL)
}

// ipv4Bytes returns the bytes gopacket handed to the first IPv4 layer of p:
// the payload of the layer before it.
func ipv4Bytes(p gopacket.Packet) []byte {
	var prev gopacket.Layer
	for _, l := range p.Layers() {
		if l.LayerType() == layers.LayerTypeIPv4 {
			break
		}
		prev = l
	}
	if prev == nil {
		return nil
	}
	return prev.LayerPayload()
}

// emptyIPv4 reports whether p's last layer announces IPv4 (Ethertype
// 0x0800, also behind VLAN tags) and carries no byte of it: gopacket adds
// no IPv4 layer then.
func emptyIPv4(p gopacket.Packet) bool {
	ls := p.Layers()
	if len(ls) == 0 || len(ls[len(ls)-1].LayerPayload()) > 0 {
		return false
	}
	switch l := ls[len(ls)-1].(type) {
	case *layers.Ethernet:
		return l.EthernetType == layers.EthernetTypeIPv4
	case *layers.Dot1Q:
		return l.Type == layers.EthernetTypeIPv4
	}
	return false
}

// reason is err's text after DecodePacket's "decode packet: ".
func reason(err error) string { return strings.TrimPrefix(err.Error(), "decode packet: ") }

// EventReader reads notifications from the perf event array.
type EventReader struct {
	r *perf.Reader
}

// ErrLostEvents is returned (wrapped in a LostEventsError) when the kernel
// dropped samples because the reader was too slow.
var ErrLostEvents = errors.New("lost events")

// LostEventsError reports how many samples a CPU's buffer lost.
type LostEventsError struct {
	CPU  int
	Lost uint64
}

// Error names the CPU and the number of lost samples.
func (e *LostEventsError) Error() string {
	return fmt.Sprintf("cpu %d lost %d events", e.CPU, e.Lost)
}

// Is maps the error onto ErrLostEvents.
func (e *LostEventsError) Is(target error) bool { return target == ErrLostEvents }

// NewEventReader opens a reader with perCPUBuffer bytes per CPU (0: 64 KiB)
// that wakes up for every event: the latency a packet-by-packet observer
// wants. Use NewBatchEventReader under load.
// While no reader is open the programs skip notifications (after the first
// one finds no reader); opening a reader turns them back on.
func (d *Datapath) NewEventReader(perCPUBuffer int) (*EventReader, error) {
	return d.newEventReader(perCPUBuffer, 0)
}

// NewBatchEventReader opens a reader that the kernel wakes only once half
// of a CPU's buffer is full: far cheaper per event under load, at the
// price of latency. Flush makes pending events readable.
func (d *Datapath) NewBatchEventReader(perCPUBuffer int) (*EventReader, error) {
	if perCPUBuffer <= 0 {
		perCPUBuffer = 64 << 10
	}
	return d.newEventReader(perCPUBuffer, perCPUBuffer/2)
}

func (d *Datapath) newEventReader(perCPUBuffer, watermark int) (*EventReader, error) {
	if perCPUBuffer <= 0 {
		perCPUBuffer = 64 << 10
	}
	r, err := perf.NewReaderWithOptions(d.events, perCPUBuffer, perf.ReaderOptions{Watermark: watermark})
	if err != nil {
		return nil, fmt.Errorf("open event reader: %w", err)
	}
	// Programs that found no reader muted their notifications; unmute now
	// that every CPU has one.
	cpus, err := ebpf.PossibleCPU()
	if err == nil {
		err = d.eventsMuted.Put(uint32(0), make([]uint32, cpus))
	}
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("open event reader: unmute: %w", err)
	}
	return &EventReader{r: r}, nil
}

// Read blocks until the next notification (or the deadline).
func (r *EventReader) Read() (Event, error) {
	rec, err := r.r.Read()
	if err != nil {
		return nil, fmt.Errorf("read event: %w", err)
	}
	if rec.LostSamples > 0 {
		return nil, &LostEventsError{CPU: rec.CPU, Lost: rec.LostSamples}
	}
	ev, err := DecodeEvent(rec.RawSample)
	if err != nil {
		return nil, err
	}
	ev.Header().CPU = rec.CPU
	return ev, nil
}

// SetDeadline makes Read return os.ErrDeadlineExceeded after t.
func (r *EventReader) SetDeadline(t time.Time) { r.r.SetDeadline(t) }

// Flush makes events below the wakeup watermark readable: Read returns
// them, then an error matching perf.ErrFlushed.
func (r *EventReader) Flush() error { return r.r.Flush() }

// Close stops the reader.
func (r *EventReader) Close() error { return r.r.Close() }
