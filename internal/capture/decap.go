package capture

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/hoplab/hoplab/internal/vxlan"
)

// decapsulate makes a VXLAN frame's inner frame the packet (a capture of a
// tunnel-mode cluster's wire): p must have passed checkHeaders. The frame
// as captured goes to p.Outer, the inner frame is checked as any frame is,
// and a refusal names the encapsulation. Frames that are not whole VXLAN
// datagrams (fragments, other ports, no VNI flag, no inner Ethernet
// header) are left alone.
func decapsulate(p *Packet) error {
	if p.Flags&(NonIP|IPv6|IPFragment) != 0 || p.Data[ethHeaderLen+9] != protoUDP {
		return nil
	}
	l3 := p.Data[ethHeaderLen:]
	ihl := int(l3[0]&0x0f) * 4
	end := min(int(binary.BigEndian.Uint16(l3[2:4])), len(l3))
	udp := l3[ihl:end]
	vni, inner, ok := vxlan.Payload(binary.BigEndian.Uint16(udp[2:4]), udp[8:])
	if !ok {
		return nil
	}
	offset := len(p.Data) - len(inner)
	p.Outer, p.VNI = p.Data, vni
	p.Data = bytes.Clone(inner)
	p.OrigLen -= offset
	// The outer headers' findings are not the inner packet's; the inner
	// frame has an Ethernet header of its own.
	p.Flags &^= Truncated | BadIPChecksum | L2Synthesized
	p.Flags |= VXLANDecapsulated
	if err := checkHeaders(p); err != nil {
		return fmt.Errorf("VXLAN VNI %d, inner frame: %w", vni, err)
	}
	return nil
}
