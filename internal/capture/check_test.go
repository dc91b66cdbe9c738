package capture

import (
	"errors"
	"strings"
	"testing"
)

// frameOf is an Ethernet frame of type etype around l3.
func frameOf(etype uint16, l3 []byte) []byte {
	f := make([]byte, 14, 14+len(l3))
	f[12], f[13] = byte(etype>>8), byte(etype)
	return append(f, l3...)
}

// ipv4 is an IPv4 header (IHL words, total length, protocol, fragment
// field) followed by payload.
func ipv4(ihl int, total int, proto byte, frag uint16, payload []byte) []byte {
	h := make([]byte, ihl*4)
	h[0] = 0x40 | byte(ihl)
	h[2], h[3] = byte(total>>8), byte(total)
	h[6], h[7] = byte(frag>>8), byte(frag)
	h[8], h[9] = 64, proto
	if ihl >= 5 {
		_, sum := IPv4HeaderChecksum(h)
		h[10], h[11] = byte(sum>>8), byte(sum)
	}
	return append(h, payload...)
}

func tcpHeader(dataOffsetWords int) []byte {
	h := make([]byte, dataOffsetWords*4)
	if len(h) < 20 {
		h = make([]byte, 20)
	}
	h[12] = byte(dataOffsetWords << 4)
	return h
}

// Each header check at its boundary: one byte short fails with the right
// sentinel, exactly enough passes.
func TestCheckHeadersBoundaries(t *testing.T) {
	v6 := make([]byte, 40)
	v6[0] = 0x60
	badV6 := append([]byte{0x40}, v6[1:]...)
	tcp20 := tcpHeader(5)
	for _, tc := range []struct {
		name    string
		frame   []byte
		origLen int // 0: the frame's length
		want    error
		flags   Flags
	}{
		{"IPv6, whole header", frameOf(0x86dd, v6), 0, nil, IPv6},
		{"IPv6, 39 bytes", frameOf(0x86dd, v6[:39]), 0, ErrBadHeader, IPv6},
		{"IPv6, 39 bytes cut by snaplen", frameOf(0x86dd, v6[:39]), 100, ErrHeadersCut, IPv6 | Truncated},
		{"IPv6 EtherType, version 4", frameOf(0x86dd, badV6), 0, ErrBadHeader, IPv6},
		{"ARP", frameOf(0x0806, make([]byte, 28)), 0, nil, NonIP},
		{"IPv4, 19 bytes", frameOf(0x0800, ipv4(5, 20, 0, 0, nil)[:19]), 0, ErrBadHeader, 0},
		{"IPv4, 20 bytes, unknown protocol", frameOf(0x0800, ipv4(5, 20, 99, 0, nil)), 0, nil, 0},
		{"IPv4 EtherType, version 6", frameOf(0x0800, append([]byte{0x65}, ipv4(5, 20, 0, 0, nil)[1:]...)), 0, ErrBadHeader, 0},
		{"IHL 4", frameOf(0x0800, ipv4(4, 20, 0, 0, make([]byte, 4))), 0, ErrBadHeader, 0},
		{"IHL 6, options present", frameOf(0x0800, ipv4(6, 24, 99, 0, nil)), 0, nil, 0},
		{"IHL 6, options missing", frameOf(0x0800, ipv4(6, 24, 99, 0, nil)[:22]), 0, ErrBadHeader, 0},
		{"total length below IHL", frameOf(0x0800, ipv4(5, 19, 99, 0, nil)), 0, ErrBadHeader, 0},
		{"total length past the frame", frameOf(0x0800, ipv4(5, 21, 99, 0, nil)), 0, ErrBadHeader, 0},
		{"total length past a snaplen-cut frame", frameOf(0x0800, ipv4(5, 60, 99, 0, nil)), 100, nil, Truncated},
		{"TCP, 20 bytes", frameOf(0x0800, ipv4(5, 40, 6, 0, tcp20)), 0, nil, 0},
		{"TCP, 19 bytes", frameOf(0x0800, ipv4(5, 39, 6, 0, tcp20[:19])), 0, ErrBadHeader, 0},
		{"TCP, data offset 4", frameOf(0x0800, ipv4(5, 40, 6, 0, tcpHeader(4))), 0, ErrBadHeader, 0},
		{"TCP, data offset 6, options present", frameOf(0x0800, ipv4(5, 44, 6, 0, tcpHeader(6))), 0, nil, 0},
		{"TCP, data offset 6, options missing", frameOf(0x0800, ipv4(5, 40, 6, 0, tcpHeader(6)[:20])), 0, ErrBadHeader, 0},
		{"TCP cut by snaplen", frameOf(0x0800, ipv4(5, 40, 6, 0, tcp20[:10])), 54, ErrHeadersCut, Truncated},
		// 12 captured bytes do not reach the data offset; 13 do, and a bad
		// one is reported even though the rest was cut.
		{"TCP cut after 12 bytes", frameOf(0x0800, ipv4(5, 40, 6, 0, tcp20[:12])), 54, ErrHeadersCut, Truncated},
		{"TCP cut after 13 bytes, data offset 4", frameOf(0x0800, ipv4(5, 40, 6, 0, tcpHeader(4)[:13])), 54, ErrBadHeader, Truncated},
		{"Ethernet padding is not the UDP header", frameOf(0x0800, ipv4(5, 24, 17, 0, make([]byte, 8))), 0, ErrBadHeader, 0},
		{"UDP, 8 bytes", frameOf(0x0800, ipv4(5, 28, 17, 0, make([]byte, 8))), 0, nil, 0},
		{"ICMP, 7 bytes", frameOf(0x0800, ipv4(5, 27, 1, 0, make([]byte, 7))), 0, ErrBadHeader, 0},
		{"SCTP, 12 bytes", frameOf(0x0800, ipv4(5, 32, 132, 0, make([]byte, 12))), 0, nil, 0},
		{"SCTP, 11 bytes", frameOf(0x0800, ipv4(5, 31, 132, 0, make([]byte, 11))), 0, ErrBadHeader, 0},
		{"first fragment (MF)", frameOf(0x0800, ipv4(5, 40, 6, 0x2000, tcp20)), 0, nil, IPFragment},
		{"later fragment: no L4 header", frameOf(0x0800, ipv4(5, 24, 6, 0x0001, make([]byte, 4))), 0, nil, IPFragment},
		{"DF is not a fragment", frameOf(0x0800, ipv4(5, 40, 6, 0x4000, tcp20)), 0, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Packet{Data: tc.frame, OrigLen: tc.origLen}
			if p.OrigLen == 0 {
				p.OrigLen = len(tc.frame)
			}
			err := checkHeaders(&p)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("error %v, want %v", err, tc.want)
			}
			if p.Flags != tc.flags {
				t.Errorf("flags %v, want %v", p.Flags, tc.flags)
			}
		})
	}
}

// An error names the file, and the packet with its 1-based frame number
// when there is one.
func TestErrorText(t *testing.T) {
	if s := (&Error{File: "dump.pcap", Index: -1, Err: ErrBadHeader}).Error(); s != "dump.pcap: malformed header" {
		t.Errorf("file error: %q", s)
	}
	if s := (&Error{File: "dump.pcap", Index: 0, Err: ErrBadHeader}).Error(); s != "dump.pcap: packet 0 (frame 1): malformed header" {
		t.Errorf("packet error: %q", s)
	}
}

// Each link header at its length boundary: one byte short is malformed,
// or cut when the snapshot length cut it; exactly the header converts.
func TestToEthernetHeaderLengths(t *testing.T) {
	ip := ipv4(5, 20, 99, 0, nil)
	sll := append([]byte{0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00}, ip...)
	sll2 := append([]byte{0x08, 0x00, 0, 0, 0, 0, 0, 7, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0}, ip...)
	eth := frameOf(0x0800, ip)
	for _, tc := range []struct {
		name string
		lt   uint32
		hdr  int
		rec  []byte
	}{
		{"Ethernet", LinkTypeEthernet, 14, eth},
		{"SLL", LinkTypeLinuxSLL, 16, sll},
		{"SLL2", LinkTypeLinuxSLL2, 20, sll2},
		{"raw IP", LinkTypeRaw, 1, ip},
	} {
		var p Packet
		if err := toEthernet(&p, tc.lt, tc.rec, len(tc.rec)); err != nil {
			t.Errorf("%s: whole record: %v", tc.name, err)
		}
		short := tc.rec[:tc.hdr-1]
		if err := toEthernet(&Packet{}, tc.lt, short, len(short)); !errors.Is(err, ErrBadHeader) {
			t.Errorf("%s: %d bytes: %v, want %v", tc.name, tc.hdr-1, err, ErrBadHeader)
		}
		if err := toEthernet(&Packet{}, tc.lt, short, len(tc.rec)); !errors.Is(err, ErrHeadersCut) {
			t.Errorf("%s: %d bytes cut by snaplen: %v, want %v", tc.name, tc.hdr-1, err, ErrHeadersCut)
		}
		if tc.hdr > 1 {
			exact := tc.rec[:tc.hdr]
			if err := toEthernet(&Packet{}, tc.lt, exact, len(exact)); errors.Is(err, ErrBadHeader) && strings.Contains(err.Error(), "header needs") {
				t.Errorf("%s: exactly the header: %v", tc.name, err)
			}
		}
	}
}

// A classic pcap whose link type says frames end with an FCS: whole frames
// lose the 4 FCS bytes (data and original length), snaplen-cut ones keep
// what was captured; without the flag nothing is stripped.
func TestPcapFCSStripped(t *testing.T) {
	frame := ethTCP(t, 4)
	withFCS := append(append([]byte(nil), frame...), 0xde, 0xad, 0xbe, 0xef)
	lt := LinkTypeEthernet | pcapFCSPresent | 2<<28 // 2 × 16 bits of FCS
	pkts := mustRead(t, "fcs.pcap", writePcap(t, lt, record{data: withFCS}, record{data: withFCS[:60], origLen: len(withFCS)}))
	if string(pkts[0].Data) != string(frame) || pkts[0].OrigLen != len(frame) {
		t.Errorf("whole frame: %d bytes (orig %d), want %d without the FCS", len(pkts[0].Data), pkts[0].OrigLen, len(frame))
	}
	if len(pkts[1].Data) != 60 || pkts[1].OrigLen != len(withFCS) {
		t.Errorf("cut frame: %d bytes (orig %d), want 60 (orig %d)", len(pkts[1].Data), pkts[1].OrigLen, len(withFCS))
	}
	plain := mustRead(t, "plain.pcap", writePcap(t, LinkTypeEthernet, record{data: withFCS}))
	if len(plain[0].Data) != len(withFCS) {
		t.Errorf("no FCS flag: %d bytes, want %d", len(plain[0].Data), len(withFCS))
	}
}
