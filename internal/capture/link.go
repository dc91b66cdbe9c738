package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Link types (LINKTYPE_ values from tcpdump.org) the reader converts.
const (
	LinkTypeNull      uint32 = 0   // BSD loopback, host byte order AF_ header
	LinkTypeEthernet  uint32 = 1   // Ethernet
	LinkTypeRaw       uint32 = 101 // raw IPv4 or IPv6
	LinkTypeLoop      uint32 = 108 // OpenBSD loopback, network byte order AF_ header
	LinkTypeLinuxSLL  uint32 = 113 // Linux cooked capture v1 (tcpdump -i any)
	LinkTypeIPv4      uint32 = 228 // raw IPv4
	LinkTypeIPv6      uint32 = 229 // raw IPv6
	LinkTypeLinuxSLL2 uint32 = 276 // Linux cooked capture v2 (tcpdump -i any, libpcap ≥ 1.10)
)

// ErrNotConvertible means one packet of an otherwise supported capture
// cannot be turned into an Ethernet frame (used in Packet.Refusal).
var ErrNotConvertible = errors.New("cannot convert to Ethernet")

// linkTypeNames names the link types users are most likely to attach by
// mistake, for the refusal message.
var linkTypeNames = map[uint32]string{
	6:   "IEEE802_5 (Token Ring)",
	9:   "PPP",
	10:  "FDDI",
	50:  "PPP_HDLC",
	104: "C_HDLC",
	105: "IEEE802_11 (Wi-Fi)",
	119: "PRISM_HEADER (Wi-Fi)",
	127: "IEEE802_11_RADIOTAP (Wi-Fi)",
	192: "PPI",
	195: "IEEE802_15_4",
	201: "BLUETOOTH_HCI_H4_WITH_PHDR",
	220: "USB_LINUX_MMAPPED",
	249: "USBPCAP",
	253: "NETLINK (nflog/nlmon)",
	239: "NFLOG",
}

// linkTypeSupported reports whether packets of link type lt can be converted.
func linkTypeSupported(lt uint32) bool {
	switch lt {
	case LinkTypeNull, LinkTypeEthernet, LinkTypeRaw, LinkTypeLoop,
		LinkTypeLinuxSLL, LinkTypeIPv4, LinkTypeIPv6, LinkTypeLinuxSLL2:
		return true
	}
	return false
}

// unsupportedLinkType builds the refusal naming the type.
func unsupportedLinkType(lt uint32) error {
	if name, ok := linkTypeNames[lt]; ok {
		return fmt.Errorf("%w %d %s (hoplab replays Ethernet, Linux cooked SLL/SLL2, raw IP and loopback captures)", ErrUnsupportedLinkType, lt, name)
	}
	return fmt.Errorf("%w %d (hoplab replays Ethernet, Linux cooked SLL/SLL2, raw IP and loopback captures)", ErrUnsupportedLinkType, lt)
}

// Ethertypes the reader looks at.
const (
	etherTypeIPv4   = 0x0800
	etherTypeIPv6   = 0x86dd
	etherTypeVLAN   = 0x8100
	etherTypeQinQ   = 0x88a8
	etherTypeQinQ91 = 0x9100
	arphrdEther     = 1
	arphrdLoopback  = 772
	arphrdNetlink   = 824
	ethHeaderLen    = 14
)

// toEthernet converts one record of link type lt to an Ethernet frame and
// fills p.Data, p.OrigLen, p.Flags, p.IfIndex and p.VLANs. A packet that cannot
// be converted gets an error back (the caller turns it into a refusal).
func toEthernet(p *Packet, lt uint32, raw []byte, origLen int) error {
	var (
		hdrLen    int    // length of the original link header
		etherType uint16 // payload type
		src       []byte // source MAC, when known
	)
	cut := len(raw) < origLen
	short := func(what string, need int) error {
		if cut {
			return fmt.Errorf("%w: %s needs %d bytes, %d captured", ErrHeadersCut, what, need, len(raw))
		}
		return fmt.Errorf("%w: %s needs %d bytes, record has %d", ErrBadHeader, what, need, len(raw))
	}
	switch lt {
	case LinkTypeEthernet:
		if len(raw) < ethHeaderLen {
			return short("Ethernet header", ethHeaderLen)
		}
		p.Data = append([]byte(nil), raw...)
		p.OrigLen = origLen
		return stripVLANs(p, cut)
	case LinkTypeLinuxSLL:
		hdrLen = 16
		if len(raw) < hdrLen {
			return short("Linux cooked (SLL) header", hdrLen)
		}
		arphrd := binary.BigEndian.Uint16(raw[2:4])
		alen := binary.BigEndian.Uint16(raw[4:6])
		etherType = binary.BigEndian.Uint16(raw[14:16])
		if err := sllCheck(arphrd, etherType); err != nil {
			return err
		}
		if alen == 6 {
			src = raw[6:12]
		}
	case LinkTypeLinuxSLL2:
		hdrLen = 20
		if len(raw) < hdrLen {
			return short("Linux cooked (SLL2) header", hdrLen)
		}
		etherType = binary.BigEndian.Uint16(raw[0:2])
		p.IfIndex = binary.BigEndian.Uint32(raw[4:8])
		arphrd := binary.BigEndian.Uint16(raw[8:10])
		if err := sllCheck(arphrd, etherType); err != nil {
			return err
		}
		if raw[11] == 6 {
			src = raw[12:18]
		}
	case LinkTypeRaw, LinkTypeIPv4, LinkTypeIPv6:
		if len(raw) < 1 {
			return short("IP header", 1)
		}
		switch {
		case lt == LinkTypeIPv4:
			etherType = etherTypeIPv4
		case lt == LinkTypeIPv6:
			etherType = etherTypeIPv6
		case raw[0]>>4 == 4:
			etherType = etherTypeIPv4
		case raw[0]>>4 == 6:
			etherType = etherTypeIPv6
		default:
			return fmt.Errorf("%w: raw-IP record with IP version %d", ErrNotConvertible, raw[0]>>4)
		}
	case LinkTypeNull, LinkTypeLoop:
		hdrLen = 4
		if len(raw) < hdrLen+1 {
			return short("loopback header", hdrLen+1)
		}
		switch raw[4] >> 4 {
		case 4:
			etherType = etherTypeIPv4
		case 6:
			etherType = etherTypeIPv6
		default:
			return fmt.Errorf("%w: loopback record carries neither IPv4 nor IPv6", ErrNotConvertible)
		}
	default:
		return unsupportedLinkType(lt)
	}
	frame := make([]byte, ethHeaderLen+len(raw)-hdrLen)
	// Destination MAC stays the 00:00:00:00:00:00 placeholder.
	if src != nil {
		copy(frame[6:12], src)
	}
	binary.BigEndian.PutUint16(frame[12:14], etherType)
	copy(frame[ethHeaderLen:], raw[hdrLen:])
	p.Data = frame
	p.OrigLen = origLen - hdrLen + ethHeaderLen
	p.Flags |= L2Synthesized
	return stripVLANs(p, cut)
}

// sllCheck refuses cooked records whose protocol field is not an Ethertype.
func sllCheck(arphrd, etherType uint16) error {
	if arphrd == arphrdNetlink {
		return fmt.Errorf("%w: cooked record is a netlink message (ARPHRD_NETLINK), not a network packet", ErrNotConvertible)
	}
	if etherType < 0x0600 {
		return fmt.Errorf("%w: cooked record with protocol 0x%04x (not an Ethertype: 802.2 LLC, CAN or similar)", ErrNotConvertible, etherType)
	}
	return nil
}

// stripVLANs removes every stacked 802.1Q/802.1ad tag from p.Data.
func stripVLANs(p *Packet, cut bool) error {
	for {
		et := binary.BigEndian.Uint16(p.Data[12:14])
		if et != etherTypeVLAN && et != etherTypeQinQ && et != etherTypeQinQ91 {
			return nil
		}
		if len(p.Data) < ethHeaderLen+4 {
			if cut {
				return fmt.Errorf("%w: VLAN tag needs 4 bytes after the Ethernet header, %d captured", ErrHeadersCut, len(p.Data)-ethHeaderLen)
			}
			return fmt.Errorf("%w: VLAN tag needs 4 bytes after the Ethernet header, frame has %d", ErrBadHeader, len(p.Data)-ethHeaderLen)
		}
		p.VLANs = append(p.VLANs, binary.BigEndian.Uint16(p.Data[14:16])&0x0fff)
		// Move the MACs 4 bytes forward over the tag; the tag's inner
		// Ethertype at [16:18] becomes the frame's Ethertype.
		copy(p.Data[4:16], p.Data[0:12])
		p.Data = p.Data[4:]
		p.OrigLen -= 4
		p.Flags |= VLANStripped
	}
}
