package capture

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/google/gopacket/pcapgo"
)

// pcap magic numbers, as read little-endian from the first four bytes.
const (
	magicMicros       = 0xa1b2c3d4
	magicNanos        = 0xa1b23c4d
	magicMicrosSwap   = 0xd4c3b2a1
	magicNanosSwap    = 0x4d3cb2a1
	magicKuznetzov    = 0xa1b2cd34
	magicKuznetzovSw  = 0x34cdb2a1
	magicPcapng       = 0x0a0d0d0a
	pcapFileHeaderLen = 24
	pcapFCSPresent    = 0x04000000
)

// Reader streams the packets of one capture file as Ethernet frames.
type Reader struct {
	name   string
	closer io.Closer
	format Format

	pcap     *pcapgo.Reader
	linkType uint32 // classic pcap: the file's link type
	fcsLen   int    // classic pcap: FCS bytes at the end of each frame

	ng    *pcapgo.NgReader
	guard *ngGuard

	index int
	err   error // sticky
}

// Open opens a pcap or pcapng file for streaming; Close releases it.
func Open(path string) (*Reader, error) {
	r, _, err := openCounted(path, nil)
	return r, err
}

// openCounted is Open adding the bytes read from the file to *read (when
// read is not nil); it also returns the file's size.
func openCounted(path string, read *int64) (*Reader, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, &Error{File: path, Index: -1, Err: fmt.Errorf("open: %w", err)}
	}
	var size int64
	if st, err := f.Stat(); err == nil {
		size = st.Size()
	}
	var rd io.Reader = f
	if read != nil {
		rd = &countingReader{r: f, n: read}
	}
	r, err := NewReader(rd, path)
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	r.closer = f
	return r, size, nil
}

// countingReader adds the bytes read through it to *n.
type countingReader struct {
	r io.Reader
	n *int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n += int64(n)
	return n, err
}

// NewReader reads a pcap or pcapng stream; name is used in error messages.
// The format is detected from the magic number; a gzip-compressed stream is
// decompressed first.
func NewReader(rd io.Reader, name string) (*Reader, error) {
	r := &Reader{name: name}
	br := bufio.NewReader(rd)
	head, err := br.Peek(4)
	if len(head) == 0 && err != nil {
		if err == io.EOF {
			return nil, r.fileErr(ErrEmpty)
		}
		return nil, r.fileErr(fmt.Errorf("read: %w", err))
	}
	if len(head) >= 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, r.fileErr(fmt.Errorf("%w: gzip: %v", ErrNotCapture, err))
		}
		br = bufio.NewReader(zr)
		switch head, err = br.Peek(4); {
		case err != nil && err != io.EOF:
			// Corrupt or cut before 4 bytes came out: not an empty stream.
			return nil, r.fileErr(fmt.Errorf("%w: gzip: %v", ErrNotCapture, err))
		case len(head) == 0:
			return nil, r.fileErr(fmt.Errorf("%w: gzip stream holds nothing", ErrEmpty))
		}
	}
	if len(head) < 4 {
		return nil, r.fileErr(fmt.Errorf("%w: %d bytes is too short for a capture header", ErrNotCapture, len(head)))
	}
	switch magic := binary.LittleEndian.Uint32(head); magic {
	case magicPcapng:
		return r, r.openPcapng(br)
	case magicMicros, magicNanos, magicMicrosSwap, magicNanosSwap:
		return r, r.openPcap(br, magic)
	case magicKuznetzov, magicKuznetzovSw:
		return nil, r.fileErr(fmt.Errorf("%w: modified (Kuznetzov) pcap is not supported; convert it with `editcap -F pcap`", ErrNotCapture))
	default:
		return nil, r.fileErr(fmt.Errorf("%w: starts with % x", ErrNotCapture, head))
	}
}

func (r *Reader) fileErr(err error) error { return &Error{File: r.name, Index: -1, Err: err} }

func (r *Reader) packetErr(err error) error { return &Error{File: r.name, Index: r.index, Err: err} }

func (r *Reader) openPcap(br *bufio.Reader, magic uint32) error {
	r.format = FormatPcap
	hdr, _ := br.Peek(pcapFileHeaderLen)
	if len(hdr) < pcapFileHeaderLen {
		return r.fileErr(fmt.Errorf("%w: pcap file header is %d of %d bytes", ErrTruncatedFile, len(hdr), pcapFileHeaderLen))
	}
	var order binary.ByteOrder = binary.LittleEndian
	if magic == magicMicrosSwap || magic == magicNanosSwap {
		order = binary.BigEndian
	}
	if maj, min := order.Uint16(hdr[4:6]), order.Uint16(hdr[6:8]); maj != 2 || min != 4 {
		return r.fileErr(fmt.Errorf("%w: pcap version %d.%d is not supported (2.4 is)", ErrNotCapture, maj, min))
	}
	lt := order.Uint32(hdr[20:24])
	if lt&pcapFCSPresent != 0 {
		r.fcsLen = int(lt>>28) * 2
	}
	r.linkType = lt & 0xffff
	if !linkTypeSupported(r.linkType) {
		return r.fileErr(unsupportedLinkType(r.linkType))
	}
	pr, err := pcapgo.NewReader(br)
	if err != nil {
		return r.fileErr(fmt.Errorf("%w: %v", ErrNotCapture, err))
	}
	// Accept records up to tcpdump's maximum whatever the header's snaplen
	// says (writers are known to lie), and never more.
	pr.SetSnaplen(MaxRecordLen)
	r.pcap = pr
	return nil
}

func (r *Reader) openPcapng(br *bufio.Reader) error {
	r.format = FormatPcapng
	r.guard = &ngGuard{r: br}
	ng, err := pcapgo.NewNgReader(r.guard, pcapgo.NgReaderOptions{WantMixedLinkType: true})
	if err != nil {
		return r.fileErr(r.ngErr(err))
	}
	r.ng = ng
	return nil
}

// ngErr maps an error out of the guarded NgReader onto the sentinels.
func (r *Reader) ngErr(err error) error {
	switch {
	case errors.Is(err, errCutBlock), errors.Is(err, io.ErrUnexpectedEOF):
		return ErrTruncatedFile
	case errors.Is(err, io.EOF):
		if r.ng == nil { // NewNgReader has not returned: the section header is cut
			return fmt.Errorf("%w: pcapng file ends before its section header is complete", ErrTruncatedFile)
		}
		return io.EOF
	case errors.Is(err, ErrMalformed):
		return err
	}
	return fmt.Errorf("%w: %v", ErrMalformed, err)
}

// Format reports whether the file is pcap or pcapng.
func (r *Reader) Format() Format { return r.format }

// Close closes the file opened by Open; it is a no-op for NewReader.
func (r *Reader) Close() error {
	if r.closer == nil {
		return nil
	}
	err := r.closer.Close()
	r.closer = nil
	return err
}

// Next returns the next packet, io.EOF after the last one, or an [*Error]
// that ends the read (the same error on every later call). Problems that
// concern one packet only (headers cut by the snaplen, a cooked record that
// is not a network packet) do not end the read: the packet comes back with
// Packet.Refusal set.
func (r *Reader) Next() (Packet, error) {
	if r.err != nil {
		return Packet{}, r.err
	}
	p, err := r.next()
	if err != nil {
		if err != io.EOF {
			err = r.packetErr(err)
		}
		r.err = err
		return Packet{}, err
	}
	r.index++
	return p, nil
}

func (r *Reader) next() (Packet, error) {
	var (
		raw  []byte
		lt   uint32
		p    = Packet{Index: r.index}
		olen int
	)
	if r.pcap != nil {
		data, ci, err := r.pcap.ReadPacketData()
		switch {
		case err == io.EOF && ci.CaptureLength == 0:
			return p, io.EOF
		case err == io.EOF, errors.Is(err, io.ErrUnexpectedEOF):
			return p, ErrTruncatedFile
		case err != nil:
			return p, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		raw, lt, olen, p.Timestamp = data, r.linkType, ci.Length, ci.Timestamp
		if r.fcsLen > 0 && len(raw) == olen && len(raw) >= r.fcsLen {
			raw, olen = raw[:len(raw)-r.fcsLen], olen-r.fcsLen
		}
	} else {
		data, ci, err := r.ng.ReadPacketData()
		if err != nil {
			return p, r.ngErr(err)
		}
		var ok bool
		if lt, ok = r.guard.popLinkType(); !ok {
			return p, fmt.Errorf("%w: pcapng packet without a checked block", ErrMalformed)
		}
		// olen >= len(raw): the guard refuses packet blocks whose captured
		// length exceeds their original length, and a simple packet's
		// captured length is its original length cut to the snaplen.
		raw, olen, p.Timestamp, p.Interface = data, ci.Length, ci.Timestamp, ci.InterfaceIndex
	}
	p.LinkType = lt
	if !linkTypeSupported(lt) {
		// Ends the read, so toEthernet's refusal of these same types (its
		// default case) never becomes one packet's Refusal.
		return p, unsupportedLinkType(lt)
	}
	if err := toEthernet(&p, lt, raw, olen); err != nil {
		if len(raw) < olen {
			p.Flags |= Truncated
		}
		p.Refusal = r.packetErr(err)
		return p, nil
	}
	if err := checkHeaders(&p); err != nil {
		p.Refusal = r.packetErr(err)
	} else if err := decapsulate(&p); err != nil {
		p.Refusal = r.packetErr(err)
	}
	return p, nil
}

// ReadFile reads every packet of a pcap or pcapng file and marks repeated
// sightings of one packet (MarkDuplicates). On an error it returns the
// packets read before it together with the [*Error]; a well-formed file
// without packets gives ErrNoPackets.
func ReadFile(path string) ([]Packet, error) {
	return ReadFileProgress(path, nil)
}

// Stage is a part of ReadFileProgress's work.
type Stage int

// The stages of ReadFileProgress, in order.
const (
	// StageRead reads and checks the packets; its progress counts bytes
	// of the file (compressed bytes for a gzipped one).
	StageRead Stage = iota + 1
	// StageDedup marks duplicates (MarkDuplicates); its progress counts
	// packets.
	StageDedup
)

// String returns "reading" or "de-duplicating".
func (s Stage) String() string {
	switch s {
	case StageRead:
		return "reading"
	case StageDedup:
		return "de-duplicating"
	}
	return fmt.Sprintf("Stage(%d)", int(s))
}

// Progress hears how far ReadFileProgress is in a stage: done of total.
type Progress func(stage Stage, done, total int64)

// progressEvery is how many packets pass between two Progress calls.
const progressEvery = 4096

// ReadFileProgress is ReadFile calling progress (when not nil) every few
// thousand packets and once at the end of each stage, done == total: the
// caller shows it for large captures.
func ReadFileProgress(path string, progress Progress) ([]Packet, error) {
	var read int64
	counter := &read
	if progress == nil {
		counter = nil
	}
	r, size, err := openCounted(path, counter)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var pkts []Packet
	for {
		p, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return pkts, err
		}
		pkts = append(pkts, p)
		if progress != nil && len(pkts)%progressEvery == 0 {
			progress(StageRead, min(read, size), size)
		}
	}
	if progress != nil {
		progress(StageRead, size, size)
	}
	if len(pkts) == 0 {
		return nil, r.fileErr(ErrNoPackets)
	}
	markDuplicates(pkts, progress)
	return pkts, nil
}
