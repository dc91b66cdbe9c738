// Package vxlan recognises VXLAN (RFC 7348) in UDP payloads: the one
// definition of which datagrams hoplab opens as tunnelled frames, shared by
// the capture reader (replaying a tunnel-mode cluster's wire) and the
// journey model (a hop's outer headers).
package vxlan

// Ports are the UDP destination ports whose payload is VXLAN: IANA's 4789
// and Linux's and Cilium's 8472 (what the datapath's tunnel mode uses).
var Ports = map[uint16]bool{4789: true, 8472: true}

// HeaderLen is the VXLAN header's length.
const HeaderLen = 8

// ethHeaderLen is the inner Ethernet header's length: a payload must hold
// at least one for there to be an inner frame.
const ethHeaderLen = 14

// flagVNI is the I flag: the VNI is valid.
const flagVNI = 0x08

// Payload returns the VNI and the inner Ethernet frame of a UDP payload sent
// to dport, when it is VXLAN: a known port, the valid-VNI flag, and at least
// an inner Ethernet header behind the VXLAN header. inner aliases payload.
func Payload(dport uint16, payload []byte) (vni uint32, inner []byte, ok bool) {
	if !Ports[dport] || len(payload) < HeaderLen+ethHeaderLen || payload[0]&flagVNI == 0 {
		return 0, nil, false
	}
	return uint32(payload[4])<<16 | uint32(payload[5])<<8 | uint32(payload[6]), payload[HeaderLen:], true
}
