package capture

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/google/gopacket/pcapgo"
)

func gzipped(b []byte) []byte {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(b)
	zw.Close()
	return out.Bytes()
}

// The first bytes of a stream: the gzip magic needs both its bytes, a
// gzip stream is judged by what it decompresses to, and a broken one is
// not mistaken for an empty one.
func TestNewReaderHeads(t *testing.T) {
	corrupt := gzipped(make([]byte, 100))
	for i := 10; i < len(corrupt)-8; i++ {
		corrupt[i] ^= 0xff // the deflate data, not the gzip header or trailer
	}
	for _, tc := range []struct {
		name     string
		data     []byte
		sentinel error
		msg      string // the message, or its start when a library adds details
	}{
		{"1 byte of gzip magic", []byte{0x1f}, ErrNotCapture, "h: not a pcap or pcapng file: 1 bytes is too short for a capture header"},
		{"gzip magic alone", []byte{0x1f, 0x8b}, ErrNotCapture, "h: not a pcap or pcapng file: gzip: unexpected EOF"},
		{"3 bytes of pcap magic", []byte{0xd4, 0xc3, 0xb2}, ErrNotCapture, "h: not a pcap or pcapng file: 3 bytes is too short for a capture header"},
		{"gzip of nothing", gzipped(nil), ErrEmpty, "h: empty file: gzip stream holds nothing"},
		{"gzip of 2 bytes", gzipped([]byte{0xd4, 0xc3}), ErrNotCapture, "h: not a pcap or pcapng file: 2 bytes is too short for a capture header"},
		{"gzip of 3 bytes", gzipped([]byte{0xd4, 0xc3, 0xb2}), ErrNotCapture, "h: not a pcap or pcapng file: 3 bytes is too short for a capture header"},
		{"gzip with corrupt data", corrupt, ErrNotCapture, "h: not a pcap or pcapng file: gzip: flate: corrupt input before offset "},
		{"gzip cut after its header", gzipped(writePcap(t, LinkTypeEthernet))[:12], ErrNotCapture, "h: not a pcap or pcapng file: gzip: unexpected EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewReader(bytes.NewReader(tc.data), "h")
			if r != nil || !errors.Is(err, tc.sentinel) || !strings.HasPrefix(err.Error(), tc.msg) {
				t.Errorf("reader %v error %v, want %q", r != nil, err, tc.msg)
			}
			wantErr(t, err, tc.sentinel, -1)
		})
	}
}

// Classic pcap FCS handling at its edges: the FCS length counts only with
// the F bit; a record of exactly the FCS is left with nothing, one shorter
// than the FCS is left alone.
func TestPcapFCSEdges(t *testing.T) {
	frame := ethTCP(t, 4)
	withFCS := append(append([]byte(nil), frame...), 0xde, 0xad, 0xbe, 0xef)
	noF := mustRead(t, "nof.pcap", writePcap(t, LinkTypeEthernet|2<<28, record{data: withFCS}))
	if !bytes.Equal(noF[0].Data, withFCS) || noF[0].OrigLen != len(withFCS) || !noF[0].Replayable() {
		t.Errorf("FCS length without the F bit: %d bytes (orig %d), want all %d", len(noF[0].Data), noF[0].OrigLen, len(withFCS))
	}
	lt := LinkTypeEthernet | pcapFCSPresent | 2<<28
	pkts := mustRead(t, "fcs.pcap", writePcap(t, lt, record{data: withFCS[:4]}, record{data: withFCS[:3]}))
	wantErr(t, pkts[0].Refusal, ErrBadHeader, 0, "Ethernet header needs 14 bytes, record has 0")
	wantErr(t, pkts[1].Refusal, ErrBadHeader, 1, "Ethernet header needs 14 bytes, record has 3")
}

// A packet refused before its headers were checked still says whether the
// snapshot length cut it; a pcapng packet whose Ethernet padding the
// snaplen cut is replayable, flagged Truncated, with its original length.
func TestRefusedAndCutFlags(t *testing.T) {
	f := ethTCP(t, 0)
	n := uint32(len(f))
	pcap := writePcap(t, LinkTypeEthernet, record{data: f[:10]}, record{data: f[:10], origLen: len(f)})
	ng := newNG(false).shb(1, 0).idb(1, 0).epb(0, f[:54], 54, n).epb(0, f[:10], 10, 10).buf
	for _, tc := range []struct {
		name  string
		file  []byte
		index int
		flags Flags
		olen  int // of a replayable packet
		msg   string
	}{
		{"a.pcap", pcap, 0, 0, 0, "a.pcap: packet 0 (frame 1): malformed header: Ethernet header needs 14 bytes, record has 10"},
		{"a.pcap", pcap, 1, Truncated, 0, "a.pcap: packet 1 (frame 2): headers cut by snaplen: Ethernet header needs 14 bytes, 10 captured"},
		{"b.pcapng", ng, 0, Truncated, len(f), ""},
		{"b.pcapng", ng, 1, 0, 0, "b.pcapng: packet 1 (frame 2): malformed header: Ethernet header needs 14 bytes, record has 10"},
	} {
		r, err := NewReader(bytes.NewReader(tc.file), tc.name)
		if err != nil {
			t.Fatal(err)
		}
		var p Packet
		for i := 0; i <= tc.index; i++ {
			if p, err = r.Next(); err != nil {
				t.Fatalf("%s packet %d: %v", tc.name, i, err)
			}
		}
		if p.Flags != tc.flags {
			t.Errorf("%s packet %d: flags %v, want %v", tc.name, tc.index, p.Flags, tc.flags)
		}
		if got := fmt.Sprint(p.Refusal); tc.msg == "" && p.Refusal != nil || tc.msg != "" && got != tc.msg {
			t.Errorf("%s packet %d: refusal %v, want %q", tc.name, tc.index, p.Refusal, tc.msg)
		}
		if tc.msg == "" && (p.OrigLen != tc.olen || !bytes.Equal(p.Data, f[:54])) {
			t.Errorf("%s packet %d: %d bytes of %d, want 54 of %d", tc.name, tc.index, len(p.Data), p.OrigLen, tc.olen)
		}
	}
}

// Close closes the file Open opened, once; on a NewReader stream it does
// nothing.
func TestClose(t *testing.T) {
	r, err := Open(writeTemp(t, "c.pcap", writePcap(t, LinkTypeEthernet, record{data: ethTCP(t, 0)})))
	if err != nil {
		t.Fatal(err)
	}
	f := r.closer.(*os.File)
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := f.Read(make([]byte, 1)); !errors.Is(err, os.ErrClosed) {
		t.Errorf("file after Close: %v, want %v", err, os.ErrClosed)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	sr, err := NewReader(bytes.NewReader(writePcap(t, LinkTypeEthernet)), "s")
	if err != nil {
		t.Fatal(err)
	}
	if err := sr.Close(); err != nil {
		t.Errorf("Close of a NewReader: %v", err)
	}
}

// The error that ends a read is sticky: every later Next returns the same
// one, without reading on.
func TestNextErrorSticky(t *testing.T) {
	frame := ethTCP(t, 0)
	pcap := writePcap(t, LinkTypeEthernet, record{data: frame}, record{data: frame})
	for name, b := range map[string][]byte{
		"cut.pcap":     pcap[:len(pcap)-5],
		"lt.pcapng":    concat(ngSHB(), ngIDB(uint16(LinkTypeEthernet)), ngIDB(147), ngEPB(1, frame, len(frame)), ngEPB(0, frame, len(frame))),
		"empty.pcapng": concat(ngSHB(), ngIDB(1)),
	} {
		r, err := NewReader(bytes.NewReader(b), name)
		if err != nil {
			t.Fatal(err)
		}
		var first error
		for first == nil {
			_, first = r.Next()
		}
		for i := 0; i < 2; i++ {
			if p, err := r.Next(); err != first || p.Data != nil {
				t.Errorf("%s: Next after %v: %v (%d bytes)", name, first, err, len(p.Data))
			}
		}
	}
}

// ngErr maps what comes out of the guarded NgReader onto the sentinels; an
// EOF before the NgReader exists (while opening) is a cut section header,
// not the end of the packets. No file reaches that row today (the guard
// hands the NgReader the section header whole or refuses it), hence the
// direct call.
func TestNgErr(t *testing.T) {
	opening, reading := &Reader{}, &Reader{ng: &pcapgo.NgReader{}}
	bad := fmt.Errorf("%w: x", ErrMalformed)
	for _, tc := range []struct {
		name string
		r    *Reader
		in   error
		want error
		msg  string
	}{
		{"EOF while opening", opening, io.EOF, ErrTruncatedFile, "truncated record (file ends mid-record): pcapng file ends before its section header is complete"},
		{"EOF after the last packet", reading, io.EOF, io.EOF, "EOF"},
		{"cut block", reading, errCutBlock, ErrTruncatedFile, "truncated record (file ends mid-record)"},
		{"cut read", reading, io.ErrUnexpectedEOF, ErrTruncatedFile, "truncated record (file ends mid-record)"},
		{"guard refusal", reading, bad, bad, "malformed record: x"},
		{"NgReader refusal", opening, errors.New("odd"), ErrMalformed, "malformed record: odd"},
	} {
		if got := tc.r.ngErr(tc.in); !errors.Is(got, tc.want) || got.Error() != tc.msg {
			t.Errorf("%s: %v, want %q", tc.name, got, tc.msg)
		}
	}
}
