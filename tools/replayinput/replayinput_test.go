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

// badSum returns a packet whose IPv4 header checksum is 0x0001 where
// 0x7ac0 would be right.
func badSum(i int) capture.Packet {
	p := pkt(i, capture.BadIPChecksum)
	ip := p.Data[14:]
	ip[0], ip[8], ip[9] = 0x45, 64, 17
	ip[2], ip[3] = 0, 46
	ip[10], ip[11] = 0, 1
	return p
}

// TestBadChecksumNotedOrRefused: a wrong IPv4 header checksum is replayed
// with a note naming the packet and both values, refused with --strict, and
// the notes stop at MaxNotes with a count of the rest.
func TestBadChecksumNotedOrRefused(t *testing.T) {
	s, err := Select("x.pcap", []capture.Packet{pkt(0, 0), badSum(1)}, Options{})
	if err != nil || len(s.Packets) != 2 {
		t.Fatalf("selection %+v, %v", s, err)
	}
	want := "packet 1: IPv4 header checksum 0x0001 is wrong (0x7ac0 expected): replayed as captured, so the first hop that checks it drops it (--strict refuses it)"
	if len(s.Notes) != 1 || s.Notes[0] != want {
		t.Errorf("notes %q, want %q", s.Notes, want)
	}
	_, err = Select("x.pcap", []capture.Packet{pkt(0, 0), badSum(1)}, Options{Strict: true})
	var ce *capture.Error
	if !errors.Is(err, ErrBadChecksum) || !errors.As(err, &ce) || ce.Index != 1 || !strings.Contains(err.Error(), "0x0001, 0x7ac0 expected (--strict)") {
		t.Errorf("--strict: %v", err)
	}
	var many []capture.Packet
	for i := range MaxNotes + 5 {
		many = append(many, badSum(i))
	}
	s, err = Select("x.pcap", many, Options{})
	if err != nil || len(s.Notes) != MaxNotes+1 || s.Notes[MaxNotes] != "... and 5 more packet(s) with notes like these" {
		t.Errorf("%d notes, last %q, %v", len(s.Notes), s.Notes[len(s.Notes)-1], err)
	}
}

// Load hands Options.Progress to the capture reader: it hears the end of
// reading and of duplicate marking.
func TestLoadProgress(t *testing.T) {
	ends := map[capture.Stage][2]int64{}
	s, err := Load("../../fixtures/data/tcp-syn-vip.pcap", Options{Progress: func(st capture.Stage, done, total int64) {
		ends[st] = [2]int64{done, total}
	}})
	if err != nil {
		t.Fatal(err)
	}
	read, dedup := ends[capture.StageRead], ends[capture.StageDedup]
	if read[0] == 0 || read[0] != read[1] || dedup[1] != int64(len(s.Packets)) || dedup[0] != dedup[1] {
		t.Errorf("progress ends: reading %v, de-duplicating %v (%d packets)", read, dedup, len(s.Packets))
	}
}

// VXLAN-encapsulated packets (the reader replaced them by their inner
// frames) are replayed, with one note counting them.
func TestVXLANNoted(t *testing.T) {
	s, err := Select("x.pcap", []capture.Packet{pkt(0, capture.VXLANDecapsulated), pkt(1, 0), pkt(2, capture.VXLANDecapsulated)}, Options{})
	if err != nil || len(s.Packets) != 3 {
		t.Fatalf("selection %+v, %v", s, err)
	}
	want := "2 packet(s) were VXLAN-encapsulated (a tunnel-mode cluster's wire): their inner packets are replayed (--keep-outer replays them as captured)"
	if len(s.Notes) != 1 || s.Notes[0] != want {
		t.Errorf("notes %q, want %q", s.Notes, want)
	}
	// --keep-outer: the frames as captured.
	tun := pkt(0, capture.VXLANDecapsulated)
	tun.Outer = make([]byte, 110)
	tun.Outer[0] = 0xaa
	s, err = Select("x.pcap", []capture.Packet{tun, pkt(1, 0)}, Options{KeepOuter: true})
	if err != nil || len(s.Packets) != 2 || len(s.Packets[0].Data) != 110 || s.Packets[0].Data[0] != 0xaa || s.Packets[0].OrigLen != 110 ||
		len(s.Packets[1].Data) != 60 {
		t.Fatalf("--keep-outer: %+v, %v", s, err)
	}
	want = "1 packet(s) were VXLAN-encapsulated (a tunnel-mode cluster's wire): replayed as captured, outer headers included (--keep-outer)"
	if len(s.Notes) != 1 || s.Notes[0] != want {
		t.Errorf("--keep-outer notes %q, want %q", s.Notes, want)
	}
	if s, _ := Select("x.pcap", []capture.Packet{pkt(0, 0)}, Options{}); len(s.Notes) != 0 {
		t.Errorf("notes without VXLAN: %q", s.Notes)
	}
}
