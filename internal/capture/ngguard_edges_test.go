package capture

import (
	"bytes"
	"testing"
)

// The guard's length checks one 32-bit word from their boundary (block
// and option lengths move in words): a captured length one word beyond its
// block and an option list of a single word holding a bad option are
// refused, with the message of the check that fired.
func TestPcapngGuardWordEdges(t *testing.T) {
	frame := ethTCP(t, 0)
	n := uint32(len(frame))
	le := func() *ngFile { return newNG(false) }
	for _, tc := range []struct {
		name string
		file *ngFile
		msg  string
	}{
		{"caplen one word beyond the block", le().shb(1, 0).idb(1, 0).epb(0, frame, n+4, n+4),
			"pcapng packet claims 64 captured bytes, its block holds 60"},
		{"simple packet one word beyond its block", le().shb(1, 0).idb(1, 0).spb(n+4, frame),
			"pcapng simple packet claims 64 bytes, its block holds 60"},
		{"a lone end-of-options with a length", le().shb(1, 0).idb(1, 0, 0, 0, 4, 0).epb(0, frame, n, n),
			"pcapng end-of-options with length 4"},
		{"a lone option header claiming 8 bytes", le().shb(1, 0).idb(1, 0, 2, 0, 8, 0).epb(0, frame, n, n),
			"pcapng option 2 (8 bytes) overruns its block"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pkts, err := readBytes(t, "w.pcapng", tc.file.buf)
			wantErr(t, err, ErrMalformed, 0, "w.pcapng: packet 0 (frame 1): malformed record: "+tc.msg)
			if len(pkts) != 0 {
				t.Errorf("%d packets before the refusal", len(pkts))
			}
		})
	}
}

// A simple packet block of one word (the original length 0, no data) is
// a packet: empty, so refused on its own, and the read goes on.
func TestPcapngEmptySimplePacket(t *testing.T) {
	frame := ethTCP(t, 0)
	n := uint32(len(frame))
	pkts := mustRead(t, "e.pcapng", newNG(false).shb(1, 0).idb(1, 0).spb(0, nil).epb(0, frame, n, n).buf)
	if len(pkts) != 2 {
		t.Fatalf("%d packets, want 2", len(pkts))
	}
	wantErr(t, pkts[0].Refusal, ErrBadHeader, 0, "e.pcapng: packet 0 (frame 1): malformed header: Ethernet header needs 14 bytes, record has 0")
	if len(pkts[0].Data) != 0 || !bytes.Equal(pkts[1].Data, frame) || !pkts[1].Replayable() {
		t.Errorf("packets %x and %x (refusal %v), want empty then the frame", pkts[0].Data, pkts[1].Data, pkts[1].Refusal)
	}
}
