package journey

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/google/gopacket/layers"
)

// SegmentOf reads the flow, the sequence fields and the sequence space a
// segment takes; anything but Ethernet + IPv4 + TCP is no segment.
func TestSegmentOf(t *testing.T) {
	for _, tc := range []struct {
		name      string
		tcp       *layers.TCP
		payload   int
		len, end  uint32
		syn, ack  bool
		flagsWant uint8
	}{
		{"SYN", &layers.TCP{Seq: 1000, SYN: true}, 0, 1, 1001, true, false, 0x02},
		{"SYN-ACK", &layers.TCP{Seq: 0xffffffff, Ack: 1001, SYN: true, ACK: true}, 0, 1, 0, true, true, 0x12},
		{"pure ACK", &layers.TCP{Seq: 1001, Ack: 5001, ACK: true}, 0, 0, 1001, false, true, 0x10},
		{"data", &layers.TCP{Seq: 1001, Ack: 5001, ACK: true, PSH: true}, 5, 5, 1006, false, true, 0x18},
		{"data and FIN", &layers.TCP{Seq: 1001, Ack: 5001, ACK: true, FIN: true}, 5, 6, 1007, false, true, 0x11},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.tcp.SrcPort, tc.tcp.DstPort = 40000, 80
			f := frame(t, "10.1.1.10", "10.224.1.1", 7, tc.tcp, make([]byte, tc.payload))
			s, ok := SegmentOf(f)
			if !ok {
				t.Fatal("no segment")
			}
			if s.Src != netip.MustParseAddrPort("10.1.1.10:40000") || s.Dst != netip.MustParseAddrPort("10.224.1.1:80") {
				t.Errorf("flow %s > %s", s.Src, s.Dst)
			}
			if s.Seq != tc.tcp.Seq || s.Ack != tc.tcp.Ack || s.Flags != tc.flagsWant || s.SYN() != tc.syn || s.ACK() != tc.ack {
				t.Errorf("fields %+v", s)
			}
			if s.Payload != uint32(tc.payload) || s.Len() != tc.len || s.End() != tc.end {
				t.Errorf("payload %d, len %d, end %d; want %d, %d, %d", s.Payload, s.Len(), s.End(), tc.payload, tc.len, tc.end)
			}
			if s.Offset != 34 || binary.BigEndian.Uint32(f[s.Offset+4:]) != tc.tcp.Seq {
				t.Errorf("offset %d", s.Offset)
			}
		})
	}
	syn := frame(t, "10.1.1.10", "10.224.1.1", 7, &layers.TCP{SrcPort: 40000, DstPort: 80, SYN: true}, nil)
	short := append([]byte(nil), syn...)
	binary.BigEndian.PutUint16(short[14+2:], 20+19) // total length ends inside the TCP header
	v6 := append([]byte(nil), syn...)
	v6[12], v6[13] = 0x86, 0xdd
	for name, f := range map[string][]byte{
		"UDP":                    frame(t, "10.1.1.10", "10.224.1.1", 7, &layers.UDP{SrcPort: 1, DstPort: 2}, nil),
		"cut in the TCP header":  syn[:40],
		"total length too short": short,
		"not IPv4":               append(append([]byte(nil), syn[:12]...), 0x86, 0xdd),
	} {
		if _, ok := SegmentOf(f); ok {
			t.Errorf("%s: a segment", name)
		}
	}
}

// NewObservation puts the point in the vocabulary: Cilium's trace names
// become ours, other names stay as they are.
func TestNewObservationNormalisesPoint(t *testing.T) {
	f := frame(t, "10.1.1.10", "10.224.1.1", 7, &layers.TCP{SrcPort: 40000, DstPort: 80, SYN: true}, nil)
	for in, want := range map[Point]Point{"to-network": ToNetdev, "from-lxc": FromContainer, ToStack: ToStack, "to-proxy": Proxy, "to-crypto": "to-crypto"} {
		if got := NewObservation("datapath:node1", t0, "node1", in, "bond0", f).Hop.Point; got != want {
			t.Errorf("%s → %s, want %s", in, got, want)
		}
	}
}
