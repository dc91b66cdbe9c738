package replayreport

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hoplab/hoplab/internal/capture"
	"github.com/hoplab/hoplab/internal/journey"
)

// TestWritePcapsRoundTrip writes the per-hop captures of an expected
// journey and reads them back: one file per hop, each frame decoding to
// the hop's fields (wildcards aside).
func TestWritePcapsRoundTrip(t *testing.T) {
	rep, _, frames := expected(t, "tcp-syn-vip")
	dir := t.TempDir()
	hf := Frames(rep, frames, nil, time.Unix(1700000000, 0))
	files, err := WritePcaps(dir, rep, hf)
	if err != nil {
		t.Fatal(err)
	}
	hops := rep.Packets[0].Hops
	if len(files) != len(hops) {
		t.Fatalf("%d files for %d hops", len(files), len(hops))
	}
	for i, f := range files {
		h := hops[i]
		if f.Node != h.Node || f.Point != h.Point || f.Packets != 1 || f.Rebuilt != 1 {
			t.Errorf("file %d: %+v, want hop %s %s with 1 rebuilt packet", i, f, h.Node, h.Point)
		}
		pkts, err := capture.ReadFile(filepath.Join(dir, f.Name))
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		got := journey.HopFromPacket(h.Node, h.Point, h.Device, pkts[0].Data)
		got.Verdict, got.DropReason = h.Verdict, h.DropReason
		if d := journey.CompareHop(h, got); len(d) > 0 {
			t.Errorf("%s: %v", f.Name, d)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != len(hops) {
		t.Errorf("%d files in the directory, want %d", len(entries), len(hops))
	}
}

// TestFramesPreferSightings takes a sighting's bytes for the hop it shows
// and rebuilds only the others.
func TestFramesPreferSightings(t *testing.T) {
	rep, _, frames := expected(t, "tcp-syn-vip")
	h := rep.Packets[0].Hops[3]
	fr, err := Rebuild(frames[0], h)
	if err != nil {
		t.Fatal(err)
	}
	seen := journey.HopFromPacket(h.Node, h.Point, h.Device, fr)
	seen.Verdict = h.Verdict
	hf := Frames(rep, frames, []Sighting{{Hop: seen, Time: time.Unix(5, 0), Frame: fr}}, time.Unix(0, 0))
	if len(hf) != len(rep.Packets[0].Hops) {
		t.Fatalf("%d frames", len(hf))
	}
	for _, f := range hf {
		if f.Rebuilt == (f.Hop == 3) {
			t.Errorf("hop %d: rebuilt %v", f.Hop, f.Rebuilt)
		}
	}
}
