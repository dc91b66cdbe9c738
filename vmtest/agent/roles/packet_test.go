package roles

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A send the kernel refuses with ENOBUFS is tried again after a pause that
// doubles up to sendBackoffMax; other errors and success end it at once;
// refusals past the limit fail with ENOBUFS and the time retried.
func TestRetryNoBufs(t *testing.T) {
	var slept []time.Duration
	sleep := func(d time.Duration) { slept = append(slept, d) }

	calls := 0
	err := retryNoBufs(func() error {
		if calls++; calls <= 3 {
			return unix.ENOBUFS
		}
		return nil
	}, sleep, time.Second)
	if err != nil || calls != 4 {
		t.Fatalf("3 refusals then success: %d calls, %v", calls, err)
	}
	if want := []time.Duration{sendBackoffMin, 2 * sendBackoffMin, 4 * sendBackoffMin}; !slices.Equal(slept, want) {
		t.Errorf("pauses %v, want %v", slept, want)
	}

	slept, calls = nil, 0
	err = retryNoBufs(func() error { calls++; return unix.EPERM }, sleep, time.Second)
	if !errors.Is(err, unix.EPERM) || calls != 1 || len(slept) != 0 {
		t.Errorf("EPERM: %d calls, %d pauses, %v", calls, len(slept), err)
	}

	slept = nil
	err = retryNoBufs(func() error { return unix.ENOBUFS }, sleep, 100*time.Millisecond)
	var total time.Duration
	for _, d := range slept {
		total += d
		if d > sendBackoffMax {
			t.Errorf("pause %v above %v", d, sendBackoffMax)
		}
	}
	if !errors.Is(err, unix.ENOBUFS) || total < 100*time.Millisecond || total > 100*time.Millisecond+sendBackoffMax {
		t.Errorf("refused for good: paused %v in all, %v", total, err)
	}
	if !strings.HasPrefix(err.Error(), "no buffer space available (retried for ") {
		t.Errorf("error %q", err)
	}
}
