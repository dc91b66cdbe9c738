package main

import (
	"bytes"
	"slices"
	"sync"
	"testing"
)

// TestSplitLanes: suites are dealt to lanes of about equal weight, every
// suite exactly once and in the list's order within a lane.
func TestSplitLanes(t *testing.T) {
	got := splitLanes(Suites, 2)
	if len(got) != 2 {
		t.Fatalf("%d lanes", len(got))
	}
	var all []string
	load := make([]int, 2)
	for l, lane := range got {
		for _, s := range lane {
			all = append(all, s)
			if w, ok := suiteWeight[s]; ok {
				load[l] += w
			} else {
				load[l] += suiteWeightDefault
			}
		}
		idx := func(s string) int { return slices.Index(Suites, s) }
		if !slices.IsSortedFunc(lane, func(a, b string) int { return idx(a) - idx(b) }) {
			t.Errorf("lane %d out of order: %v", l, lane)
		}
	}
	slices.Sort(all)
	want := slices.Clone(Suites)
	slices.Sort(want)
	if !slices.Equal(all, want) {
		t.Fatalf("suites %v, want %v", all, want)
	}
	if d := load[0] - load[1]; d > 50 || d < -50 {
		t.Errorf("lane weights %v", load)
	}
	if one := splitLanes(Suites, 1); len(one) != 1 || !slices.Equal(one[0], Suites) {
		t.Errorf("one lane: %v", one)
	}
	if few := splitLanes([]string{"./e2e/policy"}, 2); len(few) != 1 {
		t.Errorf("one suite: %v", few)
	}
}

// TestLineWriter: two lanes' partial writes come out as whole prefixed lines.
func TestLineWriter(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	a := &lineWriter{mu: &mu, w: &buf, prefix: "[lane 1] "}
	b := &lineWriter{mu: &mu, w: &buf, prefix: "[lane 2] "}
	a.Write([]byte("hel"))
	b.Write([]byte("one\ntw"))
	a.Write([]byte("lo\n"))
	b.flush()
	want := "[lane 2] one\n[lane 1] hello\n[lane 2] tw\n"
	if buf.String() != want {
		t.Fatalf("got %q, want %q", buf.String(), want)
	}
}
