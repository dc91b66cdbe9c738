//go:build vm

package vmtest

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hoplab/hoplab/internal/testreq"
	"github.com/hoplab/hoplab/vmtest/kernels"
)

// catalogueList returns the comma-separated list in the environment
// variable env, or all when it is unset or "all".
func catalogueList(env string, all []string) []string {
	v := os.Getenv(env)
	if v == "" || v == "all" {
		return all
	}
	return strings.Split(v, ",")
}

// prepare returns the boot options of a series, fetching and building what
// is missing.
func prepare(t *testing.T, series string) *Boot {
	return prepareFlavour(t, series, "")
}

// prepareFlavour is prepare for a given flavour.
func prepareFlavour(t *testing.T, series, flavour string) *Boot {
	t.Helper()
	testreq.Command(t, "qemu-system-x86_64", "apt-get install qemu-system-x86")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	b, err := PrepareBoot(ctx, BootSpec{Series: series, Flavour: flavour})
	if err != nil {
		t.Fatalf("prepare boot: %v", err)
	}
	return b
}

// bootOptions returns the boot options of the series the fabric and failure
// tests run on: HOPLAB_SERIES, else the default.
func bootOptions(t *testing.T) []Option {
	series := os.Getenv("HOPLAB_SERIES")
	if series == "" {
		series = kernels.DefaultSeries
	}
	return prepare(t, series).Options()
}

// TestBootUname boots one VM per catalogue kernel (every series and
// flavour; HOPLAB_TEST_SERIES and HOPLAB_TEST_FLAVOURS narrow the lists)
// and checks uname -r through the agent.
func TestBootUname(t *testing.T) {
	for _, series := range catalogueList("HOPLAB_TEST_SERIES", kernels.Series) {
		for _, flavour := range catalogueList("HOPLAB_TEST_FLAVOURS", kernels.Flavours) {
			t.Run(series+"-"+flavour, func(t *testing.T) { bootUname(t, series, flavour) })
		}
	}
}

// bootUname boots one catalogue kernel and checks uname -r.
func bootUname(t *testing.T, series, flavour string) {
	b := prepareFlavour(t, series, flavour)
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
	// The only binary in the guest is the agent; run as a command it refuses
	// to act as init, which exercises exec end to end.
	res, err := vm.Exec(ctx, "/init")
	if err != nil || res.ExitCode != 1 || !strings.Contains(string(res.Stderr), "only as init") {
		t.Errorf("exec /init = %+v, %v; want exit 1 and a refusal", res, err)
	}
	if st, err := vm.Status(ctx); err != nil || st != "running" {
		t.Errorf("status = %q, %v; want running", st, err)
	}
	if err := vm.Poweroff(ctx); err != nil {
		t.Fatalf("poweroff: %v", err)
	}
	if err := vm.Err(); !errors.Is(err, ErrExited) {
		t.Errorf("after poweroff Err() = %v", err)
	}
}
