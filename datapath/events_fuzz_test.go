package datapath

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/hoplab/hoplab/fixtures"
	"github.com/hoplab/hoplab/internal/fuzzcorpus"
	"github.com/hoplab/hoplab/internal/journey"
)

// FuzzDecodeEvent checks the decoder of the perf samples the datapath
// emits and what the harness makes of them (vmtest/agent's conversion,
// journey.NewObservation), on arbitrary samples:
//
//   - DecodeEvent never panics; a sample shorter than the header or than
//     its notification and captured bytes is ErrShortEvent, an unknown
//     type ErrInvalid, each a one-line "decode ..." error;
//   - a decoded event is a *TraceNotify or *DropNotify as its type says,
//     with exactly the captured length's bytes, copied out of the sample,
//     and encodes back to the sample (the trace's pad byte aside);
//   - its String is one line; a trace's JourneyPoint is "" or a point of
//     the journey vocabulary;
//   - the captured packet decodes the same for the CLI's summary
//     (DecodePacket) and for the journey (HopFromPacket, KeyFromFrame,
//     SegmentOf): addresses, TTL, protocol and ports agree; a frame whose
//     IPv4 header is cut short is ErrIPv4HeaderCut, and the journey has
//     no key for it unless its 20 fixed bytes are there.
//
// The committed seeds (testdata/fuzz/FuzzDecodeEvent) are trace and drop
// events carrying the fixtures' packets (fixtures/data) and one VXLAN
// packet; TestDecodeEventCorpus writes them.
//
//	go test -run '^$' -fuzz '^FuzzDecodeEvent$' -fuzztime 30s ./datapath
func FuzzDecodeEvent(f *testing.F) {
	f.Add([]byte{})
	f.Add(make([]byte, notifyHdrLen))
	f.Fuzz(func(t *testing.T, raw []byte) {
		ev, err := DecodeEvent(raw)
		if err != nil {
			checkEventError(t, raw, err)
			return
		}
		h := ev.Header()
		capLen := int(binary.LittleEndian.Uint16(raw[12:]))
		n := traceNotifyLen
		switch ev.(type) {
		case *TraceNotify:
			if h.Type != MessageTrace {
				t.Fatalf("trace of type %v", h.Type)
			}
		case *DropNotify:
			if h.Type != MessageDrop {
				t.Fatalf("drop of type %v", h.Type)
			}
			n = dropNotifyLen
		default:
			t.Fatalf("event %T", ev)
		}
		if len(h.Data) != capLen {
			t.Fatalf("%d bytes captured, header says %d", len(h.Data), capLen)
		}
		want := bytes.Clone(raw[:n+capLen])
		if n == traceNotifyLen {
			want[27] = 0 // pad
		}
		if got := evEncode(ev); !bytes.Equal(got, want) {
			t.Fatalf("event %+v encodes as\n%x, sample\n%x", ev, got, want)
		}
		for i := range raw {
			raw[i] ^= 0xff
		}
		if !bytes.Equal(h.Data, want[n:]) {
			t.Fatal("captured bytes alias the sample")
		}
		for i := range raw {
			raw[i] ^= 0xff
		}
		s := ev.String()
		if strings.Contains(s, "\n") || !strings.HasPrefix(s, "FORWARDED (") && !strings.HasPrefix(s, "DROPPED (") {
			t.Fatalf("String() = %q", s)
		}
		point := journey.Point("from-netdev")
		if tr, ok := ev.(*TraceNotify); ok {
			if jp := tr.ObsPoint.JourneyPoint(); jp != "" {
				if c, ok := journey.Canonical(jp); !ok || string(c) != jp {
					t.Fatalf("trace point %v is %q in the journey, not a point of its vocabulary", tr.ObsPoint, jp)
				}
				point = journey.Point(jp)
			}
		}
		checkFrameDecoders(t, h.Data, point)
	})
}

// checkEventError checks DecodeEvent's error for raw.
func checkEventError(t *testing.T, raw []byte, err error) {
	t.Helper()
	msg := err.Error()
	if !strings.HasPrefix(msg, "decode ") || strings.Contains(msg, "\n") {
		t.Fatalf("error %q", msg)
	}
	short := len(raw) < notifyHdrLen
	known := false
	if !short {
		capLen := int(binary.LittleEndian.Uint16(raw[12:]))
		switch MessageType(raw[0]) {
		case MessageTrace:
			known, short = true, len(raw) < traceNotifyLen+capLen
		case MessageDrop:
			known, short = true, len(raw) < dropNotifyLen+capLen
		}
	}
	switch {
	case short && !errors.Is(err, ErrShortEvent):
		t.Fatalf("short sample: %v", err)
	case !short && known:
		t.Fatalf("complete sample of a known type refused: %v", err)
	case !short && !errors.Is(err, ErrInvalid):
		t.Fatalf("unknown type: %v", err)
	}
}

// checkFrameDecoders checks that the CLI's and the journey's decoders
// agree on a captured packet.
func checkFrameDecoders(t *testing.T, data []byte, point journey.Point) {
	t.Helper()
	o := journey.NewObservation("datapath:node1", time.Time{}, "node1", point, "bond0", data)
	if o.Hop.Point != point || o.Hop.Node != "node1" || o.Hop.Verdict != journey.Forwarded {
		t.Fatalf("observation %+v", o.Hop)
	}
	seg, isTCP := journey.SegmentOf(data)
	pi, err := DecodePacket(data)
	h := o.Hop
	switch {
	case errors.Is(err, ErrIPv4HeaderCut):
		// The journey shows a header cut inside its 20 fixed bytes as a
		// frame without a key or addresses; one cut in its options with
		// the addresses of the fixed part, as DecodePacket does.
		if strings.Contains(err.Error(), "\n") {
			t.Fatalf("error of more than one line: %q", err)
		}
		if !pi.IPSrc.IsValid() {
			if o.HasKey || h.IPSrc != "" || h.IPDst != "" || isTCP {
				t.Fatalf("IPv4 header cut inside its fixed part: journey hop %+v, key %v (%v), TCP %v", h, o.Key, o.HasKey, isTCP)
			}
			return
		}
		if h.IPSrc != pi.IPSrc.String() || h.IPDst != pi.IPDst.String() || h.TTL != pi.TTL || pi.SPort != 0 || pi.DPort != 0 {
			t.Fatalf("IPv4 header cut in its options: journey hop %+v, DecodePacket %+v", h, pi)
		}
		return
	case err != nil:
		if o.HasKey {
			t.Fatalf("journey key %v for a packet DecodePacket refuses: %v", o.Key, err)
		}
		return
	case !pi.IPSrc.IsValid():
		t.Fatalf("decoded without an error but without addresses: %+v", pi)
	}
	if out := h.Outer; out != nil {
		// VXLAN: the hop and the key describe the inner packet, and Outer
		// the frame as captured, which is what DecodePacket describes.
		if out.IPSrc != pi.IPSrc.String() || out.IPDst != pi.IPDst.String() || out.TTL != pi.TTL || out.Proto != pi.Proto ||
			out.Sport != pi.SPort || out.Dport != pi.DPort || out.EthSrc != pi.EthSrc.String() || out.EthDst != pi.EthDst.String() {
			t.Fatalf("journey outer %+v, DecodePacket %+v", *out, pi)
		}
		return
	}
	if h.IPSrc != pi.IPSrc.String() || h.IPDst != pi.IPDst.String() || h.TTL != pi.TTL {
		t.Fatalf("journey hop %s > %s ttl %d, DecodePacket %v > %v ttl %d", h.IPSrc, h.IPDst, h.TTL, pi.IPSrc, pi.IPDst, pi.TTL)
	}
	if h.EthSrc != pi.EthSrc.String() || h.EthDst != pi.EthDst.String() {
		t.Fatalf("journey hop %s > %s, DecodePacket %v > %v", h.EthSrc, h.EthDst, pi.EthSrc, pi.EthDst)
	}
	// The hop's protocol is the IPv4 header's; DecodePacket's is the
	// transport layer gopacket finds, past IPv6 extension headers that
	// IPv4 protocols 0, 43, 44 and 60 make it decode.
	if (pi.Proto == "tcp" || pi.Proto == "udp") && (h.Proto == "tcp" || h.Proto == "udp") {
		if h.Proto != pi.Proto || h.Sport != pi.SPort || h.Dport != pi.DPort {
			t.Fatalf("journey hop %s %d > %d, DecodePacket %s %d > %d", h.Proto, h.Sport, h.Dport, pi.Proto, pi.SPort, pi.DPort)
		}
	}
	if !o.HasKey || o.Key.Src.Addr() != pi.IPSrc || o.Key.Dst.Addr() != pi.IPDst {
		t.Fatalf("journey key %v (%v), DecodePacket %v > %v", o.Key, o.HasKey, pi.IPSrc, pi.IPDst)
	}
	if (pi.Proto == "tcp" || pi.Proto == "udp") && (o.Key.Src.Port() != pi.SPort || o.Key.Dst.Port() != pi.DPort) {
		t.Fatalf("journey key %v, DecodePacket ports %d > %d", o.Key, pi.SPort, pi.DPort)
	}
	if pi.Proto == "icmp" && (o.Key.Src.Port() != pi.ICMPID || o.Key.Dst.Port() != pi.ICMPID) {
		t.Fatalf("journey key %v, ICMP id %d", o.Key, pi.ICMPID)
	}
	if isTCP {
		if seg.Src.Addr() != pi.IPSrc || seg.Dst.Addr() != pi.IPDst {
			t.Fatalf("TCP segment %v > %v, DecodePacket %v > %v", seg.Src, seg.Dst, pi.IPSrc, pi.IPDst)
		}
		if pi.Proto == "tcp" && (seg.Src.Port() != pi.SPort || seg.Dst.Port() != pi.DPort) {
			t.Fatalf("TCP segment %v > %v, DecodePacket ports %d > %d", seg.Src, seg.Dst, pi.SPort, pi.DPort)
		}
	}
}

// evEncode writes ev as the datapath emits it (the trace's pad byte 0).
func evEncode(ev Event) []byte {
	le := binary.LittleEndian
	h := ev.Header()
	n := traceNotifyLen
	if _, ok := ev.(*DropNotify); ok {
		n = dropNotifyLen
	}
	b := make([]byte, n, n+len(h.Data))
	b[0] = byte(h.Type)
	le.PutUint16(b[2:], h.Source)
	le.PutUint32(b[4:], h.Hash)
	le.PutUint32(b[8:], h.OrigLen)
	le.PutUint16(b[12:], uint16(len(h.Data)))
	le.PutUint16(b[14:], h.Version)
	switch e := ev.(type) {
	case *TraceNotify:
		b[1] = byte(e.ObsPoint)
		le.PutUint32(b[16:], uint32(e.SrcIdentity))
		le.PutUint32(b[20:], uint32(e.DstIdentity))
		le.PutUint16(b[24:], e.DstID)
		b[26] = byte(e.Reason)
		le.PutUint32(b[28:], e.IfIndex)
	case *DropNotify:
		b[1] = byte(e.Reason)
		le.PutUint32(b[16:], uint32(e.SrcIdentity))
		le.PutUint32(b[20:], uint32(e.DstIdentity))
		le.PutUint32(b[24:], e.DstID)
		le.PutUint16(b[28:], e.Line)
		b[30] = e.File
		b[31] = byte(e.ExtError)
		le.PutUint32(b[32:], e.IfIndex)
	}
	return append(b, h.Data...)
}

// TestDecodeEventCorpus writes testdata/fuzz/FuzzDecodeEvent (with
// HOPLAB_FUZZ_CORPUS=1): for each fixture, a trace of its first packet
// (points and CT reasons in turn) and a drop of its last (drop reasons in
// turn), the first 128 bytes captured as the datapath does, and the trace
// of a VXLAN packet carrying the first fixture's first packet.
func TestDecodeEventCorpus(t *testing.T) {
	points := []ObsPoint{TraceFromLXC, TraceToStack, TraceToNetwork, TraceFromNetwork, TraceToLXC, TraceToOverlay, TraceFromOverlay}
	reasons := []TraceReason{TraceReasonPolicy, TraceReasonCTEstablished, TraceReasonCTReply, TraceReasonCTRelated, TraceReasonUnknown}
	drops := []DropReason{DropPolicy, DropNoService, DropTTLExceeded, DropPolicyDeny, DropCTInvalidHdr, DropFragNoSupport}
	var seeds []fuzzcorpus.Seed
	var first []byte
	for i, name := range fixtures.Names() {
		pkts, err := fixtures.Packets(name)
		if err != nil {
			t.Fatal(err)
		}
		if len(pkts) == 0 {
			continue
		}
		in, last := pkts[0].Data, pkts[len(pkts)-1].Data
		if first == nil {
			first = in
		}
		tr := &TraceNotify{Notify: evNotify(MessageTrace, in, uint16(i+1)), ObsPoint: points[i%len(points)],
			SrcIdentity: 19216, DstIdentity: 38586, DstID: uint16(100 + i), Reason: reasons[i%len(reasons)], IfIndex: uint32(2 + i)}
		dr := &DropNotify{Notify: evNotify(MessageDrop, last, uint16(i+1)), Reason: drops[i%len(drops)],
			SrcIdentity: 19216, DstIdentity: 2, DstID: uint32(i % 2 * 1746), Line: uint16(300 + i), File: uint8(1 + i%2), ExtError: -int8(i % 3), IfIndex: 5}
		seeds = append(seeds,
			fuzzcorpus.Seed{Name: "trace-" + name, Values: []any{evEncode(tr)}},
			fuzzcorpus.Seed{Name: "drop-" + name, Values: []any{evEncode(dr)}})
	}
	vx := &TraceNotify{Notify: evNotify(MessageTrace, vxlanFrame(t, first), 0), ObsPoint: TraceToNetwork, Reason: TraceReasonUnknown, IfIndex: 2}
	seeds = append(seeds, fuzzcorpus.Seed{Name: "trace-vxlan", Values: []any{evEncode(vx)}})
	fuzzcorpus.Update(t, "FuzzDecodeEvent", seeds)
}

// evNotify is the header of a notification of frame, its first 128 bytes
// captured.
func evNotify(typ MessageType, frame []byte, source uint16) Notify {
	return Notify{Type: typ, Source: source, Hash: 0x9e3779b9, OrigLen: uint32(len(frame)), Version: 1, Data: frame[:min(len(frame), 128)]}
}

// vxlanFrame is inner in VXLAN between two nodes (node1 → node2, port
// 8472).
func vxlanFrame(t *testing.T, inner []byte) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{0x52, 0x54, 0, 0, 1, 1}, DstMAC: net.HardwareAddr{0x52, 0x55, 0, 0, 1, 1}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Id: 0x4242, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{10, 255, 1, 11}, DstIP: net.IP{10, 255, 2, 12}}
	udp := &layers.UDP{SrcPort: 40123, DstPort: 8472}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	vx := &layers.VXLAN{ValidIDFlag: true, VNI: 2}
	buf := gopacket.NewSerializeBuffer()
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, udp, vx, gopacket.Payload(inner))
	if err != nil {
		t.Fatal(fmt.Errorf("vxlan frame: %w", err))
	}
	return buf.Bytes()
}
