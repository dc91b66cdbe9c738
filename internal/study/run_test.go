package study

import (
	"os"
	"slices"
	"syscall"
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

// TestProcessCPU: processCPU of our own process moves with the CPU time
// getrusage reports for it (10 ms ticks apart), whatever the host's load.
func TestProcessCPU(t *testing.T) {
	rusage := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	before, err := processCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	r0 := rusage()
	for x := 0; rusage()-r0 < 300*time.Millisecond; x++ {
		_ = x * x
	}
	used := rusage() - r0
	after, err := processCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if d := after - before; d < used-50*time.Millisecond || d > used+200*time.Millisecond {
		t.Errorf("processCPU moved %v while getrusage moved %v", d, used)
	}
	if _, err := processCPU(-1); err == nil {
		t.Error("no error for pid -1")
	}
}
