package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// A capture of a tunnel-mode wire (VXLAN between node1's and node2's
// uplinks around pod1's SYN to pod4) replays its inner packet from pod1 by
// default, and the frame as captured at the ToR port facing node2 with
// --keep-outer; each with its note.
func TestPlanVXLANCapture(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	eth := &layers.Ethernet{SrcMAC: pod1MAC, DstMAC: lxcMAC, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Id: 0x4d01, Protocol: layers.IPProtocolTCP, SrcIP: []byte{10, 1, 1, 10}, DstIP: []byte{10, 1, 2, 40}}
	tcp := &layers.TCP{SrcPort: 40000, DstPort: 8080, SYN: true, Seq: 1, Window: 64240}
	_ = tcp.SetNetworkLayerForChecksum(ip)
	inner := serialize(t, eth, ip, tcp, gopacket.Payload(nil))
	oeth := &layers.Ethernet{SrcMAC: []byte{0x52, 0x54, 0x71, 0xf1, 0x2b, 1}, DstMAC: []byte{0x52, 0x55, 0x71, 0xf1, 0x2b, 1}, EthernetType: layers.EthernetTypeIPv4}
	oip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: []byte{10, 255, 1, 11}, DstIP: []byte{10, 255, 2, 12}}
	udp := &layers.UDP{SrcPort: 45437, DstPort: 8472}
	_ = udp.SetNetworkLayerForChecksum(oip)
	outer := serialize(t, oeth, oip, udp, gopacket.Payload(append([]byte{8, 0, 0, 0, 0, 0x96, 0xba, 0}, inner...)))
	path := filepath.Join(t.TempDir(), "wire.pcap")
	if err := os.WriteFile(path, pcapFile(1, outer), 0o644); err != nil {
		t.Fatal(err)
	}
	a := &app{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	for _, c := range []struct {
		keepOuter bool
		point     string
		frame     []byte
		note      string
	}{
		{false, "pod1", inner, "their inner packets are replayed"},
		{true, "tor:node2", outer, "replayed as captured, outer headers included (--keep-outer)"},
	} {
		p, err := a.planReplay(replayFlags{topology: "tunnel", pcap: path, keepOuter: c.keepOuter})
		if err != nil {
			t.Fatalf("--keep-outer=%v: %v", c.keepOuter, err)
		}
		if len(p.frames) != 1 || p.frames[0].Point.String() != c.point {
			t.Fatalf("--keep-outer=%v: %d frames, point %v; want %s", c.keepOuter, len(p.frames), p.frames[0].Point, c.point)
		}
		// The frame as injected: L2 rewritten for the point, the rest as selected.
		if got := p.frames[0].Data; len(got) != len(c.frame) || !bytes.Equal(got[14:], c.frame[14:]) {
			t.Errorf("--keep-outer=%v: frame of %d bytes, want %d", c.keepOuter, len(got), len(c.frame))
		}
		if notes := strings.Join(p.notes, "\n"); !strings.Contains(notes, c.note) {
			t.Errorf("--keep-outer=%v: notes %q", c.keepOuter, notes)
		}
	}
}
