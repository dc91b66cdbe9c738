package capture

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

// toEthernet at the edges of each link header and of the cooked protocol
// and VLAN checks: either the exact frame (bytes, original length, flags,
// VLANs) or the exact refusal.
func TestToEthernetEdges(t *testing.T) {
	eth := func(et uint16, rest ...byte) []byte { // MACs 01..0c, then et
		f := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, byte(et >> 8), byte(et)}
		return append(f, rest...)
	}
	synth := func(et uint16, rest ...byte) []byte { // placeholder MACs
		return append([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, byte(et >> 8), byte(et)}, rest...)
	}
	sll := func(proto uint16, arphrd uint16) []byte {
		return append(sllHeader(0, arphrd, nil, proto), 0xaa, 0xbb)
	}
	for _, tc := range []struct {
		name    string
		lt      uint32
		rec     []byte
		origLen int // 0: len(rec)
		// on success
		data  []byte
		olen  int
		flags Flags
		vlans []uint16
		// on refusal
		want error
		msg  string
	}{
		{name: "raw IP, 1 byte", lt: LinkTypeRaw, rec: []byte{0x45},
			data: synth(0x0800, 0x45), olen: 15, flags: L2Synthesized},
		{name: "raw IP, 1 byte of version 6", lt: LinkTypeRaw, rec: []byte{0x60},
			data: synth(0x86dd, 0x60), olen: 15, flags: L2Synthesized},
		{name: "raw IP, version 5", lt: LinkTypeRaw, rec: []byte{0x50},
			want: ErrNotConvertible, msg: "cannot convert to Ethernet: raw-IP record with IP version 5"},
		{name: "loopback, 4 bytes", lt: LinkTypeLoop, rec: []byte{0, 0, 0, 2},
			want: ErrBadHeader, msg: "malformed header: loopback header needs 5 bytes, record has 4"},
		{name: "loopback, 4 bytes cut by snaplen", lt: LinkTypeNull, rec: []byte{2, 0, 0, 0}, origLen: 60,
			want: ErrHeadersCut, msg: "headers cut by snaplen: loopback header needs 5 bytes, 4 captured"},
		{name: "loopback, 5 bytes", lt: LinkTypeLoop, rec: []byte{0, 0, 0, 2, 0x45},
			data: synth(0x0800, 0x45), olen: 15, flags: L2Synthesized},
		{name: "loopback, 5 bytes of IPv6 cut by snaplen", lt: LinkTypeNull, rec: []byte{30, 0, 0, 0, 0x60}, origLen: 44,
			data: synth(0x86dd, 0x60), olen: 54, flags: L2Synthesized},
		{name: "loopback, neither IPv4 nor IPv6", lt: LinkTypeNull, rec: []byte{2, 0, 0, 0, 0x50},
			want: ErrNotConvertible, msg: "cannot convert to Ethernet: loopback record carries neither IPv4 nor IPv6"},
		{name: "SLL netlink", lt: LinkTypeLinuxSLL, rec: sll(0, arphrdNetlink),
			want: ErrNotConvertible, msg: "cannot convert to Ethernet: cooked record is a netlink message (ARPHRD_NETLINK), not a network packet"},
		{name: "SLL2 netlink", lt: LinkTypeLinuxSLL2, rec: append(sll2Header(0, 3, arphrdNetlink, 0, nil), 0xaa),
			want: ErrNotConvertible, msg: "cannot convert to Ethernet: cooked record is a netlink message (ARPHRD_NETLINK), not a network packet"},
		{name: "SLL protocol 0x05ff", lt: LinkTypeLinuxSLL, rec: sll(0x05ff, arphrdEther),
			want: ErrNotConvertible, msg: "cannot convert to Ethernet: cooked record with protocol 0x05ff (not an Ethertype: 802.2 LLC, CAN or similar)"},
		{name: "SLL protocol 0x0600", lt: LinkTypeLinuxSLL, rec: sll(0x0600, arphrdEther),
			data: synth(0x0600, 0xaa, 0xbb), olen: 16, flags: L2Synthesized},
		{name: "VLAN type, no tag", lt: LinkTypeEthernet, rec: eth(0x8100),
			want: ErrBadHeader, msg: "malformed header: VLAN tag needs 4 bytes after the Ethernet header, frame has 0"},
		{name: "VLAN tag of 3 bytes", lt: LinkTypeEthernet, rec: eth(0x88a8, 0x00, 0x64, 0x08),
			want: ErrBadHeader, msg: "malformed header: VLAN tag needs 4 bytes after the Ethernet header, frame has 3"},
		{name: "VLAN tag of 2 bytes cut by snaplen", lt: LinkTypeEthernet, rec: eth(0x9100, 0x00, 0x64), origLen: 64,
			want: ErrHeadersCut, msg: "headers cut by snaplen: VLAN tag needs 4 bytes after the Ethernet header, 2 captured"},
		{name: "VLAN tag and nothing after it", lt: LinkTypeEthernet, rec: eth(0x8100, 0x20, 0x64, 0x08, 0x06),
			data: eth(0x0806), olen: 14, flags: VLANStripped, vlans: []uint16{100}},
		{name: "two tags, the inner one cut", lt: LinkTypeEthernet, rec: eth(0x88a8, 0x00, 0x0a, 0x81, 0x00, 0x00), origLen: 70,
			want: ErrHeadersCut, msg: "headers cut by snaplen: VLAN tag needs 4 bytes after the Ethernet header, 1 captured"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			olen := tc.origLen
			if olen == 0 {
				olen = len(tc.rec)
			}
			var p Packet
			err := toEthernet(&p, tc.lt, append([]byte(nil), tc.rec...), olen)
			if tc.want != nil {
				if !errors.Is(err, tc.want) || err.Error() != tc.msg {
					t.Errorf("error %v, want %q", err, tc.msg)
				}
				return
			}
			if err != nil {
				t.Fatalf("error %v", err)
			}
			if !bytes.Equal(p.Data, tc.data) || p.OrigLen != tc.olen || p.Flags != tc.flags || !slices.Equal(p.VLANs, tc.vlans) {
				t.Errorf("frame % x orig %d flags %v vlans %v\nwant  % x orig %d flags %v vlans %v",
					p.Data, p.OrigLen, p.Flags, p.VLANs, tc.data, tc.olen, tc.flags, tc.vlans)
			}
		})
	}
}
