package datapath

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// ipv4Frame is an Ethernet frame carrying an IPv4 header of ihl words
// (options zero-filled, i.e. end-of-list) from 10.1.1.10 to 10.1.2.40,
// protocol TCP, TTL 64, followed by a 20-byte TCP header; cut keeps that
// many bytes of it.
func ipv4Frame(ihl, cut int) []byte {
	eth := []byte{0x0a, 0x58, 0x0a, 0x01, 0x02, 0x28, 0x0a, 0x58, 0x0a, 0x01, 0x01, 0x0a, 0x08, 0x00}
	hdr := make([]byte, ihl*4)
	hdr[0] = 0x40 | byte(ihl)
	total := ihl*4 + 20
	hdr[2], hdr[3] = byte(total>>8), byte(total)
	hdr[8], hdr[9] = 64, 6
	copy(hdr[12:], []byte{10, 1, 1, 10, 10, 1, 2, 40})
	tcp := make([]byte, 20)
	tcp[0], tcp[1], tcp[2], tcp[3] = 0x9c, 0x40, 0x1f, 0x90 // 40000 -> 8080
	tcp[12], tcp[13] = 0x50, 0x02                           // SYN
	f := append(append(eth, hdr...), tcp...)
	return f[:cut]
}

// A frame whose IPv4 header is cut short is an error, not a packet with
// invalid (or half-read) addresses.
func TestDecodePacketIPv4HeaderCut(t *testing.T) {
	src, dst := netip.MustParseAddr("10.1.1.10"), netip.MustParseAddr("10.1.2.40")
	for _, tc := range []struct {
		name      string
		frame     []byte
		wantAddrs bool
		msg       string
		summary   string
	}{
		{"10 of the 20 fixed bytes", ipv4Frame(5, 14+10), false, "IPv4 header cut short: 10 of 20 bytes",
			"24 bytes, IPv4 header cut short: 10 of 20 bytes"},
		{"no IPv4 byte at all", ipv4Frame(5, 14), false, "IPv4 header cut short: 0 of 20 bytes",
			"14 bytes, IPv4 header cut short: 0 of 20 bytes"},
		{"options cut: 30 of IHL*4 = 60 bytes", ipv4Frame(15, 14+30), true, "IPv4 header cut short: 30 of 60 bytes",
			"10.1.1.10 -> 10.1.2.40 proto 6 ttl=64, IPv4 header cut short: 30 of 60 bytes"},
		{"fixed part whole, options (IHL 6) missing", ipv4Frame(6, 14+20), true, "IPv4 header cut short: 20 of 24 bytes",
			"10.1.1.10 -> 10.1.2.40 proto 6 ttl=64, IPv4 header cut short: 20 of 24 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pi, err := DecodePacket(tc.frame)
			if !errors.Is(err, ErrIPv4HeaderCut) || errors.Is(err, ErrNotIPv4Packet) {
				t.Fatalf("DecodePacket: %+v, %v; want ErrIPv4HeaderCut", pi, err)
			}
			if !strings.HasSuffix(err.Error(), tc.msg) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q, want it to end in %q", err, tc.msg)
			}
			if tc.wantAddrs && (pi.IPSrc != src || pi.IPDst != dst || pi.TTL != 64 || pi.Proto != "6") {
				t.Errorf("fixed part of the header: %+v", pi)
			}
			if !tc.wantAddrs && (pi.IPSrc.IsValid() || pi.IPDst.IsValid()) {
				t.Errorf("addresses from a header without them: %+v", pi)
			}
			if pi.SPort != 0 || pi.DPort != 0 || pi.TCPFlags != "" {
				t.Errorf("L4 fields decoded behind a cut IPv4 header: %+v", pi)
			}
			if got := PacketSummary(tc.frame); got != tc.summary {
				t.Errorf("PacketSummary %q, want %q", got, tc.summary)
			}
		})
	}
	// The same header whole decodes, options included; a frame cut by the
	// event's 128-byte capture after the IP header is not an error.
	for _, f := range [][]byte{ipv4Frame(5, 14+40), ipv4Frame(15, 14+60+20), ipv4Frame(15, 14+60+4)} {
		pi, err := DecodePacket(f)
		if err != nil || pi.IPSrc != src || pi.IPDst != dst || pi.Proto != "tcp" {
			t.Errorf("whole header (%d bytes): %+v, %v", len(f), pi, err)
		}
	}
}
