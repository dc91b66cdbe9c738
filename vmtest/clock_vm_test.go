//go:build vm

package vmtest

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestGuestClockKeepsTime boots VMs while the host is busy (the conditions
// in which a guest under TCG miscalibrates its TSC) and checks that each
// guest's clock advances at the host's rate: BGP hold timers and CT
// lifetimes depend on it.
func TestGuestClockKeepsTime(t *testing.T) {
	opts := bootOptions(t)
	stop := make(chan struct{})
	var burn sync.WaitGroup
	for range 2 {
		burn.Add(1)
		go func() {
			defer burn.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
			}
		}()
	}
	defer func() { close(stop); burn.Wait() }()

	const vms = 3
	var wg sync.WaitGroup
	for i := range vms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.Run(strconv.Itoa(i), func(t *testing.T) { checkClock(t, opts) })
		}()
	}
	wg.Wait()
}

func checkClock(t *testing.T, opts []Option) {
	vm := StartT(t, append(opts, WithReadyTimeout(90*time.Second))...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	read := func(path string) string {
		b, err := vm.Agent().ReadFile(ctx, path)
		if err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
		return strings.TrimSpace(string(b))
	}
	uptime := func() (float64, time.Time) {
		f := strings.Fields(read("/proc/uptime"))
		s, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			t.Fatalf("/proc/uptime: %v", err)
		}
		return s, time.Now()
	}
	u1, t1 := uptime()
	time.Sleep(3 * time.Second)
	u2, t2 := uptime()
	rate := (u2 - u1) / t2.Sub(t1).Seconds()
	cs := read("/sys/devices/system/clocksource/clocksource0/current_clocksource")
	t.Logf("%s: clocksource %s, guest clock rate %.2f of the host's", vm.Name(), cs, rate)
	if rate < 0.7 || rate > 1.3 {
		t.Errorf("guest clock runs at %.2f× the host's (clocksource %s)", rate, cs)
	}
}
