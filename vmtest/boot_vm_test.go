//go:build vm

package vmtest

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hoplab/hoplab/internal/testreq"
	"github.com/hoplab/hoplab/vmtest/kernels"
)

// bootSeries is the catalogue series the VM tests boot; HOPLAB_TEST_SERIES
// ("5.10,6.1,6.12,7.2" or "all") widens TestBootUname.
func bootSeries() []string {
	v := os.Getenv("HOPLAB_TEST_SERIES")
	switch v {
	case "":
		return []string{kernels.DefaultSeries}
	case "all":
		return kernels.Series
	}
	return strings.Split(v, ",")
}

// prepare returns the boot options of a series, fetching and building what
// is missing.
func prepare(t *testing.T, series string) *Boot {
	t.Helper()
	testreq.Command(t, "qemu-system-x86_64", "apt-get install qemu-system-x86")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	b, err := PrepareBoot(ctx, BootSpec{Series: series})
	if err != nil {
		t.Fatalf("prepare boot: %v", err)
	}
	return b
}

// bootOptions returns the default kernel's boot options.
func bootOptions(t *testing.T) []Option {
	return prepare(t, kernels.DefaultSeries).Options()
}

// TestBootUname boots one VM per catalogue kernel and checks uname -r
// through the agent.
func TestBootUname(t *testing.T) {
	for _, series := range bootSeries() {
		t.Run(series, func(t *testing.T) {
			b := prepare(t, series)
			vm := StartT(t, append(b.Options(), WithReadyTimeout(60*time.Second))...)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			u, err := vm.Uname(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if u.Release != b.Kernel.Version {
				t.Errorf("uname -r = %q, want %q", u.Release, b.Kernel.Version)
			}
			r := vm.Ready()
			t.Logf("kernel %s (%s): qemu start→ready %v; kernel handover→ready %v; uptime at ready %v; steps %v; %d modules",
				u.Release, b.Kernel.BootImage(), vm.BootTime().Round(time.Millisecond), r.HandoverToReady().Round(time.Millisecond),
				r.Uptime.Round(time.Millisecond), r.Steps, len(r.Modules))
			if rss, err := vm.RSS(); err == nil {
				t.Logf("QEMU RSS %d MiB (guest RAM %d MiB)", rss>>20, DefaultMemoryMiB)
			}
		})
	}
}
