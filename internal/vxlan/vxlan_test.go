package vxlan

import (
	"bytes"
	"testing"
)

func TestPayload(t *testing.T) {
	inner := bytes.Repeat([]byte{0xee}, 14)
	hdr := []byte{0x08, 0, 0, 0, 0xab, 0xcd, 0xef, 0x99}
	for _, port := range []uint16{4789, 8472} {
		vni, in, ok := Payload(port, append(hdr, inner...))
		if !ok || vni != 0xabcdef || !bytes.Equal(in, inner) {
			t.Errorf("port %d: %#x %x %v", port, vni, in, ok)
		}
	}
	for name, c := range map[string]struct {
		port    uint16
		payload []byte
	}{
		"port 4790":     {4790, append(hdr, inner...)},
		"no VNI flag":   {8472, append([]byte{0xf7, 0, 0, 0, 0, 0, 1, 0}, inner...)},
		"13-byte inner": {8472, append(hdr, inner[:13]...)},
		"header only":   {8472, hdr},
		"short header":  {8472, hdr[:7]},
	} {
		if vni, in, ok := Payload(c.port, c.payload); ok {
			t.Errorf("%s: VXLAN %#x %x", name, vni, in)
		}
	}
}
