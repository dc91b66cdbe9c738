package study

import (
	"os"
	"slices"
	"testing"
	"time"
)

// TestSweepAlternates: repetitions sweep the counts up, then down.
func TestSweepAlternates(t *testing.T) {
	c := []int{0, 1, 5}
	if got := sweep(c, 0); !slices.Equal(got, []int{0, 1, 5}) {
		t.Errorf("rep 0: %v", got)
	}
	if got := sweep(c, 1); !slices.Equal(got, []int{5, 1, 0}) {
		t.Errorf("rep 1: %v", got)
	}
	if !slices.Equal(c, []int{0, 1, 5}) {
		t.Errorf("sweep changed its input: %v", c)
	}
}

// TestProcessCPU: a busy loop's CPU time shows in processCPU of our own
// process, in the right order of magnitude.
func TestProcessCPU(t *testing.T) {
	before, err := processCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	end := time.Now().Add(300 * time.Millisecond)
	for x := 0; time.Now().Before(end); x++ {
		_ = x * x
	}
	after, err := processCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if d := after - before; d < 100*time.Millisecond || d > 2*time.Second {
		t.Errorf("a 300 ms busy loop used %v of CPU", d)
	}
	if _, err := processCPU(-1); err == nil {
		t.Error("no error for pid -1")
	}
}
