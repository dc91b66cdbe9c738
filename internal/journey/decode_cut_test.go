package journey

import (
	"testing"
)

// cutIP returns an Ethernet frame of the given EtherType followed by n
// bytes of an IP header (version nibble set), too few to hold addresses.
func cutIP(etherType uint16, version byte, n int) []byte {
	f := []byte{0xaa, 0, 0, 0, 0, 1, 0xbb, 0, 0, 0, 0, 2, byte(etherType >> 8), byte(etherType)}
	ip := make([]byte, n)
	ip[0] = version << 4
	if version == 4 {
		ip[0] |= 5
	}
	return append(f, ip...)
}

// TestCutIPHeaderShowsOnlyItsEtherType: a frame whose IPv4 or IPv6 header
// is cut short becomes a hop with its MACs and EtherType, no addresses,
// and has no flow key; a whole header has both.
func TestCutIPHeaderShowsOnlyItsEtherType(t *testing.T) {
	for _, tc := range []struct {
		name  string
		frame []byte
		proto string
	}{
		{"IPv4 cut at 10 bytes", cutIP(0x0800, 4, 10), "ipv4"},
		{"IPv6 cut at 20 bytes", cutIP(0x86dd, 6, 20), "ipv6"},
	} {
		h := HopFromPacket("node1", PodEgress, "lxc1", tc.frame)
		if h.IPSrc != "" || h.IPDst != "" || h.Proto != tc.proto || h.EthSrc != "bb:00:00:00:00:02" {
			t.Errorf("%s: hop src %q dst %q proto %q eth %q", tc.name, h.IPSrc, h.IPDst, h.Proto, h.EthSrc)
		}
		if k, ok := KeyFromFrame(tc.frame); ok {
			t.Errorf("%s: flow key %v from a cut header", tc.name, k)
		}
	}
	whole := cutIP(0x0800, 4, 20)
	whole[14+2], whole[14+3] = 0, 20 // total length
	whole[14+9] = 47                 // GRE: no ports
	copy(whole[14+12:], []byte{10, 1, 1, 10, 10, 1, 2, 20})
	h := HopFromPacket("node1", PodEgress, "lxc1", whole)
	if h.IPSrc != "10.1.1.10" || h.IPDst != "10.1.2.20" {
		t.Errorf("whole header: hop src %q dst %q", h.IPSrc, h.IPDst)
	}
	if k, ok := KeyFromFrame(whole); !ok || k.Src.Addr().String() != "10.1.1.10" {
		t.Errorf("whole header: key %v, %v", k, ok)
	}
	// Only one address readable is still a cut header.
	half := cutIP(0x0800, 4, 16)
	copy(half[14+12:], []byte{10, 1, 1, 10})
	if k, ok := KeyFromFrame(half); ok {
		t.Errorf("half header: flow key %v", k)
	}
}
