package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// pcapng block types the guard looks into.
const (
	ngSectionHeader      = 0x0A0D0D0A
	ngInterfaceDesc      = 0x00000001
	ngPacketObsolete     = 0x00000002
	ngSimplePacket       = 0x00000003
	ngInterfaceStats     = 0x00000005
	ngEnhancedPacket     = 0x00000006
	ngByteOrderMagic     = 0x1A2B3C4D
	ngOptEndOfOpt        = 0
	ngOptTSResolution    = 9
	ngMaxBlockLen        = MaxRecordLen + 64*1024
	ngMinBlockLen        = 12
	ngSectionHeaderMinSz = 28
)

// errCutBlock is returned by the guard when the file ends inside a block.
var errCutBlock = errors.New("file ends inside a pcapng block")

// ngGuard sits between the file and pcapgo.NgReader. It reads one whole block
// at a time, checks it (lengths, trailer, interface references, option
// bounds, timestamp resolution) and only then lets the NgReader see it, so a
// hostile file can neither make the NgReader allocate what it claims nor
// reach the NgReader's unchecked paths. It also keeps the full 16-bit link
// type of every packet block it passed, in order, because pcapgo v1.1.19
// stores link types in 8 bits (SLL2 = 276 would read as 20).
type ngGuard struct {
	r         io.Reader
	block     []byte
	off       int
	big       bool
	started   bool
	ifaces    []ngIface
	linkTypes []uint32 // per packet block passed, consumed by the Reader
	err       error
}

type ngIface struct {
	linkType uint32
	snaplen  uint32
}

func (g *ngGuard) u16(b []byte) uint16 {
	if g.big {
		return binary.BigEndian.Uint16(b)
	}
	return binary.LittleEndian.Uint16(b)
}

func (g *ngGuard) u32(b []byte) uint32 {
	if g.big {
		return binary.BigEndian.Uint32(b)
	}
	return binary.LittleEndian.Uint32(b)
}

// Read implements io.Reader; it never returns bytes of a block that has not
// been checked, and returns the checking error at the block boundary.
func (g *ngGuard) Read(p []byte) (int, error) {
	if g.off == len(g.block) {
		if g.err != nil {
			return 0, g.err
		}
		if err := g.next(); err != nil {
			g.err = err
			return 0, err
		}
	}
	n := copy(p, g.block[g.off:])
	g.off += n
	return n, nil
}

// popLinkType returns the link type of the oldest packet block passed.
func (g *ngGuard) popLinkType() (uint32, bool) {
	if len(g.linkTypes) == 0 {
		return 0, false
	}
	lt := g.linkTypes[0]
	g.linkTypes = g.linkTypes[1:]
	return lt, true
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

func (g *ngGuard) next() error {
	var hdr [12]byte
	n, err := io.ReadFull(g.r, hdr[:8])
	switch {
	case n == 0 && err == io.EOF:
		return io.EOF
	case err != nil:
		return errCutBlock
	}
	typ := binary.LittleEndian.Uint32(hdr[0:4]) // palindromic for the SHB
	hlen := 8
	if typ == ngSectionHeader {
		if _, err := io.ReadFull(g.r, hdr[8:12]); err != nil {
			return errCutBlock
		}
		switch {
		case binary.BigEndian.Uint32(hdr[8:12]) == ngByteOrderMagic:
			g.big = true
		case binary.LittleEndian.Uint32(hdr[8:12]) == ngByteOrderMagic:
			g.big = false
		default:
			return malformed("pcapng section header has a bad byte-order magic")
		}
		hlen = 12
		g.ifaces = g.ifaces[:0]
	} else if !g.started {
		return malformed("pcapng file does not start with a section header")
	}
	g.started = true
	typ = g.u32(hdr[0:4])
	length := g.u32(hdr[4:8])
	switch {
	case length < ngMinBlockLen || (typ == ngSectionHeader && length < ngSectionHeaderMinSz):
		return malformed("pcapng block 0x%x claims %d bytes, below the minimum", typ, length)
	case length%4 != 0:
		return malformed("pcapng block 0x%x length %d is not a multiple of 4", typ, length)
	case length > ngMaxBlockLen:
		return malformed("pcapng block 0x%x claims %d bytes, above the %d-byte limit", typ, length, ngMaxBlockLen)
	}
	block := make([]byte, length)
	copy(block, hdr[:hlen])
	if _, err := io.ReadFull(g.r, block[hlen:]); err != nil {
		return errCutBlock
	}
	if trailer := g.u32(block[length-4:]); trailer != length {
		return malformed("pcapng block 0x%x trailer says %d bytes, header says %d", typ, trailer, length)
	}
	body := block[8 : length-4]
	if err := g.check(typ, body); err != nil {
		return err
	}
	g.block, g.off = block, 0
	return nil
}

// check validates one block body (everything between length and trailer).
func (g *ngGuard) check(typ uint32, body []byte) error {
	switch typ {
	case ngSectionHeader:
		// body: byte-order magic, major, minor, section length, options.
		if maj, min := g.u16(body[4:6]), g.u16(body[6:8]); maj != 1 || min != 0 {
			return malformed("pcapng version %d.%d is not supported (1.0 is)", maj, min)
		}
		return g.checkOptions(body[16:], nil)
	case ngInterfaceDesc:
		if len(body) < 8 {
			return malformed("pcapng interface block too short")
		}
		ifc := ngIface{linkType: uint32(g.u16(body[0:2])), snaplen: g.u32(body[4:8])}
		g.ifaces = append(g.ifaces, ifc)
		return g.checkOptions(body[8:], func(code uint16, val []byte) error {
			if code != ngOptTSResolution {
				return nil
			}
			if len(val) < 1 {
				return malformed("pcapng interface %d has an empty timestamp resolution", len(g.ifaces)-1)
			}
			exp, binaryRes := val[0]&0x7f, val[0]&0x80 != 0
			if (binaryRes && exp > 63) || (!binaryRes && exp > 19) {
				return malformed("pcapng interface %d has an impossible timestamp resolution 0x%02x", len(g.ifaces)-1, val[0])
			}
			return nil
		})
	case ngInterfaceStats:
		if len(body) < 12 {
			return malformed("pcapng interface statistics block too short")
		}
		if id := g.u32(body[0:4]); int64(id) >= int64(len(g.ifaces)) {
			return malformed("pcapng statistics for interface %d, section has %d", id, len(g.ifaces))
		}
		return g.checkOptions(body[12:], nil)
	case ngEnhancedPacket, ngPacketObsolete:
		if len(body) < 20 {
			return malformed("pcapng packet block too short")
		}
		var id uint32
		if typ == ngEnhancedPacket {
			id = g.u32(body[0:4])
		} else {
			id = uint32(g.u16(body[0:2]))
		}
		if int64(id) >= int64(len(g.ifaces)) {
			return malformed("pcapng packet on interface %d, section has %d", id, len(g.ifaces))
		}
		caplen, origlen := g.u32(body[12:16]), g.u32(body[16:20])
		if int64(caplen) > int64(len(body)-20) {
			return malformed("pcapng packet claims %d captured bytes, its block holds %d", caplen, len(body)-20)
		}
		if caplen > origlen {
			return malformed("pcapng packet captured length %d exceeds its original length %d", caplen, origlen)
		}
		g.linkTypes = append(g.linkTypes, g.ifaces[id].linkType)
		// The block's length is a multiple of 4, so caplen rounded up to
		// 32 bits still fits: the options start inside the block.
		pad := (int(caplen) + 3) &^ 3
		return g.checkOptions(body[20+pad:], nil)
	case ngSimplePacket:
		if len(body) < 4 {
			return malformed("pcapng simple packet block too short")
		}
		if len(g.ifaces) == 0 {
			return malformed("pcapng simple packet before any interface block")
		}
		caplen := g.u32(body[0:4])
		if s := g.ifaces[0].snaplen; s != 0 && caplen > s {
			caplen = s
		}
		if int64(caplen) > int64(len(body)-4) {
			return malformed("pcapng simple packet claims %d bytes, its block holds %d", caplen, len(body)-4)
		}
		g.linkTypes = append(g.linkTypes, g.ifaces[0].linkType)
	}
	return nil
}

// checkOptions walks an option list and verifies every option fits inside
// the block; visit, when set, sees each option's code and value.
func (g *ngGuard) checkOptions(opts []byte, visit func(code uint16, val []byte) error) error {
	for len(opts) >= 4 {
		code, l := g.u16(opts[0:2]), int(g.u16(opts[2:4]))
		if code == ngOptEndOfOpt {
			if l != 0 {
				return malformed("pcapng end-of-options with length %d", l)
			}
			return nil
		}
		padded := (l + 3) &^ 3
		if 4+padded > len(opts) {
			return malformed("pcapng option %d (%d bytes) overruns its block", code, l)
		}
		if visit != nil {
			if err := visit(code, opts[4:4+l]); err != nil {
				return err
			}
		}
		opts = opts[4+padded:]
	}
	// Option lists are multiples of 4 bytes (blocks and paddings are), so
	// nothing is left here.
	return nil
}
