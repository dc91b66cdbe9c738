package lab

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hoplab/hoplab/vmtest/control"
)

// Bounds of the guests' clock check.
const (
	// clockSample is how long the check watches the guests' clocks.
	clockSample = 700 * time.Millisecond
	// maxClockRate is how much faster (or slower) than the host's a guest
	// clock may run: BGP's hold timer (9 s) expires within 9/rate host
	// seconds, and keepalives are sent every 3 s of guest time.
	maxClockRate = 1.5
)

// ErrClock is matched by checkClocks's error: a guest's clock does not
// keep time (under TCG the kernel sometimes calibrates its TSC wrongly and
// runs several times too fast), so its BGP sessions flap.
var ErrClock = errors.New("guest clock does not keep time")

// checkClocks compares how far every VM's /proc/uptime advances with the
// host's clock over clockSample.
func (l *Lab) checkClocks(ctx context.Context) error {
	vms := l.Cluster.Fabric().VMs()
	errs := make([]error, len(vms))
	var wg sync.WaitGroup
	for i, vm := range vms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			uptime := func() (float64, time.Time, error) {
				var b []byte
				if err := vm.Call(ctx, control.MethodReadFile, control.ReadFile{Path: "/proc/uptime"}, &b); err != nil {
					return 0, time.Time{}, fmt.Errorf("%s: read /proc/uptime: %w", vm.Name(), err)
				}
				f := strings.Fields(string(b))
				if len(f) == 0 {
					return 0, time.Time{}, fmt.Errorf("%s: /proc/uptime: %q", vm.Name(), b)
				}
				s, err := strconv.ParseFloat(f[0], 64)
				return s, time.Now(), err
			}
			u1, t1, err := uptime()
			if err != nil {
				errs[i] = err
				return
			}
			time.Sleep(clockSample)
			u2, t2, err := uptime()
			if err != nil {
				errs[i] = err
				return
			}
			rate := (u2 - u1) / t2.Sub(t1).Seconds()
			if rate > maxClockRate || rate < 1/maxClockRate {
				errs[i] = fmt.Errorf("%s: %w: it ran %.2f s while the host's ran %.2f s (%.1f×)", vm.Name(), ErrClock, u2-u1, t2.Sub(t1).Seconds(), rate)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
