package main

import (
	"bytes"
	"os"
	"testing"

	"github.com/hoplab/hoplab/internal/capture"
)

// TestCaptureIsReproducible checks that the shipped capture is what the
// generator writes, and that it reads as tcpdump -i any's output: Linux
// cooked, four records, every second one another sighting of the one
// before.
func TestCaptureIsReproducible(t *testing.T) {
	b, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	shipped, err := os.ReadFile("../capture.pcap")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, shipped) {
		t.Fatal("docs/examples/bug-report/capture.pcap differs from the generator's output: run go run ./docs/examples/bug-report/gen")
	}
	pkts, err := capture.ReadFile("../capture.pcap")
	if err != nil {
		t.Fatal(err)
	}
	if len(pkts) != 4 {
		t.Fatalf("%d packets, want 4", len(pkts))
	}
	for i, p := range pkts {
		if p.LinkType != capture.LinkTypeLinuxSLL || !p.Flags.Has(capture.L2Synthesized) || !p.Replayable() {
			t.Errorf("packet %d: link type %d, flags %s, refusal %v", i, p.LinkType, p.Flags, p.Refusal)
		}
		if dup := p.Flags.Has(capture.Duplicate); dup != (i%2 == 1) || (dup && p.DuplicateOf != i-1) {
			t.Errorf("packet %d: duplicate %v of %d", i, dup, p.DuplicateOf)
		}
	}
}
