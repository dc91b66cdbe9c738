package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

// ngFile builds a pcapng file block by block in either byte order.
type ngFile struct {
	order binary.AppendByteOrder
	buf   []byte
}

func newNG(big bool) *ngFile {
	if big {
		return &ngFile{order: binary.BigEndian}
	}
	return &ngFile{order: binary.LittleEndian}
}

func (f *ngFile) u16(b []byte, v uint16) []byte { return f.order.AppendUint16(b, v) }
func (f *ngFile) u32(b []byte, v uint32) []byte { return f.order.AppendUint32(b, v) }

// raw appends one block with its length as given (it may lie).
func (f *ngFile) raw(typ, length uint32, body []byte, trailer uint32) *ngFile {
	f.buf = f.u32(f.buf, typ)
	f.buf = f.u32(f.buf, length)
	f.buf = append(f.buf, body...)
	f.buf = f.u32(f.buf, trailer)
	return f
}

// block appends one well-framed block, its body padded to 32 bits.
func (f *ngFile) block(typ uint32, body []byte) *ngFile {
	body = append([]byte(nil), body...)
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	n := uint32(12 + len(body))
	return f.raw(typ, n, body, n)
}

func (f *ngFile) shb(major, minor uint16, opts ...byte) *ngFile {
	body := f.u32(nil, ngByteOrderMagic)
	body = f.u16(body, major)
	body = f.u16(body, minor)
	body = append(body, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	return f.block(ngSectionHeader, append(body, opts...))
}

func (f *ngFile) idb(lt uint16, snaplen uint32, opts ...byte) *ngFile {
	body := f.u16(nil, lt)
	body = f.u16(body, 0)
	body = f.u32(body, snaplen)
	return f.block(ngInterfaceDesc, append(body, opts...))
}

// epb appends an enhanced packet block claiming caplen and origlen, holding
// data (padded) and then opts.
func (f *ngFile) epb(ifc uint32, data []byte, caplen, origlen uint32, opts ...byte) *ngFile {
	body := f.u32(nil, ifc)
	body = f.u32(body, 0)
	body = f.u32(body, 1)
	body = f.u32(body, caplen)
	body = f.u32(body, origlen)
	body = append(body, data...)
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	return f.block(ngEnhancedPacket, append(body, opts...))
}

// pb appends an obsolete packet block (16-bit interface, 16-bit drops).
func (f *ngFile) pb(ifc, drops uint16, data []byte) *ngFile {
	body := f.u16(nil, ifc)
	body = f.u16(body, drops)
	body = f.u32(body, 0)
	body = f.u32(body, 1)
	body = f.u32(body, uint32(len(data)))
	body = f.u32(body, uint32(len(data)))
	return f.block(ngPacketObsolete, append(body, data...))
}

// spb appends a simple packet block claiming origlen, holding data.
func (f *ngFile) spb(origlen uint32, data []byte) *ngFile {
	return f.block(ngSimplePacket, append(f.u32(nil, origlen), data...))
}

func (f *ngFile) isb(ifc uint32, opts ...byte) *ngFile {
	body := f.u32(nil, ifc)
	body = f.u32(body, 0)
	body = f.u32(body, 1)
	return f.block(ngInterfaceStats, append(body, opts...))
}

// opt encodes one option, its value padded to 32 bits.
func (f *ngFile) opt(code uint16, val ...byte) []byte {
	b := f.u16(nil, code)
	b = f.u16(b, uint16(len(val)))
	b = append(b, val...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func (f *ngFile) endOpt() []byte { return f.opt(ngOptEndOfOpt) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// TestPcapngGuardAccepts reads files at the edges of what the guard allows:
// each must read completely, with its packets intact.
func TestPcapngGuardAccepts(t *testing.T) {
	frame := ethTCP(t, 0)
	n := uint32(len(frame))
	odd := ethTCP(t, 1) // a length that needs padding
	raw := ipv4TCP(t, 0)
	type want struct {
		packets int
		first   []byte
		origLen int
	}
	cases := []struct {
		name string
		file *ngFile
		want want
	}{
		{"big-endian", newNG(true).shb(1, 0).idb(1, 0).epb(0, frame, n, n), want{1, frame, len(frame)}},
		{"little-endian", newNG(false).shb(1, 0).idb(1, 0).epb(0, frame, n, n), want{1, frame, len(frame)}},
		{"second interface, big-endian", newNG(true).shb(1, 0).idb(1, 0).idb(101, 0).epb(1, raw, uint32(len(raw)), uint32(len(raw))), want{1, nil, -1}},
		{"12-byte unknown block", newNG(false).shb(1, 0).block(0x00000BAD, nil).idb(1, 0).epb(0, frame, n, n), want{1, frame, len(frame)}},
		{"largest block", newNG(false).shb(1, 0).block(0x00000BAD, make([]byte, ngMaxBlockLen-12)).idb(1, 0).epb(0, frame, n, n), want{1, frame, len(frame)}},
		{"statistics of interface 0", newNG(false).shb(1, 0).idb(1, 0).epb(0, frame, n, n).isb(0), want{1, frame, len(frame)}},
		{"empty packet block", newNG(false).shb(1, 0).idb(1, 0).epb(0, nil, 0, 0).epb(0, frame, n, n), want{2, frame, len(frame)}},
		{"padded data then an option", func() *ngFile {
			f := newNG(false).shb(1, 0).idb(1, 0)
			return f.epb(0, odd, uint32(len(odd)), uint32(len(odd)), cat(f.opt(2, 0, 0, 0, 1), f.endOpt())...)
		}(), want{1, odd, len(odd)}},
		{"cut by its snaplen", newNG(false).shb(1, 0).idb(1, 0).epb(0, frame[:40], 40, n), want{1, frame[:40], len(frame)}},
		{"obsolete packet block with drops", newNG(false).shb(1, 0).idb(1, 0).pb(0, 5, frame), want{1, frame, len(frame)}},
		{"simple packet, no snaplen", newNG(false).shb(1, 0).idb(1, 0).spb(n, frame), want{1, frame, len(frame)}},
		{"simple packet cut by the snaplen", newNG(false).shb(1, 0).idb(1, 40).spb(n, frame[:40]), want{1, frame[:40], len(frame)}},
		{"simple packet of exactly the snaplen", newNG(false).shb(1, 0).idb(1, n).spb(n, frame), want{1, frame, len(frame)}},
		{"option filling the block, no end-of-options", func() *ngFile {
			f := newNG(false).shb(1, 0)
			return f.idb(1, 0, f.opt(2, 'e', 't', 'h', '0')...).epb(0, frame, n, n)
		}(), want{1, frame, len(frame)}},
		{"binary resolution 2^-63", func() *ngFile {
			f := newNG(false).shb(1, 0)
			return f.idb(1, 0, cat(f.opt(ngOptTSResolution, 0x80|63), f.endOpt())...).epb(0, frame, n, n)
		}(), want{1, frame, len(frame)}},
		{"decimal resolution 10^-19", func() *ngFile {
			f := newNG(false).shb(1, 0)
			return f.idb(1, 0, cat(f.opt(ngOptTSResolution, 19), f.endOpt())...).epb(0, frame, n, n)
		}(), want{1, frame, len(frame)}},
		{"a new section forgets the interfaces", newNG(false).shb(1, 0).idb(1, 0).shb(1, 0).idb(101, 0).epb(0, raw, uint32(len(raw)), uint32(len(raw))), want{1, nil, -1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pkts, err := readBytes(t, "edge.pcapng", c.file.buf)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if len(pkts) != c.want.packets {
				t.Fatalf("%d packets, want %d", len(pkts), c.want.packets)
			}
			p := pkts[len(pkts)-1]
			if c.want.first != nil && !bytes.Equal(p.Data, c.want.first) {
				t.Errorf("packet bytes\n% x\nwant\n% x", p.Data, c.want.first)
			}
			if c.want.origLen >= 0 && p.OrigLen != c.want.origLen {
				t.Errorf("original length %d, want %d", p.OrigLen, c.want.origLen)
			}
			if c.want.first == nil && p.LinkType != 101 && len(p.Data) > 0 {
				t.Errorf("link type %d, want raw IP (101) from the packet's own interface", p.LinkType)
			}
		})
	}
}

// TestPcapngGuardRefuses feeds one malformation at a time; each must be
// refused as malformed with a message saying what is wrong.
func TestPcapngGuardRefuses(t *testing.T) {
	frame := ethTCP(t, 0)
	n := uint32(len(frame))
	le := func() *ngFile { return newNG(false) }
	cases := []struct {
		name  string
		file  *ngFile
		words []string
	}{
		{"version 2.0", le().shb(2, 0).idb(1, 0).epb(0, frame, n, n), []string{"version 2.0"}},
		{"version 1.1", le().shb(1, 1).idb(1, 0).epb(0, frame, n, n), []string{"version 1.1"}},
		{"8-byte interface block", le().shb(1, 0).raw(ngInterfaceDesc, 8, nil, 8).epb(0, frame, n, n), []string{"claims 8 bytes, below the minimum"}},
		{"24-byte section header", le().shb(1, 0).raw(ngSectionHeader, 24, le().u32(make([]byte, 0, 12), ngByteOrderMagic), 24), []string{"claims 24 bytes, below the minimum"}},
		{"length not a multiple of 4", le().shb(1, 0).raw(0x0BAD, 18, make([]byte, 6), 18), []string{"length 18 is not a multiple of 4"}},
		{"block over the limit", le().shb(1, 0).raw(0x0BAD, ngMaxBlockLen+4, make([]byte, ngMaxBlockLen-8), ngMaxBlockLen+4), []string{"above the"}},
		{"short interface block", le().shb(1, 0).block(ngInterfaceDesc, []byte{1, 0, 0, 0}).epb(0, frame, n, n), []string{"interface block too short"}},
		{"empty timestamp resolution", func() *ngFile {
			f := le().shb(1, 0)
			return f.idb(1, 0, cat(f.opt(ngOptTSResolution), f.endOpt())...).epb(0, frame, n, n)
		}(), []string{"interface 0 has an empty timestamp resolution"}},
		{"binary resolution 2^-64", func() *ngFile {
			f := le().shb(1, 0)
			return f.idb(1, 0, cat(f.opt(ngOptTSResolution, 0x80|64), f.endOpt())...).epb(0, frame, n, n)
		}(), []string{"interface 0 has an impossible timestamp resolution 0xc0"}},
		{"decimal resolution 10^-20", func() *ngFile {
			f := le().shb(1, 0)
			return f.idb(1, 0, cat(f.opt(ngOptTSResolution, 20), f.endOpt())...).epb(0, frame, n, n)
		}(), []string{"interface 0 has an impossible timestamp resolution 0x14"}},
		{"short statistics block", le().shb(1, 0).idb(1, 0).block(ngInterfaceStats, make([]byte, 8)).epb(0, frame, n, n), []string{"statistics block too short"}},
		{"statistics of a missing interface", le().shb(1, 0).idb(1, 0).isb(1).epb(0, frame, n, n), []string{"statistics for interface 1, section has 1"}},
		{"short packet block", le().shb(1, 0).idb(1, 0).block(ngEnhancedPacket, make([]byte, 16)), []string{"packet block too short"}},
		{"packet on a missing interface", le().shb(1, 0).idb(1, 0).epb(1, frame, n, n), []string{"packet on interface 1, section has 1"}},
		{"obsolete packet on a missing interface", le().shb(1, 0).idb(1, 0).pb(1, 0, frame), []string{"packet on interface 1, section has 1"}},
		{"packet of a forgotten interface", le().shb(1, 0).idb(1, 0).shb(1, 0).epb(0, frame, n, n), []string{"packet on interface 0, section has 0"}},
		{"caplen beyond the block", le().shb(1, 0).idb(1, 0).epb(0, frame[:52], 100, 100), []string{"claims 100 captured bytes, its block holds 52"}},
		{"caplen above origlen", le().shb(1, 0).idb(1, 0).epb(0, frame, n, n-4), []string{"captured length 60 exceeds its original length 56"}},
		{"simple packet block too short", le().shb(1, 0).idb(1, 0).block(ngSimplePacket, nil), []string{"simple packet block too short"}},
		{"simple packet before any interface", le().shb(1, 0).spb(n, frame), []string{"simple packet before any interface block"}},
		{"simple packet beyond its block", le().shb(1, 0).idb(1, 0).spb(100, frame[:52]), []string{"simple packet claims 100 bytes, its block holds 52"}},
		{"simple packet beyond its block, under the snaplen", le().shb(1, 0).idb(1, 64).spb(100, frame[:52]), []string{"simple packet claims 64 bytes, its block holds 52"}},
		{"end-of-options with a length", func() *ngFile {
			f := le().shb(1, 0)
			return f.idb(1, 0, cat(f.opt(2, 'e', 't', 'h', '0'), f.opt(ngOptEndOfOpt, 1, 2, 3, 4))...).epb(0, frame, n, n)
		}(), []string{"end-of-options with length 4"}},
		{"option overrunning its block", le().shb(1, 0).idb(1, 0, 2, 0, 0xff, 0, 'a', 'b', 'c', 'd').epb(0, frame, n, n), []string{"option 2 (255 bytes) overruns its block"}},
		{"trailer disagrees", le().shb(1, 0).raw(ngInterfaceDesc, 20, make([]byte, 8), 24).epb(0, frame, n, n), []string{"trailer says 24 bytes, header says 20"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := readBytes(t, "bad.pcapng", c.file.buf)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v, want a malformed-file error", err)
			}
			for _, w := range c.words {
				if !bytes.Contains([]byte(err.Error()), []byte(w)) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// TestPcapngGuardAfterEndOfOptions: options after end-of-options are not
// looked at (they may be anything).
func TestPcapngGuardAfterEndOfOptions(t *testing.T) {
	frame := ethTCP(t, 0)
	n := uint32(len(frame))
	f := newNG(false).shb(1, 0)
	junk := []byte{0xff, 0xff, 0x40, 0x00} // an option claiming 64 bytes
	f.idb(1, 0, cat(f.opt(2, 'e', 't', 'h', '0'), f.endOpt(), junk)...).epb(0, frame, n, n)
	g := &ngGuard{r: bytes.NewReader(f.buf)}
	for range 3 {
		if err := g.next(); err != nil {
			t.Fatalf("block refused: %v", err)
		}
	}
}

// errReader fails with err once its data is used up.
type errReader struct {
	data []byte
	err  error
}

func (r *errReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// TestPcapngGuardStream checks the guard as an io.Reader: it refuses a
// stream that does not start with a section header, keeps returning the
// first error, tells a clean end from a failing read, and hands out link
// types in order.
func TestPcapngGuardStream(t *testing.T) {
	frame := ethTCP(t, 0)
	n := uint32(len(frame))

	noSHB := newNG(false).idb(1, 0)
	g := &ngGuard{r: bytes.NewReader(noSHB.buf)}
	if _, err := g.Read(make([]byte, 64)); !errors.Is(err, ErrMalformed) || !bytes.Contains([]byte(err.Error()), []byte("does not start with a section header")) {
		t.Errorf("stream without a section header: %v", err)
	}

	bad := newNG(false).shb(2, 0).idb(1, 0)
	g = &ngGuard{r: bytes.NewReader(bad.buf)}
	_, first := g.Read(make([]byte, 64))
	_, second := g.Read(make([]byte, 64))
	if first == nil || second != first {
		t.Errorf("errors %v then %v, want the first error again", first, second)
	}

	ok := newNG(false).shb(1, 0).idb(1, 0).idb(101, 0)
	failing := errors.New("device gone")
	g = &ngGuard{r: &errReader{data: ok.buf, err: failing}}
	if _, err := io.ReadAll(g); err == nil || errors.Is(err, io.EOF) {
		t.Errorf("a read failing at a block boundary gave %v, want an error other than EOF", err)
	}
	g = &ngGuard{r: bytes.NewReader(ok.buf)}
	if b, err := io.ReadAll(g); err != nil || !bytes.Equal(b, ok.buf) {
		t.Errorf("a clean end: %d bytes, %v", len(b), err)
	}

	if _, has := (&ngGuard{}).popLinkType(); has {
		t.Error("a fresh guard has a link type to give")
	}
	two := newNG(false).shb(1, 0).idb(1, 0).idb(113, 0).epb(1, frame, n, n).epb(0, frame, n, n)
	g = &ngGuard{r: bytes.NewReader(two.buf)}
	if _, err := io.ReadAll(g); err != nil {
		t.Fatal(err)
	}
	for _, want := range []uint32{113, 1} {
		if lt, has := g.popLinkType(); !has || lt != want {
			t.Errorf("link type %d (%v), want %d", lt, has, want)
		}
	}
	if _, has := g.popLinkType(); has {
		t.Error("more link types than packet blocks")
	}
}
