package replayinput

import (
	"errors"
	"strings"
	"testing"

	"github.com/hoplab/hoplab/internal/capture"
)

func pkt(i int, f capture.Flags) capture.Packet {
	return capture.Packet{Index: i, Flags: f, Data: make([]byte, 60), OrigLen: 60, LinkType: capture.LinkTypeEthernet}
}

func TestSelectRules(t *testing.T) {
	dup := pkt(1, capture.Duplicate)
	dup.DuplicateOf = 0
	pkts := []capture.Packet{pkt(0, capture.L2Synthesized), dup, pkt(2, capture.VLANStripped), pkt(3, capture.IPFragment)}
	s, err := Select("x.pcap", pkts, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Packets) != 3 || s.Packets[1].Index != 2 || len(s.Skipped) != 1 || s.Skipped[0].Index != 1 {
		t.Fatalf("selection %+v", s)
	}
	if !strings.Contains(s.Skipped[0].Reason, "another sighting of packet 0") || len(s.Notes) != 2 {
		t.Errorf("skip %q, notes %q", s.Skipped[0].Reason, s.Notes)
	}

	v6 := pkt(1, capture.IPv6)
	_, err = Select("x.pcap", []capture.Packet{pkt(0, 0), v6}, Options{})
	var ce *capture.Error
	if !errors.Is(err, ErrIPv6) || !errors.As(err, &ce) || ce.Index != 1 || ce.File != "x.pcap" {
		t.Errorf("IPv6: %v", err)
	}
	s, err = Select("x.pcap", []capture.Packet{pkt(0, 0), v6}, Options{SkipRefused: true})
	if err != nil || len(s.Packets) != 1 || len(s.Skipped) != 1 || !strings.HasPrefix(s.Skipped[0].Reason, "IPv6 is not replayed") {
		t.Errorf("IPv6 skipped: %+v, %v", s, err)
	}
	cut := pkt(0, capture.Truncated)
	cut.OrigLen = 1514
	if _, err := Select("x.pcap", []capture.Packet{cut}, Options{}); !errors.Is(err, ErrSnaplenCut) || !strings.Contains(err.Error(), "captured 60 of 1514 bytes") {
		t.Errorf("snaplen: %v", err)
	}
	if _, err := Select("x.pcap", []capture.Packet{pkt(0, capture.L2Synthesized)}, Options{KeepL2: true}); !errors.Is(err, ErrKeepL2) {
		t.Errorf("keep-l2: %v", err)
	}
	refused := pkt(0, capture.Truncated)
	refused.Refusal = &capture.Error{File: "x.pcap", Index: 0, Err: capture.ErrHeadersCut}
	if _, err := Select("x.pcap", []capture.Packet{refused}, Options{}); !errors.Is(err, capture.ErrHeadersCut) {
		t.Errorf("headers cut: %v", err)
	}
	if _, err := Select("x.pcap", []capture.Packet{pkt(0, capture.NonIP)}, Options{SkipRefused: true}); !errors.Is(err, ErrNothing) {
		t.Errorf("nothing left: %v", err)
	}
}
