package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/hoplab/hoplab/internal/capture"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// flowsPcap writes a capture of n SYNs from pod1 to pod4:8080, each its
// own flow (source ports 20000 and up), and returns its path.
func flowsPcap(t *testing.T, n int) string {
	t.Helper()
	frames := make([][]byte, n)
	for i := range frames {
		eth := &layers.Ethernet{SrcMAC: pod1MAC, DstMAC: lxcMAC, EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 64, Id: uint16(i), Protocol: layers.IPProtocolTCP, SrcIP: []byte{10, 1, 1, 10}, DstIP: []byte{10, 1, 2, 40}}
		tcp := &layers.TCP{SrcPort: layers.TCPPort(20000 + i), DstPort: 8080, SYN: true, Seq: 1, Window: 64240}
		_ = tcp.SetNetworkLayerForChecksum(ip)
		frames[i] = serialize(t, eth, ip, tcp, gopacket.Payload(nil))
	}
	path := filepath.Join(t.TempDir(), "big.pcap")
	if err := os.WriteFile(path, pcapFile(1, frames...), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// A capture with more TCP flows from one pod than its RST filter holds is
// refused before anything boots, in one line naming the file, the counts
// and the flag; --max-flows raises the limit and reaches the replay's
// options, and --live (no filter) needs none.
func TestReplayRefusesMoreFlowsThanTheRSTFilter(t *testing.T) {
	n := nodeapi.DefaultRSTFlows + 1
	path := flowsPcap(t, n)
	out, errOut, code := runCLI(t, "replay", "--topology", "pod-to-service", "--pcap", path)
	want := fmt.Sprintf("hoplab: %s: %d TCP flows from pod1 exceed the RST filter's %d (--max-flows %d raises it)\n", path, n, nodeapi.DefaultRSTFlows, n)
	if code != 1 || out != "" || errOut != want {
		t.Errorf("exit %d, stdout %q, stderr\n got %q\nwant %q", code, out, errOut, want)
	}

	a := &app{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	for _, f := range []replayFlags{
		{topology: "pod-to-service", pcap: path, maxFlows: n},
		{topology: "pod-to-service", pcap: path, live: true},
	} {
		p, err := a.planReplay(f)
		if err != nil {
			t.Errorf("%+v: %v", f, err)
			continue
		}
		if opts := f.options(p.top); opts.MaxFlows != f.maxFlows || opts.SuppressRST == f.live {
			t.Errorf("--max-flows %d --live=%v: options %+v", f.maxFlows, f.live, opts)
		}
	}

	for _, bad := range []string{"-1", fmt.Sprint(nodeapi.MaxRSTFlows + 1)} {
		_, errOut, code := runCLI(t, "replay", "--topology", "pod-to-service", "--pcap", path, "--max-flows", bad)
		want := fmt.Sprintf("hoplab: replay: --max-flows: %s flows outside 1..%d\n", bad, nodeapi.MaxRSTFlows)
		if code != 1 || errOut != want {
			t.Errorf("--max-flows %s: exit %d, stderr %q, want %q", bad, code, errOut, want)
		}
	}
}

// Reading shows a bar only on a terminal and only for a big capture.
func TestReadProgressOnlyForBigCapturesOnATerminal(t *testing.T) {
	var w bytes.Buffer
	if p := newReadProgress(&w, false, "big.pcap", 100*bigCapture); p != nil {
		t.Error("a progress bar on a stderr that is no terminal")
	}
	if p := newReadProgress(&w, true, "small.pcap", bigCapture-1); p != nil {
		t.Error("a progress bar for a small capture")
	}
	p := newReadProgress(&w, true, "big.pcap", 2*bigCapture)
	if p == nil {
		t.Fatal("no progress for a big capture on a terminal")
	}
	p(capture.StageRead, bigCapture, 2*bigCapture)
	p(capture.StageRead, 2*bigCapture, 2*bigCapture)
	p(capture.StageDedup, 50000, 100000)
	p(capture.StageDedup, 100000, 100000)
	if s := w.String(); !strings.Contains(s, "reading big.pcap") || !strings.Contains(s, "de-duplicating big.pcap") {
		t.Errorf("bar output %q", s)
	}
}

// Injecting many frames shows a bar on a terminal, else a note at each
// quarter; few frames show nothing.
func TestInjectProgress(t *testing.T) {
	var logged bytes.Buffer
	log := slog.New(newPlainHandler(&logged, slog.LevelInfo))
	if p, done := newInjectProgress(&bytes.Buffer{}, false, log, manyFrames-1); p != nil {
		done()
		t.Error("progress for a few frames")
	}
	p, done := newInjectProgress(&bytes.Buffer{}, false, log, 10000)
	for sent := 256; sent < 10000; sent += 256 {
		p(sent, 10000)
	}
	p(10000, 10000)
	done()
	want := "note: injected 2560 of 10000 frames\nnote: injected 5120 of 10000 frames\nnote: injected 7680 of 10000 frames\n"
	if logged.String() != want {
		t.Errorf("plain progress\n got %q\nwant %q", logged.String(), want)
	}

	var bar bytes.Buffer
	p, done = newInjectProgress(&bar, true, log, 10000)
	p(5000, 10000)
	done()
	if !strings.Contains(bar.String(), "injecting") {
		t.Errorf("bar output %q", bar.String())
	}
}
